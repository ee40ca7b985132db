"""Helpers for the per-family tests: a network of one block, so the block's plan and its torch
module can be compared in isolation (a 1x1 patchify stem sets the block's input width)."""
from __future__ import annotations

import archspec

BLOCK = "stages.0.blocks.0"


def one_block(block: dict, in_channels: int, out_channels: int, stride: int = 1,
              size: int = 8, **network) -> dict:
    """A spec mapping: 1x1 stem to `in_channels`, one stage of one block, pooled features."""
    return {
        "name": "one_block",
        "input": {"channels": 3, "image_size": size},
        "stem": {"type": "patchify", "out_channels": in_channels, "patch_size": 1},
        "stages": {"depths": [1], "widths": [out_channels], "strides": [stride]},
        "block": block,
        "head": {"num_classes": 0},
        **network,
    }


def resolve(data: dict):
    return archspec.resolve(archspec.load(data))


def check_block_against_module(graph, batch: int = 2) -> None:
    """The block's module has the IR's parameters (count and shapes), produces the IR's output
    shape, and backward reaches every one of its parameters."""
    import torch

    model = archspec.to_module(graph).train()
    block = model.get_submodule(BLOCK)
    group = graph.groups[BLOCK]
    assert sum(p.numel() for p in block.parameters()) == group.params
    ir_shapes = {f"{n.id[len(BLOCK) + 1:]}.{name}": shape
                 for n in graph.under(BLOCK) for name, shape in n.param_shapes}
    assert {k: tuple(p.shape) for k, p in block.named_parameters()} == ir_shapes
    torch.manual_seed(0)
    x = torch.randn((batch,) + graph.input_shape)
    seen = {}
    hook = block.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    out = model(x)
    hook.remove()
    assert tuple(seen["out"].shape[1:]) == group.out_shape
    # Zero-init residual norms would block the gradient to everything before them: reinitialize.
    for m in block.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    out = model(x)
    (out * torch.randn_like(out)).sum().backward()
    missing = [name for name, p in block.named_parameters()
               if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing, f"no gradient reached {missing}"
