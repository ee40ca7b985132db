"""IR -> networkx.DiGraph: one node per IR node, one edge per tensor (with its shape)."""
from __future__ import annotations

import networkx as nx

from ..ir import ArchGraph


def to_networkx(graph: ArchGraph) -> nx.DiGraph:
    g = nx.DiGraph(name=graph.name, input_shape=graph.input_shape)
    for node in graph.nodes:
        g.add_node(node.id, kind=node.kind, in_shape=node.in_shape, out_shape=node.out_shape,
                   kernel_size=node.kernel_size, stride=node.stride, padding=node.padding,
                   groups=node.groups, params=node.params, macs=node.macs,
                   source=node.source, **dict(node.attrs))
        for src in node.inputs:
            g.add_edge(src, node.id, shape=graph.node(src).out_shape)
    return g
