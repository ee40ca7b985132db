"""Deploy-mode inference against the eval-mode module it came from, in one process.

For each model and batch size: builds the spec's module, takes a few SGD steps on random data
(so the batch norms' running statistics are not their initial values), and times inference
steps (forward under `torch.inference_mode()`, archspec/timing.py) of three sides, alternating
in rounds (the order reverses every round, so drifting load hits every side):

- `eval`: the built module in eval mode, NCHW: what the reference implementations run
  (docs/benchmarks.md: parity with hand-written PyTorch);
- `eval_cl`: the same module and input in channels_last: what the memory format alone gives;
- `deploy`: `module.to_deploy()` (folded norms, fused oneDNN conv/linear kernels, channels_last).

It checks that deploy's outputs equal eval's (max |difference| printed) and reports the median
step time of each side and the speed-up eval / deploy (goal >= 1.3).

    python bench/deploy_speed.py                                  # all six models, batch 1 and 8
    python bench/deploy_speed.py --models resnet50 --batches 8 --rounds 6
    python bench/deploy_speed.py --threads 1 --clock cpu --json out/deploy.json
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
from archspec.timing import StepConfig, StepRunner, progress  # noqa: E402
from parity import interleaved  # noqa: E402

MODELS = ("resnet50", "resnext50_32x4d", "seresnet50", "resnest50d", "mobilenetv2_100",
          "convnext_tiny")
GOAL = 1.3


def trained(name: str, size: int, steps: int = 3) -> torch.nn.Module:
    """The spec's module after a few SGD steps (batch 4, random data, seeded), in eval mode."""
    torch.manual_seed(0)
    model = archspec.build(ROOT / "specs" / f"{name}.yaml", input__image_size=size)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(4, 3, size, size)
    for _ in range(steps):
        model(x).logsumexp(1).mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return model.eval()


def max_diff(model: torch.nn.Module, deploy: torch.nn.Module, size: int) -> float:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        return (model(x) - deploy(x)).abs().max().item()


def measure(name: str, batches: list[int], args: argparse.Namespace) -> dict:
    model = trained(name, args.size)
    deploy = model.to_deploy()
    entry = {"max_output_diff": max_diff(model, deploy, args.size), "batches": {}}
    progress(f"deploy: {name}: max |deploy - eval| = {entry['max_output_diff']:.2e}")
    for batch in batches:
        cfg = StepConfig("infer", batch, args.size)
        cl = StepConfig("infer", batch, args.size, channels_last=True)
        runners = {"deploy": StepRunner(deploy, cl), "eval": StepRunner(copy.deepcopy(model), cfg),
                   "eval_cl": StepRunner(copy.deepcopy(model), cl)}
        times = interleaved(runners, args.rounds, args.steps, args.warmup, f"{name} b{batch}",
                            args.clock)
        med = {k: statistics.median(t for turn in v for t in turn) for k, v in times.items()}
        entry["batches"][batch] = {
            "median_s": med, "images_per_s": {k: batch / v for k, v in med.items()},
            "speedup": med["eval"] / med["deploy"], "speedup_cl_only": med["eval"] / med["eval_cl"],
            "round_speedups": [statistics.median(e) / statistics.median(d)
                               for e, d in zip(times["eval"], times["deploy"])]}
        del runners
    return entry


def format_table(results: dict) -> str:
    lines = [f"deploy vs eval inference, {results['size']}x{results['size']}, "
             f"{results['threads']} threads, {results['clock']} clock, {results['rounds']} "
             f"rounds x {results['steps']} steps, load average before: {results['load']}", ""]
    header = ("model", "batch", "eval ms", "eval_cl ms", "deploy ms", "deploy img/s",
              "speed-up", "cl alone", "goal 1.3")
    rows = [header]
    for name, e in results["models"].items():
        for batch, b in e["batches"].items():
            m = b["median_s"]
            rows.append((name, str(batch), f"{m['eval'] * 1e3:.1f}", f"{m['eval_cl'] * 1e3:.1f}",
                         f"{m['deploy'] * 1e3:.1f}", f"{b['images_per_s']['deploy']:.1f}",
                         f"{b['speedup']:.2f}x", f"{b['speedup_cl_only']:.2f}x",
                         "met" if b["speedup"] >= GOAL else "not met"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines += [f"{n}: max |deploy - eval| {e['max_output_diff']:.2e}"
              for n, e in results["models"].items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--batches", default="1,8")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--steps", type=int, default=2, help="timed steps per side per round")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {"command": "python bench/deploy_speed.py " + " ".join(argv or sys.argv[1:]),
               "torch": torch.__version__, "threads": torch.get_num_threads(),
               "size": args.size, "rounds": args.rounds, "steps": args.steps,
               "clock": args.clock, "load": " ".join(f"{v:.2f}" for v in os.getloadavg()),
               "goal": GOAL, "models": {}}
    started = time.time()
    batches = [int(b) for b in args.batches.split(",")]
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        results["models"][name] = measure(name, batches, args)
    results["elapsed_s"] = time.time() - started
    results["load_after"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(format_table(results))
    print(f"load average after: {results['load_after']}; {results['elapsed_s']:.0f} s")
    if args.json:
        pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
