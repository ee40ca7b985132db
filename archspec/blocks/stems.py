"""Stems: the layers before the first stage.

classic:  kxk conv, stride 2 -> norm -> act -> 3x3 max-pool, stride 2 (ResNet).
deep:     three 3x3 convs (w, w, 2w), the first with stride 2, each -> norm -> act; max-pool (ResNet-C).
patchify: kxk conv with stride k (with bias) -> optional norm (ConvNeXt).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from ..primitives import Builder, Tensor
from .settings import Activation, Model, NormSpec

Pool = Literal["max", "none"]


@dataclass(frozen=True)
class StemContext:
    builder: Builder
    x: Tensor
    norm: NormSpec
    activation: str

    def norm_act(self, x: Tensor, index: str, with_act: bool = True) -> Tensor:
        b = self.builder
        if self.norm.type != "none":
            x = b.norm(f"norm{index}", x, self.norm.type, self.norm.resolved_eps,
                       momentum=self.norm.momentum)
        if with_act and self.activation != "none":
            x = b.act(f"act{index}", x, self.activation)
        return x


class _StemBase(Model):
    norm: NormSpec | None = None
    """Norm after each conv. Default: the network's `norm`."""
    activation: Activation | None = None
    """Activation after each norm. Default: the network's `activation`."""

    def _pool(self, ctx: StemContext, x: Tensor, pool: Pool) -> Tensor:
        if pool == "max":
            x = ctx.builder.max_pool("pool", x, kernel_size=3, stride=2, padding=1)
        return x


class ClassicStem(_StemBase):
    """One large strided conv, then a max-pool: 224 -> 56 (ResNet)."""

    width_settings: ClassVar[tuple[str, ...]] = ("out_channels",)

    type: Literal["classic"] = "classic"
    out_channels: int = Field(default=64, gt=0)
    """Width of the conv."""
    kernel_size: int = Field(default=7, gt=0)
    """Kernel of the conv (padding (kernel_size - 1) // 2: an odd kernel keeps the size)."""
    stride: int = Field(default=2, gt=0)
    """Stride of the conv."""
    pool: Pool = "max"
    """`max`: 3x3 max-pool with stride 2 after the conv; `none`: no pool."""

    def plan(self, ctx: StemContext) -> Tensor:
        x = ctx.builder.conv("conv1", ctx.x, self.out_channels, self.kernel_size,
                             stride=self.stride, bias=ctx.norm.type == "none")
        return self._pool(ctx, ctx.norm_act(x, "1"), self.pool)


class DeepStem(_StemBase):
    """ResNet-C: a stack of 3x3 convs replacing the 7x7, then the max-pool."""

    width_settings: ClassVar[tuple[str, ...]] = ("widths",)

    type: Literal["deep"] = "deep"
    widths: list[Annotated[int, Field(gt=0)]] = Field(default=[32, 32, 64], min_length=1)
    """Width of each 3x3 conv; the first has stride 2. ResNet-50-C/D: [32, 32, 64]."""
    pool: Pool = "max"
    """`max`: 3x3 max-pool with stride 2 after the convs; `none`: no pool."""

    def plan(self, ctx: StemContext) -> Tensor:
        x = ctx.x
        for i, width in enumerate(self.widths, start=1):
            x = ctx.builder.conv(f"conv{i}", x, width, 3, stride=2 if i == 1 else 1,
                                 bias=ctx.norm.type == "none")
            x = ctx.norm_act(x, str(i))
        return self._pool(ctx, x, self.pool)


class PatchifyStem(_StemBase):
    """Non-overlapping patches: a kxk conv with stride k (ConvNeXt, ViT)."""

    width_settings: ClassVar[tuple[str, ...]] = ("out_channels",)

    type: Literal["patchify"] = "patchify"
    out_channels: int = Field(default=96, gt=0)
    """Width of the conv."""
    patch_size: int = Field(default=4, gt=0)
    """Kernel and stride of the conv."""
    activation: Activation | None = "none"
    """Activation after the norm. Default `none`, as in ConvNeXt."""

    def plan(self, ctx: StemContext) -> Tensor:
        x = ctx.builder.conv("conv", ctx.x, self.out_channels, self.patch_size,
                             stride=self.patch_size, padding=0, bias=True)
        b = ctx.builder
        if ctx.norm.type != "none":
            x = b.norm("norm", x, ctx.norm.type, ctx.norm.resolved_eps, momentum=ctx.norm.momentum)
        if ctx.activation != "none":
            x = b.act("act", x, ctx.activation)
        return x


STEMS = {cls.model_fields["type"].default: cls for cls in (ClassicStem, DeepStem, PatchifyStem)}
