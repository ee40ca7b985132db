"""Arguments shared by the subcommands."""
from __future__ import annotations

import argparse


SPEC_HELP = ("spec file (YAML) or zoo name: resnet50, zoo:resnet50d, "
             "roadmap/resnet50_to_convnext_t/05_inverted_bottleneck (an existing file wins; "
             "`archspec list` shows the zoo)")


def add_spec_args(p: argparse.ArgumentParser, many: bool = False) -> None:
    if many:
        p.add_argument("specs", nargs="+", metavar="SPEC", help=SPEC_HELP)
    else:
        p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                   help="override a setting, e.g. --set stages.depths=[3,3,9,3] "
                        "--set block.groups=32 (repeatable; VALUE is YAML)")
