"""Careless and hostile specs: strict types, look-alike names, implausible sizes, and the
crashes the property tests found, kept as regression tests (docs/robustness.md)."""
from __future__ import annotations

import os
import re

import pytest

import archspec
from archspec.errors import SpecError
from conftest import ROOT

SMALL = ("name: small\ninput: {image_size: 32}\nstages: {depths: [1, 1], widths: [8, 16]}\n"
         "block: {type: bottleneck}\n")


def spec_with(tmp_path, extra: str, base: str = SMALL):
    keys = {line.split(":")[0] for line in extra.splitlines() if line and line[0] != " "}
    kept = [line for line in base.splitlines() if line.split(":")[0] not in keys]
    path = tmp_path / "s.yaml"
    path.write_text("\n".join(kept) + "\n" + extra)
    return path


@pytest.mark.parametrize("extra, message, hint", [
    ("input: {image_size: true}\n", "input.image_size: expected a valid integer or a valid "
     "list, got true", "`true` is a YAML boolean, not a number"),
    ("head: {num_classes: '10'}\n", "head.num_classes: expected a valid integer, got '10'",
     "quoted, '10' is text: write 10 without quotes"),
    ("head: {num_classes: 10.0}\n", "head.num_classes: expected a valid integer, got 10.0",
     "this setting takes an integer: write 10"),
    ("zero_init_residual: 1\n", "zero_init_residual: expected a valid boolean, got 1",
     "write true or false"),
    ("init: {type: trunc_normal, std: .inf}\n", "init.std: expected a finite number, got inf",
     None),
    ("norm: {type: batch_norm, eps: .nan}\n", "norm.eps: expected a finite number, got nan",
     None),
])
def test_strict_types(tmp_path, extra, message, hint):
    """A YAML boolean is not a number, a quoted number is text, 10.0 is not an integer, and
    no setting is infinite (an infinite eps or std makes the output ignore the input)."""
    with pytest.raises(SpecError) as info:
        archspec.load(spec_with(tmp_path, extra))
    text = str(info.value)
    assert message in text
    if hint:
        assert f"hint: {hint}" in text


@pytest.mark.parametrize("written, shown", [
    ("bottleneck ", "it has spaces around it"),
    ("b\u043ettleneck", "it has U+043E CYRILLIC SMALL LETTER O, not an ASCII letter"),
    ("bottle\u200bneck", "it has U+200B ZERO WIDTH SPACE, not an ASCII letter"),
    ("\uff42ottleneck", "it has U+FF42 FULLWIDTH LATIN SMALL LETTER B, not an ASCII letter"),
])
def test_look_alike_names_get_a_did_you_mean(tmp_path, written, shown):
    path = spec_with(tmp_path, f"block: {{type: '{written}'}}\n")
    with pytest.raises(SpecError, match=f"did you mean 'bottleneck'\\? .* only looks like it: "
                                        f"{re.escape(shown)}"):
        archspec.load(path)


def test_look_alike_setting_name(tmp_path):
    path = spec_with(tmp_path, "n\u0430me: x\n")
    with pytest.raises(SpecError, match="unknown setting 'n\u0430me'\n  hint: did you mean "
                                        "'name'\\? .* U\\+0430 CYRILLIC SMALL LETTER A"):
        archspec.load(path)


@pytest.mark.parametrize("extra, found", [
    ("input: {image_size: 100000}\n", "MACs per image by the stem"),
    ("stages: {depths: [1000000], widths: [8]}\n", "1,000,000 blocks"),
    ("stages: {depths: [1], widths: [10000000]}\n", "parameters by stages[0].blocks[0]"),
    ("head: {num_classes: 100000000000000}\n", "parameters by the head"),
])
def test_implausibly_large_networks_are_refused_while_resolving(tmp_path, extra, found):
    """Refused from the counts alone, before any memory is allocated; the hint names the
    environment variable that raises the limit."""
    with pytest.raises(SpecError, match=f"{re.escape(found)}.*over the limit of .*\n  hint: if this "
                                        f"spec is legitimate, raise the limit: ARCHSPEC_MAX_"):
        archspec.resolve(spec_with(tmp_path, extra))


def test_size_limit_can_be_raised(tmp_path, monkeypatch):
    path = spec_with(tmp_path, "stages: {depths: [30], widths: [8]}\n")
    monkeypatch.setenv("ARCHSPEC_MAX_BLOCKS", "20")
    with pytest.raises(SpecError, match="30 blocks, over the limit of 20 blocks"):
        archspec.resolve(path)
    monkeypatch.setenv("ARCHSPEC_MAX_BLOCKS", "30")
    assert archspec.resolve(path).params > 0


def test_batch_norm_after_global_pooling_is_a_1d_norm(tmp_path):
    """Found by the issue's fuzzing (638 of 6,715 valid specs): `head.norm: batch_norm` passed
    validate, then forward raised torch's 'expected 4D input (got 2D input)'."""
    import torch
    path = spec_with(tmp_path, "head: {norm: batch_norm, num_classes: 10}\n")
    graph = archspec.resolve(path)
    model = archspec.to_module(graph)
    assert isinstance(model.head.norm, torch.nn.BatchNorm1d)
    assert sum(p.numel() for p in model.parameters()) == graph.params
    model.train()
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    model.eval()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_tiny_se_reduction_is_rejected_not_overflowing(tmp_path):
    """Found by hypothesis: `se: {reduction: 5e-324}` made C / r infinite (OverflowError)."""
    path = spec_with(tmp_path, "block: {type: bottleneck, se: {reduction: 5.0e-324}}\n")
    with pytest.raises(SpecError, match=r"block.se.reduction: expected a value greater than or "
                                        r"equal to 1, got 5e-324"):
        archspec.resolve(path)


CONVNEXT_IN_BLOCK = """\
name: convnext_in_block
description: ConvNeXt blocks (conv MLP, channels-first layer norms) downsampling in the block
input: {image_size: 32}
stem: {type: patchify, patch_size: 2, out_channels: 16, norm: layer_norm}
stages:
  depths: [1, 1]
  widths: [16, 32]
  strides: [2, 2]
block: {type: convnext, pointwise: conv, norms: after_every_conv}
head: {norm: layer_norm, num_classes: 4}
"""


def test_convnext_in_block_downsampling_trains(tmp_path):
    """torch 2.13's CPU backward aborted ("double free or corruption") on the permuted output
    of a channels-first layer norm feeding a strided 1x1 conv, the pattern ConvNeXt blocks with
    in-block downsampling make (the stem's norm into the first shortcut). Trained here for a
    few steps in a child process, so that a native crash fails this test, not the suite."""
    import subprocess
    import sys
    spec = tmp_path / "convnext_in_block.yaml"
    spec.write_text(CONVNEXT_IN_BLOCK)
    graph = archspec.resolve(spec)
    feeds = {i for n in graph.nodes if n.kind == "conv2d" and n.kernel_size == 1
             and n.stride == 2 for i in n.inputs}
    assert any(graph.node(i).kind == "layer_norm" and not graph.node(i).channels_last
               for i in feeds), "the spec no longer has the pattern this test is about"
    proc = subprocess.run(
        [sys.executable, "-m", "archspec.cli", "train", str(spec), "--data", "synthetic",
         "--epochs", "1", "--synthetic-samples", "32", "--batch-size", "8",
         "--out", str(tmp_path / "run"), "--no-progress"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "run" / "last.pt").is_file()


def test_channels_first_layer_norm_keeps_the_input_memory_format():
    import torch
    from archspec.lower.torch import LayerNorm2d
    norm = LayerNorm2d(8)
    x = torch.randn(2, 8, 5, 5)
    assert norm(x).is_contiguous()
    y = norm(x.contiguous(memory_format=torch.channels_last))
    assert y.is_contiguous(memory_format=torch.channels_last)
    reference = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (8,), norm.weight,
                                               norm.bias, norm.eps).permute(0, 3, 1, 2)
    torch.testing.assert_close(norm(x), reference)


# ---- docs/robustness.md says what the code does ---------------------------------------------

def test_documented_limits_are_the_real_ones():
    from archspec.loader import LIMITS
    text = (ROOT / "docs" / "robustness.md").read_text()
    rows = {env: default for default, env in
            re.findall(r"^\| [^|]+ \| (\d+) \| `(ARCHSPEC_\w+)` \|", text, re.M)}
    assert rows == {limit.env: str(limit.default) for limit in LIMITS.values()}


def test_documented_messages_are_the_real_ones(capsys, monkeypatch):
    import cli
    monkeypatch.chdir(ROOT)
    text = (ROOT / "docs" / "robustness.md").read_text()
    shown = re.findall(r"```text\n\$ archspec validate (tests/bad_specs/\S+)\n(.*?)```", text,
                       re.S)
    assert shown
    for path, output in shown:
        assert cli.main(["validate", path]) == 2
        assert capsys.readouterr().err == output
