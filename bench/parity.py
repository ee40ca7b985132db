"""archspec-built modules against hand-written PyTorch (bench/handwritten.py), in one process.

For each pair (ResNet-50, ResNeXt-50 32x4d, ConvNeXt-T) and each mode (train: forward, loss,
backward, SGD step; infer: forward), both models run through the same step code
(archspec/timing.py) on the same seeded batch. After warm-up, the script alternates them in
rounds (A B, then B A, ...: ABAB interleaving, so drifting machine load hits both), each turn
`--steps` timed steps, and reports the median step time of each side and their ratio
(archspec / hand-written; the target is <= 1.03). Before timing it checks that both have the
same parameter count, copies archspec's weights into the hand-written model when their
tensors line up one to one, and reports the largest output difference (eval mode, fp32).

Memory (`--memory`, CPU): the peak bytes torch's CPU allocator holds during one training step
(its running total as reported to torch.profiler), for both models, then for archspec with
per-stage gradient checkpointing. On CUDA: torch.cuda.max_memory_allocated for one step.

    python bench/parity.py                                   # CPU, batch 8, 224x224, both modes
    python bench/parity.py --memory --json out/parity.json
    python bench/parity.py --device cuda --amp bf16 --channels-last --compile --batch 128
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import handwritten  # noqa: E402  (plain PyTorch, no archspec)

import archspec  # noqa: E402
from archspec.timing import (BenchError, StepConfig, StepRunner, check_config,  # noqa: E402
                             human_bytes, profiled_peak_bytes, progress, sync)

TARGET = 1.03


def build_pair(name: str, size: int, seed: int):
    """(archspec module, hand-written module, note on weights/outputs) or None if no spec."""
    spec = ROOT / "specs" / f"{name}.yaml"
    if not spec.exists():
        return None
    torch.manual_seed(seed)
    ours = archspec.build(spec, [f"input.image_size={size}"])
    torch.manual_seed(seed)
    theirs = handwritten.MODELS[name]()
    return ours, theirs


def copy_weights(src: torch.nn.Module, dst: torch.nn.Module) -> bool:
    """Copy src's state into dst tensor by tensor, in registration order, when every pair has
    the same number of elements; return False (and copy nothing) otherwise."""
    a, b = list(src.state_dict().values()), dst.state_dict()
    if len(a) != len(b) or any(x.numel() != y.numel() for x, y in zip(a, b.values())):
        return False
    dst.load_state_dict({k: x.reshape(y.shape).clone() for (k, y), x in zip(b.items(), a)})
    return True


def max_output_diff(ours, theirs, size: int) -> float:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    ours.eval(), theirs.eval()
    with torch.no_grad():
        return (ours(x) - theirs(x)).abs().max().item()


def interleaved(runners: dict[str, StepRunner], rounds: int, steps: int, warmup: int,
                label: str, clock: str = "wall") -> dict[str, list[list[float]]]:
    """Per side, per round, the step times; sides alternate A B / B A across rounds (any number
    of sides: the order reverses every round). Progress shows the first two sides' ratio."""
    names = list(runners)
    for name in names:
        for i in range(warmup):
            t = runners[name].timed_step()
            progress(f"parity: {label}: warm-up {name} {i + 1}/{warmup}: {t * 1e3:.0f} ms")
    times: dict[str, list[list[float]]] = {n: [] for n in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            times[name].append([runners[name].timed_step(clock) for _ in range(steps)])
        med = {n: statistics.median(times[n][-1]) for n in names}
        progress(f"parity: {label}: round {r + 1}/{rounds}: "
                 + "  ".join(f"{n} {med[n] * 1e3:.1f} ms" for n in names)
                 + (f"  ratio {med[names[0]] / med[names[1]]:.3f}" if len(names) > 1 else ""))
    return times


def cuda_peak(runner: StepRunner) -> int:
    torch.cuda.reset_peak_memory_stats()
    runner.step()
    sync("cuda")
    return torch.cuda.max_memory_allocated()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(handwritten.MODELS),
                   help="comma-separated (default: %(default)s)")
    p.add_argument("--modes", default="train,infer", help="train, infer or both (default)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--amp", choices=("bf16", "fp16"), default=None)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile both models")
    p.add_argument("--rounds", type=int, default=6, help="A/B rounds (default 6)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per turn (default 3)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: "
                   "torch's choice)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: wall-clock step time (default); cpu: CPU seconds of this process "
                        "per step (time.process_time), for a machine shared with other jobs; "
                        "meaningful with --threads 1 on CPU")
    p.add_argument("--memory", action="store_true",
                   help="also compare peak training memory, and with gradient checkpointing")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE "
                   "(`-`: print the JSON on stdout and the table on stderr)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    try:
        for mode in modes:
            check_config(StepConfig(mode, args.batch, args.size, args.device, args.amp,
                                    args.channels_last, args.compile))
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 2

    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    setting = StepConfig("train", args.batch, args.size, args.device, args.amp,
                         args.channels_last, args.compile).describe().split(", ", 1)[1]
    if args.clock == "cpu" and args.device != "cpu":
        print("--clock cpu: expected --device cpu (a GPU's work is not CPU time)\n"
              "  hint: leave out --clock on CUDA", file=sys.stderr)
        return 2
    results = {"command": "python bench/parity.py " + " ".join(argv or sys.argv[1:]),
               "setting": setting, "clock": args.clock, "device_name": device_name,
               "torch": torch.__version__,
               "threads": torch.get_num_threads(), "rounds": args.rounds, "steps": args.steps,
               "target_ratio": TARGET, "models": {}, "skipped": {}}
    started = time.time()
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        if name not in handwritten.MODELS:
            print(f"unknown model {name!r}; known: {', '.join(handwritten.MODELS)}",
                  file=sys.stderr)
            return 2
        pair = build_pair(name, args.size, seed=0)
        if pair is None:
            why = (f"specs/{name}.yaml is absent (it arrives with its block family); "
                   f"skipped")
            print(f"SKIP {name}: {why}", file=sys.stderr)
            results["skipped"][name] = why
            continue
        ours, theirs = pair
        n_ours = sum(p.numel() for p in ours.parameters())
        n_theirs = sum(p.numel() for p in theirs.parameters())
        entry = {"params_archspec": n_ours, "params_handwritten": n_theirs,
                 "params_equal": n_ours == n_theirs, "modes": {}}
        copied = copy_weights(ours, theirs)
        entry["weights_copied"] = copied
        entry["max_output_diff"] = max_output_diff(ours, theirs, args.size) if copied else None
        progress(f"parity: {name}: params archspec {n_ours:,} hand-written {n_theirs:,}; "
                 + (f"weights copied, max |output difference| {entry['max_output_diff']:.2e}"
                    if copied else "tensors do not line up one to one: outputs not compared"))
        for mode in modes:
            cfg = StepConfig(mode, args.batch, args.size, args.device, args.amp,
                             args.channels_last, args.compile)
            runners = {"archspec": StepRunner(ours, cfg), "hand-written": StepRunner(theirs, cfg)}
            times = interleaved(runners, args.rounds, args.steps, args.warmup, f"{name} {mode}",
                                args.clock)
            flat = {k: [t for turn in v for t in turn] for k, v in times.items()}
            med = {k: statistics.median(v) for k, v in flat.items()}
            per_round = [statistics.median(a) / statistics.median(b)
                         for a, b in zip(times["archspec"], times["hand-written"])]
            entry["modes"][mode] = {
                "median_s": med, "min_s": {k: min(v) for k, v in flat.items()},
                "images_per_s": {k: args.batch / v for k, v in med.items()},
                "ratio": med["archspec"] / med["hand-written"],
                "ratio_of_mins": min(flat["archspec"]) / min(flat["hand-written"]),
                "round_ratios": per_round, "step_times_s": flat}
            if mode == "train" and args.memory:
                entry["memory"] = measure_memory(runners, args.device)
            del runners
        results["models"][name] = entry
        del ours, theirs
    results["elapsed_s"] = time.time() - started
    if args.json == "-":  # JSON alone on stdout, the table on stderr
        print(format_table(results), file=sys.stderr)
        print(json.dumps(results, indent=2))
    else:
        print(format_table(results))
    if args.json and args.json != "-":
        pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"JSON written to {args.json}")
    ok = all(e["params_equal"] and all(m["ratio"] <= TARGET for m in e["modes"].values())
             for e in results["models"].values())
    return 0 if ok else 1


def measure_memory(runners: dict[str, StepRunner], device: str) -> dict:
    """Peak training-step memory of both sides, then of archspec with checkpointing on."""
    measure = cuda_peak if device == "cuda" else profiled_peak_bytes
    method = ("torch.cuda.max_memory_allocated over one step" if device == "cuda" else
              "peak of torch's CPU allocator total during one step, above the bytes live when "
              "it began (torch.profiler, profile_memory=True)")
    peaks = {}
    for name, runner in runners.items():
        runner.step()  # grads None, optimizer state present: the same starting point for both
        peaks[name] = measure(runner)
    ours = runners["archspec"]
    ours.model.set_grad_checkpointing(True)
    ours.step()
    peaks["archspec+checkpointing"] = measure(ours)
    ours.model.set_grad_checkpointing(False)
    progress("parity: memory: " + "  ".join(f"{k} {human_bytes(v)}" for k, v in peaks.items()))
    return {"method": method, "peak_bytes": peaks,
            "ratio": peaks["archspec"] / peaks["hand-written"],
            "checkpointing_saves": 1 - peaks["archspec+checkpointing"] / peaks["archspec"]}


def format_table(results: dict) -> str:
    lines = [f"archspec vs hand-written PyTorch: {results['setting']}",
             f"device {results['device_name']}, torch {results['torch']}, "
             f"{results['threads']} CPU threads; {results['rounds']} A/B rounds x "
             f"{results['steps']} steps; "
             + ("wall-clock" if results["clock"] == "wall" else "CPU-time (process_time)")
             + f" step times; ratio = median archspec / median hand-written "
             f"(target <= {results['target_ratio']})", ""]
    header = ("model", "mode", "params (both)", "archspec ms", "hand ms", "archspec img/s",
              "hand img/s", "ratio", "ratio of mins", "ok")
    rows = []
    for name, e in results["models"].items():
        params = f"{e['params_archspec']:,}" + ("" if e["params_equal"] else
                                                f" != {e['params_handwritten']:,}")
        for mode, m in e["modes"].items():
            rows.append((name, mode, params, f"{m['median_s']['archspec'] * 1e3:.1f}",
                         f"{m['median_s']['hand-written'] * 1e3:.1f}",
                         f"{m['images_per_s']['archspec']:.1f}",
                         f"{m['images_per_s']['hand-written']:.1f}", f"{m['ratio']:.3f}",
                         f"{m['ratio_of_mins']:.3f}",
                         "yes" if m["ratio"] <= results["target_ratio"] and e["params_equal"]
                         else "NO"))
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    for name, e in results["models"].items():
        if e["weights_copied"]:
            lines.append(f"{name}: same weights copied in; max |output difference| "
                         f"{e['max_output_diff']:.2e} (eval, fp32)")
        if "memory" in e:
            mem = e["memory"]
            pk = mem["peak_bytes"]
            lines.append(f"{name} train memory ({mem['method']}): archspec "
                         f"{human_bytes(pk['archspec'])}, hand-written "
                         f"{human_bytes(pk['hand-written'])} (ratio {mem['ratio']:.4f}); with "
                         f"gradient checkpointing {human_bytes(pk['archspec+checkpointing'])} "
                         f"({mem['checkpointing_saves']:.1%} less)")
    for name, why in results["skipped"].items():
        lines.append(f"SKIPPED {name}: {why}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
