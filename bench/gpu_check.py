"""One-shot GPU check: archspec vs hand-written PyTorch vs deploy mode, one table, JSON + markdown.

Run from the repository root on a machine with a CUDA device (it starts bare: the script installs
what archspec needs from PyPI first, and torch too when absent):

    python bench/gpu_check.py out/gpu                  # CUDA, bf16 autocast, channels_last,
                                                       # torch.compile, batch 128, 224x224
    python bench/gpu_check.py out/cpu --device cpu --quick   # the CI smoke run (< 1 min):
                                                       # 32x32, batch 2, fp32, eager, 1 thread

For ResNet-50, ResNeXt-50 32x4d, ResNeSt-50d, ConvNeXt-T and MobileNetV2 it measures training
images/s (forward, cross-entropy, backward, SGD step) and inference images/s (forward under
inference_mode) of the archspec module and of the hand-written model in bench/handwritten.py
(where one exists), alternating A B / B A in rounds through the same step code
(archspec/timing.py), plus deploy mode's inference (`module.to_deploy()`). It stops starting new
measurements after `--budget-s` seconds (default 420: the whole run stays under 8 minutes with
the installs), marking what it skipped. The inductor cache goes to OUT/inductor-cache, so a
second run compiles much less. Writes OUT/gpu_check.json and OUT/gpu_check.md and prints the
table.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODELS = ("resnet50", "resnext50_32x4d", "resnest50d", "convnext_tiny", "mobilenetv2_100")
#: what archspec needs to build and time a module (the rest of pyproject's list is for
#: diagrams and training from image folders)
NEEDS = {"yaml": "pyyaml>=6", "pydantic": "pydantic>=2.7"}


def install_missing(log) -> list[str]:
    """pip-install the packages that are missing (torch only when absent: a CUDA machine has
    its own build); return what was installed."""
    missing = [pkg for mod, pkg in NEEDS.items() if importlib.util.find_spec(mod) is None]
    if importlib.util.find_spec("torch") is None:
        missing.append("torch")
    if missing:
        log(f"gpu_check: installing {' '.join(missing)}")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
    return missing


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="folder for gpu_check.json and gpu_check.md")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 32x32 images, batch 2, one round, no torch.compile (and "
                        "float32, one thread on CPU)")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--batch", type=int, default=None, help="default 128 (quick: 2)")
    p.add_argument("--size", type=int, default=None, help="default 224 (quick: 32)")
    p.add_argument("--rounds", type=int, default=None, help="A/B rounds (default 4; quick: 1)")
    p.add_argument("--steps", type=int, default=None, help="steps per turn (default 5; quick 1)")
    p.add_argument("--no-compile", action="store_true", help="leave out torch.compile")
    p.add_argument("--budget-s", type=float, default=420.0,
                   help="start no new measurement after this many seconds (default 420)")
    p.add_argument("--no-install", action="store_true", help="do not pip-install anything")
    args = p.parse_args(argv)
    quick = args.quick
    args.batch = args.batch or (2 if quick else 128)
    args.size = args.size or (32 if quick else 224)
    args.rounds = args.rounds or (1 if quick else 4)
    args.steps = args.steps or (1 if quick else 5)
    args.compile = not (args.no_compile or quick)
    # bf16 on a CPU without bf16 instructions is emulated (seconds per step): quick CPU runs
    # exercise the same code in float32
    args.amp = None if quick and args.device == "cpu" else "bf16"
    args.threads = 1 if quick and args.device == "cpu" else None  # steady on a shared machine
    return args


class Check:
    """The measurements of one run; `sides` of a mode alternate in rounds."""

    def __init__(self, args: argparse.Namespace, started: float):
        import torch

        sys.path.insert(0, str(ROOT))
        sys.path.insert(0, str(ROOT / "bench"))
        import handwritten
        self.torch, self.handwritten = torch, handwritten
        if args.threads:
            torch.set_num_threads(args.threads)
        self.args, self.started = args, started
        self.rows: list[dict] = []

    def over_budget(self) -> bool:
        return time.time() - self.started > self.args.budget_s

    def config(self, mode: str):
        from archspec.timing import StepConfig
        a = self.args
        return StepConfig(mode, a.batch, a.size, a.device, a.amp, True, a.compile)

    def models(self, name: str) -> dict:
        import archspec
        torch = self.torch
        torch.manual_seed(0)
        ours = archspec.build(ROOT / "specs" / f"{name}.yaml", input__image_size=self.args.size)
        sides = {"archspec": ours}
        if name in self.handwritten.MODELS:
            torch.manual_seed(0)
            sides["hand-written"] = self.handwritten.MODELS[name]()
        return sides

    def measure(self, name: str) -> None:
        """Train, then infer (the same modules: only speed is measured here)."""
        from archspec.timing import StepRunner
        from parity import interleaved
        a = self.args
        sides: dict = {}
        for mode in ("train", "infer"):
            row = {"model": name, "mode": mode}
            self.rows.append(row)
            if self.over_budget():
                row["skipped"] = f"time budget ({a.budget_s:.0f} s) spent"
                continue
            sides = sides or self.models(name)
            if mode == "infer":
                sides["deploy"] = sides["archspec"].to_deploy()
            runners = {k: StepRunner(m, self.config(mode)) for k, m in sides.items()}
            times = interleaved(runners, a.rounds, a.steps, 1 if a.quick else 2,
                                f"{name} {mode}")
            for side, turns in times.items():
                med = statistics.median(t for turn in turns for t in turn)
                row[side] = {"median_s": med, "images_per_s": a.batch / med}
            del runners
        if a.device == "cuda":
            self.torch.cuda.empty_cache()


def _cells(row: dict) -> list[str]:
    if "skipped" in row:
        return [row["model"], row["mode"], f"skipped: {row['skipped']}", "", "", "", ""]
    ips = {k: row[k]["images_per_s"] for k in ("archspec", "hand-written", "deploy") if k in row}
    ours, hand, deploy = ips["archspec"], ips.get("hand-written"), ips.get("deploy")
    return [row["model"], row["mode"], f"{ours:.1f}",
            f"{hand:.1f}" if hand else "n/a (none in handwritten.py)",
            f"{ours / hand:.3f}" if hand else "", f"{deploy:.1f}" if deploy else "",
            f"{deploy / ours:.3f}" if deploy else ""]


def table(result: dict) -> str:
    lines = [f"# GPU check: {result['setting']}", "",
             f"device: {result['device_name']}; torch {result['torch']}; "
             f"{result['elapsed_s']:.0f} s; images/s (median of alternating rounds)", "",
             "| model | mode | archspec | hand-written | archspec / hand-written | deploy "
             "| deploy / archspec |", "|---|---|---:|---:|---:|---:|---:|"]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in result["rows"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    started = time.time()
    args = parse(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    installed = [] if args.no_install else install_missing(log)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import os
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str((out / "inductor-cache").resolve()))
    check = Check(args, started)
    torch = check.torch
    if args.device == "cuda" and not torch.cuda.is_available():
        log(f"--device cuda: no CUDA device visible to torch {torch.__version__}\n"
            "  hint: run on a GPU machine, or use --device cpu --quick")
        return 2
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        check.measure(name)
    setting = check.config("train").describe().split(", ", 1)[1]
    result = {"command": "python bench/gpu_check.py " + " ".join(argv or sys.argv[1:]),
              "setting": setting, "torch": torch.__version__, "installed": installed,
              "device_name": (torch.cuda.get_device_name() if args.device == "cuda" else "cpu"),
              "rounds": args.rounds, "steps": args.steps, "rows": check.rows,
              "elapsed_s": time.time() - started}
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2))
    (out / "gpu_check.md").write_text(table(result))
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
