"""How long `cli.py validate` takes on a big spec, against a bare interpreter start.

    python bench/validate_speed.py [--spec specs/resnet152.yaml] [--runs 15]

Both are run as fresh processes, alternately, in this process's loop; medians are printed with
their ratio. The target (core issue): validate resnet152 under 0.3 s wall, no torch import.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import alternate, median  # noqa: E402



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", default="specs/resnet152.yaml")
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args()
    validate = [sys.executable, "cli.py", "validate", args.spec]
    times_v, times_b = alternate(validate, args.runs)
    v, b = median(times_v), median(times_b)
    print(f"validate {args.spec}: median {v:.3f} s (min {min(times_v):.3f}, max {max(times_v):.3f})"
          f" over {args.runs} runs")
    print(f"bare interpreter start: median {b:.3f} s")
    print(f"ratio validate / bare start: {v / b:.1f}x; archspec's own share {v - b:.3f} s")
    print("target < 0.300 s:", "met" if v < 0.3 else "NOT met")


if __name__ == "__main__":
    main()
