"""An archspec block family that lives outside archspec: the pre-activation basic block.

He et al. 2016, "Identity Mappings in Deep Residual Networks": the norm and activation move in
front of each conv, and nothing follows the sum, so the shortcut is a clean identity path:

    norm -> act -> 3x3 conv (stride) -> norm -> act -> 3x3 conv, + shortcut (no activation)

This file uses only `archspec.extend`. Import it (or declare it as an `archspec.blocks` entry
point, as pyproject.toml beside it does) and `type: preact_basic` works in every command.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from archspec.extend import (BlockContext, Problem, ResidualSpec, StepRule, Tensor, flag,
                             format_path, plan_attention, plan_shortcut, register_block, register_step)


@register_block
class PreActBasicSpec(ResidualSpec):
    """Pre-activation basic block: norm -> act -> conv, twice; the sum is not activated."""

    type: Literal["preact_basic"] = "preact_basic"
    family = "pre-activation basic"

    kernel_size: int = Field(default=3, gt=0)
    """Kernel of both convs (odd: padding kernel_size // 2 keeps the feature map's size)."""

    def check(self, ctx: BlockContext) -> list[Problem]:
        problems = super().check(ctx)
        if self.kernel_size % 2 == 0:
            problems.append(Problem(
                None, format_path(ctx.path + ("kernel_size",)),
                f"expected an odd kernel size, got {self.kernel_size}",
                f"kernel_size: {self.kernel_size + 1}"))
        return problems

    def plan(self, ctx: BlockContext) -> Tensor:
        b, x, out, k = ctx.builder, ctx.x, ctx.out_channels, self.kernel_size
        y = ctx.act_layer("act1", ctx.norm_layer("norm1", x))
        y = b.conv("conv1", y, out, k, stride=ctx.stride, bias=ctx.conv_bias)
        y = ctx.act_layer("act2", ctx.norm_layer("norm2", y))
        y = b.conv("conv2", y, out, k, bias=ctx.conv_bias)
        y = plan_attention(ctx, y, self)
        if ctx.drop_path_rate > 0:
            y = b.drop_path("drop_path", y, ctx.drop_path_rate)
        return b.add("add", y, plan_shortcut(ctx, x, self.shortcut))


def _pre_activated(f) -> bool:
    """Every block of the network starts with a norm (read from the IR, not from the spec)."""
    graph = f.graph
    blocks = graph.blocks
    return bool(blocks) and all(graph.node(f"{g.id}.{g.children[0]}").role == "norm"
                                for g in blocks)


register_step(StepRule("pre_activation", "pre-activation", "pre-activation removed",
                       _pre_activated, flag, explains=("block.type", ".kernel_size")))
