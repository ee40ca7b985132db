"""The spec models every part of a spec shares: the strict base model, field documentation,
activation names and the norm setting. Imported by the blocks, the attachments and `spec.py`."""
from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..kinds import activation_names


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


#: The activation kinds of `archspec.kinds`, or `none`.
Activation = Literal[activation_names() + ("none",)]  # type: ignore[valid-type]

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
