"""`archspec list [PATTERN...]`: the zoo as a table, computed from the specs, without torch."""
from __future__ import annotations

import argparse
import json
import os
import sys


def _selection(args: argparse.Namespace):
    """(folder, names) to list: one existing folder argument lists that folder; otherwise the
    arguments are fnmatch patterns over the zoo names. Nothing matching is a SpecError."""
    from ..catalog import suggest
    from ..errors import Location, Problem, SpecError
    from ..zoo import list_models
    if len(args.patterns) == 1 and os.path.isdir(args.patterns[0]):
        return args.patterns[0], None
    names = list_models(args.patterns or None)
    unmatched = [p for p in args.patterns if not list_models(p)]
    if unmatched:
        raise SpecError([Problem(Location(p), "<pattern>", "matches no spec in the zoo",
                                 suggest(p.strip("*?")) if p.strip("*?") else None)
                         for p in unmatched])
    return None, names


def run(args: argparse.Namespace) -> int:
    from ..errors import Location, Problem, SpecError
    from ..zoo import entries, sort_rows, to_table
    folder, names = _selection(args)
    rows, errors = entries(folder, names)
    if not rows and not errors:
        raise SpecError([Problem(Location(folder), "<folder>", "holds no *.yaml spec",
                                 "subfolders are not listed: name the folder of the specs")])
    rows = sort_rows(rows, args.sort)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        print(to_table(rows))
    for exc in errors:
        print(exc, file=sys.stderr)
    return 2 if errors else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list", help="print the model zoo (all, or the names matching patterns) with its counts",
        description="Resolve the zoo's specs (all of its top level, or those whose names match "
                    "the fnmatch PATTERNs; `roadmap/*` lists the roadmap) or every spec directly "
                    "in FOLDER, and print one row each: name, block family, parameters, MACs "
                    "(conv + linear multiply-accumulates), input size, description. No torch "
                    "import. Exit code 2 if a pattern matches nothing, the folder holds no spec, "
                    "or a spec is invalid (its errors go to stderr, the other rows are still "
                    "printed).",
        epilog="Examples: archspec list 'resnet*' 'convnext_*' --sort params ; "
               "archspec list 'roadmap/*' ; archspec list my_specs/")
    p.add_argument("patterns", nargs="*", metavar="PATTERN|FOLDER",
                   help="zoo names or fnmatch patterns (quote them: 'resnet*'), or one folder "
                        "of spec files")
    p.add_argument("--sort", choices=("name", "params", "macs"), default="name",
                   help="row order: name (default), or params / macs, largest first")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    p.set_defaults(func=run)
