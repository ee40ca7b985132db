"""ResNet blocks (He et al. 2015), with ResNeXt groups (Xie et al. 2017) and the Bag of Tricks
stride placement (He et al. 2019).

basic:      3x3 (stride) -> norm -> act -> 3x3 -> norm, + shortcut, act.
bottleneck: 1x1 -> norm -> act -> 3x3 (stride, groups) -> norm -> act -> 1x1 -> norm, + shortcut, act.
"""
from __future__ import annotations

import functools
from fractions import Fraction
from typing import Callable, Literal

from pydantic import Field

from ..errors import Problem, format_path
from ..primitives import Tensor, nearest_divisor
from .base import BlockContext, BlockSpecBase, register_block
from .downsample import Shortcut, plan_shortcut
from .attachments import HasAttention, plan_attention


class ResidualSpec(BlockSpecBase):
    """Base of the ResNet-style families (basic, bottleneck, splat, Selective Kernel): a branch
    ending in `finish_residual`, which places the attention attachment and the shortcut."""

    supports_attention = True  # `finish_residual` places it

    shortcut: Shortcut = "projection"
    """How the shortcut changes shape when a block does: `projection` (strided 1x1 conv + norm)
    or `avg_pool_projection` (2x2 average pool, then 1x1 conv + norm: ResNet-D)."""


def finish_residual(ctx: BlockContext, y: Tensor, x: Tensor, kind: Shortcut, last_act: str,
                    spec: HasAttention | None = None) -> Tensor:
    """End of a residual block, shared by the ResNet-style families: `y` is the branch output
    after its last norm, `x` the block input. Records [the attention attachment of `spec` (SE,
    ECA)] -> [drop path] -> `add` of the shortcut (identity, or `kind` when the shape changes)
    -> activation `last_act`."""
    b = ctx.builder
    if spec is not None:  # after the last norm, before drop path and the addition (SENet)
        y = plan_attention(ctx, y, spec)
    if ctx.drop_path_rate > 0:
        y = b.drop_path("drop_path", y, ctx.drop_path_rate)
    shortcut = plan_shortcut(ctx, x, kind)
    y = b.add("add", y, shortcut)
    return ctx.act_layer(last_act, y)


@register_block
class BasicSpec(ResidualSpec):
    """ResNet basic block (ResNet-18/34): two 3x3 convs at the stage width."""

    type: Literal["basic"] = "basic"
    family = "ResNet basic"

    def plan(self, ctx: BlockContext) -> Tensor:
        return plan_basic(ctx, self, lambda x: ctx.conv_norm_act("1", x, ctx.out_channels, 3,
                                                                 stride=ctx.stride))


def plan_basic(ctx: BlockContext, spec: ResidualSpec, first: Callable[[Tensor], Tensor]
               ) -> Tensor:
    """The basic block around its first layer: `first(x)` (conv1 -> norm -> act, carrying the
    block's stride; Selective Kernel puts its SK conv there), then 3x3 conv2 -> norm, then the
    residual tail (`finish_residual`)."""
    x = ctx.x
    y = ctx.conv_norm_act("2", first(x), ctx.out_channels, 3, act=False, zero_init=True)
    return finish_residual(ctx, y, x, spec.shortcut, "act2", spec)


@register_block
class BottleneckSpec(ResidualSpec):
    """ResNet bottleneck; grouped (ResNeXt) through `groups` and `width_per_group`."""

    type: Literal["bottleneck"] = "bottleneck"
    family = "ResNet bottleneck"

    bottleneck_ratio: float = Field(default=0.25, gt=0)
    """planes = out_channels x bottleneck_ratio (0.25 in ResNet: stage outputs 256..2048)."""
    groups: int | Literal["depthwise"] = Field(default=1)
    """Groups of the 3x3 conv (ResNeXt cardinality), or `depthwise` (one group per channel)."""
    width_per_group: int | None = Field(default=64, gt=0)
    """ResNeXt's d: the 3x3 width is floor(planes x width_per_group / 64) x groups, so 64 with
    groups 1 is plain ResNet and 128 is Wide ResNet-2. `null`: the 3x3 width is planes itself."""
    stride_on: Literal["1x1", "3x3"] = "3x3"
    """Which conv downsamples: `3x3` (ResNet-B, torchvision's v1.5) or `1x1` (original v1)."""

    def mid_channels(self, out_channels: int) -> tuple[int, Fraction]:
        """The 3x3 width and the exact value before rounding down."""
        groups = None if self.groups == "depthwise" else self.groups
        return _mid_channels(out_channels, self.bottleneck_ratio, groups, self.width_per_group)

    def check(self, ctx: BlockContext) -> list[Problem]:
        return super().check(ctx) + self._check_width(ctx)

    def _check_width(self, ctx: BlockContext) -> list[Problem]:
        mid, exact = self.mid_channels(ctx.out_channels)
        path = format_path(ctx.path)
        grouped = isinstance(self.groups, int) and self.groups > 1 \
            and self.width_per_group is not None
        if mid < 1 and grouped:
            per_group = float(exact) / self.groups
            return [Problem(None, f"{path}.width_per_group",
                            f"expected at least 1 channel per group of the 3x3 conv, got "
                            f"{per_group:g} (out_channels {ctx.out_channels} x bottleneck_ratio "
                            f"{self.bottleneck_ratio} x width_per_group {self.width_per_group}"
                            f" / 64)", "raise width_per_group, bottleneck_ratio or the width")]
        if mid < 1:
            return [Problem(None, f"{path}.bottleneck_ratio",
                            f"expected a 3x3 width of at least 1, got {float(exact):g} "
                            f"(out_channels {ctx.out_channels} x bottleneck_ratio "
                            f"{self.bottleneck_ratio})", "raise bottleneck_ratio or the width")]
        if isinstance(self.groups, int) and mid % self.groups:
            return [Problem(None, f"{path}.groups",
                            f"expected a divisor of the 3x3 width ({mid}), got {self.groups}",
                            f"groups: {nearest_divisor(mid, self.groups)}, or change "
                            f"width_per_group")]
        return []

    def plan(self, ctx: BlockContext) -> Tensor:
        x, out = ctx.x, ctx.out_channels
        mid, exact = self.mid_channels(out)
        if mid != exact:
            ctx.builder.note(f"3x3 width {float(exact):g} rounded down to {mid}")
        groups = mid if self.groups == "depthwise" else self.groups
        stride1, stride2 = (ctx.stride, 1) if self.stride_on == "1x1" else (1, ctx.stride)
        y = ctx.conv_norm_act("1", x, mid, 1, stride=stride1)
        y = ctx.conv_norm_act("2", y, mid, 3, stride=stride2, groups=groups)
        y = ctx.conv_norm_act("3", y, out, 1, act=False, zero_init=True)
        return finish_residual(ctx, y, x, self.shortcut, "act3", self)


@functools.lru_cache(maxsize=1024)
def _mid_channels(out_channels: int, ratio: float, groups: int | None,
                  width_per_group: int | None) -> tuple[int, Fraction]:
    """torchvision's rule: width = int(planes * width_per_group / 64) * groups, exactly."""
    planes = Fraction(out_channels) * Fraction(ratio).limit_denominator(10**6)
    if groups is None or width_per_group is None:
        return int(planes), planes
    exact = planes * width_per_group / 64
    return int(exact) * groups, exact * groups

