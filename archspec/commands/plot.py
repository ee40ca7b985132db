"""`archspec plot`: per-section bars, a chain plot or a scatter of samples, as SVG or PNG."""
from __future__ import annotations

import argparse
import json
import os
import sys


def run(args: argparse.Namespace) -> int:
    from .. import resolve
    from ..errors import Problem, SpecError
    if not args.output.endswith((".svg", ".png")):
        raise SpecError([Problem(None, "--output", f"expected a .svg or .png file, got "
                                 f"'{args.output}'", "for example -o plot.svg")])
    if not args.specs and not args.samples:
        raise SpecError([Problem(None, "SPEC", "expected at least one spec (or --samples)",
                                 "archspec plot specs/resnet50.yaml -o resnet50.svg")])
    from ..plot import chain_figure, save, scatter_figure, sections_figure
    if args.samples:
        with open(args.samples, encoding="utf-8") as f:
            data = json.load(f)
        color = args.color or (data["vary"][0].split("=", 1)[0] if data["vary"] else None)
        fig = scatter_figure(data["samples"], color)
    elif args.chain:
        from .diff import chain_paths
        paths = chain_paths(args.specs)
        fig = chain_figure([(_label(p), resolve(p)) for p in paths])
    else:
        fig = sections_figure([(_label(p), resolve(p, args.overrides)) for p in args.specs],
                              args.metric or ("params", "macs", "acts"))
    for path in save(fig, args.output):
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _label(path: str) -> str:
    return os.path.basename(str(path)).removesuffix(".yaml")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot", help="plot params / MACs / activations per section, per chain step, or samples",
        description="Draw, without a display, an SVG or PNG (by the extension of -o): per-section "
                    "bars of params, MACs and activations for one or several specs side by side; "
                    "with --chain, params and MACs per step of a chain (specs in order or a "
                    "folder); with --samples, the scatter of `archspec sample`'s samples.json "
                    "(MACs vs params, coloured by --color). No torch import.")
    p.add_argument("specs", nargs="*", metavar="SPEC", help="spec files (or a chain folder)")
    p.add_argument("-o", "--output", required=True, metavar="FILE.svg|FILE.png")
    p.add_argument("--chain", action="store_true", help="one point per spec of a chain")
    p.add_argument("--samples", metavar="JSON", help="samples.json written by `archspec sample`")
    p.add_argument("--color", metavar="PATH", help="with --samples: the setting that colours "
                   "the points (default the first varied one)")
    p.add_argument("--metric", action="append", choices=("params", "macs", "acts"),
                   help="per-section panels to draw (default all three)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                   help="override a setting of every SPEC (as in build)")
    p.set_defaults(func=run)
