"""`archspec schema -o FILE`: the JSON Schema of the spec language, for editors (docs/editor.md)."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from ..schema import to_json
    from .render import write_atomic
    text = to_json()
    if args.output in (None, "-"):
        print(text, end="")
        return 0
    write_atomic(args.output, text.encode())
    print(f"wrote {args.output} (JSON Schema draft 2020-12 of archspec specs; see docs/editor.md)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "schema", help="write the JSON Schema of spec files, for editor completion and checks",
        description="Write a JSON Schema (draft 2020-12) that accepts every valid spec as "
                    "written (base:, shorthands such as `norm: layer_norm`) and rejects unknown "
                    "keys, wrong types and unknown block types, with every setting's "
                    "documentation as its description. Point VS Code's YAML extension at it "
                    "(docs/editor.md). Never imports torch.",
        epilog="Example: archspec schema -o archspec.schema.json")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="file to write (default: standard output)")
    p.set_defaults(func=run)
