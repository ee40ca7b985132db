"""Global response norm (Woo et al. 2023, "ConvNeXt V2"), a setting of the inverted bottleneck and
ConvNeXt blocks: `grn: {}` (or `grn: {eps: 1e-6}`).

GRN(x), x with C channels over H x W positions, per sample:
    G_c = ||x_c||_2 over the positions;  N_c = G_c / (mean over the channels of G + eps);
    y = x + gamma * (x * N) + beta        (gamma, beta: per channel, both starting at 0).
It sits on the input of the block's projection (its last pointwise layer): in ConvNeXt V2 right
after the MLP's GELU, before `fc2`, at the expanded width. No MACs: FlopCounterMode counts none of
its reductions and element-wise products, so the published ConvNeXt V2 counts equal V1's.

This file holds the setting (documented model), its plan (one node of kind
`global_response_norm`), its named diff step ("global response norm") and its torch layer,
channels-last after ConvNeXt's permute and channels-first with 1x1-conv MLPs (timm's `conv_mlp`).
Its parameters are `weight` (gamma) and `bias` (beta), as timm's `GlobalResponseNorm` names them,
so its checkpoints load unrenamed.

Its role is `attention`, not `norm`: like squeeze-and-excitation it aggregates each channel
globally and recalibrates the channels by the result (the paper's "aggregation, normalization,
calibration"), keeps no statistics and is not the block's `norm` setting. So the diff names it as
its own step rather than as "more norms" and a "norm swap", and the norm initialisation (weight 1)
leaves it alone: gamma and beta start at 0, the block starting as without GRN.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from ..kinds import register_kind
from ..lower.registry import torch_layer
from ..steps import presence_step, register_step
from .settings import Model

if TYPE_CHECKING:
    from ..primitives import Tensor
    from .base import BlockContext

# a block's one-line layer sequence shows it: '1×1, 384 → GELU → GRN → 1×1, 96'
register_kind("global_response_norm", "attention", short="GRN")
register_step(presence_step("global_response_norm", "global response norm",
                            node_kind="global_response_norm", explains=(".grn",)))


class GlobalResponseNormSpec(Model):
    """Global response norm on the input of the block's projection (ConvNeXt V2: after the MLP's
    activation). Written `grn: {}` for the defaults."""

    eps: float = Field(default=1e-6, gt=0)
    """Added to the mean response before dividing (N_c = G_c / (mean G + eps)); 1e-6 as ConvNeXt
    V2 and timm. Must be positive: with 0 an all-zero input divides 0 by 0."""


def plan_grn(ctx: "BlockContext", x: "Tensor", grn: GlobalResponseNormSpec | None,
             name: str = "grn") -> "Tensor":
    """Record a global response norm on `x` (either layout) and return its output; `x` itself
    when `grn` is None. gamma and beta start at zero (the block starts as without GRN)."""
    if grn is None:
        return x
    c = x.shape[-1] if x.channels_last else x.channels
    return ctx.builder.op(name, "global_response_norm", (x,), x.shape,
                          param_shapes=(("weight", (c,)), ("bias", (c,))),
                          attrs={"eps": grn.eps})


@torch_layer("global_response_norm")
def _global_response_norm_layer():
    """The torch layer of a `global_response_norm` node (imports torch: runs when a module is
    built)."""
    import torch
    from torch import nn

    class GlobalResponseNorm(nn.Module):
        """x + weight * (x * N(x)) + bias, N(x) = G / (mean_c G + eps), G the L2 norm of each
        channel over the positions. Channels are the last dimension of a channels-last tensor
        (N, H, W, C), else the second (N, C, H, W)."""

        def __init__(self, channels: int, eps: float, channels_last: bool):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(channels))
            self.bias = nn.Parameter(torch.zeros(channels))
            self.eps, self.channels_last = eps, channels_last

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            spatial, channel = ((1, 2), -1) if self.channels_last else ((2, 3), 1)
            shape = (1, 1, 1, -1) if self.channels_last else (1, -1, 1, 1)
            g = torch.linalg.vector_norm(x, 2, dim=spatial, keepdim=True)
            n = g / (g.mean(dim=channel, keepdim=True) + self.eps)
            return x + torch.addcmul(self.bias.view(shape), self.weight.view(shape), x * n)

        def extra_repr(self) -> str:
            return f"{self.weight.shape[0]}, eps={self.eps:g}, channels_last={self.channels_last}"

    return lambda node: GlobalResponseNorm(node.param_shapes[0][1][0], node.attrs["eps"],
                                           bool(node.channels_last))
