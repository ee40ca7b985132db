"""`archspec convert SPEC CHECKPOINT -o OUT.safetensors`: a timm/torchvision checkpoint renamed
to archspec's names, with the spec embedded (docs/weights.md)."""
from __future__ import annotations

import argparse
import os

from .common import add_spec_args, add_weights_args, load_and_report


def run(args: argparse.Namespace) -> int:
    from .. import build, save
    from ..weights import WeightsError
    if os.path.exists(args.output) and not args.overwrite:  # before any work
        raise WeightsError(args.output, "already exists; not overwritten",
                           "choose another name, or pass --overwrite")
    model = build(args.spec, args.overrides)
    report = load_and_report(model, args.checkpoint, args)
    save(model, args.output, overwrite=args.overwrite)
    print(f"wrote {args.output}: {len(report.loaded)} tensors from {args.checkpoint} "
          f"({report.layout} layout), archspec names, spec {model.spec_name} embedded")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert", help="rename a timm/torchvision checkpoint to archspec, spec embedded",
        description="Load CHECKPOINT (.pt/.pth/.safetensors, timm, torchvision or archspec "
                    "names, recognised from its keys) into the spec's module and write its "
                    "weights with archspec names to OUT, with the resolved spec (YAML and "
                    "SHA-256) and the archspec version embedded, so that "
                    "archspec.load_model(OUT) rebuilds the network without the YAML. OUT is "
                    "written atomically and never over an existing file without --overwrite.")
    add_spec_args(p)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="the checkpoint to convert")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output file: .safetensors (recommended) or .pt")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    add_weights_args(p, with_path=False)
    p.set_defaults(func=run)
