"""Start-up cost of the torch-free commands, against a bare interpreter start, in one run.

    python bench/startup_speed.py [--runs 15]

Times `cli.py validate specs/resnet152.yaml` and `cli.py list` (the whole zoo) as fresh
processes, alternating with `python -c pass`, after one warm-up each: as a user meets them (the
summary cache filled by the warm-up: archspec/summary_cache.py) and with the cache turned off
(`ARCHSPEC_NO_CACHE=1`: load, validate and resolve every spec). A private cache folder is used. Prints medians of the wall
time and of the CPU time the child used (user + system, from getrusage: unaffected by waiting
for a core on a shared machine), the ratio to the bare start, and the targets (issue 17:
validate < 0.2 s, list < 0.4 s on the development machine).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import BARE, timed  # noqa: E402

TARGETS = {"validate": 0.2, "list": 0.4}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--spec", default="specs/resnet152.yaml")
    args = p.parse_args(argv)
    os.environ["ARCHSPEC_CACHE_DIR"] = tempfile.mkdtemp(prefix="archspec-bench-")
    validate = [sys.executable, "cli.py", "validate", args.spec]
    listing = [sys.executable, "cli.py", "list"]
    cold = ["env", "ARCHSPEC_NO_CACHE=1"]
    commands = {"validate": validate, "list": listing, "validate, no cache": cold + validate,
                "list, no cache": cold + listing, "bare": BARE}
    for cmd in commands.values():
        timed(cmd)
    wall: dict[str, list[float]] = {k: [] for k in commands}
    cpu: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(args.runs):
        for name, cmd in commands.items():
            w, c = timed(cmd)
            wall[name].append(w)
            cpu[name].append(c)
    med = {k: statistics.median(v) for k, v in wall.items()}
    mcpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"{args.runs} alternating runs each; load average {os.getloadavg()[0]:.2f}")
    print(f"bare interpreter start: wall {med['bare']:.3f} s, cpu {mcpu['bare']:.3f} s")
    ok = True
    for name in commands:
        if name == "bare":
            continue
        target = TARGETS[name.split(",")[0]]
        met = med[name] < target
        ok &= met or "no cache" in name
        print(f"{name:18s} wall median {med[name]:.3f} s (min {min(wall[name]):.3f}) = "
              f"{med[name] / med['bare']:.1f}x bare; cpu median {mcpu[name]:.3f} s = "
              f"{mcpu[name] / mcpu['bare']:.1f}x bare; target < {target} s: "
              + ("met" if met else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
