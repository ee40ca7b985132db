"""One training or inference step of any `nn.Module`, set up and timed the same way for every
model: `cli.py bench` uses it, and bench/parity.py times archspec's modules and hand-written ones
through it, so the two sides of a comparison differ only in the module.

A training step is forward, cross-entropy loss, backward, SGD step (momentum 0.9), gradients
reset to None; an inference step is a forward under `torch.inference_mode()`. Both run under
`torch.autocast` when `amp` is given, and wait for the device (CUDA) before the clock stops.
Imports torch: use it from commands and scripts, never from resolving or validating.
"""
from __future__ import annotations

import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
MODES = ("train", "infer")


class BenchError(Exception):
    """A setting this machine cannot run (for example CUDA without a GPU): exit 2, no trace."""

    def __init__(self, option: str, message: str, hint: str):
        self.option, self.message, self.hint = option, message, hint
        super().__init__(f"{option}: {message}\n  hint: {hint}")


@dataclass(frozen=True)
class StepConfig:
    mode: str = "train"
    batch: int = 8
    size: int = 224
    device: str = "cpu"
    amp: str | None = None
    channels_last: bool = False
    compile: bool = False
    seed: int = 0

    def describe(self) -> str:
        return (f"{self.mode}, batch {self.batch}, {self.size}x{self.size}, {self.device}"
                f"{'' if self.device != 'cpu' else f' ({torch.get_num_threads()} threads)'}, "
                f"{self.amp or 'fp32'}, {'channels_last' if self.channels_last else 'NCHW'}, "
                f"{'torch.compile' if self.compile else 'eager'}")


def check_config(cfg: StepConfig) -> None:
    """Raise BenchError for settings this machine or torch build cannot run."""
    if cfg.mode not in MODES:
        raise BenchError("--mode", f"expected one of {', '.join(MODES)}, got {cfg.mode!r}",
                         "--mode train (forward, loss, backward, SGD step) or --mode infer")
    if cfg.batch < 1 or cfg.size < 1:
        raise BenchError("--batch" if cfg.batch < 1 else "--size",
                         f"expected a positive number, got {min(cfg.batch, cfg.size)}",
                         "e.g. --batch 8 --size 224")
    if cfg.device not in ("cpu", "cuda"):
        raise BenchError("--device", f"expected cpu or cuda, got {cfg.device!r}", "--device cpu")
    if cfg.device == "cuda" and not torch.cuda.is_available():
        built = torch.version.cuda
        why = (f"this torch ({torch.__version__}) was built without CUDA" if not built else
               f"torch {torch.__version__} (CUDA {built}) finds no GPU")
        raise BenchError("--device", f"expected a CUDA device, none is available: {why}",
                         "use --device cpu, or run on a machine with an NVIDIA GPU and a CUDA "
                         "build of torch")
    if cfg.amp is not None and cfg.amp not in AMP_DTYPES:
        raise BenchError("--amp", f"expected one of {', '.join(AMP_DTYPES)}, got {cfg.amp!r}",
                         "--amp bf16 (or leave it out for fp32)")
    if cfg.amp == "bf16" and cfg.device == "cuda" and not torch.cuda.is_bf16_supported():
        raise BenchError("--amp", "this GPU has no bfloat16 support", "use --amp fp16")


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class StepRunner:
    """Holds a model, its optimizer and a fixed batch (seeded), and runs steps of `cfg.mode`."""

    def __init__(self, model: nn.Module, cfg: StepConfig, in_channels: int = 3):
        check_config(cfg)
        self.cfg = cfg
        device = torch.device(cfg.device)
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model = model.to(device=device, memory_format=fmt)
        self.model.train(cfg.mode == "train")
        gen = torch.Generator().manual_seed(cfg.seed)
        self.x = torch.randn(cfg.batch, in_channels, cfg.size, cfg.size, generator=gen).to(
            device, memory_format=fmt)
        self._label_gen = gen
        self.labels: torch.Tensor | None = None
        self.fn: Callable[[torch.Tensor], Any] = (torch.compile(self.model) if cfg.compile
                                                  else self.model)
        self.optimizer = (torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
                          if cfg.mode == "train" else None)
        self.scaler = (torch.amp.GradScaler(cfg.device)
                       if cfg.mode == "train" and cfg.amp == "fp16" else None)

    def _autocast(self):
        if self.cfg.amp is None:
            return torch.autocast(self.cfg.device, enabled=False)
        return torch.autocast(self.cfg.device, dtype=AMP_DTYPES[self.cfg.amp])

    def _loss(self, out: torch.Tensor) -> torch.Tensor:
        if self.labels is None:  # drawn once, from the seeded generator, for this output width
            self.labels = torch.randint(0, out.shape[1], (out.shape[0],),
                                        generator=self._label_gen).to(out.device)
        return F.cross_entropy(out.float(), self.labels)

    def step(self) -> None:
        if self.optimizer is None:
            with torch.inference_mode(), self._autocast():
                self.fn(self.x)
        else:
            with self._autocast():
                loss = self._loss(self.fn(self.x))
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        sync(self.cfg.device)

    def timed_step(self, clock: str = "wall") -> float:
        """Seconds for one step, the device drained before and after. `clock="cpu"`: CPU
        seconds this process used (time.process_time, all its threads) instead of wall-clock
        time: with one thread, the step's cost on a core, unaffected by other processes
        competing for the cores (waiting for a core is not counted)."""
        timer = time.process_time if clock == "cpu" else time.perf_counter
        sync(self.cfg.device)
        start = timer()
        self.step()
        return timer() - start


@dataclass
class Timings:
    """Step times in seconds, with the summaries `bench` prints."""

    batch: int
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def images_per_s(self) -> float:
        return self.batch / self.median

    def as_dict(self) -> dict[str, Any]:
        return {"step_times_s": self.times, "median_s": self.median, "min_s": min(self.times),
                "max_s": max(self.times), "images_per_s": self.images_per_s}


def progress(text: str) -> None:
    """Progress goes to stderr, so stdout stays the result (and valid JSON with --json)."""
    print(text, file=sys.stderr, flush=True)


def peak_memory(device: str) -> tuple[int, str]:
    """(bytes, what they are). CUDA: the caching allocator's peak of allocated tensor memory
    since the last reset. CPU: the process's peak resident set size (getrusage ru_maxrss),
    which includes Python, torch and the model, not only the steps."""
    if device == "cuda":
        return (torch.cuda.max_memory_allocated(),
                "CUDA max allocated (torch.cuda.max_memory_allocated, reset before the timed steps)")
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
    return kib * 1024, "CPU peak RSS of the whole process (getrusage ru_maxrss)"


def reset_peak_memory(device: str) -> None:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def profiled_peak_bytes(runner: StepRunner) -> int:
    """Peak bytes held by torch's CPU allocator during one step, above what was live when the
    step began (parameters, optimizer state): the running total the allocator reports to
    torch.profiler with each allocation (profile_memory=True). Activations, gradients and
    temporaries are what it sees; the Python heap is not."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        runner.step()
    peak = 0
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        if event.tag == _EventType.Allocation and event.extra_fields.device.type == "cpu":
            peak = max(peak, event.extra_fields.total_allocated)
        stack.extend(event.children)
    return peak


def human_bytes(n: float) -> str:
    for scale, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} B"
