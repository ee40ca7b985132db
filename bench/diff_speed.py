"""Wall time of `cli.py diff` on two ResNet-152-size specs and of `diff --chain` on the roadmap,
each as a fresh process, against a bare interpreter start measured alternately.

    python bench/diff_speed.py [--runs 10]

Targets (issue 5): a diff of two resnet152-size specs under 0.5 s; the 14-step chain under 2 s.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import alternate, median  # noqa: E402
ROADMAP = ROOT / "specs" / "roadmap" / "resnet50_to_convnext_t"



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10)
    args = p.parse_args()
    py = sys.executable
    cases = {
        "diff resnet152 resnet101 (two ResNet-152-size specs)":
            ([py, "cli.py", "diff", "specs/resnet152.yaml", "specs/resnet101.yaml"], 0.5),
    }
    chain = sorted(ROADMAP.glob("[0-9][0-9]_*.yaml"))
    if chain:
        cases[f"diff --chain ({len(chain)} roadmap specs)"] = (
            [py, "cli.py", "diff", "--chain", str(ROADMAP)], 2.0)
    else:
        print(f"(no roadmap specs under {ROADMAP.relative_to(ROOT)}: chain case skipped)")
    for name, (cmd, target) in cases.items():
        times, base = alternate(cmd, args.runs)
        t, b = median(times), median(base)
        print(f"{name}: median {t:.3f} s (min {min(times):.3f}, max {max(times):.3f}) over "
              f"{args.runs} runs; bare interpreter {b:.3f} s, ratio {t / b:.1f}x; "
              f"target < {target} s: {'met' if t < target else 'NOT met'}")


if __name__ == "__main__":
    main()
