"""The core suite: for every spec in specs/, the IR, the torch module and the networkx graph agree.

Independent witnesses: torch counts the parameters, forward hooks report the shapes,
FlopCounterMode counts the multiply-accumulates, torch.fx traces the dataflow.
"""
from __future__ import annotations


import pytest
import torch
import torch.fx
from torch.utils.flop_counter import FlopCounterMode

import archspec
from conftest import all_specs, resolved

# Specs whose module takes long to build and run at full size keep their input size here, but run
# at a reduced size; the counts at the spec's own size are checked analytically elsewhere.
SMALL_INPUT = 64


def _small(spec_path):
    """The spec resolved at a reduced input size (consistency holds at any size)."""
    graph = resolved(spec_path)
    size = min(SMALL_INPUT, graph.input_shape[1])
    return archspec.resolve(spec_path, [f"input.image_size={size}"])


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(spec_path):
        if spec_path not in cache:
            graph = _small(spec_path)
            torch.manual_seed(0)
            model = archspec.to_module(graph).eval()
            cache.clear()
            cache[spec_path] = (graph, model)
        return cache[spec_path]
    return get


@all_specs
def test_param_count_matches_ir(spec_path, built):
    graph, model = built(spec_path)
    assert sum(p.numel() for p in model.parameters()) == graph.params
    assert resolved(spec_path).params == graph.params  # input size never changes parameters


@all_specs
def test_param_shapes_match_ir_both_ways(spec_path, built):
    graph, model = built(spec_path)
    ir = {f"{n.id}.{name}": shape for n in graph.nodes for name, shape in n.param_shapes}
    torch_shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert torch_shapes == ir


@all_specs
def test_state_dict_prefixes_are_ir_ids(spec_path, built):
    graph, model = built(spec_path)
    prefixes = {key.rsplit(".", 1)[0] for key in model.state_dict()}
    owners = {n.id for n in graph.nodes if n.params}
    assert owners <= prefixes and prefixes <= {n.id for n in graph.nodes}


@all_specs
def test_traced_shapes_match_ir(spec_path, built):
    graph, model = built(spec_path)
    seen: dict[str, tuple] = {}
    handles = []
    for node in graph.nodes:
        if node.is_module:
            handles.append(model.get_submodule(node.id).register_forward_hook(
                lambda m, inp, out, nid=node.id: seen.__setitem__(
                    nid, (tuple(inp[0].shape[1:]), tuple(out.shape[1:])))))
    for group in graph.groups.values():
        if group.id:
            handles.append(model.get_submodule(group.id).register_forward_hook(
                lambda m, inp, out, gid=group.id: seen.__setitem__(gid, tuple(out.shape[1:]))))
    with torch.no_grad():
        out = model(torch.randn((2,) + graph.input_shape))
    for h in handles:
        h.remove()
    assert tuple(out.shape[1:]) == graph.output_shape
    for node in graph.nodes:
        if node.is_module:
            assert seen[node.id] == (node.in_shape, node.out_shape), node.id
    for group in graph.groups.values():
        if group.id:
            assert seen[group.id] == group.out_shape, group.id


@all_specs
def test_analytic_macs_match_flop_counter(spec_path, built):
    graph, model = built(spec_path)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn((1,) + graph.input_shape))
    assert counter.get_total_flops() == 2 * graph.macs
    per_module = counter.get_flop_counts()
    for section in graph.sections:
        counted = sum(per_module.get(f"Network.{section.id}", {}).values())
        assert counted == 2 * section.macs, section.id


def _module_edges_from_ir(graph) -> set[tuple[str, str]]:
    """Edges between module nodes, looking through functional nodes (input, add, mul)."""
    sources: dict[str, set[str]] = {}
    edges = set()
    for node in graph.nodes:
        feeding = set()
        for src in node.inputs:
            feeding |= {src} if graph.node(src).is_module else sources[src]
        if node.kind == "input":
            feeding = {"<input>"}
        if node.is_module:
            edges |= {(s, node.id) for s in feeding}
            sources[node.id] = {node.id}
        else:
            sources[node.id] = feeding
    return edges


def _module_edges_from_fx(model, leaves: set[str]) -> set[tuple[str, str]]:
    class LeafTracer(torch.fx.Tracer):
        def is_leaf_module(self, module, qualname):  # the IR's layers, and only those
            return qualname in leaves

    traced = torch.fx.GraphModule(model, LeafTracer().trace(model))
    sources: dict[torch.fx.Node, set[str]] = {}
    edges = set()
    for n in traced.graph.nodes:
        feeding = set()
        for arg in n.all_input_nodes:
            feeding |= sources[arg]
        if n.op == "placeholder":
            sources[n] = {"<input>"}
        elif n.op == "call_module":
            edges |= {(s, n.target) for s in feeding}
            sources[n] = {n.target}
        else:
            sources[n] = feeding
    return edges


@all_specs
def test_dataflow_matches_fx_trace(spec_path, built):
    """The IR's edges are the module's real dataflow (torch.fx records what forward does)."""
    graph, model = built(spec_path)
    leaves = {n.id for n in graph.nodes if n.is_module}
    assert _module_edges_from_fx(model, leaves) == _module_edges_from_ir(graph)


@all_specs
def test_networkx_view_matches_ir(spec_path):
    graph = resolved(spec_path)
    g = archspec.to_networkx(graph)
    assert list(g.nodes) == [n.id for n in graph.nodes]
    assert set(g.edges) == {(s, n.id) for n in graph.nodes for s in n.inputs}
    for n in graph.nodes:
        assert g.nodes[n.id]["params"] == n.params and g.nodes[n.id]["macs"] == n.macs
        for s in n.inputs:
            assert g.edges[s, n.id]["shape"] == graph.node(s).out_shape


@all_specs
def test_ir_totals_and_lint(spec_path):
    graph = resolved(spec_path)
    graph.lint()
    assert graph.params == sum(s.params for s in graph.sections)
    assert graph.macs == sum(s.macs for s in graph.sections)
    assert graph.flops == 2 * graph.macs
