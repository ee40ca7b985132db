"""Efficient Channel Attention (Wang et al. 2020, "ECA-Net"), an attachment like SE.

ECA(C): global average pool -> a 1-D convolution of kernel k across the C pooled channels (no
bias, zero padding (k - 1) / 2, one weight vector shared by every channel) -> sigmoid -> scale
the C channels of the input. No squeeze: each channel's gate sees its k neighbours.

The kernel adapts to the width (the paper's eq. 12, as timm's `EcaModule` computes it): with
t = int(|log2(C) + b| / gamma), k = t if t is odd else t + 1, and at least 3 (gamma 2, b 1:
k = 5 at C = 256..1024, 7 at 2048). Written `attention: {type: eca}` on any block whose family
has a place for an attachment (ECA-ResNets: after the last norm of the branch, where SE sits;
timm's `attn_layer='eca'`). This file is the whole attachment: spec, checks, plan, node and
group kinds, torch layer and container.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from ..errors import Problem, format_path
from ..kinds import register_group_kind, register_kind
from ..lower.registry import torch_container, torch_layer
from ..steps import presence_step, register_step
from .attachments import AttentionSpecBase, gating_container, register_attention

# The 1-D convolution across the channels of a pooled (C, 1, 1) tensor: weight (1, 1, k).
register_kind("channel_conv", "conv", display="channel conv")
register_group_kind("eca", "attention", "ECA", token="ECA", label=("k={kernel_size}",),
                    attachment=True)
register_step(presence_step("eca", "ECA attention", group_kind="eca", explains=(".attention",)))

if TYPE_CHECKING:
    from ..primitives import Builder, Tensor
    from .base import BlockContext


def adaptive_kernel(channels: int, gamma: float = 2, beta: float = 1) -> int:
    """ECA-Net's kernel for C channels: the odd number nearest above |log2(C) + b| / gamma,
    at least 3 (timm `EcaModule`: t = int(|log2 C + b| / gamma); t if odd, else t + 1)."""
    t = int(abs(math.log2(channels) + beta) / gamma)
    return max(t if t % 2 else t + 1, 3)


@register_attention
class EcaSpec(AttentionSpecBase):
    """Efficient channel attention on the block's output channels C: a k-tap 1-D conv across
    the pooled channels, then a sigmoid gate scales each channel. Written
    `attention: {type: eca}` (the adaptive kernel) or `attention: {type: eca, kernel_size: 3}`."""

    type: Literal["eca"] = "eca"
    kernel_size: int | Literal["adaptive"] = "adaptive"
    """k, the taps of the 1-D conv across channels: odd, at most the channel count, or
    `adaptive` (the paper's k from C with `gamma` and `beta`: 5 at 256..1024 channels, 7 at
    2048)."""
    gamma: float = Field(default=2, gt=0)
    """gamma of the adaptive kernel, k ~ (log2 C + beta) / gamma (2 in ECA-Net)."""
    beta: float = 1
    """b of the adaptive kernel, k ~ (log2 C + beta) / gamma (1 in ECA-Net)."""

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, value: int | str) -> int | str:
        if isinstance(value, int) and (value < 1 or value % 2 == 0):
            raise ValueError("an odd kernel size such as 3 or 5 (the 1-D conv is centred on "
                             "each channel), or `adaptive`")
        return value

    def kernel(self, channels: int) -> int:
        """k at this many channels."""
        if self.kernel_size == "adaptive":
            return adaptive_kernel(channels, self.gamma, self.beta)
        return self.kernel_size

    def problems(self, channels: int, path: tuple, block_input: int | None = None
                 ) -> list[Problem]:
        """A kernel with more taps than there are channels to look across."""
        k = self.kernel(channels)
        if k <= channels:
            return []
        fixed = channels if channels % 2 else channels - 1
        how = (f"the adaptive kernel at {channels} channels (gamma {self.gamma:g}, beta "
               f"{self.beta:g})" if self.kernel_size == "adaptive" else "kernel_size")
        return [Problem(None, format_path(tuple(path) + ("kernel_size",)),
                        f"expected a kernel of at most the block's {channels} channels, got {k} "
                        f"({how})",
                        f"kernel_size: {max(fixed, 1)}, or remove `{path[-1]}` from this block")]

    def plan(self, ctx: "BlockContext", x: "Tensor") -> "Tensor":
        """Record the ECA layers on `x` as a group `eca` of kind `eca` (pool, conv, gate, then
        the `mul` that scales `x`) and return the scaled tensor."""
        b, c = ctx.builder, x.channels
        k = self.kernel(c)
        if self.kernel_size == "adaptive":
            self._note_kernel(b, c, k)
        with b.group("eca", "eca", x, channels=c, kernel_size=k):
            s = b.global_pool("pool", x, "avg", flatten=False)
            s = b.op("conv", "channel_conv", (s,), s.shape, kernel_size=k, stride=1,
                     padding=(k - 1) // 2, bias=False, param_shapes=(("weight", (1, 1, k)),),
                     macs=c * k)
            s = b.act("gate", s, "sigmoid")
            return b.mul("mul", x, s)


    def _note_kernel(self, b: "Builder", channels: int, k: int) -> None:
        """Tell the user the kernel the adaptive rule chose, once per width (build, validate)."""
        t = int(abs(math.log2(channels) + self.beta) / self.gamma)
        odd = t if t % 2 else t + 1
        text = (f"ECA kernel at {channels} channels: adaptive k = {k} (int(|log2 {channels} + "
                f"{self.beta:g}| / {self.gamma:g}) = {t}{', made odd' if odd != t else ''}"
                f"{', at least 3' if odd < 3 else ''})")
        if not any(note.endswith(text) for note in b.notes):
            b.note(text)


@torch_layer("channel_conv")
def _channel_conv_layer():
    """The torch layer of a `channel_conv` node (imports torch: runs when a module is built)."""
    import torch
    from torch import nn

    class ChannelConv(nn.Conv1d):
        """Conv1d(1, 1, k) across the channels of an (N, C, 1, 1) tensor; the same shape out."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x.view(x.shape[0], 1, -1)).view(x.shape)

    return lambda node: ChannelConv(1, 1, node.kernel_size, padding=node.padding, bias=False)


@torch_container("eca")
def _eca_module() -> type:
    """The torch container of an `eca` group (imports torch: runs when a module is built)."""
    return gating_container(
        "EfficientChannelAttention", "x * sigmoid(conv1d(mean(x))): Wang et al. 2020. Children "
        "as the IR lists them (pool, conv, gate); the final `mul` is this forward's product.")
