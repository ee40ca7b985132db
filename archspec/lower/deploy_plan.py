"""Deploy mode's IR rewrite: the inference graph of a network, computed from its resolved IR.

What an inference-only module can drop or merge is decided here, on the IR, without torch:

- a batch norm whose only input is a conv (or linear) layer, and that layer's only reader, is
  folded into it (the layer gains a bias);
- an activation that is the only reader of such a layer (after folding) becomes the layer's
  post-op (`attrs["act"]`): oneDNN applies it while writing the output;
- a layer scale right after a conv or linear layer, or after its permute (ConvNeXt's gamma), is
  folded into that layer;
- dropout and drop path (the identity in eval mode) are removed;
- a residual block whose branch ends in a conv and whose only post-op is an activation (or
  none) adds the shortcut inside that conv (`attrs["fused_add"]` on the block): ResNet's
  `relu(bn3(conv3(x)) + shortcut)` and MobileNetV2's `bn3(conv_pwl(x)) + x` are one oneDNN call.

Every fused node lists the original nodes it absorbed in `attrs["folded"]` (in order), so the
weights can be computed from the trained module's, and removed node ids are rewired to the node
that now produces their value. Parameter and MAC totals are recounted.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from ..ir import ArchGraph, Group, Node

#: activations a fused conv or linear layer can apply as a post-op (the torch side maps them)
POST_OPS = frozenset({"relu", "relu6", "silu", "gelu", "sigmoid", "hard_swish"})
#: node kinds that are the identity in eval mode
IDENTITY_IN_EVAL = frozenset({"dropout", "drop_path"})


def _parent(node_id: str) -> str:
    return node_id.rpartition(".")[0]


def value_id(node: Node) -> str:
    """The id the fused node's output had in the original IR: its last absorbed node's."""
    return (node.attrs.get("folded") or (node.id,))[-1]


class _Rewrite:
    """The mutable state of one rewrite: nodes by id (insertion order kept), removed ids."""

    def __init__(self, graph: ArchGraph):
        self.graph = graph
        self.nodes: dict[str, Node] = {n.id: n for n in graph.nodes}
        self.readers = Counter(src for n in graph.nodes for src in n.inputs)
        self.next: dict[str, str] = {}  # producer -> its single reader (when it has one)
        for n in graph.nodes:
            for src in n.inputs:
                self.next[src] = n.id
        self.alias: dict[str, str] = {}  # removed node -> node producing its value now

    def sole_reader(self, node: Node, same_module: bool = True) -> Node | None:
        """The node reading `node`'s output, when it is the only reader and reads nothing else
        (and, unless told, sits in the same module: a container's own children are what its
        forward runs, so an activation is fused only within its container)."""
        value = value_id(node)
        if self.readers[value] != 1 or value not in self.next:
            return None
        reader = self.nodes.get(self.next[value])
        if reader is None or len(reader.inputs) != 1 or (
                same_module and _parent(reader.id) != _parent(node.id)):
            return None
        return reader

    def absorb(self, into: Node, victim: Node, **attrs: Any) -> Node:
        """Remove `victim` (whose only input is `into`) and record it in `into`."""
        folded = into.attrs.get("folded", ()) + (victim.id,)
        merged = {**into.attrs, **attrs, "folded": folded}
        into = into._replace(attrs=MappingProxyType(merged))
        self.nodes[into.id] = into
        del self.nodes[victim.id]
        self.alias[victim.id] = into.id
        return into

    def remove(self, node: Node) -> None:
        del self.nodes[node.id]
        self.alias[node.id] = node.inputs[0]

    def resolve(self, node_id: str) -> str:
        while node_id in self.alias:
            node_id = self.alias[node_id]
        return node_id


def _fold_chain(rw: _Rewrite, node: Node) -> None:
    """conv/linear -> [batch_norm] -> [activation], each step only when the IR allows it."""
    reader = rw.sole_reader(node)
    if reader is not None and reader.kind == "batch_norm" and node.kind == "conv2d":
        node = rw.absorb(node, reader)
        node = node._replace(bias=True)
        rw.nodes[node.id] = node
        reader = rw.sole_reader(node)
    if reader is not None and reader.kind in POST_OPS:
        node = rw.absorb(node, reader, act=reader.kind)
        return
    # a per-channel scale right after the layer (or after its permute: a per-channel scale
    # commutes with it) folds into the layer's weights, across containers (ConvNeXt: fc2 in
    # `mlp`, gamma in the block)
    after = rw.sole_reader(node, same_module=False)
    via = after if after is not None and after.kind == "permute" else None
    scale = rw.sole_reader(via, same_module=False) if via is not None else after
    if scale is not None and scale.kind == "layer_scale":
        rw.absorb(node, scale)
        if via is not None:
            rw.alias[scale.id] = via.id  # the permute now produces the scaled value


def _fuse_residual_add(rw: _Rewrite, group: Group) -> dict[str, Any] | None:
    """The block's `fused_add` attribute when its branch ends in a conv whose output is only
    added to the shortcut and the add is followed by nothing but one activation."""
    prefix = group.id + "."
    wiring = group.residual
    live = [c for c in wiring.branch if prefix + c in rw.nodes]
    post = [c for c in wiring.post if prefix + c in rw.nodes]
    if not live or prefix + wiring.merge not in rw.nodes:
        return None
    last = rw.nodes[prefix + live[-1]]
    add = rw.nodes[prefix + wiring.merge]
    if last.kind != "conv2d" or last.attrs.get("act") or rw.readers[value_id(last)] != 1 \
            or rw.resolve(add.inputs[0]) != last.id:
        return None
    act = None
    if post:
        if len(post) != 1 or rw.nodes[prefix + post[0]].kind not in POST_OPS:
            return None
        act_node = rw.nodes[prefix + post[0]]
        if act_node.inputs != (add.id,):
            return None
        act = act_node.kind
        rw.absorb(add, act_node)
    return {"conv": live[-1], "act": act}


def deploy_graph(graph: ArchGraph) -> ArchGraph:
    """The inference graph of `graph` (see the module docstring). Pure; never imports torch."""
    rw = _Rewrite(graph)
    for node in list(graph.nodes):
        if node.id in rw.nodes and node.kind in IDENTITY_IN_EVAL:
            rw.remove(node)
    for node in list(graph.nodes):
        if node.id in rw.nodes and node.kind in ("conv2d", "linear"):
            _fold_chain(rw, rw.nodes[node.id])
    group_attrs: dict[str, dict[str, Any]] = {}
    for group in graph.groups.values():
        if group.kind == "residual":
            fused = _fuse_residual_add(rw, group)
            if fused:
                group_attrs[group.id] = {"fused_add": fused}
    nodes = _rewired(rw)
    return ArchGraph(name=graph.name, description=graph.description,
                     input_shape=graph.input_shape, nodes=nodes,
                     groups=MappingProxyType(_groups(graph, rw, nodes, group_attrs)),
                     notes=graph.notes, attrs=MappingProxyType({**graph.attrs, "deploy": True}))


def _rewired(rw: _Rewrite) -> tuple[Node, ...]:
    out = []
    for node in rw.nodes.values():
        inputs = tuple(rw.resolve(src) for src in node.inputs)
        shapes = node.param_shapes
        if node.kind == "conv2d" and not any(n == "bias" for n, _ in shapes):
            # every deploy conv has a bias (FusedConv2d): a folded norm's shift, else zeros
            shapes = shapes + (("bias", (node.out_channels,)),)
        params = sum(_prod(s) for _, s in shapes)
        out.append(node._replace(inputs=inputs, param_shapes=shapes, params=params,
                                 bias=node.bias or node.kind == "conv2d"))
    return tuple(out)


def _prod(shape: tuple[int, ...]) -> int:
    total = 1
    for s in shape:
        total *= s
    return total


def _groups(graph: ArchGraph, rw: _Rewrite, nodes: tuple[Node, ...],
            group_attrs: dict[str, dict[str, Any]]) -> dict[str, Group]:
    """Each group with its removed children left out, its totals recounted."""
    params: Counter = Counter()
    macs: Counter = Counter()
    for node in nodes:
        parts = node.id.split(".")
        for i in range(len(parts)):
            prefix = ".".join(parts[:i])
            params[prefix] += node.params
            macs[prefix] += node.macs
    out = {}
    for gid, group in graph.groups.items():
        prefix = f"{gid}." if gid else ""
        kept = tuple(c for c in group.children
                     if prefix + c in rw.nodes or prefix + c in graph.groups)
        wiring = group.residual
        if wiring is not None:
            wiring = replace(wiring, branch=tuple(c for c in wiring.branch if c in kept),
                             post=tuple(c for c in wiring.post if c in kept))
        attrs = MappingProxyType({**group.attrs, **group_attrs.get(gid, {})})
        out[gid] = replace(group, children=kept, params=params[gid], macs=macs[gid],
                           attrs=attrs, residual=wiring)
    return out
