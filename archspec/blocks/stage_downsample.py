"""How a stage changes resolution and width: inside its first block, or with a separate layer.

in_block: the first block of the stage takes the stride and changes the width (ResNet, MobileNetV2).
layer:    norm -> kxk conv, stride s (with bias) before the stage's blocks, which then keep the
          shape (ConvNeXt: LayerNorm -> 2x2 conv, stride 2, before stages 2-4).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..primitives import Builder, Tensor
from .settings import Model, NormSpec


class InBlockDownsample(Model):
    """The first block of each stage downsamples (its stride) and changes the width."""

    type: Literal["in_block"] = "in_block"


class LayerDownsample(Model):
    """A separate downsampling layer before each stage that changes stride or width."""

    type: Literal["layer"] = "layer"
    kernel_size: int = Field(default=2, gt=0)
    """Kernel of the conv (padding (kernel_size - 1) // 2); its stride is the stage's stride.
    ConvNeXt: 2 (non-overlapping 2x2 patches with stride 2)."""
    norm: NormSpec | None = None
    """Norm before the conv. Default: the network's `norm` (ConvNeXt: layer_norm)."""
    bias: bool = True
    """Whether the conv has a bias (ConvNeXt: yes)."""

    def plan(self, b: Builder, x: Tensor, out_channels: int, stride: int,
             norm: NormSpec) -> Tensor:
        """`downsample.0` norm, `downsample.1` conv: timm's ConvNeXt module names."""
        with b.group("downsample", "sequential", x, family="downsampling layer"):
            layer = 0
            if norm.type != "none":
                x = b.norm(str(layer), x, norm.type, norm.resolved_eps, momentum=norm.momentum)
                layer += 1
            x = b.conv(str(layer), x, out_channels, self.kernel_size, stride=stride,
                       bias=self.bias)
        return x


#: type tag -> spec class, for `stages.downsample`.
DOWNSAMPLES = {cls.model_fields["type"].default: cls
               for cls in (InBlockDownsample, LayerDownsample)}
