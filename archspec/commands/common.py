"""Arguments shared by the subcommands."""
from __future__ import annotations

import argparse


def add_spec_args(p: argparse.ArgumentParser, many: bool = False) -> None:
    if many:
        p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (YAML)")
    else:
        p.add_argument("spec", metavar="SPEC", help="spec file (YAML)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                   help="override a setting, e.g. --set stages.depths=[3,3,9,3] "
                        "--set block.groups=32 (repeatable; VALUE is YAML)")


def add_strict(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true",
                   help="a setting that inheritance dropped (a type change whose new type lacks "
                        "it) is an error, not a note")
