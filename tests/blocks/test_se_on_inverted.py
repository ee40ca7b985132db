"""SE is an attachment to any block: on the inverted bottleneck and ConvNeXt families as well."""
from __future__ import annotations

import torch

import archspec
from conftest import ROOT


def _se_params(c: int, reduction: int) -> int:
    """SENet (Hu et al. 2018): two 1x1 convs with biases, C -> C/r -> C. The squeeze width is C/r
    rounded to the nearest multiple of 8, at least 8: timm's SEModule calls
    make_divisible(C / r, 8, round_limit=0.0), which skips make_divisible's 10% correction."""
    r = max(8, int(c / reduction + 4) // 8 * 8)
    return c * r + r + r * c + c


def test_se_on_convnext_blocks_counts_and_runs():
    path = ROOT / "specs" / "convnext_atto.yaml"
    plain = archspec.resolve(path)
    with_se = archspec.resolve(path, ["block.se={reduction: 16}"])
    expected = sum(_se_params(g.out_shape[0], 16) for g in plain.blocks)
    assert with_se.params - plain.params == expected
    model = archspec.build(path, ["block.se={reduction: 16}", "input.image_size=64"])
    assert sum(p.numel() for p in model.parameters()) == with_se.params
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1000)


def test_se_sits_after_the_last_norm_of_an_inverted_residual():
    graph = archspec.resolve(ROOT / "specs" / "mobilenetv2_100.yaml", ["block.se={reduction: 4}"])
    block = graph.groups["stages.1.blocks.1"]  # stride 1, 24 -> 24: residual
    assert block.residual.branch[-2:] == ("norm3", "se")
    assert graph.node("stages.1.blocks.1.se.mul").out_shape == (24, 56, 56)
