"""Timing whole commands as fresh processes, against a bare interpreter start."""
from __future__ import annotations

import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BARE = [sys.executable, "-c", "pass"]


def wall(cmd: list[str]) -> float:
    """Seconds one run of `cmd` takes, from the repository root, output discarded."""
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + system) of one run of `cmd`."""
    before = os.times()
    wall_s = wall(cmd)
    after = os.times()
    return wall_s, (after.children_user - before.children_user
                    + after.children_system - before.children_system)


def alternate(cmd: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Times of `cmd` and of a bare interpreter start, run alternately after one warm-up."""
    wall(cmd)
    times, bare = [], []
    for _ in range(runs):
        times.append(wall(cmd))
        bare.append(wall(BARE))
    return times, bare


def median(values: list[float]) -> float:
    return statistics.median(values)
