"""`archspec bench SPEC`: build a spec's module and time training or inference steps."""
from __future__ import annotations

import argparse
import json

from .common import add_spec_args


def run(args: argparse.Namespace) -> int:
    import sys

    from ..timing import BenchError
    try:
        graph, cfg = _prepare(args)
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 2
    result = _measure(args, graph, cfg)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result, args, graph, cfg)
    return 0


def _prepare(args: argparse.Namespace):
    """The resolved spec and the step configuration; spec errors first (they exit 2 with a
    location), then bench's own (BenchError)."""
    from .. import resolve
    from ..timing import BenchError, StepConfig, check_config
    if args.steps < 1 or args.warmup < 0:
        raise BenchError("--steps" if args.steps < 1 else "--warmup",
                         f"expected at least {1 if args.steps < 1 else 0}, got "
                         f"{args.steps if args.steps < 1 else args.warmup}",
                         "e.g. --warmup 3 --steps 20")
    overrides = list(args.overrides)
    if args.size:
        overrides.append(f"input.image_size={args.size}")
    graph = resolve(args.spec, overrides)
    if graph.input_shape[1] != graph.input_shape[2]:
        raise BenchError("--size", f"the spec's input is {graph.input_shape[1]}x"
                         f"{graph.input_shape[2]}; bench feeds square images",
                         "give --size S to bench at SxS")
    cfg = StepConfig(mode=args.mode, batch=args.batch, size=graph.input_shape[1],
                     device=args.device, amp=args.amp, channels_last=args.channels_last,
                     compile=args.compile)
    check_config(cfg)
    return graph, cfg


def _measure(args: argparse.Namespace, graph, cfg) -> dict:
    """Warm-up and timed steps of the built module, with progress on stderr; the result row."""
    import torch

    from ..lower.torch import to_module
    from ..timing import StepRunner, Timings, peak_memory, progress, reset_peak_memory
    torch.manual_seed(cfg.seed)
    runner = StepRunner(to_module(graph), cfg, in_channels=graph.input_shape[0])
    progress(f"bench: {graph.name}: {cfg.describe()}; {args.warmup} warm-up + {args.steps} "
             f"timed steps")
    for i in range(args.warmup):
        t = runner.timed_step()
        progress(f"bench: warm-up {i + 1}/{args.warmup}: {t * 1e3:.1f} ms"
                 + (" (includes compilation)" if cfg.compile and i == 0 else ""))
    reset_peak_memory(cfg.device)
    timings = Timings(cfg.batch)
    for i in range(args.steps):
        timings.times.append(runner.timed_step())
        progress(f"bench: step {i + 1}/{args.steps}: {timings.times[-1] * 1e3:.1f} ms")
    memory, memory_kind = peak_memory(cfg.device)
    return {
        "spec": args.spec, "name": graph.name, "params": graph.params, "macs": graph.macs,
        **{k: v for k, v in cfg.__dict__.items() if k != "seed"},
        "device_name": (torch.cuda.get_device_name() if cfg.device == "cuda" else "cpu"),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "warmup": args.warmup, "steps": args.steps, **timings.as_dict(),
        "peak_memory_bytes": memory, "peak_memory_kind": memory_kind,
    }


def _print(result: dict, args: argparse.Namespace, graph, cfg) -> None:
    from ..summary import human
    from ..timing import human_bytes
    ms = {k: result[k] * 1e3 for k in ("median_s", "min_s", "max_s")}
    print(f"{graph.name}: {cfg.describe()}")
    print(f"  device       {result['device_name']}, torch {result['torch']}"
          + (f", {result['threads']} CPU threads" if cfg.device == "cpu" else ""))
    print(f"  images/s     {result['images_per_s']:.1f}  (batch {cfg.batch} / median step time)")
    print(f"  step time    median {ms['median_s']:.1f} ms   min {ms['min_s']:.1f} ms   "
          f"max {ms['max_s']:.1f} ms   ({args.steps} steps after {args.warmup} warm-up)")
    print(f"  peak memory  {human_bytes(result['peak_memory_bytes'])}  "
          f"({result['peak_memory_kind']})")
    print(f"  model        {graph.params:,} params, {human(graph.macs)} MACs per image")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="time training or inference steps of a spec's module",
        description="Build the spec's module and time it: warm-up steps, then N timed steps on "
                    "a fixed random batch. Train: forward, cross-entropy, backward, SGD step; "
                    "infer: forward under inference_mode. Prints images/s (batch / median), "
                    "step time median/min/max and peak memory (CUDA: max allocated; CPU: peak "
                    "resident set size of the process). Progress goes to stderr.",
        epilog="Example: archspec bench specs/resnet50.yaml --mode train --batch 8 --steps 10")
    add_spec_args(p)
    p.add_argument("--mode", choices=("train", "infer"), default="train",
                   help="train: forward+loss+backward+SGD step; infer: forward only (default "
                        "train)")
    p.add_argument("--batch", type=int, default=8, help="images per step (default 8)")
    p.add_argument("--size", type=int, default=None,
                   help="image size S (SxS); sets input.image_size (default: the spec's)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where to run (default cpu); cuda needs a GPU and a CUDA build of torch")
    p.add_argument("--amp", choices=("bf16", "fp16"), default=None,
                   help="run under torch.autocast with this dtype (default: fp32)")
    p.add_argument("--channels-last", action="store_true",
                   help="model and input in channels_last memory format")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model (the first warm-up step compiles)")
    p.add_argument("--steps", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object (all step times, summaries, settings)")
    p.set_defaults(func=run)
