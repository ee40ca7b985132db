"""Pretrained weights: timm, torchvision and archspec checkpoints in and out (docs/weights.md).

    load_weights(module, path, source="auto", strict=True) -> LoadReport
    save(module, path)          a self-describing checkpoint (.safetensors or .pt)
    load_model(path)            rebuild the network from the spec inside, weights loaded

`layouts.py` derives every foreign name from the IR; `files.py` reads and writes files;
`load.py` matches tensors and reports.
"""
from __future__ import annotations

import os

from torch import nn

from .files import FORMAT, WeightsError, describe, read, spec_of, write
from .load import LoadReport, load_state, load_weights

__all__ = ["LoadReport", "WeightsError", "export_state_dict", "load_model", "load_weights",
           "save"]


def save(module: nn.Module, path: "str | os.PathLike", *, overwrite: bool = True) -> None:
    """Write the module's weights with archspec names, its spec (YAML text and hash) and the
    archspec version: `.safetensors` for a path ending so, else a torch.save file. Atomic."""
    spec_data = getattr(module, "spec_data", None)
    if not isinstance(spec_data, dict):
        raise TypeError("save needs a module built by archspec (archspec.build)")
    write(path, module.state_dict(), {"format": FORMAT, **describe(spec_data)},
          overwrite=overwrite)


def load_model(path: "str | os.PathLike") -> nn.Module:
    """Rebuild the network from the spec a checkpoint carries and load its weights strictly;
    no YAML file needed. A WeightsError for a file without an embedded spec."""
    from .. import build
    from ..spec import load as load_spec
    file = os.fspath(path)
    state, meta = read(file)
    spec_data = spec_of(meta, file)
    if spec_data is None:
        raise WeightsError(file, "carries no archspec spec (not written by archspec.save, "
                           "archspec convert or archspec train)",
                           "build the spec and load the weights into it: "
                           "archspec.build(SPEC, weights=PATH)")
    model = build(load_spec(spec_data))
    load_state(model, state, meta, file, source="archspec")
    return model


def export_state_dict(module: nn.Module, layout: str = "timm") -> dict:
    """The module's tensors under timm's (`timm`, `timm_legacy`) or torchvision's names, in
    their shapes: what the same network's state_dict is in that library. Tensors without a
    counterpart there are left out."""
    from .. import resolve
    from ..spec import load as load_spec
    from .layouts import module_map
    spec_data = getattr(module, "spec_data", None)
    if not isinstance(spec_data, dict):
        raise TypeError("export_state_dict needs a module built by archspec (archspec.build)")
    targets = module_map(resolve(load_spec(spec_data)), layout)
    out = {}
    for key, value in module.state_dict().items():
        module_path, _, tensor = key.rpartition(".")
        target = targets.get(module_path)
        if target is not None:
            out[target.key(tensor)] = value.reshape(target.foreign_shape(tuple(value.shape)))
    return out
