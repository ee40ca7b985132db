"""`archspec modernize SPEC -o DIR`: the ConvNeXt roadmap applied to a ResNet-family spec."""
from __future__ import annotations

import argparse
import os
import shlex
import sys


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers such as 3,3,9,3, got {text!r}")


def _names(text: str) -> list[str]:
    return [v for v in text.replace(",", " ").split() if v]


def run(args: argparse.Namespace) -> int:
    from ..commands.diff import chain_rows, format_chain
    from ..modernizing import Options, plan_chain, readme_text, write_chain
    options = Options(**{k: v for k, v in (
        ("depths", args.depths), ("patch_size", args.patch_size),
        ("width_factor", args.width_factor), ("stem_width", args.stem_width),
        ("widths", args.widths), ("block_widths", args.block_widths),
        ("expand_ratio", args.expand_ratio), ("kernel_sizes", args.kernel_sizes),
        ("activation", args.activation), ("norm", args.norm),
        ("downsample_kernel", args.downsample_kernel),
        ("layer_scale_init", args.layer_scale_init)) if v is not None})
    if args.no_layer_scale:
        options.layer_scale_init = None
    chain = plan_chain(args.spec, args.steps, args.skip or (), options)
    paths = write_chain(chain, args.spec, args.output, args.overwrite)
    command = _command(args)
    extra = ""
    if not args.no_plot:
        extra = _plots(chain, args.output)
    with open(os.path.join(args.output, "README.md"), "w", encoding="utf-8") as f:
        f.write(readme_text(chain, paths, command, extra))
    print(format_chain(chain_rows(paths), "table"))
    for s in chain.skipped:
        print(f"skipped {s.key}: {s.reason}", file=sys.stderr)
    print(f"wrote {len(paths)} specs and README.md to {args.output}", file=sys.stderr)
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this chain (for the README)."""
    words = ["archspec", "modernize", args.spec, "-o", args.output]
    for key in ("steps", "skip", "depths", "patch_size", "width_factor", "stem_width", "widths",
                "block_widths", "expand_ratio", "kernel_sizes", "activation", "norm",
                "downsample_kernel", "layer_scale_init"):
        value = getattr(args, key)
        if value is not None:
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            words += ["--" + key.replace("_", "-"), text]
    if args.no_layer_scale:
        words.append("--no-layer-scale")
    return " ".join(shlex.quote(w) for w in words)


def _plots(chain, out_dir: str) -> str:
    """The chain plot next to the specs, when matplotlib is installed."""
    try:
        from ..plot import chain_figure, save
    except ImportError:
        return ""
    names = save(chain_figure([(s.label, s.graph) for s in chain]),
                 os.path.join(out_dir, "chain"), ("svg", "png"))
    return f"\n![params and MACs per step]({os.path.basename(names[0])})\n"


def register(sub: argparse._SubParsersAction) -> None:
    from ..modernizing import STEP_KEYS
    p = sub.add_parser(
        "modernize", help="apply the ConvNeXt roadmap to a ResNet-family spec, step by step",
        description="Apply the steps of the ConvNeXt roadmap (Liu et al. 2022), in the paper's "
                    "order, to a ResNet-family spec (basic, bottleneck, grouped, SE, split "
                    "attention; any depth, width and stem). Writes one spec per step into DIR, "
                    "each inheriting from the previous (`base:`), and DIR/README.md with the "
                    "table and `diff --chain`'s summary. Steps: " + ", ".join(STEP_KEYS) + ". "
                    "See docs/modernize.md. No torch import.")
    p.add_argument("spec", metavar="SPEC", help="the starting spec (YAML)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write into")
    p.add_argument("--steps", type=_names, metavar="K1,K2", help="only these steps")
    p.add_argument("--skip", type=_names, metavar="K1,K2", help="leave these steps out")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files already in DIR (only ever those this command wrote)")
    g = p.add_argument_group("step options")
    g.add_argument("--depths", type=_ints, help="stage_ratio: new depths (default 1:1:3:1 x the "
                   "first stage's depth, e.g. 3,3,9,3)")
    g.add_argument("--patch-size", type=int, help="patchify_stem: patch size (default 4)")
    g.add_argument("--width-factor", type=float, help="wider: width multiplier (default 1.5)")
    g.add_argument("--stem-width", type=int, help="wider: new stem width")
    g.add_argument("--widths", type=_ints, help="wider: new stage widths")
    g.add_argument("--block-widths", type=_ints, help="inverted_bottleneck: stage widths d "
                   "(default each stage's 3x3 width)")
    g.add_argument("--expand-ratio", type=float, help="inverted_bottleneck: hidden = ratio x "
                   "d_out (default 4)")
    g.add_argument("--kernel-sizes", type=_ints, help="kernel: one spec per size (default 5,7)")
    g.add_argument("--activation", help="gelu: the new activation (default gelu)")
    g.add_argument("--norm", help="layer_norm: the new norm (default layer_norm)")
    g.add_argument("--downsample-kernel", type=int, help="separate_downsampling: kernel = "
                   "stride of the downsampling conv (default 2)")
    g.add_argument("--layer-scale-init", type=float, help="separate_downsampling: layer scale "
                   "init (default 1e-6)")
    g.add_argument("--no-layer-scale", action="store_true", help="no layer scale")
    p.add_argument("--no-plot", action="store_true", help="skip the chain plot")
    p.set_defaults(func=run)
