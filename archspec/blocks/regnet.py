"""RegNet (Radosavovic et al. 2020, "Designing Network Design Spaces"), as pycls and timm build it.

regnet block: 1x1 -> norm -> act -> 3x3 (stride, groups of `group_width` channels) -> norm -> act
              -> [SE] -> 1x1 -> norm, + shortcut (1x1 conv + norm when the shape changes), act.
              RegNetX has no SE; RegNetY squeezes the 3x3's output to a quarter of the block's
              INPUT width (`se: {reduction: 4, divisor: 1, squeeze_from: block_input,
              ties: even}`).

The stage generator (`stages.regnet`, next to `stages.ratio` and `unit`) turns RegNet's four
numbers into stages, pycls's `generate_regnet` (timm's too):
    u_j = w0 + wa x j                    for each block j < depth      (a linear ramp)
    s_j = round(log(u_j / w0) / log(wm))                               (its step on a wm ladder)
    w_j = round(w0 x wm^s_j / 8) x 8                                   (quantised to multiples of 8)
blocks of equal w_j form a stage (its width; their count, its depth). Then each stage's width
is made compatible with its block's group width g and bottleneck ratio b (`adjust_widths_groups_
comp`): inner = int(w x b); g = min(g, inner); inner = round(inner / g) x g; w = int(inner / b).
The resolver calls `generate` (it records the resolved widths, depths and group widths in the
IR: `build` prints them, `render` draws them on each stage). This file is the whole family:
spec, checks, plan, generator, weights facts stay in archspec/weights/layouts.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Callable, Literal

from pydantic import Field

from ..errors import Location, Path, Problem, SpecError, format_path
from ..primitives import Tensor, nearest_divisor
from ..steps import StepRule, flag, register_step, toward
from .attachments import plan_attention
from .base import BlockContext, register_block
from .resnet import ResidualSpec, finish_residual
from .settings import Model


@register_block
class RegNetSpec(ResidualSpec):
    """RegNet's bottleneck (the X block; with `se`, the Y block): a grouped 3x3 whose groups
    have `group_width` channels each, the attention attachment (SE, ECA) after the 3x3, no
    expansion by default."""

    type: Literal["regnet"] = "regnet"
    family = "RegNet bottleneck"

    bottleneck_ratio: float = Field(default=1.0, gt=0)
    """b: the inner (1x1 and 3x3) width is round(out_channels x b); 1 in RegNetX and RegNetY."""
    group_width: int = Field(default=16, gt=0)
    """g: channels per group of the 3x3 conv, so groups = inner width / g (1 would make it
    depthwise). With `stages.regnet` the generator lowers it to the inner width where that is
    smaller and adjusts the stage width to a multiple of it; `build` shows each stage's value."""

    def inner_channels(self, out_channels: int) -> int:
        """The 1x1 and 3x3 width (timm: int(round(out_chs x bottle_ratio)))."""
        return int(round(out_channels * self.bottleneck_ratio))

    def attachment_channels(self, ctx: BlockContext) -> int:
        return self.inner_channels(ctx.out_channels)  # SE (or ECA) scales the 3x3's output

    def check(self, ctx: BlockContext) -> list[Problem]:
        inner = self.inner_channels(ctx.out_channels)
        path = format_path(ctx.path)
        if inner < 1:
            return [Problem(None, f"{path}.bottleneck_ratio",
                            f"expected an inner width of at least 1, got {inner} (out_channels "
                            f"{ctx.out_channels} x bottleneck_ratio {self.bottleneck_ratio:g})",
                            "raise bottleneck_ratio or the stage width")]
        if inner % self.group_width:
            return [Problem(None, f"{path}.group_width",
                            f"expected a divisor of the inner width ({inner}), got "
                            f"{self.group_width}",
                            f"group_width: {nearest_divisor(inner, self.group_width)}, or let "
                            f"`stages.regnet` make the widths compatible")]
        return super().check(ctx)

    def plan(self, ctx: BlockContext) -> Tensor:
        x, out = ctx.x, ctx.out_channels
        inner = self.inner_channels(out)
        y = ctx.conv_norm_act("1", x, inner, 1)
        y = ctx.conv_norm_act("2", y, inner, 3, stride=ctx.stride,
                              groups=inner // self.group_width)
        y = plan_attention(ctx, y, self)  # after the 3x3, before the last 1x1 (RegNetY)
        y = ctx.conv_norm_act("3", y, out, 1, act=False, zero_init=True)
        return finish_residual(ctx, y, x, self.shortcut, "act3")


# ---- the stage generator -------------------------------------------------------------------

class RegNetStagesSpec(Model):
    """RegNet's stage generator: the widths and depths of all stages from four numbers, block
    j's width growing linearly (w0 + wa x j) and then snapped to a geometric ladder (w0 x wm^s)
    and to multiples of `quantum`. Written `stages: {regnet: {w0: 48, wa: 20.71, wm: 2.65,
    depth: 27}}` instead of `widths` and `depths` (RegNetY-1.6GF)."""

    w0: int = Field(gt=0)
    """Initial width: block 0's width before quantisation; a multiple of `quantum` (pycls)."""
    wa: float = Field(ge=0)
    """Slope: block j's continuous width is w0 + wa x j."""
    wm: float = Field(gt=1)
    """Width multiplier: the continuous widths are snapped to w0 x wm^s (s a whole number);
    blocks with the same s form a stage, so consecutive stage widths differ by about wm."""
    depth: int = Field(gt=0)
    """Total number of blocks over all stages."""
    stages: int = Field(default=4, gt=0)
    """How many stages the generator must give (4 in every published RegNet); another count is
    an error, as is a stage left without blocks."""
    quantum: int = Field(default=8, gt=0)
    """Widths are rounded to the nearest multiple of this (8 in pycls and timm)."""


@dataclass(frozen=True)
class RegNetStages:
    """What the generator gives: per stage its width, depth and group width (None where the
    stage's block has no `group_width`), and the quantised width of every block."""

    widths: list[int]
    depths: list[int]
    group_widths: list[int | None]
    block_widths: list[int]

    def text(self, gen: RegNetStagesSpec) -> str:
        groups = [g for g in self.group_widths if g is not None]
        return (f"RegNet width generator (w0 {gen.w0}, wa {gen.wa:g}, wm {gen.wm:g}, depth "
                f"{gen.depth}): stage widths {_tuple(self.widths)}, depths "
                f"{_tuple(self.depths)}"
                + (f", group widths {_tuple(groups)}" if groups else ""))


def _tuple(values: list[Any]) -> str:
    return "(" + ", ".join(map(str, values)) + ")"


def block_widths(gen: RegNetStagesSpec) -> list[int]:
    """The quantised width of each of the `depth` blocks (pycls `generate_regnet`). Python's
    round, like numpy's, rounds halves to even."""
    out = []
    for j in range(gen.depth):
        continuous = gen.w0 + gen.wa * j
        step = round(math.log(continuous / gen.w0) / math.log(gen.wm))
        out.append(int(round(gen.w0 * math.pow(gen.wm, step) / gen.quantum)) * gen.quantum)
    return out


def compatible(width: int, ratio: float, group_width: int) -> tuple[int, int]:
    """A stage width and group width made compatible (pycls `adjust_widths_groups_comp`): the
    group width at most the inner width, the inner width a multiple of the group width."""
    inner = int(width * ratio)
    group_width = min(group_width, inner)
    inner = int(round(inner / group_width) * group_width)
    return int(inner / ratio), group_width


GeneratorPath = ("stages", "regnet")


def generator_problems(gen: RegNetStagesSpec, loc: Callable[[Path], Location | None]
                       ) -> list[Problem]:
    """The settings pycls asserts on (w0 a multiple of the quantum), and a quantisation that
    gives another number of stages than asked for. `loc`: where a path was written (None if
    it was not)."""
    def at(name: str, message: str, hint: str) -> Problem:
        path = GeneratorPath + (name,)
        written = [loc(GeneratorPath + (k,)) for k in (name, "depth", "wa", "wm", "w0")]
        where = next((w for w in written if w is not None), None) or loc(GeneratorPath)
        return Problem(where, format_path(path), message, hint)

    if gen.w0 % gen.quantum:
        lower = max(gen.quantum, gen.w0 // gen.quantum * gen.quantum)
        return [at("w0", f"expected a multiple of the quantum {gen.quantum}, got {gen.w0}",
                   f"w0: {lower} or {lower + gen.quantum}")]
    widths = block_widths(gen)
    depths = [len(list(run)) for _, run in groupby(widths)]
    if len(depths) != gen.stages:
        fewer = len(depths) < gen.stages
        return [at("stages", f"expected the quantised widths to give {gen.stages} stages, got "
                   f"{len(depths)}: block widths {_tuple(widths)} (stage depths "
                   f"{_tuple(depths)})",
                   ("the ramp does not climb enough wm steps: raise wa or depth, lower wm"
                    if fewer else "the ramp climbs too many wm steps: lower wa or depth, raise "
                    "wm") + f", or write `stages: {len(depths)}`")]
    return []


def generate(gen: RegNetStagesSpec, blocks: list[Any], block_paths: list[Path],
             loc: Callable[[Path], Location | None]) -> RegNetStages:
    """Stage widths, depths and group widths; `blocks` are the stages' block specs (the width
    compatibility step reads their `group_width` and `bottleneck_ratio`). SpecError if the
    settings are wrong or a stage collapses."""
    problems = generator_problems(gen, loc)
    if problems:
        raise SpecError(problems)
    per_block = block_widths(gen)
    stages = [(w, len(list(run))) for w, run in groupby(per_block)]
    widths, groups = [], []
    for (width, _), block, path in zip(stages, blocks, block_paths):
        group_width = getattr(block, "group_width", None)
        ratio = getattr(block, "bottleneck_ratio", 1.0)
        if group_width is not None:
            if int(width * ratio) < 1:
                raise SpecError([Problem(loc(path + ("bottleneck_ratio",)) or loc(path),
                                         format_path(path + ("bottleneck_ratio",)),
                                         f"expected an inner width of at least 1, got "
                                         f"{width} x {ratio:g} < 1",
                                         "raise bottleneck_ratio or w0")])
            width, group_width = compatible(width, ratio, group_width)
        widths.append(width)
        groups.append(group_width)
    return RegNetStages(widths, [d for _, d in stages], groups, per_block)


# ---- the diff's named step ---------------------------------------------------------------------

def _generator(f: Any) -> tuple[tuple[str, Any], ...] | None:
    """The generator's settings as the IR's settings table records them; None when the stages
    were written by hand."""
    table = f.graph.attrs.get("settings") or {}
    found = tuple((key.rpartition(".")[2], entry["value"]) for key, entry in table.items()
                  if key.startswith("stages.regnet."))
    return found or None


def _describe(fa: Any, fb: Any) -> str:
    def text(f: Any) -> str:
        settings = _generator(f)
        if settings is None:
            return "written by hand"
        return "generated from " + ", ".join(f"{k} {v:g}" if isinstance(v, float) else
                                             f"{k} {v}" for k, v in settings)
    return f"stage widths and depths {text(fa)} -> {text(fb)}"


def _group_widths(f: Any) -> tuple[int, ...] | None:
    """Channels per group of each RegNet stage's grouped 3x3 (its first block's); None when the
    network has no RegNet block."""
    out = []
    for stage in f.graph.stages:
        conv = next((n for n in f.graph.under(f"{stage.id}.blocks.0")
                     if n.id.endswith(".conv2") and stage.block_type == "regnet"), None)
        if conv is not None:
            out.append(conv.in_channels // conv.groups)
    return tuple(out) or None


register_step(StepRule("regnet_generator", "RegNet width generator",
                       "RegNet width generator removed", lambda f: _generator(f) is not None,
                       flag, ("stages.regnet",), _describe, subsumes=("regnet_settings",)))
register_step(StepRule("regnet_settings", "RegNet generator settings",
                       "RegNet generator settings", _generator,
                       toward(lambda s: tuple(v for _, v in s or ())), ("stages.regnet",),
                       _describe))
register_step(StepRule("group_width", "group width", "group width", _group_widths,
                       toward(lambda g: sum(g or ())), (".group_width",),
                       lambda fa, fb: f"channels per group of each RegNet stage's 3x3 "
                                      f"{_group_widths(fa) or '(none)'} -> "
                                      f"{_group_widths(fb) or '(none)'}"))
