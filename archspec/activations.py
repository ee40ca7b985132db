"""Activations: pycls's `acts` count and an analytic estimate of training activation memory.

acts (Radosavovic et al. 2020, pycls `complexity()`): the output elements of every conv, linear
and pooling layer at batch 1 (norms, activations, global pooling and element-wise ops add none).
It tracks run time on accelerators better than MACs do (pycls's "Designing Network Design Spaces").

Training activation memory: what autograd keeps from the forward pass for the backward pass,
per layer, at a batch size and dtype. Each layer kind saves some of its tensors (a conv its input,
a ReLU its output, a max-pool its input and int64 indices, ...: `SAVES`); a tensor kept by several
layers is counted once, for the layer that produced it. Weights are parameters, not counted.
No torch import; tests/test_activations.py compares it with torch's measured peak.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from .ir import ArchGraph, Node

#: bytes per element of the floating-point dtypes a network trains in
DTYPE_BYTES: Mapping[str, int] = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}

#: which tensors a layer kind saves for backward: "input" (its first input), "output", "inputs"
#: (all of them, e.g. a gated product) or nothing (kinds not listed: additions, permutes, average
#: pools, global pooling, split sums need only shapes)
SAVES: Mapping[str, str] = {
    "conv2d": "input", "linear": "input", "batch_norm": "input", "layer_norm": "input",
    "gelu": "input", "silu": "input", "hard_swish": "input", "layer_scale": "input",
    "max_pool": "input", "relu6": "input",  # (in-place hardtanh keeps a copy of its input)
    "relu": "output", "sigmoid": "output", "radix_softmax": "output",
    "mul": "inputs",
}

#: extra saved bytes per output element, whatever the dtype: max-pool indices (int64), dropout
#: masks (bool)
_EXTRA_PER_OUTPUT: Mapping[str, int] = {"max_pool": 8, "dropout": 1}


@dataclass(frozen=True)
class TrainingMemory:
    """Saved-for-backward bytes at `batch_size` and `dtype`: total, per node that produced a
    kept tensor (or that keeps extras), per section (stem, stages, head)."""

    batch_size: int
    dtype: str
    total: int
    per_node: Mapping[str, int]
    per_section: Mapping[str, int]


def elements(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _kept(graph: ArchGraph, node: Node) -> list[str]:
    """Ids of the nodes whose outputs `node` keeps for backward."""
    rule = SAVES.get(node.kind)
    if rule == "input":
        return list(node.inputs[:1])
    if rule == "output":
        return [node.id]
    if rule == "inputs":
        return list(node.inputs)
    return []


def _extra_bytes(node: Node) -> int:
    """Per-sample bytes a node keeps besides tensors of the graph (float32 layer-norm stats:
    mean and 1/std for each normalised position)."""
    extra = _EXTRA_PER_OUTPUT.get(node.kind, 0) * elements(node.out_shape)
    if node.kind == "layer_norm":
        extra += 2 * 4 * elements(node.out_shape) // node.out_channels
    return extra


def training_memory(graph: ArchGraph, batch_size: int = 1,
                    dtype: str = "float32") -> TrainingMemory:
    """The estimate for one forward pass in training mode (see the module docstring)."""
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype: expected one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
    size = DTYPE_BYTES[dtype]
    kept: set[str] = set()
    per_node: dict[str, int] = {}
    for node in graph.nodes:
        kept.update(_kept(graph, node))
        extra = _extra_bytes(node)
        if extra:
            per_node[node.id] = per_node.get(node.id, 0) + batch_size * extra
    for node_id in kept:
        per_node[node_id] = per_node.get(node_id, 0) + \
            batch_size * size * elements(graph.node(node_id).out_shape)
    return TrainingMemory(batch_size, dtype, sum(per_node.values()), per_node,
                          _per_section(graph, per_node))


def _per_section(graph: ArchGraph, per_node: Mapping[str, int]) -> dict[str, int]:
    sections = [s.id for s in graph.sections]
    out = dict.fromkeys(sections, 0)
    for node_id, size in per_node.items():
        owner = next((s for s in sections if node_id.startswith(s + ".")), sections[0])
        out[owner] += size  # the network input counts with the stem
    return out
