"""Residual shortcuts that change shape: projection (ResNet) or avg-pool then projection (ResNet-D)."""
from __future__ import annotations

from typing import Literal

from ..primitives import Tensor
from .base import BlockContext

Shortcut = Literal["projection", "avg_pool_projection"]


def plan_shortcut(ctx: BlockContext, x: Tensor, kind: Shortcut, bias: bool | None = None) -> Tensor:
    """Identity when the shape is unchanged; otherwise `downsample.*` layers.

    projection: 1x1 conv with the block's stride -> norm (He et al. 2015, option B).
    avg_pool_projection: 2x2 average pool, stride 2, ceil mode, padding excluded from the mean ->
    1x1 conv with stride 1 -> norm (ResNet-D, He et al. 2019). Without a stride it is a projection.
    `bias`: whether the 1x1 conv has a bias; default `ctx.conv_bias` (only when there is no norm).
    """
    b, stride = ctx.builder, ctx.stride
    if stride == 1 and x.channels == ctx.out_channels:
        return x
    # `type` records the kind even where stride 1 leaves out the pool: checkpoints of timm's
    # ResNet-D keep the pool's slot (`downsample.0`), so their conv is `downsample.1` (weights/).
    with b.group("downsample", "sequential", x, type=kind):
        layer = 0
        if kind == "avg_pool_projection" and stride > 1:
            x = b.avg_pool(str(layer), x, kernel_size=stride, stride=stride, ceil_mode=True,
                           count_include_pad=False)
            layer, stride = layer + 1, 1
        x = b.conv(str(layer), x, ctx.out_channels, 1, stride=stride,
                   bias=ctx.conv_bias if bias is None else bias)
        x = ctx.norm_layer(str(layer + 1), x)
    return x
