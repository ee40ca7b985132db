"""The block registry, the settings every block family accepts, and the context a block is
planned in."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Callable, ClassVar, Union

from pydantic import Field, ValidationInfo, field_validator

from ..errors import Problem
from . import eca, se  # noqa: F401  (register the attachments before the union is built)
from .attachments import ATTENTIONS, AttentionSpecBase
from .se import SqueezeExciteSpec, as_attention
from .settings import Activation, Model, NormSpec, field_docs

if TYPE_CHECKING:
    from ..primitives import Builder, Tensor

#: `attention:`: one of the registered attachments, chosen by its `type`.
AttentionSpec = Annotated[Union[tuple(ATTENTIONS.values())],  # type: ignore
                          Field(discriminator="type")]

__all__ = ["Activation", "AttentionSpec", "BLOCKS", "BlockContext", "BlockSpecBase", "Model",
           "NormSpec", "field_docs", "register_block"]


class BlockSpecBase(Model):
    """Settings every block family accepts."""

    type: str
    norm: NormSpec | None = None
    """Norm inside the block. Default: the network's `norm`."""
    activation: Activation | None = None
    """Activation inside the block. Default: the network's `activation`."""
    se: SqueezeExciteSpec | None = None
    """Squeeze-and-excitation on the block's branch, for short: `se: {reduction: 16}` (or
    `se: {}` for the defaults) is `attention: {type: se, reduction: 16}`. Hu et al. 2018."""
    attention: AttentionSpec | None = None
    """The attention attachment on the block's branch, by `type`: `se`
    (squeeze-and-excitation: `{type: se, reduction: 16}`) or `eca` (efficient channel
    attention: `{type: eca}`, `{type: eca, kernel_size: 3}`); null (the default) leaves it
    out. One per block: not together with `se:`."""

    #: Human name of the family, for summaries and diagrams.
    family: ClassVar[str] = ""
    #: Whether `plan` places the attention attachment (`se` or `attention`, by calling
    #: `blocks.attachments.plan_attention`). Families that do not reject both with a located
    #: error instead of ignoring them.
    supports_attention: ClassVar[bool] = False

    @field_validator("se", "attention")
    @classmethod
    def _attention_placed(cls, value: Any, info: ValidationInfo) -> Any:
        # At validation, so that no family (whatever its `check`) can silently drop the setting.
        if value is not None and not cls.supports_attention:
            tag = cls.model_fields["type"].default
            placing = ", ".join(sorted(t for t, c in BLOCKS.items() if c.supports_attention))
            raise ValueError(f"no `{info.field_name}` on a '{tag}' block (this family does not "
                             f"place an attention attachment; {placing} do)")
        if value is not None and info.field_name == "attention" and info.data.get("se") is not None:
            raise ValueError("`attention` or `se` (short for `attention: {type: se}`), not both: "
                             "one attachment per block (`se: null` drops an inherited `se`)")
        return value

    def attached(self) -> tuple[str, AttentionSpecBase | None]:
        """The block's attention attachment and the setting it is written as (`attention`, or
        `se` resolved into the same SE attachment as `attention: {type: se}`)."""
        if self.se is not None:
            return "se", as_attention(self.se)
        return "attention", self.attention

    def plan(self, ctx: "BlockContext") -> "Tensor":
        """Record this block's layers with `ctx.builder` and return its output tensor."""
        raise NotImplementedError

    def check(self, ctx: "BlockContext") -> list[Problem]:
        """Problems this block would have with these channels and stride. Families that add
        checks extend `super().check(ctx)`, which covers the settings every block shares (the
        attention attachment)."""
        setting, attention = self.attached()
        if attention is None:
            return []
        return attention.problems(self.attachment_channels(ctx), tuple(ctx.path) + (setting,),
                                  ctx.x.channels)

    def attachment_channels(self, ctx: "BlockContext") -> int:
        """Width of the tensor the attention attachment scales: the block's output by default
        (where SE-ResNet puts it); a family that attaches it elsewhere overrides this."""
        return ctx.out_channels


#: type tag -> spec class. Filled by `register_block`, read by `spec.py` to build the union.
BLOCKS: dict[str, type[BlockSpecBase]] = {}

#: called after each registration (spec.py rebuilds its union of block specs)
_ON_REGISTER: list[Callable[[], None]] = []


def register_block(cls: type[BlockSpecBase]) -> type[BlockSpecBase]:
    """Class decorator: make a block family available under its `type` tag, also after
    archspec itself is imported (a third-party family imported later joins the spec union)."""
    tag = cls.model_fields["type"].default
    if tag in BLOCKS:
        raise RuntimeError(f"block type '{tag}' registered twice")
    BLOCKS[tag] = cls
    for listener in _ON_REGISTER:
        listener()
    return cls


def on_register(listener: Callable[[], None]) -> None:
    """Call `listener` whenever a block family is registered from now on."""
    _ON_REGISTER.append(listener)


@dataclass(frozen=True)
class BlockContext:
    """Everything a block needs to plan itself, resolved from the network and stage settings."""

    builder: "Builder"
    x: "Tensor"
    out_channels: int
    stride: int
    norm: NormSpec
    activation: str
    zero_init_residual: bool
    drop_path_rate: float
    path: tuple  # YAML path of the block settings, for messages
    stage: int
    index: int

    @property
    def conv_bias(self) -> bool:
        """Convs feeding a norm need no bias; without norms they get one."""
        return self.norm.type == "none"

    def norm_layer(self, name: str, x: "Tensor", zero_init: bool = False) -> "Tensor":
        """The block's norm (or nothing when it is `none`)."""
        if self.norm.type == "none":
            return x
        return self.builder.norm(name, x, self.norm.type, self.norm.resolved_eps,
                                 zero_init=zero_init and self.zero_init_residual,
                                 momentum=self.norm.momentum)

    def act_layer(self, name: str, x: "Tensor") -> "Tensor":
        """The block's activation (or nothing when it is `none`)."""
        if self.activation == "none":
            return x
        return self.builder.act(name, x, self.activation)

    def conv_norm_act(self, names: str | tuple[str, str, str], x: "Tensor", out_channels: int,
                      kernel_size: int, *, stride: int = 1, groups: int = 1, dilation: int = 1,
                      act: bool = True, zero_init: bool = False) -> "Tensor":
        """conv -> norm -> activation, with the rules every family shares: the conv has a bias
        only when no norm follows (`conv_bias`), the norm is left out when it is `none` and starts
        at zero with `zero_init` (a residual branch's last norm, under zero_init_residual), the
        activation is left out when `act` is False or the block's is `none`.

        `names`: a suffix (`"1"`: conv1, norm1, act1) or the three layer names."""
        conv, norm, act_name = ((f"conv{names}", f"norm{names}", f"act{names}")
                                if isinstance(names, str) else names)
        y = self.builder.conv(conv, x, out_channels, kernel_size, stride=stride, groups=groups,
                              dilation=dilation, bias=self.conv_bias)
        y = self.norm_layer(norm, y, zero_init=zero_init)
        return self.act_layer(act_name, y) if act else y
