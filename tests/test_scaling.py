"""Network-wide width and depth multipliers: timm's channel rule and EfficientNet's depth rule.

Expected values come from outside archspec: timm's published mobilenetv2_140 (MobileNetV2 at width
1.4, ../shared/reference/timm_models.json), and the rules as timm writes them."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest

import archspec
from archspec.primitives import make_divisible
from conftest import ROOT

# ../shared/reference/timm_models.json, "mobilenetv2_140" (timm 1.0.31)
MOBILENETV2_140 = {"params": 6108776, "macs_224": 582195824,
                   "feature_info": [{"module": "blocks.0", "num_chs": 24},
                                    {"module": "blocks.1", "num_chs": 32},
                                    {"module": "blocks.2", "num_chs": 48},
                                    {"module": "blocks.4", "num_chs": 136},
                                    {"module": "blocks.6", "num_chs": 448}]}


def _timm_make_divisible(v, divisor=8, min_value=None, round_limit=.9):
    """timm.layers.helpers.make_divisible, as published (the oracle)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


@pytest.mark.parametrize("value", [3.2, 11.9, 12.0, 22.4, 44.8, 84 * 1.3, 100.0, 1280 * 1.4, 7.0])
@pytest.mark.parametrize("divisor", [1, 4, 8, 16])
def test_make_divisible_is_timms(value, divisor):
    assert make_divisible(value, divisor) == _timm_make_divisible(value, divisor)


def test_mobilenetv2_at_width_1_4_is_timms_mobilenetv2_140():
    ref = MOBILENETV2_140
    graph = archspec.resolve(ROOT / "specs" / "mobilenetv2_100.yaml", ["width_multiplier=1.4"])
    assert graph.params == ref["params"]
    assert graph.macs == ref["macs_224"]
    by_module = {f["module"]: f["num_chs"] for f in ref["feature_info"]}
    # timm's blocks.i are our stages.i (one stage per MobileNetV2 row)
    ours = {f.module.replace("stages", "blocks"): f.channels for f in graph.feature_info()}
    assert {m: ours[m] for m in by_module} == by_module


def test_multipliers_of_one_change_nothing():
    plain = archspec.resolve(ROOT / "specs" / "resnet50.yaml")
    same = archspec.resolve(ROOT / "specs" / "resnet50.yaml",
                            ["width_multiplier=1", "depth_multiplier=1"])
    assert (plain.params, plain.macs, plain.nodes) == (same.params, same.macs, same.nodes)


def test_depth_multiplier_rounds_up_every_stage():
    graph = archspec.resolve(ROOT / "specs" / "resnet50.yaml", ["depth_multiplier=1.2"])
    assert [s.depth for s in graph.stages] == [math.ceil(d * 1.2) for d in (3, 4, 6, 3)]
    assert len(graph.blocks) == sum(math.ceil(d * 1.2) for d in (3, 4, 6, 3))


def test_width_multiplier_scales_stem_stages_and_derived_widths():
    graph = archspec.resolve(ROOT / "specs" / "resnet50.yaml", ["width_multiplier=0.5"])
    assert graph.node("stem.conv1").out_channels == 32
    assert [s.width for s in graph.stages] == [128, 256, 512, 1024]
    # the bottleneck's 3x3 is a quarter of the (scaled) stage width
    assert graph.node("stages.0.blocks.0.conv2").out_channels == 32
    deep = archspec.resolve(ROOT / "specs" / "resnet50d.yaml", ["width_multiplier=1.5"])
    assert [deep.node(f"stem.conv{i}").out_channels for i in (1, 2, 3)] == [48, 48, 96]


def test_build_header_shows_the_scaling():
    out = subprocess.run([sys.executable, "cli.py", "validate", "specs/resnet18.yaml", "--set",
                          "width_multiplier=0.75"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "width x0.75 (make_divisible by 8)" in out.stdout
    from archspec.summary import format_table, summarize
    table = format_table(summarize(archspec.resolve(ROOT / "specs" / "resnet18.yaml",
                                                    ["depth_multiplier=2"])))
    assert "scaled: width x1 (make_divisible by 8), depth x2 (ceil)" in table.splitlines()[2]


def test_bad_multiplier_is_a_located_error():
    out = subprocess.run([sys.executable, "cli.py", "validate", "specs/resnet18.yaml", "--set",
                          "width_multiplier=0"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert "--set width_multiplier=0: width_multiplier: expected a value greater than 0" \
        in out.stderr
