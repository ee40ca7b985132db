"""ResNeSt split-attention block (Zhang et al. 2020, "ResNeSt: Split-Attention Networks").

splat: 1x1 -> norm -> act -> [avd pool] -> SplAt 3x3 (radix R, groups K) -> [avd pool] -> 1x1
       -> norm, [SE], + shortcut, act.
SplAt(w): conv kxk -> w*R (groups K*R) -> bn0 -> act0; sum the R splits; global avg pool;
          fc1 w -> a (groups K) -> bn1 -> act1 -> fc2 a -> w*R (groups K); r-softmax; attention-
          weighted sum of the splits (w channels).

Channel layout as in the reference implementation (zhanghang1989/ResNeSt, timm `SplitAttn`), so
published checkpoints load unchanged: the conv's w*R outputs are split-major (channel r*w + c is
channel c of split r); the fc2 logits are group-major, then split ((K, R, w/K)); the r-softmax
turns them into split-major weights. Sub-layer names are the reference's (conv, bn0, act0, fc1,
bn1, act1, fc2, rsoftmax).
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Literal

from pydantic import Field

from ..errors import Problem, format_path
from ..kinds import register_group_kind
from ..lower.registry import torch_container
from ..primitives import Tensor, make_divisible, nearest_divisor
from ..steps import presence_step, register_step
from .base import BlockContext, register_block
from .downsample import Shortcut
from .resnet import BottleneckSpec, ResidualSpec, finish_residual

register_group_kind("splat", "attention", "split attention", token="SplAt",
                    label=("{kernel}", "{channels}", "r{radix}", "g{groups}"))
# its conv is radix times wider: that is the attention, not a width change
register_step(presence_step("split_attention", "split attention", group_kind="splat",
                            explains=("block.type", ".radix", ".avd"), subsumes=("width",)))


@register_block
class SplatSpec(ResidualSpec):
    """ResNeSt block: a bottleneck whose 3x3 is a split-attention conv. Defaults are ResNeSt-50's
    "2s1x64d" (radix 2, 1 group of width 64) with avd after the SplAt and the avg-pool shortcut."""

    type: Literal["splat"] = "splat"
    family = "ResNeSt split attention"

    shortcut: Shortcut = "avg_pool_projection"
    """How the shortcut changes shape: `avg_pool_projection` (ResNet-D, as every ResNeSt) or
    `projection` (strided 1x1 conv + norm)."""
    bottleneck_ratio: float = Field(default=0.25, gt=0)
    """planes = out_channels x bottleneck_ratio (0.25: stage outputs 256..2048, as ResNet)."""
    radix: int = Field(default=2, ge=1)
    """Splits per cardinal group (R, at least 1): the SplAt conv has R x the width. 1 makes the
    attention a sigmoid gate (SE-like); ResNeSt-50 uses 2."""
    groups: int = Field(default=1, ge=1)
    """K: cardinality, the cardinal groups of the SplAt conv and of its attention convs."""
    width_per_group: int = Field(default=64, gt=0)
    """d ("base width"): the SplAt width is floor(planes x d / 64) x groups, ResNeXt's rule."""
    avd: bool = True
    """In a strided block, keep the SplAt conv at stride 1 and downsample with a 3x3 average
    pool (stride = the block's, padding 1) instead. No effect in blocks of stride 1."""
    avd_first: bool = False
    """Put the avd pool before the SplAt conv (the fast variants 1s4x24d and 4s2x40d) rather
    than after it (ResNeSt-50/101). Needs `avd: true`."""
    attention_ratio: float = Field(default=0.25, gt=0)
    """The attention's inner width a is width x radix x attention_ratio before rounding."""
    attention_min_channels: int = Field(default=32, ge=1)
    """a is at least this (32 in ResNeSt)."""
    attention_divisor: int = Field(default=8, ge=1)
    """a is rounded to the nearest multiple of this (timm `make_divisible`: halves up, and up
    one more step if rounding lost over 10%)."""

    def mid_channels(self, out_channels: int) -> tuple[int, Fraction]:
        """The SplAt width w and its exact value before rounding down: the bottleneck's rule."""
        rule = BottleneckSpec(bottleneck_ratio=self.bottleneck_ratio, groups=self.groups,
                              width_per_group=self.width_per_group)
        return rule.mid_channels(out_channels)

    def attention_channels(self, width: int) -> int:
        """a = max(width x radix x ratio, min) rounded to a multiple of the divisor, exactly as
        timm's `make_divisible(v, divisor, min_value)` with its 10% round-down limit."""
        return make_divisible(width * self.radix * self.attention_ratio,
                              self.attention_divisor, self.attention_min_channels)

    def check(self, ctx: BlockContext) -> list[Problem]:
        return super().check(ctx) + self._check_widths(ctx)

    def _check_widths(self, ctx: BlockContext) -> list[Problem]:
        path = ctx.path
        mid, exact = self.mid_channels(ctx.out_channels)
        problems = []
        if self.avd_first and not self.avd:
            problems.append(Problem(None, format_path(path + ("avd_first",)),
                                    "expected `avd: true` with `avd_first: true`, got avd false",
                                    "set `avd: true`, or remove `avd_first`"))
        if mid < 1:
            problems.append(Problem(None, format_path(path + ("width_per_group",)),
                                    f"expected a split-attention width of at least 1, got "
                                    f"{float(exact):g} (planes {ctx.out_channels} x "
                                    f"{self.bottleneck_ratio} x {self.width_per_group} / 64)",
                                    "raise width_per_group, bottleneck_ratio or the stage width"))
            return problems
        splits = self.groups * self.radix
        if mid % splits:
            problems.append(Problem(
                None, format_path(path + ("radix",)),
                f"expected the split-attention width ({mid}) divisible by groups x radix "
                f"({self.groups} x {self.radix} = {splits}), got a remainder of {mid % splits}",
                f"radix: {nearest_divisor(mid // self.groups, self.radix)}, or change "
                f"width_per_group so that floor(planes x width_per_group / 64) is a multiple "
                f"of {self.radix}"))
            return problems
        attention = self.attention_channels(mid)
        if attention % self.groups:
            # Both candidates of a (the minimum and the rounded value) multiples of the groups:
            step = math.lcm(self.attention_divisor, self.groups)
            least = -(-self.attention_min_channels // step) * step
            problems.append(Problem(
                None, format_path(path + ("groups",)),
                f"expected the attention width ({attention}) divisible by groups, got "
                f"groups {self.groups}",
                f"attention_divisor: {step} with attention_min_channels: {least}, or another "
                f"groups"))
        return problems

    def plan(self, ctx: BlockContext) -> Tensor:
        b, x, out = ctx.builder, ctx.x, ctx.out_channels
        mid, exact = self.mid_channels(out)
        if mid != exact:
            b.note(f"split-attention width {float(exact):g} rounded down to {mid}")
        avd = self.avd and ctx.stride > 1
        y = ctx.conv_norm_act("1", x, mid, 1)
        if avd and self.avd_first:
            y = b.avg_pool("avd_first", y, kernel_size=3, stride=ctx.stride, padding=1)
        y = self.plan_split_attention(ctx, "conv2", y, mid, 1 if avd else ctx.stride)
        if avd and not self.avd_first:
            y = b.avg_pool("avd_last", y, kernel_size=3, stride=ctx.stride, padding=1)
        y = ctx.conv_norm_act("3", y, out, 1, act=False, zero_init=True)
        return finish_residual(ctx, y, x, self.shortcut, "act3", self)

    def plan_split_attention(self, ctx: BlockContext, name: str, x: Tensor, width: int,
                             stride: int, kernel_size: int = 3) -> Tensor:
        """SplAt(x.channels -> width): a group of kind `splat` whose torch container wires the
        split sum and the weighted sum (`_split_attention_module` below)."""
        b, radix, groups = ctx.builder, self.radix, self.groups
        attention = self.attention_channels(width)
        with b.group(name, "splat", x, fused_paths=radix, radix=radix, groups=groups,
                     channels=width, attention_channels=attention):
            y = b.conv("conv", x, width * radix, kernel_size, stride=stride,
                       groups=groups * radix, bias=ctx.conv_bias)
            y = ctx.act_layer("act0", ctx.norm_layer("bn0", y))
            gap = b.split_sum("sum_splits", y, radix) if radix > 1 else y
            gap = b.global_pool("pool", gap, "avg", flatten=False)
            gap = b.conv("fc1", gap, attention, 1, groups=groups, bias=True)
            gap = ctx.act_layer("act1", ctx.norm_layer("bn1", gap))
            logits = b.conv("fc2", gap, width * radix, 1, groups=groups, bias=True)
            weights = b.radix_softmax("rsoftmax", logits, radix, groups)
            y = b.mul("scale", y, weights)
            if radix > 1:
                y = b.split_sum("sum_weighted", y, radix)
        return y


@torch_container("splat")
def _split_attention_module() -> type:
    """The torch container of a `splat` group (imports torch: runs when a module is built)."""
    import torch
    from torch import nn

    from ..lower.torch import add_children, module_children

    class SplitAttention(nn.Module):
        """ResNeSt's SplAt (Zhang et al. 2020), laid out like the reference `SplitAttn`.

        features = act0(bn0(conv(x)))          (N, R*w, H, W), split-major
        attention = rsoftmax(fc2(act1(bn1(fc1(pool(sum of the R splits))))))  (N, R*w, 1, 1)
        out = sum over r of split_r * attention_r                             (N, w, H, W)
        With radix 1 there is nothing to sum: out = features * sigmoid(...).
        """

        def __init__(self, group, graph):
            super().__init__()
            add_children(self, group, graph)
            self.radix: int = group.attrs["radix"]
            children = group.children
            pool, scale = children.index("pool"), children.index("scale")
            self._features = module_children(group, graph, children[:pool])
            self._attention = module_children(group, graph, children[pool:scale])

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

    return SplitAttention
