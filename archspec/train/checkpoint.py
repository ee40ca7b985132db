"""Checkpoints: written whole or not at all, read back with `weights_only` safe loading.

A checkpoint is a dict of tensors and plain Python values only (no pickled classes), so
`torch.load(path, weights_only=True)` reads it:

    format         "archspec.train/1"
    epoch          completed epochs
    spec           the validated spec as JSON-style data (overrides applied, num_classes set)
    classes        class names, in label order
    model          state_dict of the bare module (no DDP or compile prefixes)
    optimizer, scheduler, scaler   their state_dicts (scaler: None without fp16)
    rng            {"world_size": N, "ranks": [per-rank python/numpy/torch/cuda generator states]}
    best           {"val_acc": float | None, "epoch": int | None}
    metrics        the last epoch's metrics record
    config         the training options (for the record)
    torch          torch.__version__
    spec_yaml, spec_sha256, archspec_version
                   the self-description archspec.load_model reads (archspec/weights/files.py)
"""
from __future__ import annotations

import os
import random
from typing import Any

import torch

from ..errors import InternalError
from ..weights.files import unreadable_reason
from .errors import TrainError

FORMAT = "archspec.train/1"
REQUIRED = ("epoch", "spec", "classes", "model", "optimizer", "scheduler", "rng", "best")

#: Spec settings that do not change the network, ignored when comparing a checkpoint's spec.
NOT_COMPARED = ("description",)


def plain(value: Any, where: str = "checkpoint") -> Any:
    """`value` with only the types `weights_only` loading accepts: tensors, str, int, float,
    bool, None, and lists, tuples and dicts of them (str and number subclasses made plain)."""
    if value is None or isinstance(value, (bool, torch.Tensor)):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple)):
        items = [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {plain(k, where): plain(v, f"{where}.{k}") for k, v in value.items()}
    raise InternalError(f"{where}: a {type(value).__name__} cannot go into a checkpoint that "
                        f"loads with weights_only=True")


def save(state: dict, path: str) -> None:
    """Write to PATH.tmp, flush it to disk, then rename over PATH: a crash at any moment leaves
    either the previous checkpoint or the new one, never a partial file."""
    state = plain(state)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    try:  # make the rename itself durable
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def load(path: str) -> dict:
    """Read a checkpoint safely; a clear TrainError if it is unreadable or not ours."""
    hint = ("the file is damaged or is not an archspec training checkpoint; start again with "
            "--overwrite (it deletes last.pt, best.pt and metrics.jsonl) or restore it from a copy")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainError(f"{path}: no such checkpoint") from None
    except Exception as exc:
        raise TrainError(f"{path}: cannot read the checkpoint ({unreadable_reason(exc, path)})",
                         hint) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise TrainError(f"{path}: not an archspec training checkpoint (format {found!r}, "
                         f"expected {FORMAT!r})", hint)
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise TrainError(f"{path}: incomplete checkpoint (missing {', '.join(missing)})", hint)
    return state


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    return {prefix: data}


def spec_differences(saved: dict, current: dict) -> list[str]:
    """'path: checkpoint X, now Y' for each setting that differs (description ignored)."""
    a = {k: v for k, v in _flatten(saved).items() if k.split(".")[0] not in NOT_COMPARED}
    b = {k: v for k, v in _flatten(current).items() if k.split(".")[0] not in NOT_COMPARED}
    missing = object()
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            show = lambda v: "(absent)" if v is missing else repr(v)  # noqa: E731
            out.append(f"{key}: checkpoint {show(va)}, now {show(vb)}")
    return out


# ---- random generators --------------------------------------------------------------------

def rng_state(device: torch.device) -> dict:
    """Every generator this process draws from, as tensors and plain values."""
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state(),
                             "numpy": None, "cuda": None}
    try:
        import numpy as np
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state["numpy"] = (kind, torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss),
                          float(gauss))
    except ImportError:
        pass
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if state.get("numpy") is not None:
        try:
            import numpy as np
            kind, keys, pos, has_gauss, gauss = state["numpy"]
            np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, gauss))
        except ImportError:
            pass
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
