"""What every spec model shares, the block registry, and the context a block is planned in."""
from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import Problem

if TYPE_CHECKING:
    from ..primitives import Builder, Tensor


class Model(BaseModel):
    """Spec models: unknown keys are errors, values are immutable once validated."""

    # Field docs are the attribute docstrings below each field. They are read on demand by
    # `field_docs` (error hints, the generated reference), not by pydantic at every import:
    # `use_attribute_docstrings` parses every model's source and cost a third of import time.
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Settings that are channel counts set by hand (a stem's `out_channels`): the network's
    #: `width_multiplier` scales them as it scales the stage widths (see `archspec.scaling`).
    width_settings: ClassVar[tuple[str, ...]] = ()


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The documentation of each field of a spec model: the string literal written under it
    (attribute docstrings, as PEP 257 and pydantic read them), inherited fields included."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass in (object, BaseModel) or not issubclass(klass, BaseModel):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, after in zip(body, body[1:]):
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) \
                    and isinstance(after.value.value, str):
                docs[stmt.target.id] = inspect.cleandoc(after.value.value)
    return docs


Activation = Literal["relu", "relu6", "gelu", "silu", "sigmoid", "hard_swish", "none"]

_DEFAULT_EPS = {"batch_norm": 1e-5, "layer_norm": 1e-6, "none": 0.0}


class NormSpec(Model):
    """A normalization layer. Written as a name (`batch_norm`) or a mapping with settings."""

    type: Literal["batch_norm", "layer_norm", "none"]
    """`batch_norm`, `layer_norm` (over the channels at each position, as ConvNeXt), or `none`."""
    eps: float | None = Field(default=None, gt=0)
    """Added to the variance. Default: 1e-5 for batch norm, 1e-6 for layer norm (the papers')."""
    momentum: float | None = Field(default=None, gt=0, le=1)
    """Batch norm running-statistics momentum (PyTorch convention). Default 0.1."""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value

    @property
    def resolved_eps(self) -> float:
        return self.eps if self.eps is not None else _DEFAULT_EPS[self.type]


# se.py builds on `Model` and `Activation` above; every block accepts its attachment.
from .se import SqueezeExciteSpec, se_problems  # noqa: E402


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
        return se_problems(self.se, self.se_channels(ctx), ctx.path)

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
