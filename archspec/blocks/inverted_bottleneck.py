"""Inverted bottleneck (MobileNetV2, Sandler et al. 2018) and the ConvNeXt block (Liu et al. 2022).

inverted_bottleneck: 1x1 expand -> norm -> act -> kxk depthwise (stride) -> norm -> act
                     -> 1x1 project -> norm (no act), + input when stride 1 and widths match.
convnext:            7x7 depthwise -> LayerNorm -> Linear C->4C -> GELU -> Linear 4C->C
                     -> layer scale -> drop path, + input.

One plan builds both: `convnext` is the inverted bottleneck with ConvNeXt's defaults. The settings
in between (where the expansion width comes from, where the depthwise conv sits, one or every norm
and activation, an activation after the add, conv biases, 1x1 convs or channels-last Linear layers,
layer scale) are the steps of the paper's ResNet-50 -> ConvNeXt-T roadmap, so every intermediate
model is this block with a few settings changed (specs/roadmap/resnet50_to_convnext_t/).

Layer names follow timm: depthwise in the middle (MobileNetV2) `conv_pw, norm1, act1, conv_dw,
norm2, act2, conv_pwl, norm3`; depthwise first (ConvNeXt) `conv_dw, norm, act, mlp.fc1, mlp.norm1,
mlp.act, mlp.fc2, mlp.norm2`; then `layer_scale` (parameter `gamma`), `drop_path`, `add`, `act_out`.
A global response norm (`grn`, ConvNeXt V2, blocks/grn.py) is `grn` / `mlp.grn`, before the
projection.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Literal

from pydantic import Field, field_validator

from ..errors import Problem, format_path
from ..primitives import Tensor, nearest_divisor
from .base import Activation, BlockContext, BlockSpecBase, NormSpec, register_block
from .attachments import plan_attention
from .grn import GlobalResponseNormSpec, plan_grn
from .downsample import plan_shortcut


@register_block
class InvertedBottleneckSpec(BlockSpecBase):
    """MobileNetV2's inverted residual, with the knobs of the ConvNeXt modernization roadmap."""

    type: Literal["inverted_bottleneck"] = "inverted_bottleneck"
    family = "inverted bottleneck"
    supports_attention = True

    expand_ratio: float = Field(default=6, gt=0)
    """Expansion factor t: the width between the two pointwise layers is `expand_from` x t.
    With t = 1 and `expand_from: input` there is no expansion layer (MobileNetV2's first row)."""
    expand_from: Literal["input", "output"] = "input"
    """Which width the expansion multiplies: `input` (the block's input width, MobileNetV2) or
    `output` (its output width: ConvNeXt's 4 x d_out, roadmap step 5)."""
    kernel_size: int = Field(default=3, gt=0)
    """Kernel of the depthwise conv (odd, padding kernel_size // 2): 3 in MobileNetV2, 7 in
    ConvNeXt."""
    groups: int | Literal["depthwise"] = "depthwise"
    """Groups of the kxk conv: `depthwise` (one per channel) or a number that divides its width."""
    depthwise_position: Literal["middle", "first"] = "middle"
    """Where the depthwise conv sits: `middle` (expand -> depthwise -> project, MobileNetV2) or
    `first` (depthwise at the input width -> expand -> project, ConvNeXt; roadmap step 6).
    It carries the block's stride either way."""
    norms: Literal["after_every_conv", "after_depthwise"] = "after_every_conv"
    """`after_every_conv` (MobileNetV2) or a single norm `after_depthwise` (ConvNeXt; roadmap
    step 10). Shortcut projections keep their own norm either way."""
    activations: Literal["after_expand_and_depthwise", "after_expand"] = \
        "after_expand_and_depthwise"
    """`after_expand_and_depthwise` (MobileNetV2; the projection is linear) or a single one
    `after_expand`, between the two pointwise layers (ConvNeXt; roadmap step 9)."""
    activation_after_add: bool = False
    """An activation after the residual addition, as ResNet has (roadmap steps 5-8); none in
    MobileNetV2 and ConvNeXt."""
    shortcut: Literal["none", "projection", "avg_pool_projection"] = "none"
    """What a block whose shape changes (stride > 1 or new width) adds to its output: `none`
    (no residual, MobileNetV2), `projection` (strided 1x1 conv + norm, roadmap step 5) or
    `avg_pool_projection` (ResNet-D). Blocks that keep the shape always add their input."""
    layer_scale_init: float | None = Field(default=None, gt=0)
    """Per-channel learnable scale of the branch output (`layer_scale.gamma`), starting at this
    value (ConvNeXt: 1e-6). `null`: no layer scale."""
    conv_bias: Literal["unless_batch_norm", "never", "always"] = "unless_batch_norm"
    """Which convs and linear layers have a bias: `unless_batch_norm` (all but those feeding a
    batch norm, which cancels a bias: ConvNeXt, roadmap step 11), `never` (torchvision's ResNet
    convs, kept by the roadmap until BN -> LN) or `always`. A shortcut projection conv has a
    bias only with `always` or when the block has no norm (as the ConvNeXt authors' models)."""
    se_position: Literal["end", "after_depthwise"] = "end"
    """Where the attention attachment (`se` or `attention`) sits: at the `end` of the branch,
    after its last norm (as in SE-ResNet), or `after_depthwise`, on the expanded width between
    the depthwise conv's activation and the projection (EfficientNet, MobileNetV3; needs
    `depthwise_position: middle`)."""
    pointwise: Literal["conv", "linear"] = "conv"
    """The two pointwise layers as 1x1 convs (`conv`) or as Linear layers over channels-last
    tensors (`linear`, ConvNeXt's fast path: permute, norm, Linear, act, Linear, permute back).
    Same parameters and MACs; `linear` needs `depthwise_position: first` and layer norm or none."""
    grn: GlobalResponseNormSpec | None = None
    """Global response norm on the input of the projection (the last pointwise layer): in ConvNeXt
    V2, after the MLP's activation. `grn: {}` for the defaults; null (the default): none. Woo et
    al. 2023; see `archspec/blocks/grn.py`."""

    @field_validator("kernel_size")
    @classmethod
    def _odd_kernel(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("an odd kernel size (the depthwise conv pads kernel_size // 2 and "
                             "must keep the spatial size)")
        return value

    # ---- widths -----------------------------------------------------------------------------
    def expanded_channels(self, in_channels: int, out_channels: int) -> tuple[int, Fraction]:
        """The width between the pointwise layers, and its exact value before rounding."""
        base = in_channels if self.expand_from == "input" else out_channels
        exact = base * Fraction(self.expand_ratio).limit_denominator(10**6)
        return round(exact), exact

    def has_expansion(self) -> bool:
        """MobileNetV2: t = 1 means no expansion conv."""
        return not (self.expand_ratio == 1 and self.expand_from == "input")

    def spatial_width(self, in_channels: int, out_channels: int) -> int:
        """Width of the kxk conv."""
        if self.depthwise_position == "first":
            return in_channels
        return self.expanded_channels(in_channels, out_channels)[0] if self.has_expansion() \
            else in_channels

    def attachment_channels(self, ctx: BlockContext) -> int:
        """The attachment (SE, ECA) gates the output, or the depthwise conv's width with
        `se_position: after_depthwise`."""
        if self.se_position == "after_depthwise":
            return self.spatial_width(ctx.x.channels, ctx.out_channels)
        return ctx.out_channels

    def check(self, ctx: BlockContext) -> list[Problem]:
        path = format_path(ctx.path)
        d_in, d_out = ctx.x.channels, ctx.out_channels
        mid, exact = self.expanded_channels(d_in, d_out)
        problems = super().check(ctx)  # the shared settings (the attention attachment)
        if self.has_expansion() and mid < 1:
            problems.append(Problem(
                None, f"{path}.expand_ratio",
                f"expected an expansion width of at least 1, got {float(exact):g} "
                f"({self.expand_from} width {d_in if self.expand_from == 'input' else d_out} x "
                f"expand_ratio {self.expand_ratio:g})", "raise expand_ratio"))
            return problems
        width = self.spatial_width(d_in, d_out)
        if isinstance(self.groups, int) and width % self.groups:
            what = "input width" if self.depthwise_position == "first" else "expansion width"
            problems.append(Problem(
                None, f"{path}.groups",
                f"expected a divisor of the kxk conv's width ({width}, the {what} of stage "
                f"{ctx.stage} block {ctx.index}), got {self.groups}",
                f"groups: {nearest_divisor(width, self.groups)}, or groups: depthwise, or change "
                f"expand_ratio"))
        if self.attached()[1] is not None and self.se_position == "after_depthwise" \
                and self.depthwise_position != "middle":
            problems.append(Problem(
                None, f"{path}.se_position",
                "expected `depthwise_position: middle` with `se_position: after_depthwise`, got "
                f"`depthwise_position: {self.depthwise_position}`",
                "se_position: end, or depthwise_position: middle"))
        if self.pointwise == "linear":
            if self.depthwise_position != "first":
                problems.append(Problem(
                    None, f"{path}.pointwise",
                    "expected `depthwise_position: first` with `pointwise: linear`, got "
                    f"`depthwise_position: {self.depthwise_position}`",
                    "the Linear layers run channels-last after the depthwise conv; use "
                    "pointwise: conv, or depthwise_position: first"))
            if ctx.norm.type == "batch_norm":
                problems.append(Problem(
                    None, f"{path}.pointwise",
                    "expected layer_norm or none as the block's norm with `pointwise: linear` "
                    "(its norms run on channels-last tensors), got batch_norm",
                    "norm: layer_norm, or pointwise: conv"))
        return problems

    # ---- plan ------------------------------------------------------------------------------
    def plan(self, ctx: BlockContext) -> Tensor:
        b, x = ctx.builder, ctx.x
        d_in, d_out = x.channels, ctx.out_channels
        mid, exact = self.expanded_channels(d_in, d_out)
        if self.has_expansion() and mid != exact:
            b.note(f"expansion width {float(exact):g} rounded to {mid}")
        identity = ctx.stride == 1 and d_in == d_out
        residual = identity or self.shortcut != "none"
        if self.depthwise_position == "first":
            y = self._depthwise_first(ctx, x, mid, d_out, residual)
        else:
            y = self._depthwise_middle(ctx, x, mid, d_out, residual)
        # the attention attachment (SE, ECA): the branch is channels-first here, after its last
        # norm and before layer scale, drop path and the addition (SE-ResNet's place)
        if self.se_position == "end":
            y = plan_attention(ctx, y, self)
        if self.layer_scale_init is not None:
            y = b.layer_scale("layer_scale", y, self.layer_scale_init)
        if not residual:  # MobileNetV2: a block that changes shape has no shortcut
            return y
        if ctx.drop_path_rate > 0:
            y = b.drop_path("drop_path", y, ctx.drop_path_rate)
        shortcut = x if identity else plan_shortcut(ctx, x, self.shortcut,
                                                    bias=self._shortcut_bias(ctx))
        y = b.add("add", y, shortcut)
        if self.activation_after_add:
            y = ctx.act_layer("act_out", y)
        return y

    def _depthwise_middle(self, ctx: BlockContext, x: Tensor, mid: int, d_out: int,
                          residual: bool) -> Tensor:
        """expand -> depthwise (stride) -> project (MobileNetV2; roadmap step 5)."""
        every_norm = self.norms == "after_every_conv"
        y = x
        if self.has_expansion():
            y = self._pointwise(ctx, "conv_pw", y, mid, followed_by_norm=every_norm)
            if every_norm:
                y = self._norm(ctx, "norm1", y)
            y = ctx.act_layer("act1", y)
        y = self._spatial(ctx, y)
        y = self._norm(ctx, "norm2", y)
        if self.activations == "after_expand_and_depthwise":
            y = ctx.act_layer("act2", y)
        if self.se_position == "after_depthwise":  # EfficientNet: SE on the expanded width
            y = plan_attention(ctx, y, self)
        y = plan_grn(ctx, y, self.grn)
        y = self._pointwise(ctx, "conv_pwl", y, d_out, followed_by_norm=every_norm)
        if every_norm:
            y = self._norm(ctx, "norm3", y, zero_init=residual)
        return y

    def _depthwise_first(self, ctx: BlockContext, x: Tensor, mid: int, d_out: int,
                         residual: bool) -> Tensor:
        """depthwise (stride) -> expand -> project (ConvNeXt; roadmap step 6 on)."""
        b = ctx.builder
        every_norm = self.norms == "after_every_conv"
        channels_last = self.pointwise == "linear"
        y = self._spatial(ctx, x)
        if channels_last:
            y = b.permute("to_channels_last", y, "channels_last")
        y = self._norm(ctx, "norm", y, channels_last=channels_last)
        if self.activations == "after_expand_and_depthwise":
            y = ctx.act_layer("act", y)
        with b.group("mlp", "sequential", y):
            if self.has_expansion():
                y = self._pointwise(ctx, "fc1", y, mid, followed_by_norm=every_norm)
                if every_norm:
                    y = self._norm(ctx, "norm1", y, channels_last=channels_last)
                y = ctx.act_layer("act", y)
            y = plan_grn(ctx, y, self.grn)
            y = self._pointwise(ctx, "fc2", y, d_out, followed_by_norm=every_norm)
            if every_norm:
                y = self._norm(ctx, "norm2", y, zero_init=residual, channels_last=channels_last)
        if channels_last:
            y = b.permute("to_channels_first", y, "channels_first")
        return y

    # ---- layers ----------------------------------------------------------------------------
    def _bias(self, ctx: BlockContext, followed_by_norm: bool) -> bool:
        if self.conv_bias == "unless_batch_norm":
            return not (followed_by_norm and ctx.norm.type == "batch_norm")
        return self.conv_bias == "always"

    def _shortcut_bias(self, ctx: BlockContext) -> bool:
        """The projection conv is always followed by its own norm, so only `always` (or no norm
        at all) gives it a bias: the ConvNeXt authors' intermediate models keep it bias-free
        after BN -> LN (roadmap step 11: 25,836,328 parameters, not 25,837,672)."""
        if self.conv_bias == "unless_batch_norm":
            return ctx.norm.type == "none"
        return self.conv_bias == "always"

    def _spatial(self, ctx: BlockContext, x: Tensor) -> Tensor:
        """The kxk (depthwise) conv, with the block's stride."""
        width = x.channels
        groups = width if self.groups == "depthwise" else self.groups
        return ctx.builder.conv("conv_dw", x, width, self.kernel_size, stride=ctx.stride,
                                groups=groups,
                                bias=self._bias(ctx, followed_by_norm=ctx.norm.type != "none"))

    def _pointwise(self, ctx: BlockContext, name: str, x: Tensor, out: int,
                   followed_by_norm: bool) -> Tensor:
        bias = self._bias(ctx, followed_by_norm and ctx.norm.type != "none")
        if self.pointwise == "linear":
            return ctx.builder.linear(name, x, out, bias=bias)
        return ctx.builder.conv(name, x, out, 1, bias=bias)

    def _norm(self, ctx: BlockContext, name: str, x: Tensor, zero_init: bool = False,
              channels_last: bool = False) -> Tensor:
        if ctx.norm.type == "none":
            return x
        return ctx.builder.norm(name, x, ctx.norm.type, ctx.norm.resolved_eps,
                                zero_init=zero_init and ctx.zero_init_residual,
                                momentum=ctx.norm.momentum, channels_last=channels_last)


@register_block
class ConvNeXtSpec(InvertedBottleneckSpec):
    """ConvNeXt block (Liu et al. 2022): the inverted bottleneck with ConvNeXt's defaults."""

    type: Literal["convnext"] = "convnext"  # type: ignore[assignment]
    family = "ConvNeXt"

    norm: NormSpec | None = NormSpec(type="layer_norm")
    """Norm inside the block. Default: layer norm over the channels, eps 1e-6 (ConvNeXt)."""
    activation: Activation | None = "gelu"
    """Activation inside the block. Default: GELU (ConvNeXt)."""
    expand_ratio: float = Field(default=4, gt=0)
    """Width of the MLP: `expand_from` (default the output width) x 4."""
    expand_from: Literal["input", "output"] = "output"
    """Which width the expansion multiplies: `output` (C -> 4C) or `input`."""
    kernel_size: int = Field(default=7, gt=0)
    """Kernel of the depthwise conv (odd, padding kernel_size // 2): 7 in ConvNeXt."""
    depthwise_position: Literal["middle", "first"] = "first"
    """`first` (ConvNeXt: depthwise conv, then the MLP) or `middle`."""
    norms: Literal["after_every_conv", "after_depthwise"] = "after_depthwise"
    """A single norm `after_depthwise` (ConvNeXt) or `after_every_conv`."""
    activations: Literal["after_expand_and_depthwise", "after_expand"] = "after_expand"
    """A single activation `after_expand` (ConvNeXt) or `after_expand_and_depthwise`."""
    shortcut: Literal["none", "projection", "avg_pool_projection"] = "projection"
    """When a block changes shape (in-block downsampling, no separate downsampling layers):
    `projection` (default), `avg_pool_projection` or `none`."""
    layer_scale_init: float | None = Field(default=1e-6, gt=0)
    """Initial value of the per-channel layer scale gamma (ConvNeXt: 1e-6); `null`: none."""
    pointwise: Literal["conv", "linear"] = "linear"
    """`linear` (channels-last Linear layers, ConvNeXt's fast path) or `conv` (1x1 convs and a
    channels-first layer norm: timm's `conv_mlp`, as convnext_atto uses)."""

