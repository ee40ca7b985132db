"""Torch layers of the core kinds that are not plain torch layers: layout permutes and layer
scale (ConvNeXt), and the r-softmax over splits (ResNeSt, Selective Kernel).

A ConvNeXt block runs its norm and MLP channels-last, as torchvision's CNBlock and the reference do:
depthwise conv (NCHW) -> permute to NHWC -> LayerNorm -> Linear -> GELU -> Linear -> permute back ->
x gamma. The permutes are modules of their own so the IR can record each tensor's real shape.
"""
from __future__ import annotations

import torch
from torch import nn

from ..ir import Node
from .registry import register_layer


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


class RadixSoftmax(nn.Module):
    """r-softmax: logits (N, K*R*c, 1, 1) laid out group-major (K, R, c) -> weights laid out
    split-major (R, K, c), softmax over R within each group; sigmoid when R is 1."""

    def __init__(self, radix: int, groups: int):
        super().__init__()
        self.radix, self.groups = radix, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.radix == 1:
            return torch.sigmoid(x)
        x = x.unflatten(1, (self.groups, self.radix, -1)).transpose(1, 2)  # (N, R, K, c, 1, 1)
        return x.softmax(1).flatten(1, 3)

    def extra_repr(self) -> str:
        return f"radix={self.radix}, groups={self.groups}"


@register_layer("radix_softmax")
def _radix_softmax(node: Node) -> nn.Module:
    return RadixSoftmax(node.attrs["radix"], node.groups)
