"""Compound scaling (width and depth multipliers with `scaling_scope`): EfficientNet-B1..B3 are
B0 plus multipliers, MobileNetV2's variants are MobileNetV2 1.0 plus multipliers and a scope.

Expected values come from outside archspec: timm's rules as published (round_chs_fn =
make_divisible(c x m, 8); _scale_stage_depth with depth_trunc='ceil'; MobileNetV2's
fix_stem_head: stem 32, head 1280 and the first and last rows' depths unscaled, else a head of
max(1280, round_chs_fn(1280))), and the published counts in ../shared/reference/timm_models.json
(tests/test_reference.py)."""
from __future__ import annotations

import math
import re

import pytest
import torch

import archspec
from conftest import ROOT

B0 = ROOT / "specs" / "efficientnet_b0.yaml"
MNV2 = ROOT / "specs" / "mobilenetv2_100.yaml"
# Tan & Le 2019 Table 1 (B0): stem 32, stage widths, depths; head 1280
B0_WIDTHS, B0_DEPTHS = [16, 24, 40, 80, 112, 192, 320], [1, 2, 2, 3, 3, 4, 1]
# Sandler et al. 2018 Table 2 (MobileNetV2 1.0)
MNV2_WIDTHS, MNV2_DEPTHS = [16, 24, 32, 64, 96, 160, 320], [1, 2, 3, 4, 3, 3, 1]


def _round_chs(c: float, m: float, divisor: int = 8) -> int:
    """timm's round_channels -> make_divisible(c x m, divisor), as published (the oracle)."""
    v = c * m
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _layout(graph):
    return ([s.width for s in graph.stages], [s.depth for s in graph.stages],
            graph.node("stem.conv1").out_channels, graph.node("head.conv").out_channels)


@pytest.mark.parametrize("name,width,depth", [("efficientnet_b1", 1.0, 1.1),
                                              ("efficientnet_b2", 1.1, 1.2),
                                              ("efficientnet_b3", 1.2, 1.4)])
def test_b1_to_b3_are_b0_with_multipliers(name, width, depth):
    """timm's _gen_efficientnet: channel and depth multipliers (1.0, 1.1), (1.1, 1.2),
    (1.2, 1.4); stem and head scaled with the stages."""
    graph = archspec.resolve(ROOT / "specs" / f"{name}.yaml")
    assert _layout(graph) == ([_round_chs(c, width) for c in B0_WIDTHS],
                              [math.ceil(d * depth) for d in B0_DEPTHS],
                              _round_chs(32, width), _round_chs(1280, width))
    same = archspec.resolve(B0, [f"width_multiplier={width}", f"depth_multiplier={depth}"])
    assert (same.params, same.macs) == (graph.params, graph.macs)


@pytest.mark.parametrize("width", [0.25, 0.6, 1.3, 2.0])
@pytest.mark.parametrize("depth", [0.5, 1.0, 1.8])
def test_grid_of_multipliers_resolves_to_timms_widths_and_depths(width, depth):
    graph = archspec.resolve(B0, [f"width_multiplier={width}", f"depth_multiplier={depth}"])
    assert _layout(graph) == ([_round_chs(c, width) for c in B0_WIDTHS],
                              [math.ceil(d * depth) for d in B0_DEPTHS],
                              _round_chs(32, width), _round_chs(1280, width))
    # SE squeezes round(input width x 0.25) of each block (timm's se_ratio 0.25)
    for block in graph.blocks:
        fc1 = graph.node(f"{block.id}.se.fc1")
        assert fc1.out_channels == round(block.in_shape[0] * 0.25)


@pytest.mark.parametrize("width,depth", [(0.25, 0.5), (0.5, 1.3), (1.3, 1.0)])
def test_scaled_networks_build_run_and_train(width, depth):
    """Module and IR agree, and the gradient reaches every parameter (small images)."""
    overrides = [f"width_multiplier={width}", f"depth_multiplier={depth}",
                 "input.image_size=32", "head.num_classes=10"]
    graph = archspec.resolve(B0, overrides)
    model = archspec.build(B0, overrides).train()
    assert sum(p.numel() for p in model.parameters()) == graph.params
    torch.manual_seed(0)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    (out * torch.randn_like(out)).sum().backward()
    missing = [n for n, p in model.named_parameters()
               if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing


@pytest.mark.parametrize("width,depth", [(1.1, 1.2), (1.2, 1.4)])
def test_mobilenetv2_fix_stem_head_is_the_scope(width, depth):
    """timm's mobilenetv2_110d/120d: fix_stem_head keeps stem, head conv and the first and last
    rows' depths; the specs say so with `scaling_scope` instead of writing widths by hand."""
    name = {1.1: "mobilenetv2_110d", 1.2: "mobilenetv2_120d"}[width]
    graph = archspec.resolve(ROOT / "specs" / f"{name}.yaml")
    inner = [math.ceil(d * depth) for d in MNV2_DEPTHS[1:-1]]
    assert _layout(graph) == ([_round_chs(c, width) for c in MNV2_WIDTHS],
                              [MNV2_DEPTHS[0], *inner, MNV2_DEPTHS[-1]], 32, 1280)


@pytest.mark.parametrize("width", [0.35, 0.5, 0.75, 1.4, 2.0])
def test_mobilenetv2_head_is_at_least_1280(width):
    """timm's _gen_mobilenet_v2: num_features = max(1280, round_chs_fn(1280))."""
    graph = archspec.resolve(MNV2, [f"width_multiplier={width}"])
    assert graph.node("head.conv").out_channels == max(1280, _round_chs(1280, width))
    assert graph.node("stem.conv1").out_channels == _round_chs(32, width)


def test_scope_is_inert_at_multiplier_one():
    plain = archspec.resolve(B0)
    scoped = archspec.resolve(B0, ["scaling_scope={stem: fixed, head: fixed, end_depths: fixed}"])
    assert (plain.params, plain.macs) == (scoped.params, scoped.macs)


def test_the_diff_names_compound_scaling():
    from archspec.diffing import diff
    found = diff(B0, ROOT / "specs" / "efficientnet_b2.yaml")
    assert [(s.name, s.detail, s.forward) for s in found.steps] == [
        ("compound scaling", "width x1 -> x1.1, depth x1 -> x1.2", True)]
    assert {c.path for c in found.unrecognised} == {"head.dropout"}  # not an architecture change
    back = diff(ROOT / "specs" / "efficientnet_b2.yaml", B0)
    assert [(s.name, s.forward) for s in back.steps] == [("compound scaling", False)]


def test_render_and_build_show_the_multipliers(tmp_path):
    import cli
    out = tmp_path / "b3.dot"
    assert cli.main(["render", str(ROOT / "specs" / "efficientnet_b3.yaml"), "-o", str(out)]) == 0
    assert "scaled: width x1.2 (make_divisible by 8), depth" in out.read_text()
    graph = archspec.resolve(ROOT / "specs" / "efficientnet_b3.yaml")
    note = next(n for n in graph.notes if n.startswith("scaled:") or "scaled:" in n)
    assert "stem 32 -> 40, head conv 1280 -> 1536" in note


def test_docs_examples_are_the_published_networks(tmp_path):
    """docs/blocks.md's compound-scaling examples: each states timm's count, which the example
    resolves to (and the zoo spec of that name too)."""
    text = (ROOT / "docs" / "blocks.md").read_text()
    examples = [t for t in re.findall(r"```yaml\n(.*?)```", text, re.S) 
                if re.search(r"\(timm \w+: [\d,]+ params", t)]
    assert len(examples) == 2
    for example in examples:
        name, params = re.search(r"\(timm (\w+): ([\d,]+) params", example).groups()
        path = tmp_path / "example.yaml"
        path.write_text(example)
        expected = archspec.resolve(ROOT / "specs" / f"{name}.yaml").params
        assert archspec.resolve(path).params == expected == int(params.replace(",", ""))


def test_a_scope_at_multipliers_of_one_is_no_compound_scaling():
    """MobileNetV2 1.0 (head: at_least_written) and EfficientNet-B0 (all scaled) both sit at
    multipliers of 1, where the scope changes nothing."""
    from archspec.diffing import diff
    found = diff(MNV2, B0)
    assert "compound_scaling" not in {s.key for s in found.steps}
    assert "width" in {s.key for s in found.steps}  # their hand-set widths differ
