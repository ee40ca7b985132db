"""Where each archspec tensor lives in a timm or torchvision checkpoint, derived from the IR.

Nothing here is written per model. A rule per part of the network (stem, stage downsampling
layer, block family, head) names the foreign module path of each IR node that owns tensors, from
facts of the IR: node kinds and ids, a block group's `block` type, its stage and index, a
shortcut's `type`. So a spec that changes depths or widths of a zoo network maps as the zoo
network does. The foreign model class follows the block family: ResNet, ResNeXt, Wide-ResNet,
SE-ResNet and ResNeSt blocks take timm's `ResNet` names (torchvision's ResNet names are the same),
inverted bottlenecks take MobileNetV2's, ConvNeXt blocks ConvNeXt's; these two differ between
timm and torchvision.

Layouts: `timm`, `timm_legacy` (timm's `legacy_seresnet*`, the original SENet release names:
`layer0`, `se_module`, `last_linear`) and `torchvision`. Sources (what users name): `timm` tries
both timm layouts, `torchvision` the one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

from ..ir import ArchGraph, Node

LAYOUTS = ("timm", "timm_legacy", "torchvision")
SOURCES = {"timm": ("timm", "timm_legacy"), "torchvision": ("torchvision",)}

#: block type -> the foreign model class whose module names its network takes
MODEL_CLASS = {"basic": "resnet", "bottleneck": "resnet", "splat": "resnet",
               "sk_basic": "resnet", "sk_bottleneck": "resnet",
               "inverted_bottleneck": "mobilenet", "convnext": "convnext", "regnet": "regnet"}


@dataclass(frozen=True)
class Target:
    """The foreign home of one archspec module's tensors."""

    path: str
    """Foreign module path; tensor `t` of the archspec module is `path.t` there."""
    renames: Mapping[str, str] = field(default_factory=dict)
    """archspec tensor name -> foreign tensor name, where they differ."""
    reshape: str | None = None
    """The foreign tensors hold the same values in another shape: `per_channel` (torchvision's
    (C, 1, 1) layer scale for archspec's (C,)) or `linear` (a Linear's (C', C) for a 1x1
    conv's (C', C, 1, 1)). Loading reshapes them to the archspec shape."""

    def foreign_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.reshape == "per_channel":
            return (shape[0], 1, 1)
        if self.reshape == "linear" and len(shape) == 4:
            return tuple(shape[:2])
        return tuple(shape)

    def key(self, tensor: str) -> str:
        return f"{self.path}.{self.renames.get(tensor, tensor)}" if self.path \
            else self.renames.get(tensor, tensor)


@dataclass
class _Walk:
    graph: ArchGraph
    layout: str
    model: str
    out: dict[str, Target] = field(default_factory=dict)
    features: int = 0  # torchvision: the next index in `features`

    def put(self, node_id: str, path: str, **kw) -> None:
        self.out[node_id] = Target(path, **kw)

    def next_feature(self) -> str:
        self.features += 1
        return f"features.{self.features - 1}"


def module_map(graph: ArchGraph, layout: str) -> dict[str, Target]:
    """archspec module path (IR node id) -> its foreign Target, for every node a rule names."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {', '.join(LAYOUTS)}, got {layout!r}")
    w = _Walk(graph, layout, model_class(graph))
    STEMS.get((w.layout, w.model), _unmapped)(w, _members(graph, "stem"))
    for s, stage in enumerate(graph.stages):
        _stage(w, s, stage.id)
    HEADS.get((w.layout, w.model), _unmapped)(w, _members(graph, "head"))
    return w.out


def model_class(graph: ArchGraph) -> str:
    """The foreign model class of the network: that of its first stage's blocks."""
    for block in graph.blocks:
        return MODEL_CLASS.get(str(block.block_type), "unknown")
    return "unknown"


def _members(graph: ArchGraph, gid: str) -> list[tuple[str, Node]]:
    """(path inside the group, node) of the group's nodes that are modules, in forward order."""
    return [(n.id[len(gid) + 1:], n) for n in graph.under(gid) if n.is_module]


def _unmapped(w: _Walk, members: list[tuple[str, Node]]) -> None:
    """No foreign counterpart: the nodes stay out of the map (reported, never guessed)."""


def _pairs(members: list[tuple[str, Node]]) -> list[tuple[str, str | None]]:
    """(conv, the norm right after it or None) in order; other nodes are skipped."""
    out: list[tuple[str, str | None]] = []
    for local, node in members:
        if node.role == "conv":
            out.append((local, None))
        elif node.role == "norm" and out and out[-1][1] is None:
            out[-1] = (out[-1][0], local)
    return out


def _seq(w: _Walk, gid: str, pairs: list[tuple[str, str | None]], path: str) -> None:
    """One conv (and norm) as a Sequential / Conv2dNormActivation: `path.0`, `path.1`."""
    if len(pairs) == 1:
        conv, norm = pairs[0]
        w.put(f"{gid}.{conv}", f"{path}.0")
        if norm:
            w.put(f"{gid}.{norm}", f"{path}.1")


# ---- stems ---------------------------------------------------------------------------------

def _stem_resnet(w: _Walk, members) -> None:
    """`conv1`, `bn1`; a deep stem is timm's Sequential conv1 (conv, bn, act) x n minus the last
    bn and act, which are `bn1`."""
    pairs = _pairs(members)
    for i, (conv, norm) in enumerate(pairs):
        last = i == len(pairs) - 1
        w.put(f"stem.{conv}", "conv1" if len(pairs) == 1 else f"conv1.{3 * i}")
        if norm:
            w.put(f"stem.{norm}", "bn1" if last else f"conv1.{3 * i + 1}")


def _stem_legacy(w: _Walk, members) -> None:
    for i, (conv, norm) in enumerate(_pairs(members), 1):
        w.put(f"stem.{conv}", f"layer0.conv{i}")
        if norm:
            w.put(f"stem.{norm}", f"layer0.bn{i}")


def _stem_efficientnet(w: _Walk, members) -> None:
    pairs = _pairs(members)
    if len(pairs) == 1:
        w.put(f"stem.{pairs[0][0]}", "conv_stem")
        if pairs[0][1]:
            w.put(f"stem.{pairs[0][1]}", "bn1")


def _stem_regnet(w: _Walk, members) -> None:
    """timm's RegNet stem is one ConvNormAct: `stem.conv`, `stem.bn`."""
    for conv, norm in _pairs(members)[:1]:
        w.put(f"stem.{conv}", "stem.conv")
        if norm:
            w.put(f"stem.{norm}", "stem.bn")


STEMS: dict[tuple[str, str], Callable] = {
    ("timm", "resnet"): _stem_resnet, ("torchvision", "resnet"): _stem_resnet,
    ("timm_legacy", "resnet"): _stem_legacy,
    ("timm", "regnet"): _stem_regnet,
    ("timm", "mobilenet"): _stem_efficientnet,
    ("timm", "convnext"): lambda w, m: _seq(w, "stem", _pairs(m), "stem"),
    ("torchvision", "mobilenet"): lambda w, m: _seq(w, "stem", _pairs(m), w.next_feature()),
    ("torchvision", "convnext"): lambda w, m: _seq(w, "stem", _pairs(m), w.next_feature()),
}


# ---- stages and blocks ---------------------------------------------------------------------

def _stage(w: _Walk, s: int, sid: str) -> None:
    graph = w.graph
    nested = (w.layout, w.model) == ("torchvision", "convnext")  # features.k = a whole stage
    if f"{sid}.downsample" in graph.groups:  # a downsampling layer before the blocks (ConvNeXt)
        gid = f"{sid}.downsample"
        path = f"stages.{s}.downsample" if (w.layout, w.model) == ("timm", "convnext") \
            else w.next_feature() if nested else None
        for local, _ in _members(graph, gid) if path else ():
            w.put(f"{gid}.{local}", f"{path}.{local}")
    stage_path = w.next_feature() if nested else ""
    for j in graph.groups[f"{sid}.blocks"].children:
        bid = f"{sid}.blocks.{j}"
        family = MODEL_CLASS.get(str(graph.groups[bid].block_type), "unknown")
        rule = BLOCKS.get((w.layout, family))
        if rule is None or family != w.model:
            continue  # a block the foreign model class has no place for
        rule(w, bid, _block_path(w, s, j, stage_path), _members(graph, bid))


def _block_path(w: _Walk, s: int, j: str, stage_path: str) -> str:
    if w.model == "resnet":
        return f"layer{s + 1}.{j}"
    if w.model == "regnet":
        return f"s{s + 1}.b{int(j) + 1}"
    if w.layout == "torchvision":
        return f"{stage_path}.{j}" if stage_path else w.next_feature()
    return f"blocks.{s}.{j}" if w.model == "mobilenet" else f"stages.{s}.blocks.{j}"


_NORM = re.compile(r"norm(\d+)$")


def _block_resnet(w: _Walk, bid: str, path: str, members) -> None:
    """timm/torchvision ResNet blocks: `normK` is `bnK`; the SE module is `se` (`se_module` in the
    legacy SENet names), and so is the ECA module (archspec's `eca`); an avg-pool shortcut keeps the pool's slot 0 even where stride 1 leaves
    it out; split attention (`conv2.*`) keeps its names."""
    shortcut = w.graph.groups.get(f"{bid}.downsample")
    pool_slot = int(shortcut is not None and shortcut.attrs.get("type") == "avg_pool_projection")
    conv, norm = (_pairs([(m, n) for m, n in members if m.startswith("downsample.")])
                  or [(None, None)])[0]
    for local, node in members:
        head, _, rest = local.partition(".")
        if head == "downsample":
            foreign = f"downsample.{pool_slot + (local == norm)}" if local in (conv, norm) \
                else None
        elif w.graph.groups[bid].block_type.startswith("sk_"):
            foreign = _selective_kernel_name(head, rest)
        elif _NORM.match(head) and not rest:
            foreign = "bn" + head[len("norm"):]
        elif head == "se" and w.layout == "timm_legacy":
            foreign = f"se_module.{rest}"
        elif head == "eca":  # timm's ResNet keeps any attention layer as `se`
            foreign = f"se.{rest}"
        else:
            foreign = local
        if foreign:
            w.put(f"{bid}.{local}", f"{path}.{foreign}")


_PATH = re.compile(r"^path(\d+)")


def _selective_kernel_name(head: str, rest: str) -> str:
    """timm's SK-ResNets name every conv-norm pair as ConvNormAct: `convK.conv`, `convK.bn`
    (archspec's `convK`, `normK`); the SK conv's `pathP` is `paths.P`."""
    if _NORM.match(head) and not rest:
        return f"conv{head[len('norm'):]}.bn"
    if not rest:
        return f"{head}.conv"
    return head + "." + _PATH.sub(r"paths.\1", rest)


def _block_regnet(w: _Walk, bid: str, path: str, members) -> None:
    """timm's RegNet block: each conv and its norm are a ConvNormAct (`convK.conv`, `convK.bn`),
    the shortcut's too (`downsample.conv`, `downsample.bn`); the SE keeps its names."""
    renamed = {}
    for conv, norm in _pairs(members):
        if conv.startswith("se."):
            continue
        head = "downsample" if conv.startswith("downsample.") else conv
        renamed[conv] = f"{head}.conv"
        if norm:
            renamed[norm] = f"{head}.bn"
    for local, _ in members:
        w.put(f"{bid}.{local}", f"{path}.{renamed.get(local, local)}")


#: timm EfficientNet blocks: InvertedResidual names, and DepthwiseSeparableConv's (no expansion)
_IR_TIMM = {"conv_pw": "conv_pw", "norm1": "bn1", "conv_dw": "conv_dw", "norm2": "bn2",
            "conv_pwl": "conv_pwl", "norm3": "bn3", "se.fc1": "se.conv_reduce",
            "se.fc2": "se.conv_expand"}
_DS_TIMM = {"conv_dw": "conv_dw", "norm2": "bn1", "conv_pwl": "conv_pw", "norm3": "bn2",
            "se.fc1": "se.conv_reduce", "se.fc2": "se.conv_expand"}


def _block_ir_timm(w: _Walk, bid: str, path: str, members) -> None:
    names = _IR_TIMM if any(m == "conv_pw" for m, _ in members) else _DS_TIMM
    for local, _ in members:
        if local in names:
            w.put(f"{bid}.{local}", f"{path}.{names[local]}")


def _block_ir_torchvision(w: _Walk, bid: str, path: str, members) -> None:
    """torchvision InvertedResidual: `conv` = [Conv2dNormActivation per conv that has an
    activation (expansion, depthwise)], then the projection conv and its norm, flat."""
    if any(local.startswith("se.") for local, _ in members):
        return  # torchvision's MobileNetV2 has no squeeze-excitation
    pairs = _pairs(members)
    for i, (conv, norm) in enumerate(pairs[:-1]):
        w.put(f"{bid}.{conv}", f"{path}.conv.{i}.0")
        if norm:
            w.put(f"{bid}.{norm}", f"{path}.conv.{i}.1")
    if pairs:
        conv, norm = pairs[-1]
        n = len(pairs) - 1
        w.put(f"{bid}.{conv}", f"{path}.conv.{n}")
        if norm:
            w.put(f"{bid}.{norm}", f"{path}.conv.{n + 1}")


def _block_convnext(w: _Walk, bid: str, path: str, members) -> None:
    """timm registers the layer scale as the block's own `gamma`; the rest keeps its names."""
    for local, node in members:
        if node.kind == "layer_scale":
            w.put(f"{bid}.{local}", path, renames={"gamma": "gamma"})
        else:
            w.put(f"{bid}.{local}", f"{path}.{local}")


#: torchvision CNBlock.block: dwconv 0, Permute 1, LayerNorm 2, Linear 3, GELU 4, Linear 5
_CN_TORCHVISION = {"conv_dw": "block.0", "norm": "block.2", "mlp.fc1": "block.3",
                   "mlp.fc2": "block.5"}


def _block_convnext_torchvision(w: _Walk, bid: str, path: str, members) -> None:
    """torchvision's CNBlock: `block.{0,2,3,5}` and a (C, 1, 1) `layer_scale` parameter."""
    for local, node in members:
        if node.kind == "layer_scale":
            w.put(f"{bid}.{local}", path, renames={"gamma": "layer_scale"},
                  reshape="per_channel")
        elif local in _CN_TORCHVISION:
            # a 1x1-conv MLP (ConvNeXt-A/F/P/N) holds the Linear's values as (C', C, 1, 1)
            w.put(f"{bid}.{local}", f"{path}.{_CN_TORCHVISION[local]}",
                  reshape="linear" if local.startswith("mlp.") and node.kind == "conv2d"
                  else None)


BLOCKS: dict[tuple[str, str], Callable] = {
    ("timm", "resnet"): _block_resnet, ("timm_legacy", "resnet"): _block_resnet,
    ("torchvision", "resnet"): _block_resnet,
    ("timm", "mobilenet"): _block_ir_timm, ("torchvision", "mobilenet"): _block_ir_torchvision,
    ("timm", "convnext"): _block_convnext, ("torchvision", "convnext"): _block_convnext_torchvision,
    ("timm", "regnet"): _block_regnet,
}


# ---- heads ---------------------------------------------------------------------------------

def _head(names: dict[str, str]) -> Callable:
    """A head rule from archspec head child -> foreign path (missing children: unmapped)."""
    def rule(w: _Walk, members) -> None:
        for local, _ in members:
            if local in names:
                w.put(f"head.{local}", names[local])
    return rule


def _head_mobilenet_torchvision(w: _Walk, members) -> None:
    """The 1x1 conv to 1280 is the last entry of `features`; the classifier is
    Sequential(Dropout, Linear)."""
    pairs = _pairs(members)
    if pairs:
        _seq(w, "head", pairs[:1], w.next_feature())
    _head({"fc": "classifier.1"})(w, members)


HEADS: dict[tuple[str, str], Callable] = {
    ("timm", "resnet"): _head({"fc": "fc"}), ("torchvision", "resnet"): _head({"fc": "fc"}),
    ("timm", "regnet"): _head({"fc": "head.fc"}),
    ("timm_legacy", "resnet"): _head({"fc": "last_linear"}),
    ("timm", "mobilenet"): _head({"conv": "conv_head", "conv_norm": "bn2", "fc": "classifier"}),
    ("torchvision", "mobilenet"): _head_mobilenet_torchvision,
    ("timm", "convnext"): _head({"norm": "head.norm", "fc": "head.fc"}),
    ("torchvision", "convnext"): _head({"norm": "classifier.0", "fc": "classifier.2"}),
}
