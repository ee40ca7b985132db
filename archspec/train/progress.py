"""What a run prints (rank 0 only): the setup, a progress bar per epoch, a line per epoch and a
final summary. The bar (tqdm) is drawn only on a terminal; in a log file each epoch is one line.
"""
from __future__ import annotations

import sys
import time
from typing import Callable


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class _Bar:
    """A tqdm bar over an epoch's steps; the running loss, accuracy and images/s are read (a
    device sync) at most twice a second."""

    def __init__(self, bar):
        self.bar = bar
        self.last = 0.0
        self.done = 0

    def advance(self, step: int, stats: Callable[[], tuple[float, float, float]]) -> None:
        if self.bar is None:
            return
        now = time.perf_counter()
        if now - self.last >= 0.5 or step == self.bar.total:
            loss, acc, ips = stats()
            self.bar.set_postfix_str(f"loss {loss:.4f}  acc {acc:6.2%}  {ips:,.0f} img/s",
                                     refresh=False)
            self.last = now
        self.bar.update(step - self.done)
        self.done = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Reporter:
    def __init__(self, main: bool, progress: bool):
        self.main = main
        self.bars = main and progress and sys.stderr.isatty()

    def print(self, text: str = "") -> None:
        if self.main:
            print(text, flush=True)

    def setup(self, plan, cfg, procs, info: dict) -> None:
        if not self.main:
            return
        graph = plan.graph
        c, h, w = graph.input_shape
        p = self.print
        p(f"train: {graph.name}, {graph.params:,} params, {graph.macs / 1e6:,.2f}M MACs per "
          f"image, input {c}x{h}x{w}, {len(plan.classes)} classes")
        p(f"data: {plan.data_note}")
        if procs.distributed:
            n = procs.world_size
            where = f"{n} process{'es' if n != 1 else ''} ({procs.backend}, {procs.device.type})"
        else:
            where = f"1 process ({procs.device})"
        p(f"processes: {where}; batch {cfg.batch_size} per process x {procs.world_size} = "
          f"{info['global_batch']} global; {info['steps']} steps per epoch; "
          f"{info['workers']} loader workers per process")
        opt = f"{cfg.optimizer}" + (f", momentum {cfg.momentum:g}" if cfg.optimizer == "sgd"
                                    else "")
        if cfg.scale_lr:
            lr = (f"lr {info['lr']:g} = {info['base_lr']:g} x {info['global_batch']}/256 "
                  f"(--scale-lr: linear scaling by the global batch)")
        else:
            lr = (f"lr {info['lr']:g}, not scaled by the batch size (--scale-lr would use "
                  f"{info['base_lr'] * info['global_batch'] / 256:g} = {info['base_lr']:g} x "
                  f"{info['global_batch']}/256)")
        p(f"optimizer: {opt}; {lr}")
        n = cfg.warmup_epochs
        warm = f"linear warm-up over {n} epoch{'s' if n != 1 else ''}, then " if n else ""
        p(f"schedule: {warm}cosine to 0 at the end of epoch {cfg.epochs}, updated every step")
        p(f"regularization: {info['groups']}; label smoothing {cfg.label_smoothing:g}; "
          f"zero-init residual {'on' if plan.spec.zero_init_residual else 'off'} (from the spec)")
        p(f"speed: amp {cfg.amp or 'off'}; channels-last {'on' if cfg.channels_last else 'off'}"
          f"; compile {'on' if cfg.compile else 'off'}")
        resumed = f", resuming after epoch {info['start_epoch']}" if info["start_epoch"] else ""
        p(f"out: {plan.out}{resumed}")
        for note in plan.notes:
            p(f"note: {note}")

    def epoch_bar(self, epoch: int, epochs: int, steps: int) -> _Bar:
        if not self.bars:
            return _Bar(None)
        from tqdm import tqdm
        width = len(str(epochs))
        return _Bar(tqdm(total=steps, desc=f"epoch {epoch:>{width}}/{epochs}", unit="step",
                         leave=False, dynamic_ncols=True, file=sys.stderr))

    def epoch(self, r: dict, epochs: int, best: dict) -> None:
        width = len(str(epochs))
        text = (f"epoch {r['epoch']:>{width}}/{epochs}  train loss {r['train_loss']:.4f} "
                f"acc {r['train_acc']:6.2%}")
        if "val_acc" in r:
            text += f"  val loss {r['val_loss']:.4f} acc {r['val_acc']:6.2%}"
            if "val_acc5" in r:
                text += f" top-5 {r['val_acc5']:6.2%}"
            if best.get("epoch") == r["epoch"]:
                text += " (best)"
        text += (f"  lr {r['lr']:.3g}  {r['images_per_s']:,.0f} img/s  "
                 f"{_duration(r['time_s'])}")
        self.print(text)

    def summary(self, s: dict, has_val: bool) -> None:
        if not self.main:
            return
        done = s["epochs"] - s["start_epoch"]
        out = s["out"]
        if not done:
            self.print(f"done: nothing to do, {out}/last.pt already holds epoch {s['epochs']} "
                       f"of {s['epochs']} (raise --epochs to train on)")
            return
        self.print(f"done: {done} epoch{'s' if done != 1 else ''} in {_duration(s['time_s'])}, "
                   f"{s['images_per_s']:,.0f} images/s overall")
        f = s["final"]
        line = f"final: train loss {f['train_loss']:.4f} acc {f['train_acc']:.2%}"
        if has_val:
            line += f"; val loss {f['val_loss']:.4f} acc {f['val_acc']:.2%}"
        self.print(line)
        if has_val and s["best"]["epoch"] is not None:
            self.print(f"best: val acc {s['best']['val_acc']:.2%} at epoch {s['best']['epoch']}"
                       f" -> {out}/best.pt")
        self.print(f"saved: {out}/last.pt, metrics in {out}/metrics.jsonl")
