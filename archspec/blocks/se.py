"""Squeeze-and-excitation (Hu et al. 2018), an attachment to any block, not a block of its own.

SE(C): global average pool -> 1x1 conv C -> C/r (bias) -> act -> 1x1 conv C/r -> C (bias) -> sigmoid
-> scale the C channels of the input. On a residual branch it sits after the last norm and before
drop path and the addition (SE-ResNet, SE-ResNeXt; timm's `attn_layer='se'`).

Written `se: {reduction: 16}` on any block spec. A family calls `plan_se(ctx, y, spec.se)` at the
end of its branch; `BlockSpecBase.check` reports an SE that has no channels to squeeze.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from typing import Literal

from pydantic import Field

from ..errors import Location, Problem, SpecError, format_path
from ..kinds import register_group_kind
from ..lower.registry import torch_container
from ..primitives import make_divisible
from ..steps import presence_step, register_step
from .settings import Activation, Model

register_group_kind("se", "attention", "squeeze-excite", token="SE",
                    label=("{in_channels}\u2192{conv_out}",), attachment=True)
register_step(presence_step("se", "squeeze-and-excitation", group_kind="se", explains=(".se",)))

if TYPE_CHECKING:
    from ..primitives import Tensor
    from .base import BlockContext


class SqueezeExciteSpec(Model):
    """Squeeze-and-excitation on the block's output channels C: C -> C/r -> C, then a sigmoid
    gate scales each channel. Written `se: {reduction: 16}` (or `se: {}` for the defaults)."""

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


def squeeze_width(channels: int, se: SqueezeExciteSpec,
                  block_input: int | None = None) -> tuple[int, float]:
    """The width of the squeezed layer, and the exact C / r it is rounded from; C is `channels`
    (the gated width) or, with `squeeze_from: block_input`, the block's input width.

    timm's `make_divisible(v, divisor, round_limit=0)`: max(divisor, floor(v + divisor / 2) rounded
    down to a multiple of divisor)."""
    exact = _squeezed(channels, se, block_input) / se.reduction
    return make_divisible(exact, se.divisor, round_limit=0), exact


def _squeezed(channels: int, se: SqueezeExciteSpec, block_input: int | None) -> int:
    """C, the width the reduction divides."""
    return block_input if se.squeeze_from == "block_input" and block_input else channels


def se_problems(se: SqueezeExciteSpec | None, channels: int, path: tuple,
                block_input: int | None = None) -> list[Problem]:
    """Problems of an SE attachment on `channels` channels (none when `se` is absent)."""
    if se is None:
        return []
    width, exact = squeeze_width(channels, se, block_input)
    where = format_path(tuple(path) + ("se", "reduction"))
    base = _squeezed(channels, se, block_input)
    if exact < 1:
        return [Problem(None, where,
                        f"expected a reduction of at most {base} (the block's {base} "
                        f"channels / reduction must leave at least 1 channel), got "
                        f"{se.reduction:g}",
                        f"{_working_setting(se, base)}, or remove `se` from this block")]
    if width > channels:
        unrounded = max(1, int(exact + 0.5))
        return [Problem(None, format_path(tuple(path) + ("se", "divisor")),
                        f"expected a squeezed width of at most the block's {channels} channels, "
                        f"got {width} ({base} / {se.reduction:g} = {exact:g} rounded to a "
                        f"multiple of {se.divisor})",
                        f"divisor: 1 (width {unrounded}), or remove `se` from this block")]
    return []


def _working_setting(se: SqueezeExciteSpec, channels: int) -> str:
    """A reduction (and divisor, if needed) that this many channels accept."""
    reduction = min(16, channels)
    fixed = se.model_copy(update={"reduction": reduction})
    if squeeze_width(channels, fixed)[0] <= channels:
        return f"reduction: {reduction}"
    return f"reduction: {reduction} with divisor: 1"


def plan_se(ctx: "BlockContext", x: "Tensor", se: SqueezeExciteSpec | None,
            name: str = "se") -> "Tensor":
    """Record the SE layers on `x` as a group of kind `se` (pool, fc1, act, fc2, gate, then the
    `mul` that scales `x`) and return the scaled tensor; `x` itself when `se` is None.

    Call it at the end of a residual branch, after the last norm and before drop path."""
    if se is None:
        return x
    b = ctx.builder
    problems = se_problems(se, x.channels, ctx.path, ctx.x.channels)
    if problems:  # a family whose `check` skipped `super().check`: still a located user error
        raise SpecError([Problem(_location(b.source), p.path, p.message, p.hint)
                         for p in problems])
    width, exact = squeeze_width(x.channels, se, ctx.x.channels)
    if width != exact:
        b.note(f"squeeze-and-excitation width {_squeezed(x.channels, se, ctx.x.channels)} / "
               f"{se.reduction:g} = {exact:g} "
               f"rounded to {width} (multiple of {se.divisor})")
    with b.group(name, "se", x, channels=x.channels, squeeze_channels=width,
                 reduction=se.reduction):
        s = b.global_pool("pool", x, "avg", flatten=False)
        s = b.conv("fc1", s, width, 1, bias=True)
        if se.activation != "none":
            s = b.act("act", s, se.activation)
        s = b.conv("fc2", s, x.channels, 1, bias=True)
        s = b.act("gate", s, "sigmoid")
        return b.mul("mul", x, s)


def _location(source: str | None) -> Location | None:
    """Builder.source ('file:line:col') back into a Location."""
    if not source:
        return None
    parts = source.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return Location(parts[0], int(parts[1]), int(parts[2]))
    return Location(source)


@torch_container("se")
def _squeeze_excite_module() -> type:
    """The torch container of an `se` group (imports torch: runs when a module is built)."""
    import torch
    from torch import nn

    from ..lower.torch import add_children, module_children

    class SqueezeExcite(nn.Module):
        """x * gate(fc2(act(fc1(pool(x))))): Hu et al. 2018. Children as the IR lists them
        (pool, fc1, act, fc2, gate); the final `mul` is this forward's product."""

        def __init__(self, group, graph):
            super().__init__()
            add_children(self, group, graph)
            self._squeeze = module_children(group, graph, group.children)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            scale = x
            for name in self._squeeze:
                scale = getattr(self, name)(scale)
            return x * scale

    return SqueezeExcite
