"""`train(config)`: build a spec's module and train it, alone or as one of torchrun's processes.

Order of work, so that a mistake never costs a file: every check (options, spec, data, the
output folder, the checkpoint to resume) runs first, on every process, and the processes agree
before rank 0 writes anything. Then: build, restore, and for each epoch train, evaluate, and
save `last.pt` (and `best.pt`) atomically, then append the epoch's line to `metrics.jsonl`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import TrainError

#: Test hook: the process kills itself (SIGKILL, no cleanup) after this many optimizer steps.
#: Used by tests/test_train*.py to prove that a crash mid-epoch resumes cleanly from last.pt.
KILL_AFTER_STEPS_ENV = "ARCHSPEC_TRAIN_TEST_KILL_AFTER_STEPS"

RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl")


@dataclass
class TrainConfig:
    """Options of a training run (the `archspec train` flags, same names)."""

    spec: str
    data: str
    val_data: str | None = None
    val_split: float | None = None  # default 0.1 for an image folder without --val-data
    epochs: int = 10
    batch_size: int = 64  # per process
    lr: float | None = None  # default 0.1 for sgd, 1e-3 for adamw
    scale_lr: bool = False  # lr x global batch / 256 (Goyal et al. 2017)
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float | None = None  # default 1e-4 for sgd, 0.05 for adamw
    bias_decay: bool = False  # also decay biases and norm parameters
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    crop_scale: float = 0.08  # smallest area fraction of a random-resized crop
    amp: str | None = None  # None, "bf16" or "fp16"
    channels_last: bool = False
    compile: bool = False
    out: str | None = None  # default out/<spec name>
    resume: bool = False
    overwrite: bool = False
    seed: int = 0
    workers: int | None = None
    device: str = "auto"
    synthetic_samples: int = 1024
    overrides: list[str] = field(default_factory=list)
    progress: bool = True  # a progress bar when stderr is a terminal


def _check_options(cfg: TrainConfig) -> None:
    def bad(option: str, message: str, hint: str | None = None) -> None:
        raise TrainError(f"{option}: {message}", hint)
    if cfg.epochs < 1:
        bad("--epochs", f"expected at least 1, got {cfg.epochs}")
    if cfg.batch_size < 1:
        bad("--batch-size", f"expected at least 1, got {cfg.batch_size}")
    if cfg.lr is not None and not cfg.lr > 0:
        bad("--lr", f"expected a positive number, got {cfg.lr}")
    if cfg.optimizer not in ("sgd", "adamw"):
        bad("--optimizer", f"expected sgd or adamw, got {cfg.optimizer!r}")
    if cfg.weight_decay is not None and cfg.weight_decay < 0:
        bad("--weight-decay", f"expected 0 or more, got {cfg.weight_decay}")
    if cfg.warmup_epochs < 0 or cfg.warmup_epochs > cfg.epochs:
        bad("--warmup-epochs", f"expected 0 to --epochs ({cfg.epochs}), got {cfg.warmup_epochs}")
    if not 0 <= cfg.label_smoothing < 1:
        bad("--label-smoothing", f"expected 0 <= x < 1, got {cfg.label_smoothing}",
            "0.1 is the Bag of Tricks value")
    if not 0 < cfg.crop_scale <= 1:
        bad("--crop-scale", f"expected 0 < x <= 1, got {cfg.crop_scale}")
    if cfg.val_split is not None and not 0 <= cfg.val_split < 1:
        bad("--val-split", f"expected 0 <= x < 1, got {cfg.val_split}", "0.1 holds out 10%")
    if cfg.val_split is not None and cfg.val_data:
        bad("--val-split", "given together with --val-data", "use one of the two")
    if cfg.amp not in (None, "bf16", "fp16"):
        bad("--amp", f"expected bf16 or fp16, got {cfg.amp!r}")
    if cfg.resume and cfg.overwrite:
        bad("--resume", "given together with --overwrite",
            "--resume continues the run in --out; --overwrite deletes it and starts again")
    if cfg.workers is not None and cfg.workers < 0:
        bad("--workers", f"expected 0 or more, got {cfg.workers}")
    if cfg.synthetic_samples < 1:
        bad("--synthetic-samples", f"expected at least 1, got {cfg.synthetic_samples}")
    if cfg.data == "synthetic" and (cfg.val_data or cfg.val_split is not None):
        bad("--val-data" if cfg.val_data else "--val-split",
            "not used with --data synthetic (it makes its own validation images)")


# ---- preparation (every check before any write) ------------------------------------------

@dataclass
class _Plan:
    spec: Any  # archspec.Spec
    spec_data: dict
    graph: Any  # archspec.ArchGraph
    classes: tuple[str, ...]
    train_set: Any
    val_set: Any  # None: no validation
    data_note: str
    notes: list[str]
    out: str
    checkpoint: dict | None


def _user_set(overrides: list[str], path: str) -> bool:
    return any(o.split("=", 1)[0].strip() == path for o in overrides)


def _prepare(cfg: TrainConfig) -> _Plan:
    import archspec

    notes: list[str] = []
    overrides = list(cfg.overrides)
    spec = archspec.load(cfg.spec, overrides)
    graph = archspec.resolve(spec)  # spec mistakes surface before the data is read
    spec_classes = spec.head.num_classes
    source = _read_data(cfg, graph, spec_classes)
    num_classes = len(source.classes)
    if spec_classes != num_classes:
        spec, graph = _match_head(cfg, overrides, spec_classes, num_classes)
        notes.append(f"head.num_classes set to {num_classes} to match the data (the spec says "
                     f"{spec_classes})")
    train_set, val_set, data_note = _datasets(cfg, graph.input_shape, source, notes)
    spec_data = spec.model_dump(mode="json")
    out = cfg.out or default_out(spec.name)
    state = _check_out(cfg, out, spec_data, source.classes, notes)
    return _Plan(spec, spec_data, graph, source.classes, train_set, val_set, data_note, notes,
                 out, state)


@dataclass
class _Source:
    """The data's classes and, for an image folder, its training and validation samples and
    how they were split (None for synthetic data)."""
    classes: tuple[str, ...]
    train_samples: list | None = None
    val_samples: list | None = None
    how: str | None = None


def _read_data(cfg: TrainConfig, graph, spec_classes: int | None) -> _Source:
    from .data import match_classes, scan, split
    if cfg.data == "synthetic":
        return _Source(tuple(f"class{i}" for i in range(spec_classes or 10)))
    channels = graph.input_shape[0]
    if channels not in (1, 3):
        raise TrainError(
            f"--data {cfg.data}: image folders give 1-channel (grayscale) or 3-channel (RGB) "
            f"images, the spec's input has {channels} channels",
            "set `input.channels` to 1 or 3, or use --data synthetic")
    folder = scan(cfg.data, "--data")
    if cfg.val_data:
        val_samples = match_classes(folder, scan(cfg.val_data, "--val-data"))
        train_samples = list(folder.samples)
        how = f"from {cfg.val_data}"
    else:
        fraction = 0.1 if cfg.val_split is None else cfg.val_split
        train_samples, val_samples = split(folder.samples, fraction, cfg.seed)
        how = (f"{fraction:.0%} of each class held out (seed {cfg.seed})" if fraction
               else "none (--val-split 0)")
    return _Source(folder.classes, train_samples, val_samples, how)


def _match_head(cfg: TrainConfig, overrides: list[str], spec_classes: int | None,
                num_classes: int):
    """The spec again, its head sized to the data (`overrides` gains the setting); refused
    when the user set head.num_classes to another number."""
    import archspec
    if _user_set(overrides, "head.num_classes"):
        raise TrainError(
            f"--set head.num_classes={spec_classes} disagrees with the data, which has "
            f"{num_classes} classes", "leave head.num_classes out: it is set from the data")
    overrides.append(f"head.num_classes={num_classes}")
    spec = archspec.load(cfg.spec, overrides)
    return spec, archspec.resolve(spec)


def _datasets(cfg: TrainConfig, shape: tuple, source: _Source, notes: list[str]):
    """(training set, validation set or None, a line that describes them); `shape` is the
    resolved input's (channels, height, width): the IR decides."""
    from .data import ImageFiles, SyntheticImages
    num_classes = len(source.classes)
    if cfg.data == "synthetic":
        n_val = max(1, cfg.synthetic_samples // 4)
        train_set = SyntheticImages(cfg.synthetic_samples, num_classes, shape, cfg.seed,
                                    fixed=False)
        val_set = SyntheticImages(n_val, num_classes, shape, cfg.seed, fixed=True)
        data_note = (f"synthetic: {num_classes} classes of smooth colour patterns with noise; "
                     f"{cfg.synthetic_samples} new training images per epoch, {n_val} fixed "
                     f"validation images")
        return train_set, val_set, data_note
    train_samples, val_samples = source.train_samples, source.val_samples
    train_set = ImageFiles(train_samples, shape[0], shape[1:], True, (cfg.crop_scale, 1.0))
    val_set = ImageFiles(val_samples, shape[0], shape[1:], False) if val_samples else None
    data_note = (f"{cfg.data}: {num_classes} classes, {len(train_samples)} training images, "
                 f"{len(val_samples)} validation images ({source.how})")
    if val_set is None:
        notes.append("no validation images: best.pt is not written (it is chosen by "
                     "validation accuracy)")
    return train_set, val_set, data_note


def _check_out(cfg: TrainConfig, out: str, spec_data: dict, classes: tuple[str, ...],
               notes: list[str]) -> dict | None:
    """Check the output folder; return the checkpoint to resume from, if any."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise TrainError(f"--out {out}: exists and is not a folder")
    _check_run_files(out, cfg)
    present = [f for f in RUN_FILES if os.path.exists(os.path.join(out, f))]
    if cfg.resume:
        last = os.path.join(out, "last.pt")
        if os.path.exists(last):
            return _load_resumable(last, spec_data, classes)
        notes.append(f"--resume: no checkpoint in {out} yet, starting from the beginning")
    elif present and not cfg.overwrite:
        raise TrainError(f"--out {out} already holds a training run ({', '.join(present)})",
                         "--resume continues it, --overwrite starts again (deleting those "
                         "files), or choose another --out folder")
    return None


def _load_resumable(last: str, spec_data: dict, classes: tuple[str, ...]) -> dict:
    """The checkpoint `last`, refused when it was trained from another spec or classes."""
    from . import checkpoint as ckpt
    state = ckpt.load(last)
    diffs = ckpt.spec_differences(state["spec"], spec_data)
    if diffs:
        shown = "\n    ".join(diffs[:10]) + ("\n    ..." if len(diffs) > 10 else "")
        raise TrainError(
            f"{last} was trained from a different spec; not resuming, nothing "
            f"written:\n    {shown}",
            "resume with the spec and --set options of that run, or train the new spec "
            "into another --out folder")
    if tuple(state["classes"]) != tuple(classes):
        raise TrainError(
            f"{last} was trained on other classes ({', '.join(state['classes'][:5])}"
            f"{' ...' if len(state['classes']) > 5 else ''}); the data now has "
            f"{', '.join(classes[:5])}{' ...' if len(classes) > 5 else ''}",
            "resume with the data of that run, or use another --out folder")
    return state


def default_out(name: str) -> str:
    """out/<name>, from the spec's name made safe: a name never becomes a path of its own
    (`../x` or `/etc` stay one folder under ./out)."""
    from ..outputs import safe_name
    return os.path.join("out", safe_name(name))


def _check_run_files(out: str, cfg: TrainConfig) -> None:
    """The run's files in OUT are replaced by rename (checkpoints) or appended to (metrics):
    refuse links, read-only files, folders and devices in their place before any training
    (links and read-only files are fine with --overwrite, which deletes them)."""
    from ..outputs import OutputError, check_output
    if not os.path.isdir(out):
        return
    for name in RUN_FILES:
        try:
            check_output(os.path.join(out, name), cfg.overwrite, option="")
        except OutputError as exc:
            raise TrainError(f"--out {out}: {exc.message}",
                             "remove it, or choose another --out folder") from None


# ---- the run ------------------------------------------------------------------------------

def train(cfg: TrainConfig) -> dict:
    """Train the spec as configured; returns the final summary (also printed by rank 0)."""
    from . import dist as _dist
    _check_options(cfg)
    procs = _dist.start(cfg.device)
    try:
        summary = _run(cfg, procs)
        procs.synchronize()  # no rank tears the process group down while a peer still works
        return summary
    finally:
        procs.close()


def _run(cfg: TrainConfig, procs) -> dict:
    from .progress import Reporter
    report = Reporter(procs.main, cfg.progress)
    plan, error = None, None
    try:
        plan = _prepare(cfg)
    except Exception as exc:  # SpecError and TrainError: agreed on below, then raised
        error = exc
    procs.agree(error)
    assert plan is not None
    return _Run(cfg, procs, plan, report).run()


class _Run:
    """A checked run, in the order its steps take: every process takes the same steps and
    the same collectives (procs.agree, gather, sum, broadcast_buffers) in the same order, and
    the random generators are seeded and drawn from in one fixed order (resume depends on it)."""

    def __init__(self, cfg: TrainConfig, procs, plan: _Plan, report) -> None:
        self.cfg, self.procs, self.plan, self.report = cfg, procs, plan, report
        self.out, self.device = plan.out, procs.device

    def run(self) -> dict:
        self._schedule()
        self._build()
        self._resume()
        self._wrap()
        self._loaders()
        self._input_transform()
        self._prepare_files()
        self.report.setup(self.plan, self.cfg, self.procs, dict(
            global_batch=self.global_batch, base_lr=self.base_lr, lr=self.lr, steps=self.steps,
            workers=self.workers, weight_decay=self.weight_decay,
            groups=self.groups.report(self.weight_decay), start_epoch=self.start_epoch))
        self.kill_after = int(os.environ.get(KILL_AFTER_STEPS_ENV, "0") or 0)
        self.step = self.start_epoch * self.steps
        started = time.perf_counter()
        self.images_total = 0
        record: dict = {}
        for epoch in range(self.start_epoch + 1, self.cfg.epochs + 1):
            record = self._epoch(epoch)
        return self._summary(record, started)

    def _schedule(self) -> None:
        """The batch arithmetic, reported as it is."""
        cfg, procs = self.cfg, self.procs
        self.global_batch = cfg.batch_size * procs.world_size
        base_lr = cfg.lr if cfg.lr is not None else (0.1 if cfg.optimizer == "sgd" else 1e-3)
        self.base_lr = base_lr
        self.lr = base_lr * self.global_batch / 256 if cfg.scale_lr else base_lr
        self.weight_decay = cfg.weight_decay if cfg.weight_decay is not None else \
            (1e-4 if cfg.optimizer == "sgd" else 0.05)
        per_rank = math.ceil(len(self.plan.train_set) / procs.world_size)
        self.drop_last = per_rank >= cfg.batch_size
        self.steps = per_rank // cfg.batch_size if self.drop_last else 1
        if not self.drop_last:
            self.plan.notes.append(f"only {per_rank} training images per process, fewer than "
                                   f"--batch-size {cfg.batch_size}: one smaller batch per epoch")
        self.total_steps = self.steps * cfg.epochs
        self.warmup_steps = self.steps * cfg.warmup_epochs
        workers = cfg.workers
        if workers is None:
            workers = min(8, (os.cpu_count() or 1) // procs.local_world_size) \
                if self.device.type == "cuda" else 0
        self.workers = workers

    def _build(self) -> None:
        """The module, on every process from the same seed, and its optimizer; then the
        per-process generators (dropout, drop path): seeded per rank, restored on resume."""
        import torch

        import archspec
        from .recipe import make_optimizer, make_scheduler, parameter_groups
        cfg, rank = self.cfg, self.procs.rank
        random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        model = archspec.build(self.plan.graph).to(self.device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.groups = parameter_groups(model, self.plan.graph, cfg.bias_decay)
        self.optimizer = make_optimizer(cfg.optimizer, self.groups, self.lr, self.weight_decay,
                                        cfg.momentum)
        self.scheduler = make_scheduler(self.optimizer, self.warmup_steps, self.total_steps)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.amp == "fp16")
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp or "")
        random.seed(cfg.seed + rank)
        torch.manual_seed(cfg.seed + rank)
        _seed_numpy(cfg.seed + rank)

    def _resume(self) -> None:
        """Restore the checkpoint, if any; the processes agree that each one did, and that
        they all found the same one (multi-node runs need --out on a filesystem all nodes
        see)."""
        procs = self.procs
        self.start_epoch = 0
        self.best = {"val_acc": None, "epoch": None}
        state, error = self.plan.checkpoint, None
        if state is not None:
            try:
                self.start_epoch, self.best = _restore(
                    state, self.cfg, self.plan, procs, self.model, self.optimizer,
                    self.scheduler, self.scaler, self.steps, self.warmup_steps,
                    self.total_steps)
            except TrainError as exc:
                error = exc
        procs.agree(error)
        epochs_seen = procs.gather(self.start_epoch)
        if len(set(epochs_seen)) > 1:
            raise TrainError(f"the processes found different checkpoints in {self.out} "
                             f"(completed epochs by rank: {epochs_seen})",
                             "put --out on a filesystem every node can read (or copy last.pt "
                             "to each node) before resuming", quiet=not procs.main)

    def _wrap(self) -> None:
        """The module that trains (DDP across processes, compiled on request) and the one
        that evaluates (compiled on request, never DDP)."""
        import torch
        from torch.nn.parallel import DistributedDataParallel
        model, device = self.model, self.device
        self.train_model = model
        if self.procs.distributed:
            self.train_model = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        self.eval_model = model
        if self.cfg.compile:
            self.train_model = torch.compile(self.train_model)
            self.eval_model = torch.compile(model)

    def _loaders(self) -> None:
        import torch
        from torch.utils.data import DataLoader, DistributedSampler

        from .data import SeededSampler, collate
        cfg, procs, plan, workers = self.cfg, self.procs, self.plan, self.workers
        self.sampler = SeededSampler(DistributedSampler(plan.train_set, procs.world_size,
                                                        procs.rank, shuffle=True, seed=cfg.seed),
                                     cfg.seed)
        loader_args = dict(num_workers=workers, collate_fn=collate,
                           pin_memory=self.device.type == "cuda", persistent_workers=workers > 0)
        self.train_loader = DataLoader(
            plan.train_set, batch_size=cfg.batch_size, sampler=self.sampler,
            drop_last=self.drop_last, generator=torch.Generator().manual_seed(cfg.seed),
            **loader_args)
        self.val_loader = None
        if plan.val_set is not None:
            shard = list(range(procs.rank, len(plan.val_set), procs.world_size))
            self.val_loader = DataLoader(
                plan.val_set, batch_size=cfg.batch_size, sampler=SeededSampler(shard, cfg.seed),
                generator=torch.Generator().manual_seed(cfg.seed), **loader_args)

    def _input_transform(self) -> None:
        """`self.to_input`: uint8 images to the normalized float input on the device; and
        the training loss."""
        import torch

        from .data import normalization
        device, channels_last = self.device, self.cfg.channels_last
        mean, std = normalization(self.plan.graph.input_shape[0])
        mean_t = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        std_t = torch.tensor(std, device=device).view(1, -1, 1, 1)

        def to_input(images: "torch.Tensor") -> "torch.Tensor":
            x = images.to(device, non_blocking=True).float().div_(255).sub_(mean_t).div_(std_t)
            return x.contiguous(memory_format=torch.channels_last) if channels_last else x

        self.to_input = to_input
        self.criterion = torch.nn.CrossEntropyLoss(label_smoothing=self.cfg.label_smoothing)

    @staticmethod
    def _batches(loader):
        from .data import Unreadable
        for batch in loader:
            if isinstance(batch, Unreadable):
                raise TrainError(f"cannot read image {batch.path} ({batch.reason})",
                                 "remove or replace the file; checkpoints already in --out are "
                                 "intact, and --resume continues from the last one")
            yield batch

    def _prepare_files(self) -> None:
        """Files: only now, after every check, and only on rank 0."""
        if not self.procs.main:
            return
        out = self.out
        os.makedirs(out, exist_ok=True)
        _remove_stale_temporaries(out)
        if self.cfg.overwrite:
            for name in RUN_FILES:
                path = os.path.join(out, name)
                if os.path.lexists(path):
                    os.remove(path)
        _keep_metrics_until(os.path.join(out, "metrics.jsonl"), self.start_epoch)

    def _epoch(self, epoch: int) -> dict:
        """Train, evaluate, save and report one epoch; return its metrics."""
        record, t0 = self._train_epoch(epoch)
        if not math.isfinite(record["train_loss"]):
            raise TrainError(f"training diverged: the loss is {record['train_loss']} in epoch "
                             f"{epoch}; {self.out}/last.pt still holds epoch {epoch - 1}",
                             "lower --lr, add --warmup-epochs, or use --amp bf16 instead of fp16",
                             quiet=not self.procs.main)  # every rank sees the same summed loss
        if self.val_loader is not None:
            self._validate(epoch, record)
        record["time_s"] = time.perf_counter() - t0
        self._save(epoch, record)
        self.report.epoch(record, self.cfg.epochs, self.best)
        return record

    def _train_epoch(self, epoch: int) -> tuple[dict, float]:
        """One pass over the training shard; returns its metrics (summed over the processes)
        and the time it started (time.perf_counter)."""
        import torch
        procs, device, amp_dtype = self.procs, self.device, self.amp_dtype
        model, optimizer, scaler = self.train_model, self.optimizer, self.scaler
        model.train()
        self.sampler.set_epoch(epoch)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        bar = self.report.epoch_bar(epoch, self.cfg.epochs, self.steps)
        t0 = time.perf_counter()
        for i, (images, labels) in enumerate(self._batches(self.train_loader)):
            x, y = self.to_input(images), labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(x)
                loss = self.criterion(logits, y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            self.scheduler.step()
            self.step += 1
            n = y.shape[0]
            seen += n
            loss_sum += loss.detach().double() * n
            correct += (logits.detach().argmax(1) == y).sum()
            if self.kill_after and self.step >= self.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            bar.advance(i + 1, lambda: (loss_sum.item() / seen, correct.item() / seen,
                                        seen * procs.world_size / (time.perf_counter() - t0)))
        bar.close()
        loss_all, correct_all, seen_all = procs.sum([loss_sum.item(), correct.item(), seen])
        train_time = time.perf_counter() - t0
        self.images_total += seen_all
        return {"epoch": epoch, "train_loss": loss_all / max(seen_all, 1),
                "train_acc": correct_all / max(seen_all, 1),
                "lr": optimizer.param_groups[0]["lr"],
                "images_per_s": seen_all / train_time, "train_time_s": train_time}, t0

    def _validate(self, epoch: int, record: dict) -> None:
        """Add the validation metrics to `record`; track the best epoch."""
        self.procs.broadcast_buffers(self.model)
        record.update(_evaluate(self.eval_model, self._batches(self.val_loader), self.to_input,
                                self.device, self.amp_dtype, self.procs, len(self.plan.classes)))
        if self.best["val_acc"] is None or record["val_acc"] > self.best["val_acc"]:
            self.best = {"val_acc": record["val_acc"], "epoch": epoch}

    def _save(self, epoch: int, record: dict) -> None:
        """Save the metrics line, best.pt and last.pt (rank 0, with every rank's generators)."""
        import torch

        from . import checkpoint as ckpt
        from ..weights.files import describe
        procs, plan, out = self.procs, self.plan, self.out
        rng_all = procs.gather(ckpt.rng_state(self.device))
        if not procs.main:
            return
        state = {
            "format": ckpt.FORMAT, "epoch": epoch, "spec": plan.spec_data,
            "classes": list(plan.classes), "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "rng": {"world_size": procs.world_size, "ranks": rng_all},
            "best": self.best, "metrics": record, "config": dataclasses.asdict(self.cfg),
            "torch": str(torch.__version__), **describe(plan.spec_data),
        }
        # In this order, a crash between two writes is harmless: a resumed run drops
        # metric lines past last.pt's epoch, and redoes that epoch exactly.
        with open(os.path.join(out, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.best["epoch"] == epoch:
            ckpt.save(state, os.path.join(out, "best.pt"))
        ckpt.save(state, os.path.join(out, "last.pt"))

    def _summary(self, record: dict, started: float) -> dict:
        """The run's summary, printed by rank 0 and returned."""
        procs = self.procs
        summary = {"spec": self.plan.spec.name, "epochs": self.cfg.epochs,
                   "start_epoch": self.start_epoch, "final": record, "best": self.best,
                   "out": self.out,
                   "images_per_s": self.images_total / max(time.perf_counter() - started, 1e-9),
                   "time_s": time.perf_counter() - started, "world_size": procs.world_size,
                   "global_batch": self.global_batch, "lr": self.lr}
        self.report.summary(summary, self.plan.val_set is not None)
        return summary


def _restore(state: dict, cfg: TrainConfig, plan: _Plan, procs, model, optimizer, scheduler,
             scaler, steps: int, warmup_steps: int, total_steps: int) -> tuple[int, dict]:
    """Load a checkpoint into the run; return (finished epochs, best so far). The learning
    rate, weight decay and momentum of this command line apply from here on; the schedule's
    position is the checkpoint's epoch boundary (in this run's steps per epoch)."""
    from . import checkpoint as ckpt
    from .recipe import lr_factor
    out = plan.out
    saved_optimizer = state.get("config", {}).get("optimizer", cfg.optimizer)
    if saved_optimizer != cfg.optimizer:
        raise TrainError(f"{out}/last.pt was trained with --optimizer {saved_optimizer}, this "
                         f"run asks for {cfg.optimizer}; its optimizer state cannot carry over",
                         f"resume with --optimizer {saved_optimizer}, or start again with "
                         f"--overwrite")
    hyper = [{k: g[k] for k in ("initial_lr", "weight_decay", "momentum") if k in g}
             for g in optimizer.param_groups]
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") and scaler.is_enabled():
            scaler.load_state_dict(state["scaler"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise TrainError(f"{out}/last.pt does not fit this run: {str(exc).splitlines()[0]}",
                         "resume with the options of the run that wrote it, or start again "
                         "with --overwrite") from None
    start_epoch = int(state["epoch"])
    for group, values in zip(optimizer.param_groups, hyper):
        group.update(values)
    scheduler.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
    scheduler.last_epoch = start_epoch * steps
    factor = lr_factor(scheduler.last_epoch, warmup_steps, total_steps)
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * factor
    rng = state["rng"]
    if rng["world_size"] == procs.world_size:
        ckpt.set_rng_state(rng["ranks"][procs.rank], procs.device)
    else:
        plan.notes.append(f"the checkpoint was written by {rng['world_size']} processes, this "
                          f"run has {procs.world_size}: generators reseeded")
        import torch
        torch.manual_seed(cfg.seed + procs.rank + 1000 * start_epoch)
    differs = _config_differences(state.get("config", {}), cfg)
    if differs:
        plan.notes.append("resuming with other options than the checkpoint's, in effect from "
                          f"epoch {start_epoch + 1}: " + "; ".join(differs))
    return start_epoch, dict(state["best"])


def _evaluate(model, loader, to_input, device, amp_dtype, procs, num_classes: int) -> dict:
    """Validation loss (plain cross-entropy) and top-1 / top-5 accuracy over all processes'
    shards (each image counted once: the shards do not pad)."""
    import torch
    import torch.nn.functional as F
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    top1 = torch.zeros((), dtype=torch.int64, device=device)
    top5 = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    with torch.no_grad():
        for images, labels in loader:
            x, y = to_input(images), labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(x)
            logits = logits.float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
            k = min(5, num_classes)
            hits = logits.topk(k, dim=1).indices == y[:, None]
            top1 += hits[:, 0].sum()
            top5 += hits.any(dim=1).sum()
            seen += y.shape[0]
    loss, c1, c5, n = procs.sum([loss_sum.item(), top1.item(), top5.item(), seen])
    out = {"val_loss": loss / max(n, 1), "val_acc": c1 / max(n, 1)}
    if num_classes > 5:
        out["val_acc5"] = c5 / max(n, 1)
    return out


def _seed_numpy(seed: int) -> None:
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed % 2**32)


#: Options that change what a resumed run computes; a difference is reported, not refused.
_RECIPE = ("epochs", "batch_size", "lr", "scale_lr", "optimizer", "momentum", "weight_decay",
           "bias_decay", "warmup_epochs", "label_smoothing", "crop_scale", "amp", "seed",
           "val_split", "val_data", "synthetic_samples")


def _config_differences(saved: dict, cfg: TrainConfig) -> list[str]:
    now = dataclasses.asdict(cfg)
    def show(value: Any) -> str:
        return "(default)" if value is None else str(value)
    return [f"--{k.replace('_', '-')} {show(saved[k])} -> {show(now[k])}" for k in _RECIPE
            if k in saved and saved[k] != now[k]]


def _remove_stale_temporaries(out: str) -> None:
    """A run killed while writing a checkpoint leaves its temporary file (`.last.pt.*.tmp`,
    see archspec.outputs.write_atomic) beside the intact previous one: remove such leftovers."""
    prefixes = tuple(f".{name}." for name in RUN_FILES)
    for entry in os.scandir(out):
        if entry.name.startswith(prefixes) and entry.name.endswith(".tmp") \
                and entry.is_file(follow_symlinks=False):
            os.remove(entry.path)


def _keep_metrics_until(path: str, epoch: int) -> None:
    """On resume, drop metric lines of epochs after the checkpoint (written by the crashed run
    after its last checkpoint); a fresh run starts an empty file."""
    if not os.path.exists(path):
        return
    kept = []
    with open(path) as f:
        for line in f:
            try:
                if json.loads(line).get("epoch", 0) <= epoch:
                    kept.append(line if line.endswith("\n") else line + "\n")
            except json.JSONDecodeError:
                continue  # a line cut short by the crash
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(kept)
    os.replace(tmp, path)
