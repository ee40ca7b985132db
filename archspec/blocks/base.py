"""The block registry, the settings every block family accepts, and the context a block is
planned in."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import field_validator

from ..errors import Problem
from .se import SqueezeExciteSpec, se_problems
from .settings import Activation, Model, NormSpec, field_docs

if TYPE_CHECKING:
    from ..primitives import Builder, Tensor

__all__ = ["Activation", "BLOCKS", "BlockContext", "BlockSpecBase", "Model", "NormSpec",
           "field_docs", "register_block"]


class BlockSpecBase(Model):
    """Settings every block family accepts."""

    type: str
    norm: NormSpec | None = None
    """Norm inside the block. Default: the network's `norm`."""
    activation: Activation | None = None
    """Activation inside the block. Default: the network's `activation`."""
    se: SqueezeExciteSpec | None = None
    """Squeeze-and-excitation on the block's branch: `se: {reduction: 16}`, or `se: {}`
    for the defaults; null (the default) leaves it out. Hu et al. 2018."""

    #: Human name of the family, for summaries and diagrams.
    family: ClassVar[str] = ""
    #: Whether `plan` places the `se` attachment (by calling `blocks.se.plan_se`). Families that
    #: do not reject `se:` with a located error instead of ignoring it.
    supports_se: ClassVar[bool] = False

    @field_validator("se")
    @classmethod
    def _se_placed(cls, value: Any) -> Any:
        # At validation, so that no family (whatever its `check`) can silently drop the setting.
        if value is not None and not cls.supports_se:
            tag = cls.model_fields["type"].default
            placing = ", ".join(sorted(t for t, c in BLOCKS.items() if c.supports_se))
            raise ValueError(f"no `se` on a '{tag}' block (this family does not place "
                             f"squeeze-and-excitation; {placing} do)")
        return value

    def plan(self, ctx: "BlockContext") -> "Tensor":
        """Record this block's layers with `ctx.builder` and return its output tensor."""
        raise NotImplementedError

    def check(self, ctx: "BlockContext") -> list[Problem]:
        """Problems this block would have with these channels and stride. Families that add
        checks extend `super().check(ctx)`, which covers the settings every block shares (`se`)."""
        return se_problems(self.se, self.se_channels(ctx), ctx.path, ctx.x.channels)

    def se_channels(self, ctx: "BlockContext") -> int:
        """Width of the tensor the `se` attachment scales: the block's output by default (where
        SE-ResNet puts it); a family that attaches it elsewhere overrides this."""
        return ctx.out_channels


#: type tag -> spec class. Filled by `register_block`, read by `spec.py` to build the union.
BLOCKS: dict[str, type[BlockSpecBase]] = {}


def register_block(cls: type[BlockSpecBase]) -> type[BlockSpecBase]:
    """Class decorator: make a block family available under its `type` tag."""
    tag = cls.model_fields["type"].default
    if tag in BLOCKS:
        raise RuntimeError(f"block type '{tag}' registered twice")
    BLOCKS[tag] = cls
    return cls


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
        if self.activation == "none":
            return x
        return self.builder.act(name, x, self.activation)
