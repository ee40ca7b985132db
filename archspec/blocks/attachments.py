"""Attention attachments: the registry behind a block's one `attention:` setting.

An attachment (squeeze-and-excitation, ECA, ...) is not a block of its own: it re-weights the
channels of a tensor inside a block, where the family has a place for it (a residual branch
after its last norm). Each kind is one file of this package: a spec model with a `type` tag,
registered with `register_attention`, that plans its layers as one group whose kind is its
`type` tag (declared with `archspec.kinds.register_group_kind`, `attachment=True`; its torch
container registered from the same file). `blocks.base` imports each attachment file (one line
per kind: the union is a static pydantic type, built before any block family is defined) and
builds the `attention:` union from the registry.

A family places the block's attachment with `plan_attention(ctx, y, spec)`; the settings path
of every message is the one the user wrote (`se.reduction` for the shorthand `se:`,
`attention.reduction` otherwise).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..errors import Location, Problem, SpecError
from .settings import Model

if TYPE_CHECKING:
    from ..primitives import Tensor
    from .base import BlockContext


class AttentionSpecBase(Model):
    """What every attachment provides; its fields are its settings."""

    def problems(self, channels: int, path: tuple, block_input: int | None = None
                 ) -> list[Problem]:
        """Problems of this attachment on a tensor of `channels` channels, in a block whose
        input has `block_input`; `path` is the setting's YAML path (`block.attention`)."""
        return []

    def plan(self, ctx: "BlockContext", x: "Tensor") -> "Tensor":
        """Record the attachment's group on `x` and return the re-weighted tensor."""
        raise NotImplementedError


class HasAttention(Protocol):
    """A block spec (`BlockSpecBase`): what `plan_attention` reads of it."""

    def attached(self) -> tuple[str, AttentionSpecBase | None]: ...


#: type tag -> attachment spec class, in registration order (the order the union lists them).
ATTENTIONS: dict[str, type[AttentionSpecBase]] = {}


def register_attention(cls: type[AttentionSpecBase]) -> type[AttentionSpecBase]:
    """Class decorator: make an attachment available as `attention: {type: <tag>}`."""
    tag = cls.model_fields["type"].default
    if tag in ATTENTIONS:
        raise RuntimeError(f"attention type '{tag}' registered twice")
    ATTENTIONS[tag] = cls
    return cls


def plan_attention(ctx: "BlockContext", x: "Tensor", spec: HasAttention) -> "Tensor":
    """Place the block's attachment (its `attention`, or the `se` shorthand) on `x`; `x`
    itself when it has none. A problem the family's `check` did not report (a family that
    skipped `super().check`) is still a located user error."""
    setting, attention = spec.attached()
    if attention is None:
        return x
    problems = attention.problems(x.channels, tuple(ctx.path) + (setting,), ctx.x.channels)
    if problems:
        where = location(ctx.builder.source)
        raise SpecError([Problem(where, p.path, p.message, p.hint) for p in problems])
    return attention.plan(ctx, x)


def location(source: str | None) -> Location | None:
    """Builder.source ('file:line:col') back into a Location."""
    if not source:
        return None
    parts = source.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return Location(parts[0], int(parts[1]), int(parts[2]))
    return Location(source)


def gating_container(class_name: str, doc: str) -> type:
    """A torch container class for an attachment group whose children, in the IR's order,
    compute a gate from `x` and whose last node multiplies `x` by it: `x * children(x)` (SE,
    ECA). Imports torch: call it from a loader registered with `torch_container`."""
    import torch
    from torch import nn

    from ..lower.torch import add_children, module_children

    class ChannelGate(nn.Module):
        def __init__(self, group, graph):
            super().__init__()
            add_children(self, group, graph)
            self._gate = module_children(group, graph, group.children)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            scale = x
            for name in self._gate:
                scale = getattr(self, name)(scale)
            return x * scale

    ChannelGate.__name__ = ChannelGate.__qualname__ = class_name
    ChannelGate.__doc__ = doc
    return ChannelGate
