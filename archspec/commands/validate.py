"""`archspec validate SPEC...`: check specs without importing torch."""
from __future__ import annotations

import argparse
import sys

from .common import add_spec_args


def run(args: argparse.Namespace) -> int:
    from ..errors import SpecError
    from ..summary import human
    from ..summary_cache import summary
    status = 0
    for path in args.specs:
        try:
            row = _overridden(path, args.overrides) if args.overrides else summary(path)
        except SpecError as exc:
            print(exc, file=sys.stderr)
            status = 2
            continue
        print(f"ok  {path}: {row['name']}, {row['params']:,} params, {human(row['macs'])} MACs")
        for note in row["notes"]:
            print(f"note: {note}")
    return status


def _overridden(path: str, overrides: list[str]) -> dict:
    """What validate prints for a spec with `--set` overrides (never cached)."""
    from .. import resolve
    graph = resolve(path, overrides)
    return {"name": graph.name, "params": graph.params, "macs": graph.macs,
            "notes": graph.notes}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="check spec files quickly, without torch",
        description="Load, validate and resolve each spec (no torch import). Prints one line "
                    "per valid spec and every error of the invalid ones; exit code 2 if any "
                    "spec is invalid.")
    add_spec_args(p, many=True)
    p.set_defaults(func=run)
