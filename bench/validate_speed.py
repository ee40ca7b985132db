"""How long `cli.py validate` takes on a big spec, against a bare interpreter start.

    python bench/validate_speed.py [--spec specs/resnet152.yaml] [--runs 15]

Both are run as fresh processes, alternately, in this process's loop; medians are printed with
their ratio. The target (core issue): validate resnet152 under 0.3 s wall, no torch import.
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", default="specs/resnet152.yaml")
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args()
    validate = [sys.executable, "cli.py", "validate", args.spec]
    bare = [sys.executable, "-c", "pass"]
    wall(validate)  # warm the file cache
    times_v, times_b = [], []
    for _ in range(args.runs):
        times_v.append(wall(validate))
        times_b.append(wall(bare))
    v, b = statistics.median(times_v), statistics.median(times_b)
    print(f"validate {args.spec}: median {v:.3f} s (min {min(times_v):.3f}, max {max(times_v):.3f})"
          f" over {args.runs} runs")
    print(f"bare interpreter start: median {b:.3f} s")
    print(f"ratio validate / bare start: {v / b:.1f}x; archspec's own share {v - b:.3f} s")
    print("target < 0.300 s:", "met" if v < 0.3 else "NOT met")


if __name__ == "__main__":
    main()
