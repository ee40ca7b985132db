"""Selective Kernel (Li et al. 2019): what the SK conv computes (the paper's equations, written
here on the module's own weights), its tensor layout against timm's published state dicts
(../shared/reference/state_dict_keys), its grid of shapes, and its errors."""
from __future__ import annotations

import itertools
import json

import pytest
import torch

import archspec
from archspec.blocks import BLOCKS
from blockutil import BLOCK, check_block_against_module, one_block, resolve
from conftest import ROOT, SPEC_DIR

SK_TYPES = sorted(t for t in BLOCKS if t.startswith("sk_"))
SK_SPECS = sorted(p for p in SPEC_DIR.glob("*.yaml")
                  if archspec.load(p).block is not None
                  and getattr(archspec.load(p).block, "type", None) in SK_TYPES)
KEYS_DIRS = [base / "shared" / "reference" / "state_dict_keys"
             for base in (ROOT.parent, ROOT.parent.parent)]
KEYS_DIR = next((d for d in KEYS_DIRS if d.is_dir()), None)


def test_the_zoo_has_the_four_sk_networks():
    assert {p.stem for p in SK_SPECS} == {"skresnet18", "skresnet34", "skresnet50",
                                          "skresnext50_32x4d"}


@pytest.mark.skipif(KEYS_DIR is None, reason="../shared/reference/state_dict_keys not found")
@pytest.mark.parametrize("path", SK_SPECS, ids=[p.stem for p in SK_SPECS])
def test_tensors_are_laid_out_as_timms(path):
    """Every tensor of timm's state dict, in order and shape (names differ: `path0` for
    `paths.0`, `stages.i.blocks.j` for `layerI.j`)."""
    reference = json.loads((KEYS_DIR / f"{path.stem}.json").read_text())["keys"]
    model = archspec.to_module(archspec.resolve(path, ["input.image_size=32"]))
    ours = [(key, list(value.shape)) for key, value in model.state_dict().items()]
    assert [shape for _, shape in ours] == [shape for _, shape in reference]
    for (mine, _), (theirs, _) in zip(ours, reference):
        assert mine.rsplit(".", 1)[1] == theirs.rsplit(".", 1)[1], (mine, theirs)


def _sk_module(block: dict, in_channels: int = 16, out: int = 32):
    graph = resolve(one_block(block, in_channels, out, size=8))
    model = archspec.to_module(graph).eval()
    torch.manual_seed(0)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return graph, model


@pytest.mark.parametrize("split_input", [True, False])
def test_sk_conv_computes_the_papers_select(split_input):
    """Li et al. eqs. (1)-(6): U = sum of the paths; s = pool(U); z = fc(s); a = softmax over
    the paths of the per-path logits; V = sum of a_p x U_p. Written path by path on the
    module's weights, with the input split into contiguous shares when `split_input`."""
    graph, model = _sk_module({"type": "sk_basic", "split_input": split_input,
                               "attention_divisor": 4})
    sk = model.get_submodule(f"{BLOCK}.conv1")
    x = torch.randn(2, 16, 8, 8)
    shares = x.chunk(2, 1) if split_input else (x, x)
    paths = [torch.relu(sk.get_submodule(f"path{p}.bn")(
        sk.get_submodule(f"path{p}.conv")(shares[p]))) for p in range(2)]
    s = (paths[0] + paths[1]).mean((2, 3), keepdim=True)
    z = torch.relu(sk.attn.bn(sk.attn.fc_reduce(s)))
    logits = sk.attn.fc_select(z).unflatten(1, (2, -1))
    a = logits.softmax(1)
    expected = paths[0] * a[:, 0] + paths[1] * a[:, 1]
    assert sk.path1.conv.dilation == (2, 2) and sk.path0.conv.dilation == (1, 1)
    with torch.no_grad():
        assert torch.allclose(sk(x), expected, atol=1e-5)


GRID = list(itertools.product(SK_TYPES, [1, 2], [(64, 64), (32, 64)], [1, 4]))


@pytest.mark.parametrize("kind,stride,widths,groups", GRID)
def test_plan_matches_module(kind, stride, widths, groups):
    block = {"type": kind, "attention_divisor": 4}
    if kind == "sk_bottleneck":
        block.update(groups=groups, width_per_group=16 if groups > 1 else 64)
    elif groups > 1:
        pytest.skip("the basic layout has no groups")
    graph = resolve(one_block(block, widths[0], widths[1], stride))
    check_block_against_module(graph)
    sk = next(g for g in graph.groups.values() if g.kind == "selective_kernel")
    assert sk.role == "attention" and graph.groups[BLOCK].is_block
    assert graph.groups[BLOCK].out_shape == (widths[1], 8 // stride, 8 // stride)


def test_input_width_not_divisible_by_the_paths_is_a_located_error():
    with pytest.raises(archspec.SpecError) as err:
        resolve(one_block({"type": "sk_basic", "dilations": [1, 2, 3]}, 16, 16))
    assert "stages[0].block.split_input" in str(err.value) or "block.split_input" in str(err.value)
    assert "divisible by its 3 paths" in str(err.value)


def test_groups_that_do_not_divide_the_width_are_a_located_error():
    with pytest.raises(archspec.SpecError) as err:
        resolve(one_block({"type": "sk_bottleneck", "groups": 2, "width_per_group": 12},
                          16, 64))
    assert "block.groups" in str(err.value) and "hint: groups:" in str(err.value)
