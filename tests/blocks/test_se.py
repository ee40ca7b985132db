"""Squeeze-and-excitation (Hu et al. 2018) as an attachment: what it computes, where it sits,
how wide it is, and its errors."""
from __future__ import annotations

import math
import re

import pydantic
import pytest
import torch

import archspec
from blockutil import BLOCK, check_block_against_module, one_block, resolve
from conftest import SPEC_DIR

SE = {"reduction": 16}


def _se_module(block: dict, channels: int = 64):
    graph = resolve(one_block({**block, "se": SE}, channels, channels))
    model = archspec.to_module(graph).eval()
    return graph, model.get_submodule(f"{BLOCK}.se")


def test_zero_excitation_scales_by_one_half():
    """fc2 weight and bias zero: the gate is sigmoid(0) = 0.5 for every channel, whatever x."""
    _, se = _se_module({"type": "bottleneck"})
    with torch.no_grad():
        se.fc2.weight.zero_()
        se.fc2.bias.zero_()
    x = torch.randn(3, 64, 5, 7)
    assert torch.equal(se(x), x * 0.5)


def test_matches_the_paper_equations():
    """SENet eq. 2-4: z = mean over positions; s = sigmoid(W2 relu(W1 z + b1) + b2); y = s * x.
    Written here with plain matrix products on the module's weights."""
    _, se = _se_module({"type": "bottleneck"}, channels=128)
    torch.manual_seed(1)
    for p in se.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(2, 128, 4, 4)
    w1, b1 = se.fc1.weight.flatten(1), se.fc1.bias
    w2, b2 = se.fc2.weight.flatten(1), se.fc2.bias
    z = x.mean((2, 3))
    s = torch.sigmoid(torch.relu(z @ w1.T + b1) @ w2.T + b2)
    expected = x * s[:, :, None, None]
    assert torch.allclose(se(x), expected, atol=1e-6)


def test_layers_and_widths_of_the_squeeze():
    """C -> C/r -> C with biases: 256 channels, r = 16 -> 16 (ARCHITECTURES.md)."""
    graph, se = _se_module({"type": "bottleneck"}, channels=256)
    assert [n.name for n in graph.under(f"{BLOCK}.se")] == ["pool", "fc1", "act", "fc2", "gate",
                                                           "mul"]
    assert tuple(se.fc1.weight.shape) == (16, 256, 1, 1) and se.fc1.bias is not None
    assert tuple(se.fc2.weight.shape) == (256, 16, 1, 1) and se.fc2.bias is not None
    assert isinstance(se.gate, torch.nn.Sigmoid) and isinstance(se.act, torch.nn.ReLU)


@pytest.mark.parametrize("channels", [256, 512, 1024, 2048])
def test_standard_widths_squeeze_to_c_over_16(channels):
    """ARCHITECTURES.md: the rounding to a multiple of 8 equals C/16 at the standard SE-ResNet
    widths (bottleneck outputs 256..2048)."""
    graph = resolve(one_block({"type": "basic", "se": SE}, channels, channels))
    assert graph.node(f"{BLOCK}.se.fc1").out_channels == channels // 16


@pytest.mark.parametrize("channels, reduction, divisor, width", [
    (200, 16, 8, 16),  # 12.5 -> nearest multiple of 8 (halves up) is 16
    (180, 16, 8, 8),   # 11.25 -> 8
    (96, 16, 8, 8),    # 6 -> 8: never below the divisor
    (64, 16, 8, 8),    # 4 -> 8 (so timm's SE-ResNet-18 squeezes its first stage to 8, not 4)
    (200, 16, 1, 13),  # divisor 1: 12.5 rounded half up
    (100, 4, 1, 25),
])
def test_rounding_rule(channels, reduction, divisor, width):
    """timm's SEModule: make_divisible(C / r, divisor, round_limit=0) = max(divisor,
    floor(C / r + divisor / 2) rounded down to a multiple of divisor); values worked by hand."""
    graph = resolve(one_block({"type": "basic",
                               "se": {"reduction": reduction, "divisor": divisor}},
                              channels, channels))
    assert graph.node(f"{BLOCK}.se.fc1").out_channels == width
    if width != channels / reduction:
        assert any("squeeze-and-excitation width" in note for note in graph.notes)


@pytest.mark.parametrize("block", [{"type": "basic"}, {"type": "bottleneck"},
                                   {"type": "splat"}])
def test_placed_after_the_last_norm_before_drop_path_and_add(block):
    # One block: the linear schedule's only rate is 0, so use two to get a drop path.
    graph = resolve({**one_block({**block, "se": SE}, 64, 256, stride=2, size=16),
                     "stages": {"depths": [2], "widths": [256], "strides": [2]},
                     "drop_path_rate": 0.5})
    block_id = "stages.0.blocks.1"
    children = list(graph.groups[block_id].children)
    last_norm = max(i for i, c in enumerate(children) if c.startswith("norm"))
    assert children[last_norm + 1:last_norm + 4] == ["se", "drop_path", "add"]
    assert graph.node(f"{block_id}.se.pool").inputs == (f"{block_id}.{children[last_norm]}",)
    assert graph.node(f"{block_id}.se.mul").inputs == (f"{block_id}.{children[last_norm]}",
                                                       f"{block_id}.se.gate")
    assert graph.node(f"{block_id}.drop_path").inputs == (f"{block_id}.se.mul",)
    assert graph.groups[block_id].residual.branch[-2:] == ("se", "drop_path")


@pytest.mark.parametrize("block", [{"type": "basic"}, {"type": "bottleneck"},
                                   {"type": "bottleneck", "groups": 4, "width_per_group": 8},
                                   {"type": "splat"}])
@pytest.mark.parametrize("stride", [1, 2])
def test_plan_matches_module_with_se(block, stride):
    graph = resolve(one_block({**block, "se": SE}, 64, 128, stride=stride))
    check_block_against_module(graph)


def test_se_on_resnet18_adds_the_paper_parameter_count():
    """Each SE(C) adds 2 C (C/16) weights + C/16 + C biases (SENet's arithmetic); divisor 1
    keeps C/16 exact at 64 channels too."""
    plain = archspec.resolve(SPEC_DIR / "resnet18.yaml")
    se = archspec.resolve(SPEC_DIR / "resnet18.yaml", ["block.se={reduction: 16, divisor: 1}"])
    widths = [64] * 2 + [128] * 2 + [256] * 2 + [512] * 2
    assert se.params - plain.params == sum(2 * c * (c // 16) + c // 16 + c for c in widths)


def test_stage_override_can_remove_se():
    graph = archspec.resolve(SPEC_DIR / "seresnet50.yaml", ["stages.overrides={3: {se: null}}"])
    assert "stages.2.blocks.0.se" in graph.groups
    assert not any(g.startswith("stages.3.") and g.endswith(".se") for g in graph.groups)


def test_seresnet50_v1_strides_the_first_1x1():
    """The original SENet layout: same parameters as seresnet50, the stride on conv1."""
    v1 = archspec.resolve(SPEC_DIR / "seresnet50_v1.yaml")
    assert v1.node("stages.1.blocks.0.conv1").stride == 2
    assert v1.node("stages.1.blocks.0.conv2").stride == 1
    assert math.isclose(v1.macs / 1e9, 3.86, abs_tol=0.01)


# ---- errors ---------------------------------------------------------------------------------

def _error(tmp_path, text: str) -> str:
    path = tmp_path / "net.yaml"
    path.write_text(text)
    with pytest.raises(archspec.SpecError) as exc:
        archspec.resolve(path)
    # The file as "net.yaml", however the message spells its directory (absolute or relative).
    return re.sub(r"^\S*net\.yaml", "net.yaml", str(exc.value), flags=re.M)


NET = """name: net
input: {image_size: 32}
stem: {type: patchify, out_channels: 8, patch_size: 1}
stages: {depths: [1, 1], widths: [8, 64]}
block:
  type: basic
  se:
    reduction: 32
"""


def test_reduction_larger_than_channels_is_a_located_error(tmp_path):
    message = _error(tmp_path, NET)
    assert message.startswith("net.yaml:8:16: block.se.reduction: ")
    assert "expected a reduction of at most 8" in message and "got 32" in message
    assert "hint: reduction: 8, or remove `se`" in message


def test_rounding_past_the_width_is_a_located_error(tmp_path):
    """4 channels, r = 2: 2 rounds up to 8, wider than what it squeezes."""
    text = NET.replace("reduction: 32", "reduction: 2")
    text = text.replace("out_channels: 8", "out_channels: 4")
    message = _error(tmp_path, text.replace("widths: [8, 64]", "widths: [4, 64]"))
    # `divisor` is not written: the error points at the `se` mapping that holds it.
    assert message.startswith("net.yaml:8:5: block.se.divisor: ")
    assert "expected a squeezed width of at most the block's 4 channels, got 8" in message
    assert "hint: divisor: 1 (width 2)" in message


def test_stage_override_error_points_at_the_override(tmp_path):
    text = NET.replace("  se:\n    reduction: 32\n", "").replace(
        "stages: {depths: [1, 1], widths: [8, 64]}",
        "stages:\n  depths: [1, 1]\n  widths: [8, 64]\n  overrides:\n    0: {se: {reduction: 64}}")
    message = _error(tmp_path, text)
    assert message.startswith("net.yaml:8:25: "
                              "stages.overrides[0].se.reduction: expected a reduction of at most 8")


def test_hint_for_very_few_channels_also_drops_the_rounding(tmp_path):
    text = NET.replace("out_channels: 8", "out_channels: 4").replace("widths: [8, 64]",
                                                                     "widths: [4, 64]")
    message = _error(tmp_path, text)
    assert "hint: reduction: 4 with divisor: 1, or remove `se`" in message
    fixed = archspec.resolve(tmp_path / "net.yaml", ["block.se={reduction: 4, divisor: 1}"])
    assert fixed.node(f"{BLOCK}.se.fc1").out_channels == 1


def test_a_family_that_does_not_place_se_rejects_it():
    """`se` is a setting of every block; a family whose plan does not place it says so rather
    than ignoring it (a stand-in family here: every registered one supports it today)."""
    from typing import Literal

    from archspec.blocks.base import BlockSpecBase

    class Plain(BlockSpecBase):
        type: Literal["plain"] = "plain"

    assert Plain().se is None
    with pytest.raises(pydantic.ValidationError) as exc:
        Plain(se=SE)
    [error] = exc.value.errors()
    assert error["loc"] == ("se",)
    assert "no `se` on a 'plain' block" in error["msg"] and "basic, bottleneck" in error["msg"]


def test_negative_reduction_is_a_located_error(tmp_path):
    message = _error(tmp_path, NET.replace("reduction: 32", "reduction: 0"))
    assert message.startswith("net.yaml:8:16: block.se.reduction: expected ")
    assert "greater than 0, got 0" in message
