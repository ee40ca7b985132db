"""EfficientNet's MBConv: the inverted bottleneck with SE after the depthwise conv
(`se_position: after_depthwise`) squeezing the block's input width (`squeeze_from: block_input`).

Expected values from timm's EfficientNet blocks as facts: InvertedResidual is conv_pw, bn1,
conv_dw, bn2, se, conv_pwl, bn3; SqueezeExcite(mid, rd_ratio=se_ratio / exp_ratio) has
round(mid x 0.25 / t) = round(input x 0.25) squeezed channels, with biases;
DepthwiseSeparableConv (t = 1) is conv_dw, bn1, se, conv_pw, bn2 with a residual where stride is
1 and the widths match."""
from __future__ import annotations

import pytest

import archspec
from blockutil import BLOCK, check_block_against_module, one_block, resolve

SE = {"reduction": 4, "divisor": 1, "activation": "silu", "squeeze_from": "block_input",
      "ties": "even"}


def _mbconv(t: float, k: int = 3) -> dict:
    return {"type": "inverted_bottleneck", "expand_ratio": t, "kernel_size": k, "se": SE,
            "se_position": "after_depthwise"}


def _timm_params(c_in: int, c_out: int, t: int, k: int) -> int:
    """Parameters of timm's MBConv block (BN: 2 per channel, convs without bias)."""
    mid, rd = c_in * t, round(c_in * 0.25)
    expand = (c_in * mid + 2 * mid) if t != 1 else 0
    return (expand + mid * k * k + 2 * mid + (mid * rd + rd + rd * mid + mid)
            + mid * c_out + 2 * c_out)


@pytest.mark.parametrize("c_in,c_out,t,k,stride", [
    (16, 24, 6, 3, 2), (24, 24, 6, 3, 1), (40, 40, 6, 5, 1), (32, 16, 1, 3, 1), (24, 24, 1, 3, 1),
    (20, 36, 4, 5, 2),
    # input x 0.25 halfway between integers: Python's round goes to the even one (2, 4, 2)
    (10, 16, 6, 3, 1), (18, 18, 6, 3, 1), (10, 10, 1, 3, 1)])
def test_counts_order_and_gradients(c_in, c_out, t, k, stride):
    graph = resolve({**one_block(_mbconv(t, k), c_in, c_out, stride), "activation": "silu"})
    group = graph.groups[BLOCK]
    assert group.params == _timm_params(c_in, c_out, t, k)
    names = [n.id[len(BLOCK) + 1:] for n in graph.under(BLOCK) if n.is_module]
    expected = (["conv_pw", "norm1", "act1"] if t != 1 else []) + [
        "conv_dw", "norm2", "act2", "se.pool", "se.fc1", "se.act", "se.fc2", "se.gate",
        "conv_pwl", "norm3"]
    assert [n for n in names if n in expected] == expected
    assert graph.node(f"{BLOCK}.se.fc1").out_shape[0] == round(c_in * 0.25)
    assert (group.residual is not None) == (stride == 1 and c_in == c_out)
    check_block_against_module(graph)


def test_default_se_position_keeps_se_at_the_end():
    graph = resolve(one_block({"type": "inverted_bottleneck", "se": {"reduction": 4}}, 16, 16))
    assert graph.groups[BLOCK].residual.branch[-2:] == ("norm3", "se")


@pytest.mark.parametrize("name", ["efficientnet_b0", "efficientnet_b3", "mobilenetv2_100"])
def test_drop_path_rate_of_block_i_of_n_is_rate_i_over_n(name):
    """timm's EfficientNetBuilder: block i (over all stages) of n drops with rate x i / n, and
    only blocks with a residual have drop path."""
    from conftest import SPEC_DIR
    graph = archspec.resolve(SPEC_DIR / f"{name}.yaml", ["drop_path_rate=0.2"])
    blocks = graph.blocks
    for i, block in enumerate(blocks):
        rates = [n.attrs["rate"] for n in graph.under(block.id) if n.kind == "drop_path"]
        assert rates == ([pytest.approx(0.2 * i / len(blocks))] if block.residual and i else [])
    module = archspec.to_module(graph)
    last = max(i for i, b in enumerate(blocks) if b.residual)
    dropped = module.get_submodule(f"{blocks[last].id}.drop_path")
    assert dropped.rate == pytest.approx(0.2 * last / len(blocks))
