"""Global response norm (Woo et al. 2023, ConvNeXt V2): what it computes, against the paper's
equations (3)-(5) written out here with plain tensor arithmetic; where it sits in the block; that
it starts as the identity; a grid of blocks that build, run and train; its errors. The published
counts of the six ConvNeXt V2 specs are checked by tests/test_reference.py and their tensor layout
by tests/test_weights.py (both read ../shared/reference)."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import archspec
from blockutil import BLOCK, check_block_against_module, one_block, resolve
from conftest import ROOT, SPEC_DIR

V2 = ["convnextv2_atto", "convnextv2_femto", "convnextv2_pico", "convnextv2_nano",
      "convnextv2_tiny", "convnextv2_base"]


def _grn_by_the_paper(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
                      eps: float) -> torch.Tensor:
    """Eqs. (3)-(5) on an (N, C, H, W) tensor, one sample and one channel at a time:
    G_i = ||X_i|| over the positions, N_i = G_i / (sum_j G_j / C + eps), X_i + gamma_i X_i N_i
    + beta_i."""
    out = torch.empty_like(x)
    n, c = x.shape[:2]
    for s in range(n):
        g = [math.sqrt(float((x[s, i] ** 2).sum())) for i in range(c)]
        mean = sum(g) / c
        for i in range(c):
            out[s, i] = x[s, i] + gamma[i] * x[s, i] * (g[i] / (mean + eps)) + beta[i]
    return out


def _randomized(graph):
    torch.manual_seed(0)
    model = archspec.to_module(graph).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model


@pytest.mark.parametrize("pointwise", ["linear", "conv"])
@pytest.mark.parametrize("eps", [1e-6, 0.5])
def test_grn_layer_computes_the_papers_equations(pointwise, eps):
    """The GRN layer alone, channels-last (after ConvNeXt's permute) and channels-first (1x1-conv
    MLP), with random gamma and beta."""
    graph = resolve(one_block({"type": "convnext", "pointwise": pointwise, "grn": {"eps": eps}},
                              8, 8))
    grn = _randomized(graph).get_submodule(f"{BLOCK}.mlp.grn")
    node = graph.node(f"{BLOCK}.mlp.grn")
    assert node.channels_last == (pointwise == "linear")
    x = torch.randn(3, 32, 5, 6) * torch.rand(1, 32, 1, 1) * 3  # channels of unequal energy
    expected = _grn_by_the_paper(x, grn.weight.detach(), grn.bias.detach(), eps)
    with torch.no_grad():
        got = grn(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2) if node.channels_last else grn(x)
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("pointwise", ["linear", "conv"])
def test_convnext_v2_block_by_the_paper(pointwise):
    """ConvNeXt V2 block (Woo et al. Fig. 5): dwconv 7x7 -> LN -> pwconv C->4C -> GELU -> GRN ->
    pwconv 4C->C -> + input, no layer scale; computed from the module's own weights."""
    graph = resolve(one_block({"type": "convnext", "pointwise": pointwise, "grn": {},
                               "layer_scale_init": None}, 8, 8))
    blk = _randomized(graph).get_submodule(BLOCK)
    p = {k: v.detach() for k, v in blk.named_parameters()}
    x = torch.randn(2, 8, 7, 7)
    y = F.conv2d(x, p["conv_dw.weight"], p["conv_dw.bias"], padding=3, groups=8)
    y = F.layer_norm(y.permute(0, 2, 3, 1), (8,), p["norm.weight"], p["norm.bias"], 1e-6)
    y = F.gelu(y @ p["mlp.fc1.weight"].reshape(32, 8).T + p["mlp.fc1.bias"])
    y = _grn_by_the_paper(y.permute(0, 3, 1, 2), p["mlp.grn.weight"], p["mlp.grn.bias"], 1e-6)
    y = y.permute(0, 2, 3, 1) @ p["mlp.fc2.weight"].reshape(8, 32).T + p["mlp.fc2.bias"]
    expected = x + y.permute(0, 3, 1, 2)
    with torch.no_grad():
        assert torch.allclose(blk(x), expected, atol=1e-4)


def test_grn_sits_after_the_mlp_activation_at_the_expanded_width():
    graph = resolve(one_block({"type": "convnext", "grn": {}, "layer_scale_init": None}, 8, 8))
    names = [n.id.removeprefix(BLOCK + ".") for n in graph.under(BLOCK)]
    assert names == ["conv_dw", "to_channels_last", "norm", "mlp.fc1", "mlp.act", "mlp.grn",
                     "mlp.fc2", "to_channels_first", "add"]
    node = graph.node(f"{BLOCK}.mlp.grn")
    assert node.role == "attention" and node.macs == 0 and node.params == 2 * 32
    assert node.param_shapes == (("weight", (32,)), ("bias", (32,)))


def test_grn_before_the_projection_of_a_mobilenet_block():
    """Depthwise in the middle: GRN reads the depthwise conv's activation, before `conv_pwl`."""
    graph = resolve(one_block({"type": "inverted_bottleneck", "grn": {}}, 8, 8))
    names = [n.id.removeprefix(BLOCK + ".") for n in graph.under(BLOCK)]
    assert names[names.index("grn") - 1:names.index("grn") + 2] == ["act2", "grn", "conv_pwl"]


def test_grn_starts_as_the_identity():
    """gamma = beta = 0 at init (the paper's and timm's), so the block starts as V1 without
    layer scale would."""
    graph = resolve(one_block({"type": "convnext", "grn": {}}, 8, 8))
    torch.manual_seed(0)
    grn = archspec.to_module(graph).get_submodule(f"{BLOCK}.mlp.grn")
    assert not grn.weight.any() and not grn.bias.any()
    x = torch.randn(2, 4, 4, 32)
    assert torch.equal(grn(x), x)


# Linear pointwise layers need the depthwise conv first: no `inverted_bottleneck` with `linear`
GRID = [(f, p, s, w) for f, p, s, w in itertools.product(
    ["convnext", "inverted_bottleneck"], ["linear", "conv"], [1, 2], [(16, 16), (16, 24)])
    if (f, p) != ("inverted_bottleneck", "linear")]


@pytest.mark.parametrize("family,pointwise,stride,widths", GRID,
                         ids=[f"{f}-{p}-s{s}-{a}to{b}" for f, p, s, (a, b) in GRID])
def test_grid_builds_runs_and_every_parameter_gets_a_gradient(family, pointwise, stride, widths):
    block = {"type": family, "pointwise": pointwise, "grn": {"eps": 1e-5}}
    graph = resolve(one_block(block, widths[0], widths[1], stride,
                              norm="layer_norm" if family == "convnext" else "batch_norm"))
    check_block_against_module(graph)  # GRN's gamma and beta included
    grns = [n for n in graph.under(BLOCK) if n.kind == "global_response_norm"]
    assert len(grns) == 1 and grns[0].attrs["eps"] == 1e-5


def test_the_zoo_has_the_six_convnext_v2_networks():
    zoo = {p.stem for p in SPEC_DIR.glob("convnextv2_*.yaml")}
    assert zoo == set(V2)
    for name in V2:
        graph = archspec.resolve(SPEC_DIR / f"{name}.yaml")
        assert not any(n.kind == "layer_scale" for n in graph.nodes), name
        assert sum(n.kind == "global_response_norm" for n in graph.nodes) == \
            sum(s.depth for s in graph.stages), name


@pytest.mark.parametrize("name,version1", [("convnextv2_atto", "convnext_atto"),
                                           ("convnextv2_tiny", "convnext_tiny")])
def test_v2_adds_two_parameters_per_expanded_channel_and_no_macs(name, version1):
    """V2 - V1: + gamma, beta of GRN at 4C per block, - layer scale at C per block."""
    v1, v2 = (archspec.resolve(SPEC_DIR / f"{n}.yaml") for n in (version1, name))
    expected = sum(s.depth * (2 * 4 * s.width - s.width) for s in v2.stages)
    assert v2.params - v1.params == expected and v2.macs == v1.macs


def test_bad_eps_is_a_located_error(capsys, monkeypatch):
    from archspec.cli import main
    monkeypatch.chdir(ROOT)
    assert main(["validate", "tests/bad_specs/grn_eps.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tests/bad_specs/grn_eps.yaml:4:14: block.grn.eps: expected a value "
                          "greater than 0, got 0")


def test_grn_on_a_family_without_a_projection_is_an_unknown_setting():
    with pytest.raises(archspec.SpecError) as err:
        resolve(one_block({"type": "bottleneck", "grn": {}}, 16, 64))
    assert "block.grn" in str(err.value) and "unknown setting" in str(err.value)


def test_block_diagram_shows_grn():
    dot = str(archspec.to_dot(archspec.resolve(SPEC_DIR / "convnextv2_tiny.yaml")))
    assert "GELU \u2192 GRN \u2192 linear, 96" in dot
    dot = str(archspec.to_dot(archspec.resolve(SPEC_DIR / "convnextv2_atto.yaml")))
    assert "GELU \u2192 GRN \u2192 1\u00d71, 40" in dot


def test_diff_names_the_global_response_norm_step_both_ways():
    """V1 -> V2 is two named steps, nothing unrecognised, and no "more norms" or "norm swap"
    (GRN is not the block's norm); V2 -> V1 undoes them."""
    forward = archspec.diff(SPEC_DIR / "convnext_tiny.yaml", SPEC_DIR / "convnextv2_tiny.yaml")
    assert sorted(s.name for s in forward.steps) == ["global response norm added",
                                                     "layer scale removed"]
    assert not forward.unrecognised
    back = archspec.diff(SPEC_DIR / "convnextv2_atto.yaml", SPEC_DIR / "convnext_atto.yaml")
    assert sorted(s.name for s in back.steps) == ["global response norm removed",
                                                  "layer scale added"]
    assert not back.unrecognised
