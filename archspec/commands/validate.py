"""`archspec validate SPEC...`: check specs without importing torch."""
from __future__ import annotations

import argparse
import sys

from .common import add_spec_args, add_strict


def run(args: argparse.Namespace) -> int:
    from .. import resolve
    from ..errors import SpecError
    from ..summary import human
    status = 0
    for path in args.specs:
        try:
            graph = resolve(path, args.overrides, strict=args.strict)
        except SpecError as exc:
            print(exc, file=sys.stderr)
            status = 2
            continue
        print(f"ok  {path}: {graph.name}, {graph.params:,} params, {human(graph.macs)} MACs")
        for note in graph.notes:
            print(f"note: {note}")
    return status


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="check spec files quickly, without torch",
        description="Load, validate and resolve each spec (no torch import). Prints one line "
                    "per valid spec and every error of the invalid ones; exit code 2 if any "
                    "spec is invalid.")
    add_spec_args(p, many=True)
    add_strict(p)
    p.set_defaults(func=run)
