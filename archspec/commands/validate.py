"""`archspec validate SPEC...`: check specs without importing torch."""
from __future__ import annotations

import argparse
import json
import sys

from .common import add_spec_args, add_strict


def run(args: argparse.Namespace) -> int:
    from ..errors import SpecError
    from ..summary import display_name, human
    status = 0
    results = []
    for path in args.specs:
        try:
            row = _summary(path, args)
        except SpecError as exc:
            print(exc, file=sys.stderr)
            status = 2
            results.append({"spec": path, "valid": False,
                            "errors": [p.format() for p in exc.problems]})
            continue
        results.append({"spec": path, "valid": True, "name": row["name"],
                        "overrides": list(args.overrides), "params": row["params"],
                        "macs": row["macs"], "notes": row["notes"]})
        if args.json:
            continue
        name = display_name({"name": row["name"], "overrides": args.overrides})
        print(f"ok  {path}: {name}, {row['params']:,} params, {human(row['macs'])} MACs")
        for override in args.overrides:
            print(f"  override: {override}")
        for note in row["notes"]:
            print(f"note: {note}")
    if args.json:
        print(json.dumps(results, indent=2))
    return status


def _summary(path: str, args: argparse.Namespace) -> dict:
    """Name, counts and notes of a valid spec: from the summary cache (archspec.summary_cache)
    unless overrides or --strict ask for more than the stored answer."""
    if not args.overrides and not args.strict:
        from ..summary_cache import summary
        return summary(path)
    from .. import resolve
    graph = resolve(path, args.overrides, strict=args.strict)
    return {"name": graph.name, "params": graph.params, "macs": graph.macs,
            "notes": list(graph.notes)}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="check spec files quickly, without torch",
        description="Load, validate and resolve each spec (no torch import). Prints one line "
                    "per valid spec and every error of the invalid ones; exit code 2 if any "
                    "spec is invalid.")
    add_spec_args(p, many=True)
    add_strict(p)
    p.add_argument("--json", action="store_true",
                   help="print one JSON list: per spec, valid, name, overrides, params, macs "
                        "(or its errors; they also go to stderr)")
    p.set_defaults(func=run)
