"""RegNet (Radosavovic et al. 2020): the stage generator against the published networks, the
block against timm's tensor layout, a grid of generator settings that build, run and train, and
the generator's errors.

The expected stages come from outside the code: timm 1.0.31's measured feature widths
(../shared/reference/timm_models.json, `feature_info`: each stage's output channels) and its
state-dict manifests (../shared/reference/state_dict_keys: how many blocks each stage `sN` has,
and the grouped 3x3's weight shape (C, C / groups, 3, 3), whose second dimension is the group
width). pycls's published RegNetX-200MF is ws (24, 56, 152, 368), ds (1, 1, 4, 7), group width 8
(pycls MODEL_ZOO / configs/dds_baselines/regnetx/RegNetX-200MF_dds_8gpu.yaml: W0 24, WA 36.44,
WM 2.49, DEPTH 13, GROUP_W 8).
"""
from __future__ import annotations

import json
import re

import pytest
import torch

import archspec
from archspec.blocks.regnet import RegNetStagesSpec, block_widths, compatible
from archspec.errors import SpecError
from conftest import REFERENCE_DIR, SPEC_DIR

REGNETS = sorted(p.stem for p in SPEC_DIR.glob("regnet[xy]_*.yaml"))
TIMM = json.loads((REFERENCE_DIR / "timm_models.json").read_text()) if REFERENCE_DIR else {}
needs_reference = pytest.mark.skipif(REFERENCE_DIR is None,
                                     reason="../shared/reference not found")


def test_the_zoo_has_the_twelve_regnets():
    assert set(REGNETS) == {f"regnet{v}_{s}" for v in "xy"
                            for s in ("002", "004", "006", "008", "016", "032")}


def published_stages(name: str) -> tuple[list[int], list[int], list[int]]:
    """Stage widths (timm's feature_info), depths and group widths (its state-dict manifest)."""
    widths = [f["num_chs"] for f in TIMM[name]["feature_info"] if f["module"] != "stem"]
    keys = json.loads((REFERENCE_DIR / "state_dict_keys" / f"{name}.json").read_text())["keys"]
    depths: dict[int, int] = {}
    groups: dict[int, set[int]] = {}
    for key, shape in keys:
        m = re.fullmatch(r"s(\d+)\.b(\d+)\.conv2\.conv\.weight", key)
        if m:
            stage = int(m.group(1)) - 1
            depths[stage] = max(depths.get(stage, 0), int(m.group(2)))
            groups.setdefault(stage, set()).add(shape[1])
    assert all(len(g) == 1 for g in groups.values())
    return widths, [depths[s] for s in sorted(depths)], [groups[s].pop() for s in sorted(groups)]


@needs_reference
@pytest.mark.parametrize("name", REGNETS)
def test_generated_stages_are_timms(name):
    graph = archspec.resolve(SPEC_DIR / f"{name}.yaml")
    widths, depths, groups = published_stages(name)
    assert [s.width for s in graph.stages] == widths
    assert [s.depth for s in graph.stages] == depths
    assert [s.attrs["group_width"] for s in graph.stages] == groups
    settings = graph.attrs["settings"]
    assert settings["stages.widths"]["value"] == widths
    assert settings["stages.widths"]["source"]["kind"] == "derived"
    assert [settings[f"stages[{i}].block.group_width"]["value"] for i in range(4)] == groups


def test_pycls_regnetx_200mf():
    gen = RegNetStagesSpec(w0=24, wa=36.44, wm=2.49, depth=13)
    widths = block_widths(gen)
    assert sorted(set(widths)) == [24, 56, 152, 368]
    assert [widths.count(w) for w in (24, 56, 152, 368)] == [1, 1, 4, 7]


def test_widths_made_compatible_with_the_group_width():
    """pycls's rule by hand: RegNetX-200MF's widths with group width 24 round to the nearest
    multiple of 24: 56 / 24 = 2.33 -> 48, 152 / 24 = 6.33 -> 144, 368 / 24 = 15.33 -> 360; a
    group width above the (bottleneck) width is lowered to it."""
    assert [compatible(w, 1.0, 24) for w in (24, 56, 152, 368)] == \
        [(24, 24), (48, 24), (144, 24), (360, 24)]
    assert compatible(16, 1.0, 64) == (16, 16)
    assert compatible(96, 0.5, 32) == (128, 32)  # inner 48 -> 64 (48 / 32 = 1.5, to even 2)


def regnet(w0: int, wa: float, wm: float, depth: int, group_width: int, se: bool,
           ratio: float = 1.0, **gen) -> dict:
    spec = {"name": "grid", "input": {"image_size": 32},
            "stem": {"type": "classic", "out_channels": 16, "kernel_size": 3, "pool": "none"},
            "stages": {"regnet": {"w0": w0, "wa": wa, "wm": wm, "depth": depth, **gen}},
            "block": {"type": "regnet", "group_width": group_width, "bottleneck_ratio": ratio},
            "head": {"num_classes": 7}}
    if se:
        spec["block"]["se"] = {"reduction": 4, "divisor": 1, "squeeze_from": "block_input",
                               "ties": "even"}
    return spec


GRID = [(8, 8, 2.0, 4, 8, False, {"stages": 3}), (16, 12.5, 2.2, 6, 8, True, {"stages": 3}),
        (24, 36.44, 2.49, 13, 24, True, {}), (32, 20, 1.5, 5, 16, False, {"stages": 4}),
        (8, 40, 3.0, 7, 4, True, {"stages": 3, "quantum": 4}),
        (16, 12.5, 2.2, 6, 8, True, {"stages": 3, "ratio": 0.5}),  # inner widths half
        (16, 12.5, 2.2, 6, 8, False, {"stages": 3, "ratio": 4.0})]  # inverted (RegNetZ-like)


@pytest.mark.parametrize("w0,wa,wm,depth,group_width,se,gen", GRID)
def test_grid_builds_runs_and_every_parameter_learns(w0, wa, wm, depth, group_width, se, gen):
    graph = archspec.resolve(archspec.load(regnet(w0, wa, wm, depth, group_width, se, **gen)))
    assert sum(s.depth for s in graph.stages) == depth
    ratio = gen.get("ratio", 1.0)
    for stage in graph.stages:
        inner = graph.node(f"{stage.id}.blocks.0.conv2")
        assert inner.out_channels == round(stage.width * ratio)
        assert inner.out_channels % stage.attrs["group_width"] == 0
    model = archspec.to_module(graph).train()
    assert sum(p.numel() for p in model.parameters()) == graph.params
    for m in model.modules():  # zero-init residual norms would stop the gradient before them
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
    torch.manual_seed(0)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 7)
    (out * torch.randn_like(out)).sum().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not dead


def test_se_squeezes_a_quarter_of_the_block_input():
    """timm's RegNetY: se_channels = round(in_chs x 0.25), whatever the 3x3's width."""
    graph = archspec.resolve(SPEC_DIR / "regnety_002.yaml")
    first, second = graph.groups["stages.2.blocks.0.se"], graph.groups["stages.2.blocks.1.se"]
    assert (first.attrs["channels"], first.attrs["squeeze_channels"]) == (152, 56 // 4)
    assert (second.attrs["channels"], second.attrs["squeeze_channels"]) == (152, 152 // 4)


def errors(data: dict) -> str:
    with pytest.raises(SpecError) as exc:
        archspec.resolve(archspec.load(data))
    return str(exc.value)


def test_a_collapsed_stage_is_a_located_error_with_a_hint():
    text = errors(regnet(24, 1, 2.49, 13, 8, False))
    assert "stages.regnet.stages: expected the quantised widths to give 4 stages, got 1" in text
    assert "raise wa or depth" in text and "`stages: 1`" in text


def test_w0_off_the_quantum_and_wm_at_most_1():
    assert "stages.regnet.w0: expected a multiple of the quantum 8, got 20" in \
        errors(regnet(20, 36.44, 2.49, 13, 8, False))
    assert "w0: 16 or 24" in errors(regnet(20, 36.44, 2.49, 13, 8, False))
    assert "stages.regnet.wm: expected a value greater than 1, got 1" in \
        errors(regnet(24, 36.44, 1, 13, 8, False))


def test_generator_with_widths_or_a_multiplier():
    data = regnet(24, 36.44, 2.49, 13, 8, False)
    data["stages"]["widths"] = [24, 56, 152, 368]
    assert "stages.widths: expected either `regnet` or `widths`, got both" in errors(data)
    data = regnet(24, 36.44, 2.49, 13, 8, False)
    data["width_multiplier"] = 1.5
    assert "width_multiplier: expected 1 with a RegNet generator, got 1.5" in errors(data)


def test_a_group_width_that_does_not_divide_hand_set_widths():
    data = regnet(24, 36.44, 2.49, 13, 24, False)
    data["stages"] = {"depths": [1, 1], "widths": [24, 56], "strides": [2, 2]}
    assert "block.group_width: expected a divisor of the inner width (56), got 24" in \
        errors(data)


X002 = SPEC_DIR / "regnetx_002.yaml"
# (step key, whether forward, overrides on regnetx_002 that make exactly that step)
DIFF_PAIRS = [
    # the same network written by hand: widths (24, 56, 152, 368), depths (1, 1, 4, 7)
    ("regnet_generator", False, ["stages.regnet=null", "stages.widths=[24,56,152,368]",
                                 "stages.depths=[1,1,4,7]", "stages.strides=[2,2,2,2]"]),
    ("regnet_settings", True, ["stages.regnet.wa=36.45"]),  # the same quantised widths
    ("group_width", False, ["block.group_width=4"]),  # 24, 56, 152 and 368 are multiples of 4
]


@pytest.mark.parametrize("key,forward,overrides", DIFF_PAIRS, ids=[k for k, _, _ in DIFF_PAIRS])
def test_named_diff_steps(key, forward, overrides):
    from archspec.diffing import diff
    a, b = archspec.load(X002), archspec.load(X002, overrides)
    assert archspec.resolve(a).params != archspec.resolve(b).params or key != "group_width"
    d = diff(a, b)
    assert [(s.key, s.forward) for s in d.steps] == [(key, forward)]
    assert d.unrecognised == []
    back = diff(b, a)
    assert [(s.key, s.forward) for s in back.steps] == [(key, not forward)]


@needs_reference
def test_build_and_render_show_the_resolved_stages(capsys, tmp_path):
    from archspec.cli import main
    widths, depths, groups = published_stages("regnety_016")
    assert main(["build", str(SPEC_DIR / "regnety_016.yaml")]) == 0
    out = capsys.readouterr().out
    text = lambda v: "(" + ", ".join(map(str, v)) + ")"  # noqa: E731
    assert f"stage widths {text(widths)}, depths {text(depths)}, group widths {text(groups)}" \
        in out
    dot = tmp_path / "r.dot"
    assert main(["render", str(SPEC_DIR / "regnety_016.yaml"), "-o", str(dot),
                 "--level", "stage"]) == 0
    drawn = dot.read_text()
    for width, group in zip(widths, groups):
        assert f"width {width} \u00b7 group width {group}" in drawn
    assert drawn.count("RegNet width generator") == 4


def test_group_widths_differ_by_stage_when_a_stage_is_narrower():
    """RegNetX-200MF's ladder (24, 56, 152, 368) with group width 32, by hand: stage 0's inner
    width 24 < 32 lowers its group width to 24; 56 / 32 = 1.75 -> 64, 152 / 32 = 4.75 -> 160,
    368 / 32 = 11.5 -> 12 (halves to even) -> 384."""
    graph = archspec.resolve(X002, ["block.group_width=32"])
    assert [s.width for s in graph.stages] == [24, 64, 160, 384]
    assert [s.attrs["group_width"] for s in graph.stages] == [24, 32, 32, 32]
    convs = [graph.node(f"stages.{i}.blocks.0.conv2") for i in range(4)]
    assert [c.in_channels // c.groups for c in convs] == [24, 32, 32, 32]
    table = graph.attrs["settings"]
    assert table["stages[0].block.group_width"]["source"]["kind"] == "derived"
    assert table["stages[1].block.group_width"]["source"]["kind"] == "set"


def test_hand_written_stages_replace_an_inherited_generator(tmp_path):
    (tmp_path / "child.yaml").write_text(
        f"name: child\nbase: {X002}\nstages:\n  widths: [32, 64]\n  depths: [1, 2]\n")
    spec = archspec.load(tmp_path / "child.yaml")
    assert spec.stages.regnet is None
    assert any("stages.regnet" in n.message for n in spec.notes)
    graph = archspec.resolve(spec)
    assert [s.width for s in graph.stages] == [32, 64]
    assert [s.stride for s in graph.stages] == [1, 2]  # hand-written stages: 1, then 2
