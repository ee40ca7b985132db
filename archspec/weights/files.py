"""Weight files: read safely, write atomically, and carry the spec that made them.

Reading never runs code: `.pt`/`.pth` files go through `torch.load(weights_only=True)` (tensors
and plain values only; a pickle that would call a function is refused), `.safetensors` through
the `safetensors` package (no pickle at all).

A checkpoint archspec writes is self-describing. Next to the tensors it holds (as `.safetensors`
metadata, or as keys of the `.pt` dict):

    format            "archspec.weights/1" (archspec.save, convert) or "archspec.train/1" (train)
    spec_yaml         the validated spec, every setting explicit (YAML text)
    spec_sha256       SHA-256 of spec_yaml: a changed text is noticed
    archspec_version  the archspec release that wrote it
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from typing import Any

import torch

from ..errors import Location, Problem, SpecError

FORMAT = "archspec.weights/1"
TRAIN_FORMAT = "archspec.train/1"
#: where a state dict sits inside the checkpoint dicts of common trainers, tried in order
STATE_KEYS = ("state_dict", "model", "model_state_dict", "module", "net")
#: prefixes that wrappers add to every key: DDP (`module.`), torch.compile (`_orig_mod.`)
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class WeightsError(SpecError):
    """A weight file that cannot be used: unreadable, not a checkpoint, or for another network.
    A user's mistake: exit code 2 from the command line, never a traceback."""

    def __init__(self, file: str, message: str, hint: str | None = None):
        super().__init__([Problem(Location(str(file)), "weights", message, hint)])
        self.file, self.message, self.hint = str(file), message, hint


def archspec_version() -> str:
    try:
        from importlib.metadata import version
        return version("archspec")
    except Exception:  # not installed (run from a checkout)
        return "unknown"


def describe(spec_data: dict) -> dict[str, str]:
    """The self-description of a network: its spec as YAML, the text's hash, our version."""
    import yaml
    text = yaml.safe_dump(spec_data, sort_keys=False)
    return {"spec_yaml": text, "spec_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "archspec_version": archspec_version()}


def spec_of(meta: dict[str, Any], file: str) -> dict | None:
    """The spec data a checkpoint carries (None if it carries none); checks the hash."""
    text = meta.get("spec_yaml")
    if not isinstance(text, str):
        return None
    if hashlib.sha256(text.encode()).hexdigest() != meta.get("spec_sha256"):
        raise WeightsError(file, "the embedded spec does not match its spec_sha256: the "
                           "checkpoint was altered after archspec wrote it",
                           "write it again with archspec.save or archspec convert")
    import yaml
    return yaml.safe_load(text)


# ---- reading -------------------------------------------------------------------------------

def read(path: "str | os.PathLike") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, metadata) of a checkpoint file; a WeightsError when it is not one."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise WeightsError(path, "no such file" if not os.path.exists(path) else "not a file")
    if path.endswith(".safetensors"):
        return _read_safetensors(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(path, f"cannot read the checkpoint: {unreadable_reason(exc, path)}",
                           "give a .pt/.pth file written by torch.save, or a .safetensors "
                           "file") from None
    return unwrap(data, path)


def _read_safetensors(path: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        from safetensors import safe_open
        with safe_open(path, framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise WeightsError(path, f"not a readable safetensors file ({type(exc).__name__}"
                           f"{': ' + detail if detail else ''})",
                           "the file is damaged or cut short; download or convert it again"
                           ) from None
    return state, meta


def unwrap(data: Any, file: str = "<state dict>") -> tuple[dict[str, torch.Tensor],
                                                           dict[str, Any]]:
    """The tensors of a loaded checkpoint, whatever dict they were saved in, and the other
    top-level values (archspec's self-description among them)."""
    if not isinstance(data, dict):
        raise WeightsError(file, f"not a checkpoint: it holds a {type(data).__name__}, not a "
                           "dict of tensors")
    meta = {k: v for k, v in data.items() if not isinstance(v, (dict, torch.Tensor))}
    if data.get("format") == TRAIN_FORMAT:
        state = data.get("model")
    elif data and all(isinstance(v, torch.Tensor) for v in data.values()):
        state = data
    else:
        found = [k for k in STATE_KEYS if isinstance(data.get(k), dict)]
        state = data[found[0]] if found else None
    if not isinstance(state, dict) or not state:
        keys = ", ".join(map(str, list(data)[:8])) or "none"
        raise WeightsError(file, f"no state dict found (top-level keys: {keys})",
                           f"a checkpoint is a dict of tensors, or holds one under "
                           f"{', '.join(STATE_KEYS)}")
    return _strip({str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}), meta


def _strip(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def unreadable_reason(exc: Exception, path: str) -> str:
    """The line of a torch.load failure that says what is wrong (for weights_only refusals,
    the unpickler's own line, e.g. 'Unsupported global: GLOBAL os.system')."""
    try:
        if os.path.getsize(path) == 0:
            return "the file is empty"
        if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
            return (f"not a complete torch.save file: {os.path.getsize(path):,} bytes with no "
                    f"zip directory, as when a copy or a write was cut short")
    except OSError:
        pass
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if lines and lines[0].startswith("Weights only load failed"):
        for line in lines:  # the line naming what was refused (its wording varies by version)
            if "GLOBAL" in line or line.startswith("WeightsUnpickler error:"):
                detail = line.removeprefix("WeightsUnpickler error:").strip()
                return ("refused by weights_only loading, it holds more than tensors and plain "
                        f"values: {detail[:200]}")
        return "refused by weights_only loading, it holds more than tensors and plain values"
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


# ---- writing -------------------------------------------------------------------------------

def write(path: "str | os.PathLike", state: dict[str, torch.Tensor], meta: dict[str, str], *,
          overwrite: bool = False) -> None:
    """Write tensors and metadata: `.safetensors` (metadata as its string header) or a
    torch.save dict {format, state_dict, ...metadata}. Atomic: a temporary file in the same
    folder, flushed, then renamed over PATH, so a crash leaves the old file or the new one."""
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise WeightsError(path, "already exists; not overwritten",
                           "choose another name, or pass --overwrite (overwrite=True)")
    tmp = f"{path}.tmp{os.getpid()}"
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import save_file
            save_file(state, tmp, metadata={k: str(v) for k, v in meta.items()})
        else:
            with open(tmp, "wb") as f:
                torch.save({**meta, "state_dict": state}, f)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
