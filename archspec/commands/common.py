"""Arguments shared by the subcommands."""
from __future__ import annotations

import argparse
import sys


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


def add_strict(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true",
                   help="a setting that inheritance dropped (a type change whose new type lacks "
                        "it) is an error, not a note")


def add_weights_args(p: argparse.ArgumentParser, with_path: bool = True) -> None:
    """--weights (optional), --source and --no-strict: how a checkpoint is loaded."""
    if with_path:
        p.add_argument("--weights", metavar="CHECKPOINT",
                       help="load a timm, torchvision or archspec checkpoint "
                            "(.pt/.pth/.safetensors) into the module; see docs/weights.md")
    p.add_argument("--source", choices=("auto", "timm", "torchvision", "archspec"),
                   default="auto", help="the checkpoint's names (default: recognised from "
                                        "its keys)")
    p.add_argument("--no-strict", action="store_true",
                   help="load the tensors that agree and report the rest (for modified "
                        "networks; a classifier with another number of classes is left as "
                        "initialised)")


def load_and_report(model, checkpoint: str, args: argparse.Namespace, stream=None):
    """Load `checkpoint` with the --source/--no-strict options; print the report's table."""
    from .. import load_weights
    report = load_weights(model, checkpoint, source=args.source, strict=not args.no_strict)
    print(report.table(), file=stream or sys.stdout)
    return report
