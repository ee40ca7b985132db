"""Pretrained weights: timm, torchvision and archspec checkpoints in and out (docs/weights.md).

    load_weights(module, path, source="auto", strict=True) -> LoadReport
    save(module, path)          a self-describing checkpoint (.safetensors or .pt)
    load_model(path)            rebuild the network from the spec inside, weights loaded
    export_state_dict(module, "timm")   the tensors under timm's or torchvision's names

`layouts.py` derives every foreign name from the IR; `files.py` reads and writes files;
`load.py` matches tensors and reports.
"""
from __future__ import annotations

import os

from torch import nn

from .files import FORMAT, WeightsError, describe, read, spec_of, write
from .load import LoadReport, graph_of, load_state, load_weights, spec_data_of

__all__ = ["LoadReport", "WeightsError", "export_state_dict", "load_model", "load_weights",
           "save"]


def save(module: nn.Module, path: "str | os.PathLike", *, overwrite: bool = True) -> None:
    """Write the module's weights with archspec names, its spec (YAML text and hash) and the
    archspec version: `.safetensors` for a path ending so, else a torch.save file. Atomic."""
    spec_data = spec_data_of(module, "save")
    write(path, module.state_dict(), {"format": FORMAT, **describe(spec_data)},
          overwrite=overwrite)


def load_model(path: "str | os.PathLike") -> nn.Module:
    """Rebuild the network from the spec a checkpoint carries and load its weights strictly;
    no YAML file needed. A WeightsError for a file without an embedded spec."""
    from .. import to_module
    file = os.fspath(path)
    state, meta = read(file)
    spec_data = spec_of(meta, file)
    if spec_data is None:
        raise WeightsError(file, "carries no archspec spec (not written by archspec.save, "
                           "archspec convert or archspec train)",
                           "build the spec and load the weights into it: "
                           "archspec.build(SPEC, weights=PATH)")
    model = to_module(graph_of(spec_data))
    load_state(model, state, meta, file, source="archspec")
    return model


def export_state_dict(module: nn.Module, layout: str = "timm") -> dict:
    """The module's tensors under timm's (`timm`, `timm_legacy`) or torchvision's names, in
    their shapes: what the same network's state_dict is in that library. Tensors without a
    counterpart there are left out."""
    from .layouts import module_map
    targets = module_map(graph_of(spec_data_of(module, "export_state_dict")), layout)
    out = {}
    for key, value in module.state_dict().items():
        module_path, _, tensor = key.rpartition(".")
        target = targets.get(module_path)
        if target is not None:
            out[target.key(tensor)] = value.reshape(target.foreign_shape(tuple(value.shape)))
    return out
