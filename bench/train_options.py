"""What makes a CPU training step cheaper without changing the function, measured per family.

For each model, one process builds the spec's module (seeded) and times training steps
(forward, cross-entropy, backward, SGD step: archspec/timing.py) of these variants of the same
network, alternating in rounds (the order reverses every round), median over all rounds:

- `plain`: the module as built, NCHW, eager (the baseline; equal to hand-written PyTorch,
  docs/benchmarks.md);
- `channels_last`: module and input in the channels_last memory format (same function; oneDNN
  picks other kernels, so results differ by float rounding only);
- `compile` (with `--compile`): `torch.compile` (inductor) of the plain module; the first steps
  compile (minutes on a small machine) and are not timed.

In-place activations need no option: the lowering already builds ReLU, ReLU6, SiLU and
Hardswish with `inplace=True` wherever autograd allows (GELU and sigmoid have no in-place form
that autograd accepts). Options that change numerics (bf16 autocast) are not part of this table.

    python bench/train_options.py --threads 1 --clock cpu --rounds 10
    python bench/train_options.py --models convnext_tiny --compile --rounds 10
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import pathlib
import statistics
import sys
import time

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import archspec  # noqa: E402
from archspec.timing import StepConfig, StepRunner  # noqa: E402
from parity import interleaved  # noqa: E402

MODELS = ("resnet50", "resnext50_32x4d", "seresnet50", "resnest50d", "mobilenetv2_100",
          "convnext_tiny")


def measure(name: str, args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    model = archspec.build(ROOT / "specs" / f"{name}.yaml", input__image_size=args.size)
    variants = {"plain": StepConfig("train", args.batch, args.size),
                "channels_last": StepConfig("train", args.batch, args.size, channels_last=True)}
    if args.compile:
        variants["compile"] = StepConfig("train", args.batch, args.size, compile=True)
    runners = {k: StepRunner(copy.deepcopy(model), cfg) for k, cfg in variants.items()}
    times = interleaved(runners, args.rounds, args.steps, args.warmup, name, args.clock)
    med = {k: statistics.median(t for turn in v for t in turn) for k, v in times.items()}
    return {"median_s": med, "ratio_to_plain": {k: v / med["plain"] for k, v in med.items()},
            "round_times_s": times}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    load = os.getloadavg()[0]
    results = {name: measure(name, args) for name in args.models.split(",") if name}
    print(f"train step time / plain (median of {args.rounds} alternating rounds x {args.steps} "
          f"steps), batch {args.batch}, {args.size}x{args.size}, {torch.get_num_threads()} "
          f"threads, {args.clock} clock, load average {load:.1f} -> {os.getloadavg()[0]:.1f}, "
          f"{time.time() - started:.0f} s")
    for name, r in results.items():
        print(f"{name:18s} plain {r['median_s']['plain'] * 1e3:8.1f} ms  "
              + "  ".join(f"{k} {v:.3f}" for k, v in r["ratio_to_plain"].items() if k != "plain"))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {"command": "python bench/train_options.py " + " ".join(argv or sys.argv[1:]),
             "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
