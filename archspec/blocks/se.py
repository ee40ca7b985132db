"""Squeeze-and-excitation (Hu et al. 2018), an attachment to any block, not a block of its own.

SE(C): global average pool -> 1x1 conv C -> C/r (bias) -> act -> 1x1 conv C/r -> C (bias) -> sigmoid
-> scale the C channels of the input. On a residual branch it sits after the last norm and before
drop path and the addition (SE-ResNet, SE-ResNeXt; timm's `attn_layer='se'`).

Written `attention: {type: se, reduction: 16}` on any block spec whose family has a place for
an attachment, or `se: {reduction: 16}` for short (the same layers). The family calls
`attachments.plan_attention` at the end of its branch; `BlockSpecBase.check` reports an SE that
has no channels to squeeze.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ..errors import Problem, format_path
from ..kinds import register_group_kind
from ..lower.registry import torch_container
from ..primitives import make_divisible
from ..steps import presence_step, register_step
from .attachments import AttentionSpecBase, gating_container, register_attention
from .settings import Activation

register_group_kind("se", "attention", "squeeze-excite", token="SE",
                    label=("{in_channels}\u2192{conv_out}",), attachment=True)
register_step(presence_step("se", "squeeze-and-excitation", group_kind="se",
                            explains=(".se", ".attention")))

if TYPE_CHECKING:
    from ..primitives import Tensor
    from .base import BlockContext


class SqueezeExciteSpec(AttentionSpecBase):
    """Squeeze-and-excitation on the block's output channels C: C -> C/r -> C, then a sigmoid
    gate scales each channel. Written `attention: {type: se, reduction: 16}`, or for short
    `se: {reduction: 16}` (`se: {}` for the defaults)."""

    reduction: float = Field(default=16, ge=1)
    """r: the squeezed width is C / r before rounding (16 in SENet); at least 1 (SE squeezes)."""
    divisor: int = Field(default=8, ge=1)
    """Round C / r to the nearest multiple of this (halves up), and to at least this: the
    reference implementation's rule (timm `make_divisible(C / r, 8)`), which equals C / 16 at
    every standard ResNet width (256..2048). 1 keeps C / r rounded to the nearest integer."""
    activation: Activation = "relu"
    """Activation between the two 1x1 convs (ReLU in SENet, SiLU in EfficientNet)."""
    squeeze_from: Literal["gated", "block_input"] = "gated"
    """The width C that C / r is taken from: `gated` (the channels SE scales, SENet) or
    `block_input` (the block's input width, wherever SE sits: EfficientNet's `se_ratio` 0.25 of
    the input width inside the expanded block, i.e. `reduction: 4, divisor: 1`)."""
    ties: Literal["up", "even"] = "up"
    """How a C / r halfway between two multiples of `divisor` rounds: `up` (timm's
    make_divisible: SE-ResNet) or to the `even` multiple (Python's round: timm's EfficientNet
    SqueezeExcite, so an 18-channel input squeezes to round(4.5) = 4, not 5)."""

    def problems(self, channels: int, path: tuple, block_input: int | None = None
                 ) -> list[Problem]:
        """A squeeze that leaves no channel, or is wider than the `channels` it gates."""
        width, exact = squeeze_width(channels, self, block_input)
        base = _squeezed(channels, self, block_input)
        if exact < 1:
            return [Problem(None, format_path(tuple(path) + ("reduction",)),
                            f"expected a reduction of at most {base} (the block's {base} "
                            f"channels / reduction must leave at least 1 channel), got "
                            f"{self.reduction:g}",
                            f"{_working_setting(self, base)}, or remove `{path[-1]}` from "
                            f"this block")]
        if width > channels:
            unrounded = max(1, int(exact + 0.5))
            return [Problem(None, format_path(tuple(path) + ("divisor",)),
                            f"expected a squeezed width of at most the block's {channels} "
                            f"channels, got {width} ({base} / {self.reduction:g} = {exact:g} "
                            f"rounded to a multiple of {self.divisor})",
                            f"divisor: 1 (width {unrounded}), or remove `{path[-1]}` from this "
                            f"block")]
        return []

    def plan(self, ctx: "BlockContext", x: "Tensor") -> "Tensor":
        """Record the SE layers on `x` as a group `se` of kind `se` (pool, fc1, act, fc2, gate,
        then the `mul` that scales `x`) and return the scaled tensor."""
        b = ctx.builder
        width, exact = squeeze_width(x.channels, self, ctx.x.channels)
        if width != exact:
            b.note(f"squeeze-and-excitation width {_squeezed(x.channels, self, ctx.x.channels)} "
                   f"/ {self.reduction:g} = {exact:g} rounded to {width} (multiple of "
                   f"{self.divisor})")
        with b.group("se", "se", x, channels=x.channels, squeeze_channels=width,
                     reduction=self.reduction):
            s = b.global_pool("pool", x, "avg", flatten=False)
            s = b.conv("fc1", s, width, 1, bias=True)
            if self.activation != "none":
                s = b.act("act", s, self.activation)
            s = b.conv("fc2", s, x.channels, 1, bias=True)
            s = b.act("gate", s, "sigmoid")
            return b.mul("mul", x, s)


@register_attention
class SqueezeExciteAttention(SqueezeExciteSpec):
    """Squeeze-and-excitation as `attention: {type: se, ...}`: the settings of `se:`."""

    type: Literal["se"] = "se"


def squeeze_width(channels: int, se: SqueezeExciteSpec,
                  block_input: int | None = None) -> tuple[int, float]:
    """The width of the squeezed layer, and the exact C / r it is rounded from; C is `channels`
    (the gated width) or, with `squeeze_from: block_input`, the block's input width.

    timm's `make_divisible(v, divisor, round_limit=0)`: max(divisor, floor(v + divisor / 2) rounded
    down to a multiple of divisor); with `ties: even`, max(divisor, round(v / divisor) x divisor)
    (Python's round, halves to even)."""
    exact = _squeezed(channels, se, block_input) / se.reduction
    if se.ties == "even":
        return max(se.divisor, round(exact / se.divisor) * se.divisor), exact
    return make_divisible(exact, se.divisor, round_limit=0), exact


def _squeezed(channels: int, se: SqueezeExciteSpec, block_input: int | None) -> int:
    """C, the width the reduction divides."""
    return block_input if se.squeeze_from == "block_input" and block_input else channels


def _working_setting(se: SqueezeExciteSpec, channels: int) -> str:
    """A reduction (and divisor, if needed) that this many channels accept."""
    reduction = min(16, channels)
    fixed = se.model_copy(update={"reduction": reduction})
    if squeeze_width(channels, fixed)[0] <= channels:
        return f"reduction: {reduction}"
    return f"reduction: {reduction} with divisor: 1"


def as_attention(se: SqueezeExciteSpec) -> SqueezeExciteAttention:
    """The `se:` shorthand resolved: the same settings as `attention: {type: se, ...}`."""
    return SqueezeExciteAttention(**dict(se))


@torch_container("se")
def _squeeze_excite_module() -> type:
    """The torch container of an `se` group (imports torch: runs when a module is built)."""
    return gating_container(
        "SqueezeExcite", "x * gate(fc2(act(fc1(pool(x))))): Hu et al. 2018. Children as the IR "
        "lists them (pool, fc1, act, fc2, gate); the final `mul` is this forward's product.")
