"""Selective Kernel blocks (Li et al. 2019, "Selective Kernel Networks"), as timm's SK-ResNets.

sk_basic:      SK conv (stride) -> 3x3 -> norm, [SE], + shortcut, act (skresnet18/34).
sk_bottleneck: 1x1 -> norm -> act -> SK conv (stride, groups) -> 1x1 -> norm, [SE], + shortcut,
               act (skresnet50, skresnext50_32x4d).
SK conv(C -> w): one path per dilation: [its 1/P share of the C input channels ->] 3x3 conv
               (that dilation, the stride) -> norm -> act; attention: sum of the paths -> global
               avg pool -> 1x1 w -> a -> norm -> act -> 1x1 a -> P*w -> softmax across the paths;
               out = the paths weighted by their attention, summed.

The 5x5 path of the paper is a 3x3 with dilation 2 (timm's `keep_3x3`). Layers follow timm's
`SelectiveKernel` in order and shape (paths, then `attn.fc_reduce`, `attn.bn`, `attn.fc_select`),
so its checkpoints' tensors line up one for one. This file is the whole family: spec, checks,
plan, node and group kinds, torch container.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Literal

from pydantic import Field, field_validator

from ..errors import Problem, format_path
from ..kinds import register_group_kind, register_kind
from ..lower.registry import torch_container
from ..primitives import Tensor, make_divisible, nearest_divisor
from ..steps import presence_step, register_step
from .base import BlockContext, register_block
from .resnet import BottleneckSpec, ResidualSpec, finish_residual, plan_basic

register_kind("channel_slice", "slice", module=False, display="channel slice")
register_group_kind("selective_kernel", "attention", "selective kernel")
register_step(presence_step("selective_kernel", "selective kernel", group_kind="selective_kernel",
                            explains=("block.type", ".dilations", ".split_input",
                                      ".attention_")))


class _SelectiveKernelSpec(ResidualSpec):
    """The settings of the SK conv, shared by both layouts."""

    dilations: list[int] = Field(default=[1, 2], min_length=2)
    """One 3x3 path per entry, with this dilation: [1, 2] is SKNet's 3x3 and 5x5 paths (the
    5x5 as a dilated 3x3, as timm's `keep_3x3`)."""
    split_input: bool = True
    """Give each path its own 1/P share of the input channels (timm's default, fewer
    parameters); false: every path reads all of them (the paper, skresnext50_32x4d)."""
    attention_ratio: float = Field(default=1 / 16, gt=0)
    """The attention's inner width a is the SK width x this, before rounding (timm: 1/16)."""
    attention_divisor: int = Field(default=8, ge=1)
    """a is rounded to a multiple of this, and at least this (timm `make_divisible`)."""

    @field_validator("dilations")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(d < 1 for d in value):
            raise ValueError("dilations of at least 1")
        return value

    def attention_channels(self, width: int) -> int:
        return make_divisible(width * self.attention_ratio, self.attention_divisor)

    def sk_problems(self, ctx: BlockContext, in_channels: int, width: int,
                    groups: int) -> list[Problem]:
        """Widths the SK conv cannot split: the input across the paths, the groups."""
        paths = len(self.dilations)
        share = in_channels // paths if self.split_input else in_channels
        if self.split_input and in_channels % paths:
            return [Problem(None, format_path(ctx.path + ("split_input",)),
                            f"expected the SK conv's input width ({in_channels}) divisible by "
                            f"its {paths} paths, got a remainder of {in_channels % paths}",
                            "split_input: false, or another number of dilations")]
        if share % groups or width % groups:
            return [Problem(None, format_path(ctx.path + ("groups",)),
                            f"expected a divisor of each path's input ({share}) and output "
                            f"({width}) widths, got {groups}",
                            f"groups: {nearest_divisor(share, groups)}")]
        return []

    def plan_selective_kernel(self, ctx: BlockContext, name: str, x: Tensor, width: int,
                              stride: int, groups: int = 1) -> Tensor:
        """SK conv(x.channels -> width): a group of kind `selective_kernel`."""
        b, paths = ctx.builder, len(self.dilations)
        attention = self.attention_channels(width)
        c, h, w = x.shape
        with b.group(name, "selective_kernel", x, paths=paths, split_input=self.split_input,
                     channels=width, attention_channels=attention):
            outs = [self._path(ctx, p, x, width, stride, groups) for p in range(paths)]
            total = b.add("sum_paths", *outs)
            with b.group("attn", "sequential", total):
                a = b.global_pool("pool", total, "avg", flatten=False)
                a = b.conv("fc_reduce", a, attention, 1, bias=ctx.conv_bias)
                a = ctx.act_layer("act", ctx.norm_layer("bn", a))
                a = b.conv("fc_select", a, width * paths, 1, bias=False)
                a = b.radix_softmax("softmax", a, paths, 1)  # across the paths, path-major
            scaled = []
            for p in range(paths):
                weight = b.op(f"weight{p}", "channel_slice", (a,), (width, 1, 1),
                              attrs={"start": p * width, "stop": (p + 1) * width})
                scaled.append(b.mul(f"scale{p}", outs[p], weight))
            return b.add("sum", *scaled)

    def _path(self, ctx: BlockContext, p: int, x: Tensor, width: int, stride: int,
              groups: int) -> Tensor:
        b, paths = ctx.builder, len(self.dilations)
        with b.group(f"path{p}", "sequential", x):
            if self.split_input:
                share = x.channels // paths
                x = b.op("split", "channel_slice", (x,), (share,) + x.shape[1:],
                         attrs={"start": p * share, "stop": (p + 1) * share})
            return ctx.conv_norm_act(("conv", "bn", "act"), x, width, 3, stride=stride,
                                     groups=groups, dilation=self.dilations[p])


@register_block
class SelectiveKernelBasicSpec(_SelectiveKernelSpec):
    """SK-ResNet basic block (skresnet18/34): an SK conv at the stage width, then a 3x3."""

    type: Literal["sk_basic"] = "sk_basic"
    family = "Selective Kernel basic"

    def check(self, ctx: BlockContext) -> list[Problem]:
        return super().check(ctx) + self.sk_problems(ctx, ctx.x.channels, ctx.out_channels, 1)

    def plan(self, ctx: BlockContext) -> Tensor:
        return plan_basic(ctx, self, lambda x: self.plan_selective_kernel(
            ctx, "conv1", x, ctx.out_channels, ctx.stride))


@register_block
class SelectiveKernelBottleneckSpec(_SelectiveKernelSpec):
    """SK-ResNet bottleneck (skresnet50, skresnext50_32x4d): the 3x3 is an SK conv."""

    type: Literal["sk_bottleneck"] = "sk_bottleneck"
    family = "Selective Kernel bottleneck"

    bottleneck_ratio: float = Field(default=0.25, gt=0)
    """planes = out_channels x bottleneck_ratio (0.25: stage outputs 256..2048, as ResNet)."""
    groups: int = Field(default=1, ge=1)
    """Groups of each path's conv (ResNeXt cardinality: 32 in skresnext50_32x4d)."""
    width_per_group: int = Field(default=64, gt=0)
    """d: the SK width is floor(planes x d / 64) x groups, ResNeXt's rule."""

    def mid_channels(self, out_channels: int) -> tuple[int, Fraction]:
        """The SK width and its exact value before rounding down: the bottleneck's rule."""
        rule = BottleneckSpec(bottleneck_ratio=self.bottleneck_ratio, groups=self.groups,
                              width_per_group=self.width_per_group)
        return rule.mid_channels(out_channels)

    def check(self, ctx: BlockContext) -> list[Problem]:
        mid, exact = self.mid_channels(ctx.out_channels)
        if mid < 1:
            return super().check(ctx) + [Problem(
                None, format_path(ctx.path + ("width_per_group",)),
                f"expected an SK width of at least 1, got {float(exact):g}",
                "raise width_per_group, bottleneck_ratio or the stage width")]
        return super().check(ctx) + self.sk_problems(ctx, mid, mid, self.groups)

    def plan(self, ctx: BlockContext) -> Tensor:
        b, x, out = ctx.builder, ctx.x, ctx.out_channels
        mid, exact = self.mid_channels(out)
        if mid != exact:
            b.note(f"SK width {float(exact):g} rounded down to {mid}")
        y = ctx.conv_norm_act("1", x, mid, 1)
        y = self.plan_selective_kernel(ctx, "conv2", y, mid, ctx.stride, self.groups)
        y = ctx.conv_norm_act("3", y, out, 1, act=False, zero_init=True)
        return finish_residual(ctx, y, x, self.shortcut, "act3", self)


@torch_container("selective_kernel")
def _selective_kernel_module() -> type:
    """The torch container of a `selective_kernel` group (imports torch: runs when a module is
    built)."""
    import torch
    from torch import nn

    from ..lower.torch import add_children

    class SelectiveKernel(nn.Module):
        """Paths on their input shares, attention from their sum, the weighted sum out."""

        def __init__(self, group, graph):
            super().__init__()
            add_children(self, group, graph)
            self.paths: int = group.attrs["paths"]
            self.split_input: bool = group.attrs["split_input"]

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            shares = x.unflatten(1, (self.paths, -1)) if self.split_input else None
            outs = [getattr(self, f"path{p}")(x if shares is None else shares[:, p])
                    for p in range(self.paths)]
            total = outs[0]
            for out in outs[1:]:
                total = total + out
            weights = self.attn(total).unflatten(1, (self.paths, -1))
            result = outs[0] * weights[:, 0]
            for p in range(1, self.paths):
                result = result + outs[p] * weights[:, p]
            return result

        def extra_repr(self) -> str:
            return f"paths={self.paths}, split_input={self.split_input}"

    return SelectiveKernel
