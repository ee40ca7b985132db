"""`archspec list [FOLDER]`: the zoo as a table, computed from the specs, without torch."""
from __future__ import annotations

import argparse
import json
import sys


def run(args: argparse.Namespace) -> int:
    from ..zoo import entries, to_table
    rows, errors = entries(args.folder)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        print(to_table(rows))
    for exc in errors:
        print(exc, file=sys.stderr)
    return 2 if errors else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list", help="print the model zoo: every spec in specs/ with its counts",
        description="Resolve every spec directly in FOLDER (default: the specs/ folder shipped "
                    "with archspec; subfolders are not listed) and print one row each: name, "
                    "block family, parameters, MACs (conv + linear multiply-accumulates), input "
                    "size, description. No torch import. Exit code 2 if a spec is invalid (its "
                    "errors go to stderr, the other rows are still printed).")
    p.add_argument("folder", nargs="?", metavar="FOLDER", help="folder of spec files")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    p.set_defaults(func=run)
