"""Semantic diff of two resolved specs: settings, named modernization steps, effect, structure.

Everything is computed from the two resolved specs and their IRs (never from the text the user
typed), so specs written differently that describe the same network show no architectural change.
Named steps are recognised from features of the IR (is there a depthwise conv, which conv of a
downsampling block carries the stride, how many activations a block has, ...), each feature
compared between A and B. Reversing A and B reverses every step's direction, so the diff is
antisymmetric by construction. No torch import.
"""
from __future__ import annotations

import collections
import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from .ir import ArchGraph, Group, Node
from .kinds import KINDS, group_kind
from .provenance import settings_of
from .spec import Spec, load
from .steps import StepRule, flag as _flag, registered, toward as _toward



# ---- resolved settings --------------------------------------------------------------------

def resolved_settings(spec: Spec, graph: ArchGraph) -> dict[str, Any]:
    """Every architectural setting with defaults and inheritance applied, as dotted paths: the
    resolver's table in the IR (archspec.provenance), less the name and description. Per-stage
    lists are resolved (depths from ratio x unit, default strides, the multipliers)."""
    return {key: s.value for key, s in settings_of(graph).items()
            if key not in ("name", "description")}


@dataclass(frozen=True)
class Change:
    path: str
    old: Any
    new: Any
    #: where each side's value came from (archspec.provenance): which file changed it
    old_source: str = field(default="", compare=False)
    new_source: str = field(default="", compare=False)

    def reversed(self) -> "Change":
        return Change(self.path, self.new, self.old, self.new_source, self.old_source)

    def text(self) -> str:
        return f"{self.path}: {_show(self.old)} -> {_show(self.new)}"


_MISSING = "(absent)"


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ",".join(_show(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def setting_changes(a: dict[str, Any], b: dict[str, Any], stages: int,
                    stems: tuple[str, str] | None = None) -> list[Change]:
    """Changes, with a per-stage block change written once as `block.X` when every stage has it.
    A change of stem type is one line (`stem: conv 7x7/2 + max-pool -> patchify 4x4/4`); when a
    block's type changes, settings that only one of the two types has are left out."""
    changes = []
    if a.get("stem.type") != b.get("stem.type"):
        a = {k: v for k, v in a.items() if not k.startswith("stem.")}
        b = {k: v for k, v in b.items() if not k.startswith("stem.")}
        if stems:
            changes.append(Change("stem", stems[0], stems[1]))
    per_key: dict[str, list[Change]] = collections.defaultdict(list)
    # mappings whose `type` changed (a block, a downsampling layer, ...)
    retyped = [p for p in set(a) & set(b) if p.endswith(".type") and a[p] != b[p]]
    for path in sorted(set(a) | set(b), key=_path_order):
        old, new = a.get(path, _MISSING), b.get(path, _MISSING)
        if old == new:
            continue
        if _MISSING in (old, new) and any(path.startswith(t[:-4]) for t in retyped):
            continue  # a setting only one of two different types has
        if path.startswith("stages[") and ".block." in path:
            per_key[path.split(".block.", 1)[1]].append(Change(path, old, new))
        else:
            changes.append(Change(path, old, new))
    for key, items in per_key.items():
        if len(items) == stages and len({(repr(c.old), repr(c.new)) for c in items}) == 1:
            changes.append(Change(f"block.{key}", items[0].old, items[0].new))
        else:
            changes.extend(items)
    return sorted(changes, key=lambda c: _path_order(c.path))


def _path_order(path: str) -> tuple:
    top = ["input", "norm", "activation", "stem", "stages", "block", "head"]
    head = path.split(".")[0].split("[")[0]
    return (top.index(head) if head in top else len(top), path)


# ---- IR features -------------------------------------------------------------------------

def _block_groups(graph: ArchGraph) -> list[Group]:
    return graph.blocks


def _own_nodes(graph: ArchGraph, block: Group) -> list[Node]:
    """A block's main path in forward order: without its shortcut and without attention
    internals: all of an attachment's group (SE, ECA: `GroupKind.attachment`), and a
    split-attention group after its conv -> norm -> act
    (that part is the block's kxk conv; the rest computes the attention)."""
    shortcut = f"{block.id}.downsample."
    attention = {g.id + ".": g.kind for g in graph.groups.values()
                 if g.id.startswith(block.id + ".") and g.role == "attention"}
    out: list[Node] = []
    main_done: set[str] = set()
    for n in graph.under(block.id):
        if n.id.startswith(shortcut):
            continue
        prefix = next((p for p in attention if n.id.startswith(p)), None)
        if prefix is not None:
            if group_kind(attention[prefix]).attachment or prefix in main_done:
                continue
            if n.role == "activation":
                main_done.add(prefix)
        out.append(n)
    return out


def _convs(nodes: list[Node]) -> list[Node]:
    return [n for n in nodes if n.role in ("conv", "linear")]


def _paths(graph: ArchGraph, n: Node) -> int:
    """How many parallel paths the conv computes at once (`Group.fused_paths` of its group)."""
    group = graph.groups.get(n.id.rpartition(".")[0])
    return group.fused_paths if group is not None else 1


def _width(graph: ArchGraph, n: Node) -> int:
    """A conv's output width, per path (split attention's conv is radix times wider)."""
    return n.out_channels // _paths(graph, n)


def _cardinality(graph: ArchGraph, n: Node) -> int:
    """A conv's groups, per path (split attention's conv has groups x radix groups)."""
    return (n.groups or 1) // _paths(graph, n)


def _mode(values: list) -> Any:
    return collections.Counter(values).most_common(1)[0][0] if values else None


@dataclass(frozen=True)
class Features:
    """What the named steps look at, computed from one IR."""

    stem: str
    stem_convs: int
    patchify_stem: bool
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    inner_widths: tuple[int, ...]
    stride_on: str | None
    avg_pool_shortcut: bool
    grouped: bool
    depthwise: bool
    inverted: bool
    depthwise_first: bool
    spatial_kernel: tuple[int, ...]
    activations: tuple[str, ...]
    activations_per_block: int | None
    norms: tuple[str, ...]
    norms_per_block: int | None
    separate_downsampling: bool
    layer_scale: bool
    #: the kinds present, for the steps families register (archspec.steps)
    group_kinds: frozenset[str]
    node_kinds: frozenset[str]
    graph: ArchGraph = field(compare=False, repr=False)

    @classmethod
    def of(cls, graph: ArchGraph) -> "Features":
        stem_nodes = list(graph.under("stem"))
        stem_convs = [n for n in stem_nodes if n.kind == "conv2d"]
        blocks = _block_groups(graph)
        own = {b.id: _own_nodes(graph, b) for b in blocks}
        all_own = [n for nodes in own.values() for n in nodes]
        spatial = [n for n in all_own if n.kind == "conv2d" and (n.kernel_size or 1) > 1]
        strided_kernels = set()
        for b in blocks:
            for n in own[b.id]:
                if n.kind in ("conv2d", "avg_pool", "max_pool") and (n.stride or 1) > 1:
                    strided_kernels.add("avg pool" if n.kind != "conv2d" else
                                        "1x1 conv" if n.kernel_size == 1 else "kxk conv")
                    break
        inverted = any(max((_width(graph, n) for n in _convs(own[b.id])), default=0)
                       > b.out_shape[0] for b in blocks)
        first_is_dw = [bool(_convs(own[b.id])) and _convs(own[b.id])[0].depthwise
                       for b in blocks]
        stage_level = [n for n in graph.nodes if n.id.startswith("stages.")
                       and ".blocks." not in n.id and n.kind == "conv2d"]
        return cls(
            stem=_describe_stem(stem_nodes),
            stem_convs=len(stem_convs),
            patchify_stem=len(stem_convs) == 1 and stem_convs[0].kernel_size
            == stem_convs[0].stride and not any(n.kind == "max_pool" for n in stem_nodes),
            depths=tuple(s.depth for s in graph.stages),
            widths=tuple(s.width for s in graph.stages),
            # each stage's last block: in = out = the stage width, whatever the downsampling
            inner_widths=tuple(
                tuple(n.out_channels for n in _convs(own[f"{s.id}.blocks.{s.depth - 1}"]))
                for s in graph.stages if f"{s.id}.blocks.{s.depth - 1}" in own),
            stride_on=",".join(sorted(strided_kernels)) or None,
            avg_pool_shortcut=any(n.kind == "avg_pool" and ".downsample." in n.id
                                  for n in graph.nodes),
            grouped=any(n.kind == "conv2d" and _cardinality(graph, n) > 1
                        and not n.depthwise for n in all_own),
            depthwise=any(n.depthwise for n in all_own),
            inverted=inverted,
            depthwise_first=bool(first_is_dw) and all(first_is_dw),
            spatial_kernel=tuple(sorted({n.kernel_size for n in spatial})),
            activations=tuple(sorted({n.kind for n in all_own if n.role == "activation"})),
            activations_per_block=_mode([sum(n.role == "activation" for n in own[b.id])
                                         for b in blocks]),
            norms=tuple(sorted({n.kind for n in graph.nodes if n.role == "norm"})),
            norms_per_block=_mode([sum(n.role == "norm" for n in own[b.id])
                                   for b in blocks]),
            separate_downsampling=bool(stage_level),
            layer_scale=any(n.kind == "layer_scale" for n in graph.nodes),
            group_kinds=frozenset(g.kind for g in graph.groups.values()),
            node_kinds=frozenset(n.kind for n in graph.nodes),
            graph=graph,
        )


def _describe_stem(nodes: list[Node]) -> str:
    parts = []
    for n in nodes:
        if n.kind == "conv2d":
            parts.append(f"conv {n.kernel_size}x{n.kernel_size}/{n.stride}")
        elif n.kind == "max_pool":
            parts.append("max-pool")
    convs = [p for p in parts if p.startswith("conv")]
    if len(convs) == 1 and convs[0].endswith(f"/{convs[0].split('x')[1].split('/')[0]}") \
            and "max-pool" not in parts:
        return convs[0].replace("conv", "patchify")
    if len(convs) > 1 and len(set(convs[1:])) == 1:
        parts = [convs[0], f"{convs[1]} x{len(convs) - 1}"] + [p for p in parts
                                                               if not p.startswith("conv")]
    return " + ".join(parts) or "none"


# ---- the catalog of named steps ----------------------------------------------------------

def _stems(fa: "Features", fb: "Features") -> str:
    return f"stem: {fa.stem} -> {fb.stem}"


_STRIDE_NAMES = {"kxk conv": "ResNet-B, ", "1x1 conv": "ResNet-A (original), ",
                 "avg pool": "avd (ResNeSt), "}


def _widths(fa: "Features", fb: "Features") -> str:
    parts = []
    if fa.widths != fb.widths:
        parts.append(f"stage widths {_tuple_text(fa.widths)} -> {_tuple_text(fb.widths)}")
    if fa.inner_widths != fb.inner_widths:
        parts.append("layer widths of each stage's last block "
                     f"{_tuple_text(tuple(map(_tuple_text, fa.inner_widths)))} -> "
                     f"{_tuple_text(tuple(map(_tuple_text, fb.inner_widths)))}")
    return "; ".join(parts)


def _heaviest_share(depths: tuple[int, ...]) -> float:
    return max(depths) / sum(depths) if depths else 0.0


def _most_modern(kinds: tuple[str, ...], empty: int) -> int:
    """The highest `Kind.modernity` among `kinds` (archspec.kinds), `empty` for none."""
    return max((KINDS[k].modernity if k in KINDS else 0 for k in kinds), default=empty)


def _tuple_text(value: Any) -> str:
    return "(" + ",".join(str(v) for v in value) + ")" if isinstance(value, tuple) else str(value)


#: The structural steps; families add theirs through `archspec.steps.register_step`.
STRUCTURAL: tuple[StepRule, ...] = (
    StepRule("stage_ratio", "stage compute ratio", "stage compute ratio",
             lambda f: f.depths, _toward(_heaviest_share), ("stages.depths",),
             lambda fa, fb: f"depths {_tuple_text(fa.depths)} -> {_tuple_text(fb.depths)}"),
    StepRule("patchify_stem", "patchify stem", "patchify stem removed",
             lambda f: f.patchify_stem, _flag, ("stem",), _stems),
    StepRule("deep_stem", "deep stem (ResNet-C)", "deep stem removed",
             lambda f: f.stem_convs >= 3, _flag, ("stem",), _stems),
    StepRule("stride_placement", "stride placement", "stride placement",
             lambda f: f.stride_on, lambda old, new: new != "1x1 conv",
             (".stride_on", ".avd"),
             lambda fa, fb: _STRIDE_NAMES.get(fb.stride_on, "") +
             f"a downsampling block's stride on its {fa.stride_on or 'nothing'} -> its "
             f"{fb.stride_on or 'nothing'}"),
    StepRule("avg_pool_shortcut", "avg-pool shortcut (ResNet-D)", "avg-pool shortcut removed",
             lambda f: f.avg_pool_shortcut, _flag, (".shortcut",)),
    StepRule("grouped_conv", "grouped convolution (ResNeXt)", "grouped convolution removed",
             lambda f: f.grouped, _flag, (".groups", ".width_per_group", ".cardinality")),
    StepRule("depthwise_conv", "depthwise convolution", "depthwise convolution removed",
             # (a ResNeXt's wider grouped 3x3 keeps its width through bottleneck_ratio)
             lambda f: f.depthwise, _flag, (".groups", ".width_per_group", ".bottleneck_ratio")),
    StepRule("width", "width change", "width change",
             lambda f: (f.widths, f.inner_widths),
             _toward(lambda w: sum(w[0]) + sum(map(sum, w[1]))),
             ("stages.widths", "stem.out_channels", "stem.widths", ".width_per_group",
              ".bottleneck_ratio"), _widths),
    # the inverted bottleneck and moving the depthwise conv redefine a block's widths
    StepRule("inverted_bottleneck", "inverted bottleneck", "inverted bottleneck removed",
             lambda f: f.inverted, _flag, ("block.type", ".expand", ".shortcut"),
             subsumes=("width",)),
    StepRule("move_depthwise_up", "move the depthwise conv up", "depthwise conv moved down",
             lambda f: f.depthwise_first, _flag, (".depthwise",), subsumes=("width",)),
    StepRule("kernel_size", "kernel size", "kernel size",
             lambda f: f.spatial_kernel, _toward(lambda k: max(k or (0,))),
             ("kernel_size",),
             lambda fa, fb: f"block kernels {_tuple_text(fa.spatial_kernel)} -> "
                            f"{_tuple_text(fb.spatial_kernel)}"),
    StepRule("activation_swap", "activation swap", "activation swap",
             lambda f: f.activations,
             _toward(lambda acts: _most_modern(acts, -1)),
             ("activation",),
             lambda fa, fb: f"{'/'.join(fa.activations) or 'none'} -> "
                            f"{'/'.join(fb.activations) or 'none'}"),
    StepRule("fewer_activations", "fewer activations", "more activations",
             lambda f: f.activations_per_block,
             _toward(lambda n: -(n or 0)), ("activations", ".activation_after_add"),
             lambda fa, fb: f"activations per block {fa.activations_per_block} -> "
                            f"{fb.activations_per_block}"),
    StepRule("fewer_norms", "fewer norms", "more norms",
             lambda f: f.norms_per_block, _toward(lambda n: -(n or 0)), ("norms",),
             lambda fa, fb: f"norms per block {fa.norms_per_block} -> {fb.norms_per_block}"),
    StepRule("norm_swap", "norm swap", "norm swap",
             lambda f: f.norms,
             _toward(lambda norms: _most_modern(norms, 0)),
             ("norm", ".conv_bias"),
             lambda fa, fb: f"{'/'.join(fa.norms) or 'none'} -> {'/'.join(fb.norms) or 'none'}"),
    StepRule("separate_downsampling", "separate downsampling layers",
             "separate downsampling layers removed",
             lambda f: f.separate_downsampling, _flag,
             # ConvNeXt's step also adds norms after the stem and the pooling, layer scale,
             # and (as the reference implementation) Linear pointwise layers and its init
             ("stages.downsample", "stem.norm", "head.norm", ".pointwise", "init",
              ".layer_scale"),
             subsumes=("stride_placement",)),  # it takes the stride out of the blocks
    StepRule("layer_scale", "layer scale added", "layer scale removed",
             lambda f: f.layer_scale, _flag, ("layer_scale",)),
)


@dataclass(frozen=True)
class Step:
    key: str
    name: str
    detail: str
    forward: bool
    toggle: bool = True  # a feature added or removed, rather than a value changed

    @property
    def symbol(self) -> str:
        return ("+" if self.forward else "-") if self.toggle else "~"

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "detail": self.detail,
                "direction": "forward" if self.forward else "reverse"}


def catalog() -> tuple[StepRule, ...]:
    """Every named step: the structural ones, then those families registered (in import order,
    so a family imported after archspec joins too)."""
    return STRUCTURAL + registered()


def _implied(keys: set[str]) -> set[str]:
    return {implied for rule in catalog() if rule.key in keys for implied in rule.subsumes}


def named_steps(fa: Features, fb: Features) -> list[Step]:
    found = _named_steps(fa, fb)
    implied = _implied({step.key for step in found})
    return [s for s in found if s.key not in implied]


def _named_steps(fa: Features, fb: Features) -> list[Step]:
    steps = []
    for rule in catalog():
        old, new = rule.feature(fa), rule.feature(fb)
        if old == new:
            continue
        forward = rule.forward(old, new)
        steps.append(Step(rule.key, rule.name if forward else rule.reverse_name,
                          rule.describe(fa, fb), forward, toggle=rule.toggle))
    return steps


def block_steps(graph_a: ArchGraph, graph_b: ArchGraph, block_id: str) -> list[Step]:
    """The named steps that apply to one block present in both networks: the catalog
    evaluated on each side's block alone (as the only block of a network), so a diff figure
    can label each changed block with the steps that changed it."""
    fa = Features.of(_block_alone(graph_a, block_id))
    fb = Features.of(_block_alone(graph_b, block_id))
    return named_steps(fa, fb)


class StepsByOwner:
    """Which of a diff's named steps changed each block or section, by name: a block's are the
    catalog evaluated on that block alone, each read as the network step it is part of (a first
    block that lost its stride to separate downsampling layers says so, not `stride
    placement`; a block-level effect of no network step is left out); a section's (the stem,
    the head, a stage's own downsampling layer) are the steps that account for its settings."""

    def __init__(self, steps: list[Step], graph_a: ArchGraph, graph_b: ArchGraph):
        self.steps, self.graph_a, self.graph_b = steps, graph_a, graph_b
        self.names = {step.key: step.name for step in steps}
        self.rules = {rule.key: rule for rule in catalog()}
        self.parent = {implied: key for key in self.names if key in self.rules
                       for implied in self.rules[key].subsumes}

    def __call__(self, owner: str) -> list[str]:
        return self._block(owner) or self._section(owner)

    def _block(self, owner: str) -> list[str]:
        block_a, block_b = self.graph_a.groups.get(owner), self.graph_b.groups.get(owner)
        if block_a is None or block_b is None or not (block_a.is_block and block_b.is_block):
            return []
        found: list[str] = []
        for step in block_steps(self.graph_a, self.graph_b, owner):
            key = step.key if step.key in self.names else self.parent.get(step.key)
            if key is not None and self.names[key] not in found:
                found.append(self.names[key])
        return found

    def _section(self, owner: str) -> list[str]:
        if ".blocks." in owner:
            return []
        section = "stages.downsample" if owner.startswith("stages.") else owner.split(".")[0]
        return [step.name for step in self.steps if step.key in self.rules
                and any(p == section or p.startswith(section + ".")
                        for p in self.rules[step.key].explains)]


def _block_alone(graph: ArchGraph, block_id: str) -> ArchGraph:
    """A network holding one block of `graph` and nothing else: the block's nodes and groups
    under its own stage, whose depth puts the block last (as in `Features.inner_widths`)."""
    block = graph.groups[block_id]
    inside = block_id + "."
    stage_id = block_id.partition(".blocks.")[0]
    stage = dataclasses.replace(graph.groups[stage_id], depth=(block.index or 0) + 1,
                                children=("blocks",))
    stages_id, _, local = stage_id.rpartition(".")
    groups = {gid: g for gid, g in graph.groups.items()
              if gid == block_id or gid.startswith(inside)}
    groups[stage_id] = stage
    groups[f"{stage_id}.blocks"] = dataclasses.replace(
        graph.groups[f"{stage_id}.blocks"], children=(block_id.rpartition(".")[2],))
    groups[stages_id] = dataclasses.replace(graph.groups[stages_id], children=(local,))
    groups[""] = dataclasses.replace(graph.groups[""], children=(stages_id,))
    nodes = tuple(n for n in graph.nodes if n.id.startswith(inside))
    return ArchGraph(graph.name, graph.description, graph.input_shape, nodes, groups)


def _explained(path: str, steps: list[Step]) -> bool:
    keys = {s.key for s in steps}
    keys |= _implied(keys)
    for rule in catalog():
        if rule.key not in keys:
            continue
        for pattern in rule.explains:
            if pattern.startswith("."):
                if pattern in "." + path or path.endswith(pattern[1:]):
                    return True
            elif path.startswith(pattern) or path.endswith(pattern) or f".{pattern}" in path:
                return True
    return False


# ---- structure and effect ----------------------------------------------------------------

_COMPARED = ("in_shape", "out_shape", "kernel_size", "stride", "padding", "groups",
             "dilation", "bias", "param_shapes")


def node_changes(a: Node, b: Node) -> dict[str, tuple[Any, Any]]:
    """What differs between two layers of the same kind (wiring and derived counts aside)."""
    out = {f: (getattr(a, f), getattr(b, f)) for f in _COMPARED if getattr(a, f) != getattr(b, f)}
    if dict(a.attrs) != dict(b.attrs):
        out["attrs"] = (dict(a.attrs), dict(b.attrs))
    return out


def _owner(node_id: str) -> str:
    """The block (stages.i.blocks.j) or section (stem, stages.i, head) a node belongs to."""
    parts = node_id.split(".")
    if parts[0] == "stages" and len(parts) >= 4 and parts[2] == "blocks":
        return ".".join(parts[:4])
    if parts[0] == "stages" and len(parts) >= 2:
        return ".".join(parts[:2])
    return parts[0]


def _signature(owner: str, n: Node) -> tuple[str, str]:
    """What aligns layers across the two networks: kind, and the sub-module it sits in
    (`downsample`, `se`, ...), so a shortcut's layers align with the shortcut's."""
    local = n.id[len(owner) + 1:] if n.id.startswith(owner + ".") else n.id
    return (n.kind, local.rpartition(".")[0])


def _align(owner: str, na: list[Node], nb: list[Node]):
    """Pairs (a, b) of aligned layers, (None, b) for added, (a, None) for removed: first by
    kind and exact name, then, where that leaves gaps, by kind and enclosing sub-module.
    difflib breaks ties by argument order, so the two sequences are always matched in one
    canonical order: aligning B with A gives the mirror of aligning A with B."""
    key_a = [(n.kind, n.id) for n in na]
    key_b = [(n.kind, n.id) for n in nb]
    if key_a > key_b:
        for x, y in _align_ordered(owner, nb, na):
            yield y, x
    else:
        yield from _align_ordered(owner, na, nb)


def _align_ordered(owner: str, na: list[Node], nb: list[Node]):
    def local(n: Node) -> str:
        return n.id[len(owner) + 1:] if n.id.startswith(owner + ".") else n.id

    exact = difflib.SequenceMatcher(a=[(n.kind, local(n)) for n in na],
                                    b=[(n.kind, local(n)) for n in nb], autojunk=False)
    for tag, i1, i2, j1, j2 in exact.get_opcodes():
        if tag == "equal":
            yield from zip(na[i1:i2], nb[j1:j2])
            continue
        ga, gb = na[i1:i2], nb[j1:j2]
        loose = difflib.SequenceMatcher(a=[_signature(owner, n) for n in ga],
                                        b=[_signature(owner, n) for n in gb], autojunk=False)
        for tag2, k1, k2, l1, l2 in loose.get_opcodes():
            if tag2 == "equal":
                yield from zip(ga[k1:k2], gb[l1:l2])
            else:
                yield from ((n, None) for n in ga[k1:k2])
                yield from ((None, n) for n in gb[l1:l2])


def structure(a: ArchGraph, b: ArchGraph) -> dict[str, dict[str, Any]]:
    """Layers added, removed and changed, per block (or section). Within a block the two layer
    sequences are aligned by kind (difflib), so inserting a pool reads as one layer added rather
    than every following layer changed."""
    by_owner_a: dict[str, list[Node]] = collections.defaultdict(list)
    by_owner_b: dict[str, list[Node]] = collections.defaultdict(list)
    for n in a.nodes:
        if n.kind != "input":
            by_owner_a[_owner(n.id)].append(n)
    for n in b.nodes:
        if n.kind != "input":
            by_owner_b[_owner(n.id)].append(n)
    out: dict[str, dict[str, Any]] = {}
    for owner in set(by_owner_a) | set(by_owner_b):
        na, nb = by_owner_a.get(owner, []), by_owner_b.get(owner, [])
        entry: dict[str, Any] = {"added": [], "removed": [], "changed": {}}
        for x, y in _align(owner, na, nb):
            if x is None:
                entry["added"].append(y.id)
            elif y is None:
                entry["removed"].append(x.id)
            else:
                changes = node_changes(x, y)
                if changes:
                    entry["changed"][y.id] = changes
        if entry["added"] or entry["removed"] or entry["changed"]:
            out[owner] = entry
    return dict(sorted(out.items(), key=lambda kv: _owner_order(kv[0])))


def _owner_order(owner: str) -> tuple:
    parts = owner.split(".")
    rank = {"input": 0, "stem": 1, "stages": 2, "head": 3}.get(parts[0], 4)
    nums = tuple(int(p) for p in parts if p.isdigit())
    return (rank, nums)


def effect(a: ArchGraph, b: ArchGraph) -> dict[str, Any]:
    def row(ga: Group | None, gb: Group | None, name: str) -> dict[str, Any]:
        pa, pb = (ga.params if ga else 0), (gb.params if gb else 0)
        ma, mb = (ga.macs if ga else 0), (gb.macs if gb else 0)
        return {"name": name, "params": [pa, pb], "params_delta": pb - pa, "macs": [ma, mb],
                "macs_delta": mb - ma,
                "output_shape": [list(ga.out_shape) if ga else None,
                                 list(gb.out_shape) if gb else None]}
    sa = {s.id: s for s in a.sections}
    sb = {s.id: s for s in b.sections}
    names = list(dict.fromkeys([*sa, *sb]))
    names.sort(key=_owner_order)
    return {
        "total": {"params": [a.params, b.params], "params_delta": b.params - a.params,
                  "macs": [a.macs, b.macs], "macs_delta": b.macs - a.macs,
                  "output_shape": [list(a.output_shape), list(b.output_shape)]},
        "sections": [row(sa.get(n), sb.get(n), n) for n in names],
    }


# ---- the diff ----------------------------------------------------------------------------

@dataclass
class Diff:
    a_name: str
    b_name: str
    settings: list[Change]
    steps: list[Step]
    unrecognised: list[Change]
    effect: dict[str, Any]
    structure: dict[str, dict[str, Any]]
    metadata: list[Change] = field(default_factory=list)
    kinds: tuple[dict[str, str], dict[str, str]] = ({}, {})  # node id -> kind, in A and in B

    @property
    def architectural(self) -> bool:
        """False when the two networks are the same layer for layer."""
        return bool(self.structure) or self.effect["total"]["params_delta"] != 0 \
            or self.effect["total"]["macs_delta"] != 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a_name, "b": self.b_name,
            "architectural_change": self.architectural,
            "settings": [{"path": c.path, "old": c.old, "new": c.new,
                          "old_source": c.old_source, "new_source": c.new_source}
                         for c in self.settings],
            "steps": [s.as_dict() for s in self.steps],
            "unrecognised": [{"path": c.path, "old": c.old, "new": c.new}
                             for c in self.unrecognised],
            "effect": self.effect,
            "structure": {k: {"added": v["added"], "removed": v["removed"],
                              "changed": {n: {f: [_jsonable(x) for x in pair]
                                              for f, pair in ch.items()}
                                          for n, ch in v["changed"].items()}}
                          for k, v in self.structure.items()},
            "metadata": [{"path": c.path, "old": c.old, "new": c.new} for c in self.metadata],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _with_sources(changes: list[Change], a: dict, b: dict) -> list[Change]:
    """Each change with where its old and new values came from (a collapsed `block.X` change
    takes the first stage's)."""
    def source(table: dict, path: str) -> str:
        found = table.get(path) or table.get(f"stages[0].{path}")
        return found.source.text() if found else ""
    return [dataclasses.replace(c, old_source=source(a, c.path), new_source=source(b, c.path))
            for c in changes]


def _load(source: "str | os.PathLike | Spec", overrides=()) -> tuple[Spec, ArchGraph]:
    from .resolver import resolve
    spec = source if isinstance(source, Spec) else load(source, list(overrides))
    return spec, resolve(spec)


def diff(a: "str | os.PathLike | Spec", b: "str | os.PathLike | Spec") -> Diff:
    """Compare two specs after resolution. Raises SpecError for an invalid spec."""
    spec_a, graph_a = _load(a)
    spec_b, graph_b = _load(b)
    return diff_resolved(spec_a, graph_a, spec_b, graph_b)


def diff_resolved(spec_a: Spec, graph_a: ArchGraph, spec_b: Spec, graph_b: ArchGraph) -> Diff:
    sa = resolved_settings(spec_a, graph_a)
    sb = resolved_settings(spec_b, graph_b)
    stages = max(len(graph_a.stages), len(graph_b.stages))
    fa, fb = Features.of(graph_a), Features.of(graph_b)
    changes = _with_sources(setting_changes(sa, sb, stages, (fa.stem, fb.stem)),
                            settings_of(graph_a), settings_of(graph_b))
    steps = named_steps(fa, fb)
    unrecognised = [c for c in changes if not _explained(c.path, steps)]
    struct = structure(graph_a, graph_b)
    if not struct and graph_a.params == graph_b.params and graph_a.macs == graph_b.macs:
        unrecognised = []  # the same network spelled differently: nothing to recognise
    metadata = [Change(k, getattr(spec_a, k), getattr(spec_b, k)) for k in ("name", "description")
                if getattr(spec_a, k) != getattr(spec_b, k)]
    return Diff(spec_a.name, spec_b.name, changes, steps, unrecognised,
                effect(graph_a, graph_b), struct, metadata,
                ({n.id: n.kind for n in graph_a.nodes}, {n.id: n.kind for n in graph_b.nodes}))
