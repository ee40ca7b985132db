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
        layer (`Kind.counts_acts`), else 0."""
        return math.prod(self.out_shape) if _kind(self.kind).counts_acts else 0

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
    fused_paths: int = 1
    """Parallel paths fused into the group's first conv, computed side by side in one layer (split
    attention's radix): that conv is `fused_paths` times wider, with as many times the groups."""

    @property
    def role(self) -> str:
        """The kind's role (chain, residual, layout, attention: `archspec.kinds.GROUP_ROLES`)."""
        from .kinds import group_kind
        return group_kind(self.kind).role


class Feature(dict):
    """One feature map a backbone hands to a detection or segmentation neck: a dict with timm's
    keys (`num_chs`, `reduction`, `module`, `index`), plus `stage` (how many stages run before
    it: 0 for a map inside the stem) and `shape` ((C, H, W) at the spec's input size)."""

    @property
    def index(self) -> int:
        """Position in the network's feature list (what `out_indices` picks)."""
        return self["index"]

    @property
    def module(self) -> str:
        """Module path of the layer or stage that produces the map (`stem.act1`, `stages.1`)."""
        return self["module"]

    @property
    def channels(self) -> int:
        return self["num_chs"]

    @property
    def reduction(self) -> int:
        """Input size / map size: the product of the strides up to the map."""
        return self["reduction"]

    @property
    def stage(self) -> int:
        return self["stage"]

    @property
    def shape(self) -> Shape:
        return self["shape"]


class FeatureInfo:
    """The feature maps of a network, read from the IR before any module runs, with the same
    interface as timm's `FeatureInfo`: `info[i]` and `len(info)` cover every map of the
    network; `channels()`, `reduction()`, `module_name()`, `get(key)` and `get_dicts()` read
    the maps picked by `out_indices` (all of them unless a `features_only` module chose), or
    those at `idx` when given. Iterating yields the picked maps."""

    def __init__(self, info: Sequence[Feature], out_indices: Sequence[int] | None = None):
        self.info: tuple[Feature, ...] = tuple(info)
        self.out_indices: tuple[int, ...] = tuple(range(len(self.info)) if out_indices is None
                                                  else out_indices)

    def get(self, key: str, idx: int | Sequence[int] | None = None) -> Any:
        if idx is None:
            return [self.info[i][key] for i in self.out_indices]
        if isinstance(idx, (list, tuple)):
            return [self.info[i][key] for i in idx]
        return self.info[idx][key]

    def get_dicts(self, keys: Sequence[str] | None = None,
                  idx: int | Sequence[int] | None = None) -> Any:
        def pick(i: int) -> dict[str, Any]:
            return dict(self.info[i]) if keys is None else {k: self.info[i][k] for k in keys}
        if idx is None:
            return [pick(i) for i in self.out_indices]
        if isinstance(idx, (list, tuple)):
            return [pick(i) for i in idx]
        return pick(idx)

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("module", idx)

    def picked(self) -> list[Feature]:
        return [self.info[i] for i in self.out_indices]

    def __getitem__(self, item: int) -> Feature:
        return self.info[item]

    def __len__(self) -> int:
        return len(self.info)

    def __iter__(self) -> Iterator[Feature]:
        return iter(self.picked())

    def __repr__(self) -> str:
        maps = ", ".join(f"{f.index}: {f.module} {f.channels}@{f.reduction}" for f in self.info)
        return f"FeatureInfo([{maps}], out_indices={self.out_indices})"


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

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.input_shape)), "x".join(map(str, self.output_shape))
        return (f"ArchGraph({self.name}: {shape[0]} -> {shape[1]}, {self.params:,} params, "
                f"{self.macs:,} MACs, {len(self.nodes)} nodes)")

    def _repr_html_(self) -> str:
        """In a notebook: the summary table and the stage-level diagram (`archspec.summary`)."""
        from .summary import to_html
        return to_html(self)

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

    def features(self) -> list[Feature]:
        """Every feature map of the network, as timm lists them: the last map at each reduction,
        among the stem's layers and the stages' outputs (a ResNet: the stem's activation at 2,
        then the four stages; MobileNetV2: 5 maps, not its 7 stages; ConvNeXt: its 4 stages)."""
        stem = self.groups.get("stem")
        points: list[tuple[Any, int]] = []
        for child in stem.children if stem else ():
            item = self.groups.get(f"stem.{child}") or self._by_id[f"stem.{child}"]
            if isinstance(item, Group) or (item.is_module and not item.channels_last):
                points.append((item, 0))
        points += [(s, i + 1) for i, s in enumerate(self.stages)]
        kept = [(item, stage) for k, (item, stage) in enumerate(points)
                if k + 1 == len(points) or points[k + 1][0].reduction != item.reduction]
        return [Feature(num_chs=item.out_shape[0], reduction=item.reduction, module=item.id,
                        index=i, stage=stage, shape=item.out_shape)
                for i, (item, stage) in enumerate(kept)]

    def feature_info(self, out_indices: "int | Sequence[int] | None" = None) -> FeatureInfo:
        """The feature maps (`features()`) with those picked by `out_indices`: indices into that
        list as timm's (negative ones count from the end; an int n: the last n; default all), in
        increasing order. A bad index is a SpecError listing the maps."""
        from .errors import Problem, SpecError
        features = self.features()
        n = len(features)
        listing = "; ".join(f"{f.index}: {f.module} ({f.channels} channels, reduction "
                            f"{f.reduction})" for f in features)
        if out_indices is None:
            out_indices = n
        if isinstance(out_indices, int) and not isinstance(out_indices, bool):
            if not 0 < out_indices <= n:
                raise SpecError([Problem(None, "out_indices", f"expected the number of last "
                                         f"maps to take, 1 to {n}, got {out_indices}",
                                         f"feature maps of {self.name}: {listing}")])
            out_indices = range(n - out_indices, n)
        problems, picked = _pick_features(list(out_indices), n)
        if problems:
            raise SpecError([Problem(None, "out_indices", p, f"feature maps of {self.name}: "
                                     f"{listing}") for p in problems])
        return FeatureInfo(features, picked)

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


def _pick_features(given: list[Any], n: int) -> tuple[list[str], list[int]]:
    """Feature indices (negative from the end) -> absolute ones; the problems with them."""
    problems: list[str] = []
    picked: list[int] = []
    for index in given:
        if not isinstance(index, int) or isinstance(index, bool):
            problems.append(f"expected a feature index (an integer), got {index!r}")
        elif not -n <= index < n:
            problems.append(f"expected a feature index from 0 to {n - 1} (or -{n} to -1 from "
                            f"the end), got {index}")
        else:
            picked.append(index % n)
    if not problems and not picked:
        problems.append("expected at least one feature index, got none")
    if not problems and any(b <= a for a, b in zip(picked, picked[1:])):
        problems.append(f"expected distinct feature indices in increasing order, got "
                        f"{tuple(given)} (use out_indices={tuple(sorted(set(picked)))})")
    return problems, picked
