"""The resolved IR: every layer explicit, every number computed once, in `resolve`.

`Node` is a tensor operation (a layer or a functional op such as `add`); its id is the torch module
path of the layer that performs it. `Group` is a module that contains others (stem, stage, block,
squeeze-and-excitation, ...). Nodes are stored in topological order; `Node.inputs` are the edges.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterator, Mapping, NamedTuple, Sequence

from .errors import InternalError
from .kinds import KINDS, kind as _kind

Shape = tuple[int, ...]  # (C, H, W) for feature maps, (C,) after global pooling

EMPTY: Mapping[str, Any] = MappingProxyType({})

#: Node kinds whose outputs count as activations, as pycls counts them (`conv2d_cx`,
#: `linear_cx`, `pool2d_cx`): conv, linear and pooling layers; norms, activation functions,
#: global pooling and element-wise ops add none.
ACTS_KINDS = frozenset({"conv2d", "linear", "max_pool", "avg_pool"})


class Node(NamedTuple):
    """One tensor operation. A NamedTuple: immutable, and cheap to create by the thousand."""

    id: str
    kind: str
    inputs: tuple[str, ...]
    in_shape: Shape
    out_shape: Shape
    kernel_size: int | None = None
    stride: int | None = None
    padding: int | None = None
    groups: int | None = None
    dilation: int | None = None
    bias: bool | None = None
    param_shapes: tuple[tuple[str, Shape], ...] = ()
    params: int = 0  # sum of the parameter shapes' sizes (set by the Builder)
    macs: int = 0
    attrs: Mapping[str, Any] = EMPTY
    source: str | None = None
    channels_last: bool = False  # layout of the output: (H, W, C) instead of (C, H, W)
    reduction: int = 1
    """Product of the strides from the network input to this node's output (4 after a ResNet
    stem, 32 after its last stage): the `reduction` of a feature map."""
    residual: bool = False
    """A merge that joins a residual block's branch and shortcut (not any other sum)."""

    @property
    def in_channels(self) -> int:
        # only a permute changes the layout: its input has the other one
        last = self.channels_last != (self.kind == "permute")
        return self.in_shape[-1] if last else self.in_shape[0]

    @property
    def out_channels(self) -> int:
        return self.out_shape[-1] if self.channels_last else self.out_shape[0]

    @property
    def role(self) -> str:
        """The kind's role (conv, norm, activation, merge, ...: `archspec.kinds.ROLES`)."""
        known = KINDS.get(self.kind)
        return known.role if known is not None else _kind(self.kind).role

    @property
    def acts(self) -> int:
        """Activations (pycls's `acts`): output elements at batch 1 of a conv, linear or pooling
        layer (`ACTS_KINDS`), else 0."""
        return math.prod(self.out_shape) if self.kind in ACTS_KINDS else 0

    @property
    def is_module(self) -> bool:
        """A module of its own, rather than a functional op in its container's `forward`."""
        known = KINDS.get(self.kind)
        return known.module if known is not None else _kind(self.kind).module

    @property
    def depthwise(self) -> bool:
        """A conv with one group per input channel (and more than one channel)."""
        return self.kind == "conv2d" and (self.groups or 1) > 1 and self.groups == self.in_channels

    @property
    def name(self) -> str:
        return self.id.rpartition(".")[2]


@dataclass(frozen=True, slots=True)
class Residual:
    """How a residual block's children are wired: out = post(branch(x) + shortcut(x))."""

    branch: tuple[str, ...]
    """Children before the merge, in order (the shortcut aside)."""
    shortcut: str | None
    """The child that projects the input (`downsample`), or None for the identity."""
    post: tuple[str, ...]
    """Children applied to the sum."""
    merge: str = "add"
    """The merge node (its `residual` is True)."""


@dataclass(frozen=True, slots=True)
class Group:
    """A module holding other modules, with its totals. `kind` picks the torch container.

    Structure is in typed fields, stated by the resolver; `attrs` holds only settings (those a
    family's composite op records, such as split attention's radix)."""

    id: str
    kind: str
    children: tuple[str, ...]
    in_shape: Shape
    out_shape: Shape
    params: int
    macs: int
    attrs: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    source: str | None = None
    reduction: int = 1
    """Reduction of the group's output (that of its last node)."""
    family: str | None = None
    """Human name of what the group is: a block's or a stage's family (`ResNet bottleneck`), a
    stem (`classic stem`), `head`, `downsampling layer`; None for plain containers."""
    block_type: str | None = None
    """The block `type` tag, on a block and on the stage holding such blocks."""
    is_block: bool = False
    """This group is one block (of family `block_type`)."""
    stage: int | None = None
    """Index of the stage the group is or is in (stages and blocks)."""
    index: int | None = None
    """Position of a block in its stage."""
    stride: int | None = None
    """A stage's stride, or a block's (that of its first block for the stage)."""
    depth: int | None = None
    """Blocks in a stage."""
    width: int | None = None
    """A stage's output width."""
    residual: Residual | None = None
    """A residual block's wiring (kind `residual`)."""
    classifier: str | None = None
    """The head's final linear layer's slot name (`fc`)."""

    @property
    def role(self) -> str:
        """The kind's role (chain, residual, layout, attention: `archspec.kinds.GROUP_ROLES`)."""
        from .kinds import group_kind
        return group_kind(self.kind).role


@dataclass(frozen=True, slots=True)
class Feature:
    """One feature map a backbone hands to a detection or segmentation neck."""

    index: int
    """Stage index, from 0 (an `out_indices` entry of -1 is stored as the last stage's index)."""
    module: str
    """Module path of the stage that produces the map (`stages.1`)."""
    channels: int
    reduction: int
    """Input size / map size: the product of the strides up to the stage's output."""
    shape: Shape
    """(C, H, W) at the spec's input size."""


class FeatureInfo(tuple):
    """The feature maps of a `features_only` module, read from the IR before the module runs.
    Methods named as timm's `FeatureInfo`, so necks written for timm backbones read it."""

    def channels(self) -> list[int]:
        return [f.channels for f in self]

    def reduction(self) -> list[int]:
        return [f.reduction for f in self]

    def module_name(self) -> list[str]:
        return [f.module for f in self]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [{"index": f.index, "module": f.module, "channels": f.channels,
                 "reduction": f.reduction, "shape": list(f.shape)} for f in self]


@dataclass(frozen=True)
class ArchGraph:
    """The resolved network. Immutable; every lowering reads it and computes nothing."""

    name: str
    description: str
    input_shape: Shape
    nodes: tuple[Node, ...]
    groups: Mapping[str, Group]
    notes: tuple[str, ...] = ()
    attrs: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    _by_id: Mapping[str, Node] = field(default_factory=lambda: EMPTY, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", MappingProxyType({n.id: n for n in self.nodes}))

    # ---- totals -------------------------------------------------------------------------
    @property
    def params(self) -> int:
        return sum(n.params for n in self.nodes)

    @property
    def macs(self) -> int:
        return sum(n.macs for n in self.nodes)

    @property
    def acts(self) -> int:
        """pycls's `acts`: output elements of every conv, linear and pooling layer at batch 1."""
        return sum(n.acts for n in self.nodes)

    def section_acts(self, group_id: str) -> int:
        """`acts` of the nodes inside one group (a section: `stem`, `stages.2`, `head`)."""
        return sum(n.acts for n in self.under(group_id))

    @property
    def flops(self) -> int:
        """2 x MACs of conv and linear layers: FlopCounterMode's convention (see docs/spec.md)."""
        return 2 * self.macs

    @property
    def output_shape(self) -> Shape:
        return self.nodes[-1].out_shape

    # ---- navigation ---------------------------------------------------------------------
    def node(self, node_id: str) -> Node:
        return self._by_id[node_id]

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._by_id or node_id in self.groups

    def under(self, prefix: str) -> Iterator[Node]:
        """Nodes inside the module `prefix` (in topological order)."""
        dotted = prefix + "."
        return (n for n in self.nodes if n.id.startswith(dotted))

    @property
    def sections(self) -> list[Group]:
        """stem, each stage, head: the rows of a summary."""
        root = self.groups[""]
        out = []
        for child in root.children:
            group = self.groups[child]
            if group.kind == "stages":
                out.extend(self.groups[f"{child}.{c}"] for c in group.children)
            else:
                out.append(group)
        return out

    @property
    def stages(self) -> list[Group]:
        return [g for g in self.sections if g.kind == "stage"]

    @property
    def blocks(self) -> list[Group]:
        return [g for g in self.groups.values() if g.is_block]

    @property
    def classifier(self) -> Node | None:
        """The head's final linear layer (`head.fc`), or None when `num_classes` is 0."""
        head = self.groups.get("head")
        name = (head.classifier or "fc") if head else None
        return self._by_id.get(f"head.{name}") if name else None

    def feature_info(self, out_indices: Sequence[int] | None = None) -> FeatureInfo:
        """The stage outputs picked by `out_indices` (stage indices from 0; negative ones count
        from the end; default all stages), in increasing order. A bad index is a SpecError."""
        from .errors import Problem, SpecError
        stages = self.stages
        n = len(stages)
        listing = "; ".join(f"{i}: {s.id} ({s.out_shape[0]} channels, reduction {s.reduction})"
                            for i, s in enumerate(stages))
        if out_indices is None:
            out_indices = range(n)
        problems = []
        picked: list[int] = []
        for given in out_indices:
            if not isinstance(given, int) or isinstance(given, bool):
                problems.append(Problem(None, "out_indices", f"expected a stage index (an "
                                        f"integer), got {given!r}", f"stages of {self.name}: "
                                        f"{listing}"))
            elif not -n <= given < n:
                problems.append(Problem(None, "out_indices", f"expected a stage index from 0 "
                                        f"to {n - 1} (or -{n} to -1 from the end), got {given}",
                                        f"{self.name} has {n} stages: {listing}"))
            else:
                picked.append(given % n)
        if not problems and not picked:
            problems.append(Problem(None, "out_indices", "expected at least one stage index, "
                                    "got none", f"stages of {self.name}: {listing}"))
        if not problems and any(b <= a for a, b in zip(picked, picked[1:])):
            problems.append(Problem(None, "out_indices", f"expected distinct stage indices in "
                                    f"increasing order, got {tuple(out_indices)}",
                                    f"out_indices={tuple(sorted(set(picked)))}; stages of "
                                    f"{self.name}: {listing}"))
        if problems:
            raise SpecError(problems)
        return FeatureInfo(Feature(i, stages[i].id, stages[i].out_shape[0], stages[i].reduction,
                                   stages[i].out_shape) for i in picked)

    # ---- checks -------------------------------------------------------------------------
    def lint(self) -> None:
        """Raise InternalError unless the graph is a well-formed DAG whose shapes and layouts
        agree. (Each id part is checked to be a valid module name when the Builder records it.)"""
        seen: dict[str, Node] = {}
        for node in self.nodes:
            if node.id in seen or node.id in self.groups:
                raise InternalError(f"duplicate id '{node.id}'")
            for position, src in enumerate(node.inputs):
                if src not in seen:
                    raise InternalError(
                        f"node '{node.id}' reads '{src}', which is not defined before it "
                        f"(cycle or dangling edge); inputs: {node.inputs}")
                shape = seen[src].out_shape
                expected = node.in_shape
                if position and _kind(node.kind).broadcast:  # a gate: (C,1,1) x (C,H,W)
                    ok = len(shape) == len(expected) and all(
                        a in (b, 1) for a, b in zip(shape, expected))
                else:
                    ok = shape == expected
                if not ok:
                    raise InternalError(
                        f"shape mismatch on edge {src} -> {node.id}: produced {shape}, "
                        f"expected {expected}; neighbours: inputs={node.inputs}")
                if position == 0 and seen[src].channels_last != (
                        node.channels_last != (node.kind == "permute")):
                    raise InternalError(
                        f"layout mismatch on edge {src} -> {node.id}: only a permute changes "
                        f"channels-first to channels-last; inputs={node.inputs}")
            seen[node.id] = node
        for group in self.groups.values():
            for child in group.children:
                full = f"{group.id}.{child}" if group.id else child
                if full not in seen and full not in self.groups:
                    raise InternalError(f"group '{group.id}' lists unknown child '{child}'")
