"""Analytic params + MACs (resolve, no torch) against instantiating the same torch module.

    python bench/analytic_speed.py [--spec specs/resnet50.yaml] [--runs 20]

Times, alternately in one process: `archspec.resolve(spec)` (load excluded: the spec is parsed
once; resolving computes every layer's shapes, parameters and MACs) and `archspec.to_module(graph)`
(building and initializing the nn.Module). Prints medians and their ratio; target >= 100x.
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import archspec  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", action="append", default=None)
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    import torch
    torch.set_num_threads(2)
    for path in args.spec or ["specs/resnet50.yaml", "specs/resnet152.yaml"]:
        spec = archspec.load(ROOT / path)
        graph = archspec.resolve(spec)
        archspec.to_module(graph)  # warm-up
        analytic, module = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            g = archspec.resolve(spec)
            _ = (g.params, g.macs)
            analytic.append(time.perf_counter() - t)
            t = time.perf_counter()
            m = archspec.to_module(graph)
            _ = sum(x.numel() for x in m.parameters())
            module.append(time.perf_counter() - t)
        a, m = statistics.median(analytic), statistics.median(module)
        print(f"{path}: resolve (params+MACs) {a * 1e3:.2f} ms, build torch module "
              f"{m * 1e3:.1f} ms (medians of {args.runs}); ratio {m / a:.0f}x "
              f"({'meets' if m / a >= 100 else 'MISSES'} the 100x target)")


if __name__ == "__main__":
    main()
