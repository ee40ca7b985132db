"""Efficient channel attention (Wang et al. 2020) and the one `attention:` setting: the kernel
against the paper's rule, what the module computes, where it sits on each family, its counts,
the `se:` shorthand, and the errors."""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pydantic
import pytest
import torch

import archspec
from archspec.blocks.eca import adaptive_kernel
from blockutil import BLOCK, check_block_against_module, one_block, resolve
from conftest import REFERENCE_DIR as REFERENCE, ROOT, SPEC_DIR
from test_se import NET as SE_NET

ECA = {"type": "eca"}


def _paper_kernel(channels: int, gamma: float = 2, b: float = 1) -> int:
    """ECA-Net eq. 12: k = |log2(C) / gamma + b / gamma|_odd, the nearest odd number (ties go
    up, as the authors' code does), and at least 3 (timm's EcaModule)."""
    t = math.log2(channels) / gamma + b / gamma
    below = 2 * math.floor((t - 1) / 2) + 1  # the largest odd number <= t
    nearest = below if t - below < below + 2 - t else below + 2
    return max(nearest, 3)


@pytest.mark.parametrize("channels", [8, 24, 64, 96, 128, 256, 320, 512, 1000, 1024, 1280,
                                      2048, 4096, 1 << 16])
def test_adaptive_kernel_is_the_papers(channels):
    assert adaptive_kernel(channels) == _paper_kernel(channels)


@pytest.mark.parametrize("gamma,b", [(1, 0), (2, 1), (3, 2), (1.5, 0.5)])
def test_adaptive_kernel_follows_gamma_and_b(gamma, b):
    for channels in (16, 100, 256, 777, 2048):
        assert adaptive_kernel(channels, gamma, b) == _paper_kernel(channels, gamma, b)


@pytest.mark.skipif(REFERENCE is None, reason="needs ../shared/reference")
def test_kernels_of_ecaresnet50d_are_timms():
    """Every ECA conv of the zoo spec has the shape of timm's `se.conv.weight` in that block."""
    keys = json.loads((REFERENCE / "state_dict_keys" / "ecaresnet50d.json").read_text())["keys"]
    timm = [tuple(shape) for name, shape in keys if name.endswith(".se.conv.weight")]
    graph = archspec.resolve(SPEC_DIR / "ecaresnet50d.yaml")
    ours = [shape for n in graph.nodes if n.kind == "channel_conv" for _, shape in n.param_shapes]
    assert ours == timm and len(ours) == 16


def _eca_module(block: dict, channels: int, kernel_size="adaptive"):
    attention = {**ECA, "kernel_size": kernel_size}
    graph = resolve(one_block({**block, "attention": attention}, channels, channels))
    return graph, archspec.to_module(graph).eval().get_submodule(f"{BLOCK}.eca")


@pytest.mark.parametrize("channels,kernel_size", [(64, "adaptive"), (256, "adaptive"), (48, 3),
                                                  (40, 9), (16, 1)])
def test_matches_the_paper_equations(channels, kernel_size):
    """y = x * sigmoid(conv1d_k(mean over positions of x)), the conv zero-padded across the
    channel axis, written here with F.conv1d on the module's weight."""
    _, eca = _eca_module({"type": "bottleneck"}, channels, kernel_size)
    torch.manual_seed(1)
    weight = eca.conv.weight
    torch.nn.init.normal_(weight, std=0.5)
    k = weight.shape[-1]
    expected_k = adaptive_kernel(channels) if kernel_size == "adaptive" else kernel_size
    assert weight.shape == (1, 1, expected_k)
    x = torch.randn(2, channels, 5, 3)
    z = x.mean((2, 3)).unsqueeze(1)                                   # (N, 1, C)
    s = torch.sigmoid(torch.nn.functional.conv1d(z, weight, padding=(k - 1) // 2))
    assert torch.allclose(eca(x), x * s.squeeze(1)[:, :, None, None], atol=1e-6)


BLOCKS = {
    "basic": {"type": "basic"},
    "bottleneck": {"type": "bottleneck"},
    "inverted_bottleneck": {"type": "inverted_bottleneck", "expand_ratio": 2},
}


@pytest.mark.parametrize("family", sorted(BLOCKS))
@pytest.mark.parametrize("channels,kernel_size,stride", [(32, "adaptive", 1), (64, 3, 2),
                                                         (96, 7, 1)])
def test_grid_builds_runs_and_trains(family, channels, kernel_size, stride):
    """ECA on each family that has a place for an attachment: after the branch's last norm,
    `channels x k` parameters more than the same block without it, and backward reaches every
    parameter (checked by `check_block_against_module`)."""
    block = BLOCKS[family]
    spec = one_block({**block, "attention": {**ECA, "kernel_size": kernel_size}}, channels,
                     channels, stride=stride)
    graph = resolve(spec)
    plain = resolve(one_block(block, channels, channels, stride=stride))
    group = graph.groups[f"{BLOCK}.eca"]
    k = adaptive_kernel(channels) if kernel_size == "adaptive" else kernel_size
    assert group.attrs["kernel_size"] == k and group.params == k
    assert graph.params == plain.params + k
    assert graph.macs - plain.macs == channels * k  # the 1-D conv; pool, gate and mul are free
    mul = graph.node(f"{BLOCK}.eca.mul")
    assert graph.node(f"{BLOCK}.eca.pool").inputs == (mul.inputs[0],)
    check_block_against_module(graph)


def test_torch_flop_counter_counts_the_channel_conv():
    """torch's own counter sees C x k multiply-adds for the conv across channels."""
    from torch.utils.flop_counter import FlopCounterMode
    graph, eca = _eca_module({"type": "basic"}, 256)
    with FlopCounterMode(display=False) as counter:
        eca(torch.randn(1, 256, 4, 4))
    assert counter.get_total_flops() == 2 * 256 * 5


def test_se_shorthand_is_attention_type_se():
    """`se: {...}` and `attention: {type: se, ...}` give the same network."""
    short = archspec.resolve(SPEC_DIR / "seresnet50.yaml")
    long = archspec.resolve(SPEC_DIR / "seresnet50.yaml",
                            ["block.se=null", "block.attention={type: se, reduction: 16}"])
    assert (short.params, short.macs) == (long.params, long.macs)
    assert [(n.id, n.kind, n.param_shapes) for n in short.nodes] == \
        [(n.id, n.kind, n.param_shapes) for n in long.nodes]


def test_changing_the_type_in_a_derived_spec_drops_the_old_settings(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "name: base\nbase: " + str(SPEC_DIR / "resnet50d.yaml") +
        "\nblock:\n  attention: {type: se, reduction: 8}\n")
    (tmp_path / "child.yaml").write_text("name: child\nbase: base.yaml\n"
                                         "block:\n  attention: {type: eca}\n")
    child = archspec.resolve(tmp_path / "child.yaml")
    ecaresnet = archspec.resolve(SPEC_DIR / "ecaresnet50d.yaml")
    assert child.params == ecaresnet.params
    assert not any(g.kind == "se" for g in child.groups.values())


def test_diff_names_the_step_both_ways():
    from archspec.diffing import diff
    added = diff(SPEC_DIR / "resnet50d.yaml", SPEC_DIR / "ecaresnet50d.yaml")
    assert [(s.key, s.name) for s in added.steps] == [("eca", "ECA attention added")]
    removed = diff(SPEC_DIR / "ecaresnet50d.yaml", SPEC_DIR / "resnet50d.yaml")
    assert [(s.key, s.name) for s in removed.steps] == [("eca", "ECA attention removed")]


# ---- errors ---------------------------------------------------------------------------------

# test_se's network (8 then 64 channels), with ECA instead of SE
NET = SE_NET.replace("  se:\n    reduction: 32\n",
                     "  attention:\n    type: eca\n    kernel_size: 4\n")


def _validate(tmp_path, text: str) -> tuple[int, str]:
    (tmp_path / "net.yaml").write_text(text)
    run = subprocess.run([sys.executable, str(ROOT / "cli.py"), "validate", "net.yaml"],
                         cwd=tmp_path, capture_output=True, text=True)
    return run.returncode, run.stdout + run.stderr


def test_even_kernel_is_a_located_error(tmp_path):
    code, out = _validate(tmp_path, NET)
    assert code == 2 and "Traceback" not in out
    assert out.startswith("net.yaml:9:18: block.attention.kernel_size: expected an odd kernel")
    assert "got 4" in out and "hint: " in out


def test_kernel_wider_than_the_channels_is_a_located_error(tmp_path):
    code, out = _validate(tmp_path, NET.replace("kernel_size: 4", "kernel_size: 9"))
    assert code == 2 and "Traceback" not in out
    assert out.startswith("net.yaml:9:18: block.attention.kernel_size: expected a kernel of at "
                          "most the block's 8 channels, got 9")
    assert "hint: kernel_size: 7, or remove `attention`" in out


def test_adaptive_kernel_wider_than_few_channels_says_so(tmp_path):
    text = NET.replace("kernel_size: 4", "kernel_size: adaptive").replace(
        "out_channels: 8", "out_channels: 2").replace("widths: [8, 64]", "widths: [2, 64]")
    code, out = _validate(tmp_path, text)
    assert code == 2 and "block.attention.kernel_size: expected a kernel of at most the " \
        "block's 2 channels, got 3 (the adaptive kernel at 2 channels" in out
    assert "hint: kernel_size: 1" in out


def test_se_and_attention_together_is_a_located_error(tmp_path):
    text = NET.replace("    kernel_size: 4\n", "") + "  se: {reduction: 4}\n"
    code, out = _validate(tmp_path, text)
    assert code == 2 and "Traceback" not in out
    assert re.match(r"net\.yaml:8:5: block\.attention: expected `attention` or `se`", out)
    assert "not both" in out and "`se: null` drops an inherited `se`" in out


def test_unknown_attention_type_suggests_the_known_ones(tmp_path):
    code, out = _validate(tmp_path, NET.replace("type: eca", "type: ecaa"))
    assert code == 2 and "block.attention.type: unknown attention type 'ecaa'" in out
    assert "did you mean 'eca'?" in out


def test_a_family_without_a_place_rejects_attention():
    from typing import Literal

    from archspec.blocks.base import BlockSpecBase

    class Plain(BlockSpecBase):
        type: Literal["plain"] = "plain"

    with pytest.raises(pydantic.ValidationError) as exc:
        Plain(attention=ECA)
    [error] = exc.value.errors()
    assert error["loc"] == ("attention",)
    assert "no `attention` on a 'plain' block" in error["msg"]


def test_build_notes_the_adaptive_kernel_once_per_width():
    """The kernel the rule chose is shown (`build`, `validate` print the notes), once per
    width however many blocks have it; a fixed kernel needs no note."""
    graph = archspec.resolve(SPEC_DIR / "ecaresnet50d.yaml")
    notes = [n for n in graph.notes if "ECA kernel" in n]
    assert [n.split(": ", 1)[1].split(" (")[0] for n in notes] == [
        f"ECA kernel at {c} channels: adaptive k = {_paper_kernel(c)}"
        for c in (256, 512, 1024, 2048)]
    fixed = archspec.resolve(SPEC_DIR / "ecaresnet50d.yaml",
                             ["block.attention={type: eca, kernel_size: 3}"])
    assert not any("ECA kernel" in n for n in fixed.notes)
