"""ResNet basic and bottleneck blocks, grouped (ResNeXt) included: plan vs module on a small grid,
the mid-width rule of the papers, and where the stride sits."""
from __future__ import annotations

import itertools
import re

import pytest
import torch

import archspec
from blockutil import BLOCK, check_block_against_module, one_block, resolve
from conftest import SPEC_DIR

GRID = list(itertools.product(
    [1, 2],                                  # stride
    [(16, 64), (64, 64), (64, 32)],          # in, out channels
    [{"type": "basic"},
     {"type": "bottleneck"},
     {"type": "bottleneck", "groups": 4, "width_per_group": 8},
     {"type": "bottleneck", "groups": "depthwise"},
     {"type": "bottleneck", "stride_on": "1x1"},
     {"type": "bottleneck", "shortcut": "avg_pool_projection"}],
))


@pytest.mark.parametrize("stride, channels, block", GRID)
def test_plan_matches_module(stride, channels, block):
    graph = resolve(one_block(block, *channels, stride=stride))
    check_block_against_module(graph)


@pytest.mark.parametrize("stride, channels", [(1, (64, 64)), (2, (64, 64)), (1, (16, 64))])
def test_shortcut_is_identity_only_when_the_shape_is_unchanged(stride, channels):
    graph = resolve(one_block({"type": "bottleneck"}, *channels, stride=stride))
    identity = stride == 1 and channels[0] == channels[1]
    assert (graph.groups[BLOCK].residual.shortcut is None) == identity
    if identity:  # the branch really is added to the untouched input
        model = archspec.to_module(graph).eval()
        block = model.get_submodule(BLOCK)
        for m in block.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                torch.nn.init.zeros_(m.weight)
                torch.nn.init.zeros_(m.bias)
        x = torch.rand(2, 64, 8, 8)
        assert torch.equal(block(x), torch.relu(x))


@pytest.mark.parametrize("spec, widths", [
    # ARCHITECTURES.md: mid = floor(planes x d / 64) x C, planes = out / 4, doubling per stage.
    ("resnext50_32x4d", [128, 256, 512, 1024]),    # 64 x 4 / 64 x 32 = 128
    ("resnext101_32x8d", [256, 512, 1024, 2048]),  # 64 x 8 / 64 x 32 = 256
    ("wide_resnet50_2", [128, 256, 512, 1024]),    # mid = out / 2
    ("resnet50", [64, 128, 256, 512]),             # mid = out / 4
])
def test_grouped_mid_width_rule(spec, widths):
    graph = archspec.resolve(SPEC_DIR / f"{spec}.yaml")
    groups = 32 if spec.startswith("resnext") else 1
    for i, mid in enumerate(widths):
        conv2 = graph.node(f"stages.{i}.blocks.0.conv2")
        assert (conv2.in_channels, conv2.out_channels, conv2.groups) == (mid, mid, groups)


def test_grouped_conv_is_really_grouped():
    """Output channels of group g depend only on input channels of group g."""
    graph = resolve(one_block({"type": "bottleneck", "groups": 4, "width_per_group": 16}, 64, 64))
    conv = archspec.to_module(graph).get_submodule(f"{BLOCK}.conv2").eval()
    x = torch.randn(1, conv.in_channels, 5, 5)
    y = conv(x)
    x2 = x.clone()
    per_group = conv.in_channels // 4
    x2[:, :per_group] += 1.0  # disturb group 0 only
    changed = (conv(x2) - y).abs().amax((0, 2, 3)) > 0
    out_group = conv.out_channels // 4
    assert changed[:out_group].all() and not changed[out_group:].any()


def test_groups_not_dividing_the_width_is_a_located_error(tmp_path):
    # width_per_group null: the 3x3 width is planes = 256 / 4 = 64, which 5 groups do not divide.
    path = tmp_path / "net.yaml"
    path.write_text("name: net\nstages: {depths: [1], widths: [256]}\n"
                    "block:\n  type: bottleneck\n  groups: 5\n  width_per_group: null\n")
    with pytest.raises(archspec.SpecError) as exc:
        archspec.resolve(path)
    message = re.sub(r"^\S*net\.yaml", "net.yaml", str(exc.value))
    assert message.startswith("net.yaml:5:11: block.groups: expected a divisor of the 3x3 "
                              "width (64), got 5\n  hint: groups: 4")
