"""Torch layers for ConvNeXt-style blocks: layout permutes and layer scale.

A ConvNeXt block runs its norm and MLP channels-last, as torchvision's CNBlock and the reference do:
depthwise conv (NCHW) -> permute to NHWC -> LayerNorm -> Linear -> GELU -> Linear -> permute back ->
x gamma. The permutes are modules of their own so the IR can record each tensor's real shape.
"""
from __future__ import annotations

import torch
from torch import nn

from ..ir import Node
from .torch import register_layer


class Permute(nn.Module):
    """Reorder the dimensions of a tensor (NCHW <-> NHWC); a view, no copy."""

    def __init__(self, dims: tuple[int, ...]):
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class LayerScale(nn.Module):
    """Per-channel learnable scale (Touvron et al. 2021, CaiT; ConvNeXt's gamma), starting at
    `init`. Channels are the last dimension of channels-last tensors, else the second."""

    def __init__(self, channels: int, init: float, channels_last: bool = False):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), float(init)))
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            return x * self.gamma
        return x * self.gamma.view(-1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.gamma.shape[0]}, channels_last={self.channels_last}"


@register_layer("permute")
def _permute(node: Node) -> nn.Module:
    return Permute(node.attrs["dims"])


@register_layer("layer_scale")
def _layer_scale(node: Node) -> nn.Module:
    return LayerScale(node.param_shapes[0][1][0], node.attrs["init"],
                      bool(node.attrs.get("channels_last")))
