"""Named modernization steps: the rules the semantic diff recognises, and how families add theirs.

A rule compares one *feature* of the two IRs (`archspec.diffing.Features`: the stem, depths,
widths, where the stride sits, ..., plus the whole graph as `f.graph` and the kinds present as
`f.group_kinds` / `f.node_kinds`). When the feature differs, the diff names the step, forward or
undone, and the rule's `explains` patterns mark which changed settings it accounts for.

The structural rules (stems, strides, widths, kernels, norms, activations) live in
`archspec.diffing`. A block family or attachment registers its own next to its plan, at import:

    register_step(presence_step("se", "squeeze-and-excitation", group_kind="se",
                                explains=(".se",)))

No imports from the rest of archspec: families import this module, and the diff reads it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


def flag(old: Any, new: Any) -> bool:
    """Direction of a feature that is present or not: forward when it appears."""
    return bool(new) and not old


def toward(key: Callable[[Any], Any]) -> Callable[[Any, Any], bool]:
    """Direction of a value change: forward when `key` grows (ties broken by the values' text),
    so swapping A and B always flips it."""
    return lambda old, new: (key(new), repr(new)) > (key(old), repr(old))


@dataclass(frozen=True)
class StepRule:
    """One named step. `feature(f)` reads a comparable value from a `Features`; the step is
    named when the two sides' values differ, as `name` when `forward(old, new)` holds, else as
    `reverse_name`."""

    key: str
    name: str                       # the step as the field calls it
    reverse_name: str               # the same step undone
    feature: Callable[[Any], Any]
    forward: Callable[[Any, Any], bool]  # old, new -> is this the step (not its undoing)?
    explains: tuple[str, ...]       # setting paths (prefixes / `.suffixes`) it accounts for
    describe: Callable[[Any, Any], str] = lambda fa, fb: ""
    #: steps this one implies, reported only through it (a radix-times-wider conv is split
    #: attention, not a width change)
    subsumes: tuple[str, ...] = ()

    @property
    def toggle(self) -> bool:
        """A feature added or removed, rather than a value changed."""
        return self.forward is flag


_REGISTERED: dict[str, StepRule] = {}


def register_step(rule: StepRule) -> StepRule:
    """Add a family's step to the diff's catalog (after the structural ones, in import order).
    Registering the same key again replaces the rule (a module reloaded)."""
    _REGISTERED[rule.key] = rule
    return rule


def registered() -> tuple[StepRule, ...]:
    return tuple(_REGISTERED.values())


def presence_step(key: str, name: str, *, group_kind: str | None = None,
                  node_kind: str | None = None, explains: tuple[str, ...] = (),
                  subsumes: tuple[str, ...] = ()) -> StepRule:
    """The common case: a step that adds a group kind (an attention attachment, a composite
    block) or a node kind to the network. Named "<name> added" / "<name> removed"."""
    if (group_kind is None) == (node_kind is None):
        raise ValueError("presence_step: give exactly one of group_kind and node_kind")
    if group_kind is not None:
        def feature(f: Any) -> bool:
            return group_kind in f.group_kinds
    else:
        def feature(f: Any) -> bool:
            return node_kind in f.node_kinds
    return StepRule(key, f"{name} added", f"{name} removed", feature, flag, explains,
                    subsumes=subsumes)
