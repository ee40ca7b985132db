#!/usr/bin/env python
"""Write docs/zoo.md from specs/*.yaml (the rows `python cli.py list` prints).

    python scripts/gen_zoo.py           # rewrite docs/zoo.md
    python scripts/gen_zoo.py --check   # exit 1 if docs/zoo.md is out of date
"""
from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's archspec, wherever the script is run from

from archspec.zoo import entries, to_markdown  # noqa: E402

TARGET = ROOT / "docs" / "zoo.md"


def render() -> str:
    """The text docs/zoo.md should hold."""
    rows, errors = entries(ROOT / "specs")
    if errors:
        raise SystemExit("\n".join(str(e) for e in errors))
    return to_markdown(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare instead of writing")
    args = p.parse_args()
    text = render()
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run `python scripts/gen_zoo.py`",
                  file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
