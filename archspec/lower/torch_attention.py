"""Torch containers of the attention groups: squeeze-and-excitation (`se`) and ResNeSt split
attention (`splat`), and the r-softmax layer. Each forward is written out by hand over the child
modules the IR lists; the numbers (widths, radix, groups) all come from the IR.
"""
from __future__ import annotations

import torch
from torch import nn

from ..ir import ArchGraph, Group, Node
from .torch import _add_children, register_container, register_layer


def _module_children(group: Group, graph: ArchGraph, names: tuple[str, ...]) -> tuple[str, ...]:
    """The children among `names` that are modules (not functional nodes such as `mul`)."""
    prefix = f"{group.id}." if group.id else ""
    return tuple(n for n in names
                 if prefix + n in graph.groups or graph.node(prefix + n).is_module)


@register_container("se")
class SqueezeExcite(nn.Module):
    """x * gate(fc2(act(fc1(pool(x))))): Hu et al. 2018. Children as the IR lists them (pool,
    fc1, act, fc2, gate); the final `mul` is this forward's product."""

    def __init__(self, group: Group, graph: ArchGraph):
        super().__init__()
        _add_children(self, group, graph)
        self._squeeze = _module_children(group, graph, group.children)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x
        for name in self._squeeze:
            scale = getattr(self, name)(scale)
        return x * scale


@register_container("splat")
class SplitAttention(nn.Module):
    """ResNeSt's SplAt (Zhang et al. 2020), laid out like the reference `SplitAttn`.

    features = act0(bn0(conv(x)))          (N, R*w, H, W), split-major
    attention = rsoftmax(fc2(act1(bn1(fc1(pool(sum of the R splits))))))   (N, R*w, 1, 1)
    out = sum over r of split_r * attention_r                              (N, w, H, W)
    With radix 1 there is nothing to sum: out = features * sigmoid(...).
    """

    def __init__(self, group: Group, graph: ArchGraph):
        super().__init__()
        _add_children(self, group, graph)
        self.radix: int = group.attrs["radix"]
        children = group.children
        pool, scale = children.index("pool"), children.index("scale")
        self._features = _module_children(group, graph, children[:pool])
        self._attention = _module_children(group, graph, children[pool:scale])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self._features:
            x = getattr(self, name)(x)
        if self.radix > 1:
            splits = x.unflatten(1, (self.radix, -1))  # (N, R, w, H, W)
            attention = splits.sum(1)
        else:
            attention = x
        for name in self._attention:
            attention = getattr(self, name)(attention)
        if self.radix > 1:
            return (splits * attention.unflatten(1, (self.radix, -1))).sum(1)
        return x * attention

    def extra_repr(self) -> str:
        return f"radix={self.radix}"


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
