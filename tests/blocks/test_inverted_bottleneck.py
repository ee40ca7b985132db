"""Inverted bottleneck and ConvNeXt blocks: what they compute, not only what they count.

Witnesses: torch's own modules and autograd, and the block equations of the papers written out here
with torch.nn.functional (MobileNetV2: Sandler et al. 2018, Table 1; ConvNeXt: Liu et al. 2022,
Figure 4 and section 2.6), independent of archspec's lowering.
"""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import archspec
from archspec.blocks import BLOCKS

FAMILIES = sorted(t for t, cls in BLOCKS.items()
                  if cls.__module__.endswith(".inverted_bottleneck"))


def one_block(block: dict, in_channels: int, out_channels: int, stride: int, size: int = 16,
              **network) -> archspec.ArchGraph:
    """A network whose only stage is one block: patchify 1x1 stem to `in_channels`, the block,
    then a 10-class head."""
    spec = {
        "name": "one_block",
        "input": {"image_size": size},
        "stem": {"type": "patchify", "out_channels": in_channels, "patch_size": 1,
                 "norm": "none"},
        "stages": {"depths": [1], "widths": [out_channels], "strides": [stride]},
        "block": block,
        "head": {"num_classes": 10},
        "zero_init_residual": False,
        **network,
    }
    return archspec.resolve(archspec.load(spec))


def block_module(graph):
    torch.manual_seed(0)
    return archspec.to_module(graph), graph.groups["stages.0.blocks.0"]


GRID = list(itertools.product(FAMILIES, [1, 2], [(16, 16), (16, 24)]))


def test_both_families_are_registered():
    assert FAMILIES == ["convnext", "inverted_bottleneck"]


@pytest.mark.parametrize("family,stride,widths", GRID,
                         ids=[f"{f}-s{s}-{a}to{b}" for f, s, (a, b) in GRID])
def test_plan_matches_module_params_shape_and_gradients(family, stride, widths):
    d_in, d_out = widths
    graph = one_block({"type": family}, d_in, d_out, stride)
    model, group = block_module(graph)
    block = model.get_submodule(group.id)
    assert sum(p.numel() for p in block.parameters()) == group.params
    seen = {}
    block.register_forward_hook(lambda m, i, o: seen.__setitem__("out", tuple(o.shape[1:])))
    x = torch.randn(2, 3, 16, 16)
    model.train()
    model(x).square().mean().backward()
    assert seen["out"] == group.out_shape == (d_out, 16 // stride, 16 // stride)
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"


@pytest.mark.parametrize("stride,widths,adds", [
    (1, (16, 16), True), (2, (16, 16), False), (1, (16, 24), False), (2, (16, 24), False)])
def test_inverted_residual_adds_input_only_when_stride_1_and_widths_match(stride, widths, adds):
    """MobileNetV2: with the branch silenced (last BN's weight and bias zero) a block with a
    residual returns its input unchanged, and one without returns zeros."""
    d_in, d_out = widths
    graph = one_block({"type": "inverted_bottleneck"}, d_in, d_out, stride)
    assert any(n.kind == "add" for n in graph.under("stages.0.blocks.0")) == adds
    model, group = block_module(graph)
    block = model.get_submodule(group.id).eval()
    last_norm = block.get_submodule("norm3")
    torch.nn.init.zeros_(last_norm.weight)
    torch.nn.init.zeros_(last_norm.bias)
    x = torch.randn(2, d_in, 16, 16)
    with torch.no_grad():
        y = block(x)
    if adds:
        assert torch.equal(y, x)
    else:
        assert y.shape == (2, d_out, 16 // stride, 16 // stride)
        assert torch.count_nonzero(y) == 0


def test_projection_shortcut_when_asked():
    """Roadmap step 5: a downsampling block keeps a residual through a strided 1x1 + norm."""
    graph = one_block({"type": "inverted_bottleneck", "shortcut": "projection"}, 16, 24, 2)
    ids = {n.id: n for n in graph.under("stages.0.blocks.0")}
    conv = ids["stages.0.blocks.0.downsample.0"]
    assert (conv.kernel_size, conv.stride, conv.out_channels) == (1, 2, 24)
    assert ids["stages.0.blocks.0.downsample.1"].kind == "batch_norm"
    assert "stages.0.blocks.0.add" in ids


def test_expansion_one_has_no_expand_conv_and_expand_from_output():
    t1 = one_block({"type": "inverted_bottleneck", "expand_ratio": 1}, 32, 16, 1)
    names = [n.name for n in t1.under("stages.0.blocks.0")]
    assert names == ["conv_dw", "norm2", "act2", "conv_pwl", "norm3"]
    t6 = one_block({"type": "inverted_bottleneck"}, 16, 24, 1)
    assert t6.node("stages.0.blocks.0.conv_pw").out_channels == 16 * 6
    out = one_block({"type": "inverted_bottleneck", "expand_ratio": 4, "expand_from": "output"},
                    16, 24, 1)
    assert out.node("stages.0.blocks.0.conv_pw").out_channels == 24 * 4


def test_grouped_kxk_conv():
    graph = one_block({"type": "inverted_bottleneck", "groups": 8}, 16, 16, 1)
    assert graph.node("stages.0.blocks.0.conv_dw").groups == 8
    model, group = block_module(graph)
    assert sum(p.numel() for p in model.get_submodule(group.id).parameters()) == group.params


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def _randomize(module):
    """Random affine and running statistics, so a wrong wiring shows in the output."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in itertools.chain(module.named_parameters(), module.named_buffers()):
            if t.dtype.is_floating_point:
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if "var" in name or "gamma" in name
                        else torch.randn(t.shape, generator=g) * 0.5)


def test_inverted_residual_equals_the_paper_equations():
    """MobileNetV2 Table 1: 1x1 conv, ReLU6 -> 3x3 dwise s=1, ReLU6 -> linear 1x1 conv, + input
    (each conv followed by BN), computed here with torch.nn.functional."""
    graph = one_block({"type": "inverted_bottleneck"}, 16, 16, 1, activation="relu6")
    model, group = block_module(graph)
    blk = model.get_submodule(group.id).eval()
    _randomize(blk)
    x = torch.randn(2, 16, 16, 16)
    with torch.no_grad():
        h = F.relu6(_bn(F.conv2d(x, blk.conv_pw.weight), blk.norm1))
        h = F.relu6(_bn(F.conv2d(h, blk.conv_dw.weight, padding=1, groups=96), blk.norm2))
        expected = _bn(F.conv2d(h, blk.conv_pwl.weight), blk.norm3) + x
        assert torch.allclose(blk(x), expected, atol=1e-5)


@pytest.mark.parametrize("pointwise", ["linear", "conv"])
def test_convnext_block_equals_the_paper_equations(pointwise):
    """ConvNeXt (Liu et al. 2022, Fig. 4 and its released pseudo-code): dwconv 7x7 -> LayerNorm
    over channels (eps 1e-6) -> pwconv C->4C -> GELU -> pwconv 4C->C -> x gamma -> + input."""
    graph = one_block({"type": "convnext", "pointwise": pointwise}, 16, 16, 1)
    model, group = block_module(graph)
    blk = model.get_submodule(group.id).eval()
    _randomize(blk)
    p = dict(blk.named_parameters())
    x = torch.randn(2, 16, 9, 9)
    with torch.no_grad():
        y = F.conv2d(x, p["conv_dw.weight"], p["conv_dw.bias"], padding=3, groups=16)
        mean = y.mean(1, keepdim=True)
        var = y.var(1, keepdim=True, unbiased=False)
        y = (y - mean) / torch.sqrt(var + 1e-6)
        y = y * p["norm.weight"].view(1, -1, 1, 1) + p["norm.bias"].view(1, -1, 1, 1)
        w1 = p["mlp.fc1.weight"].reshape(64, 16)
        w2 = p["mlp.fc2.weight"].reshape(16, 64)
        y = torch.einsum("oc,nchw->nohw", w1, y) + p["mlp.fc1.bias"].view(1, -1, 1, 1)
        y = 0.5 * y * (1 + torch.erf(y / 2 ** 0.5))  # GELU, exact form
        y = torch.einsum("oc,nchw->nohw", w2, y) + p["mlp.fc2.bias"].view(1, -1, 1, 1)
        expected = x + p["layer_scale.gamma"].view(1, -1, 1, 1) * y
        assert torch.allclose(blk(x), expected, atol=1e-5)


def test_convnext_sublayer_names_follow_timm():
    graph = one_block({"type": "convnext"}, 16, 16, 1)
    names = [n.id.removeprefix("stages.0.blocks.0.") for n in graph.under("stages.0.blocks.0")]
    assert names == ["conv_dw", "to_channels_last", "norm", "mlp.fc1", "mlp.act", "mlp.fc2",
                     "to_channels_first", "layer_scale", "add"]
    assert graph.node("stages.0.blocks.0.norm").in_shape == (16, 16, 16)
    assert graph.node("stages.0.blocks.0.mlp.fc1").out_shape == (16, 16, 64)  # (H, W, 4C)


@pytest.mark.parametrize("init", [None, 0.5])
def test_layer_scale_starts_at_its_init_value(init):
    block = {"type": "convnext"} if init is None else {"type": "convnext", "layer_scale_init": init}
    graph = one_block(block, 16, 16, 1)
    model, group = block_module(graph)
    gamma = model.get_submodule(group.id).layer_scale.gamma
    assert torch.equal(gamma, torch.full((16,), 1e-6 if init is None else init))


def test_convnext_init_is_trunc_normal_with_zero_biases():
    graph = archspec.resolve("specs/convnext_atto.yaml", ["input.image_size=32"])
    torch.manual_seed(0)
    model = archspec.to_module(graph)
    fc1 = torch.cat([model.get_submodule(n.id).weight.flatten() for n in graph.nodes
                     if n.id.endswith("mlp.fc1")])
    assert abs(fc1.std().item() - 0.02) < 0.001  # ~200k draws: the std is 0.02 to within 0.1%
    for n in graph.nodes:
        if n.kind in ("conv2d", "linear") and n.bias:
            assert torch.count_nonzero(model.get_submodule(n.id).bias) == 0, n.id


def test_drop_path_follows_the_linear_schedule_and_is_identity_in_eval():
    spec = archspec.load("specs/convnext_atto.yaml",
                         ["input.image_size=32", "drop_path_rate=0.3"])
    graph = archspec.resolve(spec)
    rates = [n.attrs["rate"] for n in graph.nodes if n.kind == "drop_path"]
    # 12 blocks; the first block's rate is 0 (no node), then 0.3 * k / 11 (timm's linspace)
    assert len(rates) == 11
    assert rates == pytest.approx([0.3 * k / 11 for k in range(1, 12)])
    torch.manual_seed(0)
    model = archspec.to_module(graph)
    plain = archspec.to_module(archspec.resolve("specs/convnext_atto.yaml",
                                                ["input.image_size=32"]))
    plain.load_state_dict(model.state_dict())
    model.eval()
    plain.eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), plain(x))


def test_drop_path_drops_whole_samples_in_training():
    graph = archspec.resolve(archspec.load({
        "name": "two", "input": {"image_size": 8},
        "stem": {"type": "patchify", "out_channels": 8, "patch_size": 1, "norm": "none"},
        "stages": {"depths": [2], "widths": [8]},
        "block": {"type": "convnext", "layer_scale_init": 1.0},  # a branch of visible size
        "drop_path_rate": 0.5}))
    model, _ = block_module(graph)
    blk = model.get_submodule("stages.0.blocks.1")  # rate 0.5 (the last block)
    assert blk.drop_path.rate == 0.5
    blk.train()
    torch.manual_seed(3)
    x = torch.randn(256, 8, 4, 4)
    with torch.no_grad():
        y = blk(x)
        blk.eval()
        branch = blk(x) - x  # the branch alone (eval: no drop)
    kept = [torch.allclose(y[i], x[i] + branch[i] / 0.5, atol=1e-6) for i in range(256)]
    dropped = [torch.equal(y[i], x[i]) for i in range(256)]
    assert all(k != d for k, d in zip(kept, dropped))  # every sample: all kept or all dropped
    assert 80 < sum(dropped) < 176  # Binomial(256, 0.5): mean 128, sd 8


def test_mixed_families_per_stage():
    """Bottleneck stages 1-2, ConvNeXt stages 3-4 (in-block downsampling: the first ConvNeXt
    block of a stage strides its depthwise conv and projects its shortcut)."""
    spec = archspec.load({
        "name": "mixed", "input": {"image_size": 64},
        "stages": {"depths": [1, 1, 2, 1], "widths": [64, 128, 256, 512],
                   "overrides": {2: {"type": "convnext"}, 3: {"type": "convnext"}}},
        "block": {"type": "bottleneck"}})
    graph = archspec.resolve(spec)
    assert [s.block_type for s in graph.stages] == ["bottleneck"] * 2 + ["convnext"] * 2
    dw = graph.node("stages.2.blocks.0.conv_dw")
    assert (dw.in_channels, dw.stride, dw.kernel_size, dw.groups) == (128, 2, 7, 128)
    assert graph.node("stages.2.blocks.0.downsample.1").kind == "layer_norm"  # the block's norm
    assert graph.node("stages.1.blocks.0.norm3").kind == "batch_norm"
    model = archspec.to_module(graph)
    assert sum(p.numel() for p in model.parameters()) == graph.params
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1000)
