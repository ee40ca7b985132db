"""Stage and head settings of the MobileNetV2 / ConvNeXt vocabulary: separate downsampling layers,
stage layouts other than four fixed-stride stages, the pre-logits head conv, and the errors these
settings (and the inverted bottleneck's) give.

Expected shapes come from the papers: MobileNetV2 Table 2 (Sandler et al. 2018) and ConvNeXt's
architecture (Liu et al. 2022; ARCHITECTURES.md).
"""
from __future__ import annotations

import textwrap

import pytest

import archspec
from archspec.cli import main
from conftest import SPEC_DIR, resolved


def test_convnext_downsampling_layers_sit_between_stages():
    graph = resolved(SPEC_DIR / "convnext_tiny.yaml")
    assert "stages.0.downsample" not in graph  # stem 96 -> stage 96 at stride 1: none
    for i, (c_in, c_out) in enumerate([(96, 192), (192, 384), (384, 768)], start=1):
        norm = graph.node(f"stages.{i}.downsample.0")
        conv = graph.node(f"stages.{i}.downsample.1")
        assert norm.kind == "layer_norm" and norm.attrs["eps"] == 1e-6
        assert (conv.in_channels, conv.out_channels) == (c_in, c_out)
        assert (conv.kernel_size, conv.stride, conv.padding, conv.bias) == (2, 2, 0, True)
        first = graph.node(f"stages.{i}.blocks.0.conv_dw")
        assert first.stride == 1 and first.in_channels == c_out  # blocks keep the shape
    assert not any(n.id.startswith("stages.") and ".blocks." in n.id and "downsample" in n.id
                   for n in graph.nodes)  # no block shortcut projections
    assert [n.name for n in graph.under("stem")] == ["conv", "norm"]
    assert [n.name for n in graph.under("head")] == ["pool", "norm", "fc"]


def test_downsampling_layer_settings():
    spec = {"name": "d", "input": {"image_size": 32},
            "stem": {"type": "patchify", "out_channels": 8, "patch_size": 2},
            "stages": {"depths": [1, 1], "widths": [16, 32], "strides": [1, 2],
                       "downsample": {"type": "layer", "kernel_size": 3, "norm": "batch_norm",
                                      "bias": False}},
            "norm": "layer_norm", "block": {"type": "convnext"}}
    graph = archspec.resolve(archspec.load(spec))
    # stage 0: stride 1 but the width changes (8 -> 16), so it gets a layer too
    conv0 = graph.node("stages.0.downsample.1")
    assert (conv0.stride, conv0.kernel_size, conv0.padding, conv0.out_shape) == (1, 3, 1,
                                                                                (16, 16, 16))
    assert graph.node("stages.0.downsample.0").kind == "batch_norm"
    assert graph.node("stages.1.downsample.1").out_shape == (32, 8, 8) and not conv0.bias
    # the string shorthand selects the in-block default
    spec["stages"]["downsample"] = "in_block"
    assert "stages.1.downsample" not in archspec.resolve(archspec.load(spec))


def test_mobilenetv2_rows_as_stages():
    """Table 2 of the paper: 224 -> 112 (stem) -> rows at 112, 56, 28, 14, 14, 7, 7."""
    graph = resolved(SPEC_DIR / "mobilenetv2_100.yaml")
    assert [s.out_shape for s in graph.stages] == [
        (16, 112, 112), (24, 56, 56), (32, 28, 28), (64, 14, 14), (96, 14, 14), (160, 7, 7),
        (320, 7, 7)]
    # a residual exactly where stride is 1 and widths match: every block but each row's first
    with_add = [b.id for b in graph.blocks if f"{b.id}.add" in graph]
    assert len(graph.blocks) == 17 and len(with_add) == 17 - 7
    assert all(not b.id.endswith("blocks.0") for b in graph.blocks if b.id in with_add)
    # row 1 (t = 1) has no expansion conv; the others expand 6x
    assert "stages.0.blocks.0.conv_pw" not in graph
    assert graph.node("stages.3.blocks.1.conv_pw").out_channels == 64 * 6
    assert {n.kind for n in graph.nodes if n.kind in ("relu", "relu6")} == {"relu6"}


def test_pre_logits_head_conv():
    graph = resolved(SPEC_DIR / "mobilenetv2_100.yaml")
    assert [n.name for n in graph.under("head")] == ["conv", "conv_norm", "conv_act", "pool",
                                                      "dropout", "fc"]
    conv = graph.node("head.conv")
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.bias) == (320, 1280, 1,
                                                                                  False)
    assert graph.node("head.conv_act").kind == "relu6"
    assert graph.node("head.dropout").attrs["p"] == 0.2


# ---- errors: located, with what was expected, what was found, and a hint --------------------

def _error(tmp_path, text: str, capsys) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    assert main(["validate", str(path)]) == 2
    return capsys.readouterr().err


BASE = """\
    name: bad
    input: {image_size: 32}
    stages:
      depths: [1, 1]
      widths: [16, 32]
"""


@pytest.mark.parametrize("extra,where,message,hint", [
    ("block: {type: inverted_bottleneck, groups: 5}\n", ":6:", "block.groups: expected a divisor "
     "of the kxk conv's width (384, the expansion width of stage 0 block 0), got 5", "groups: 4,"),
    ("block: {type: inverted_bottleneck, kernel_size: 4}\n", ":6:", "block.kernel_size: expected "
     "an odd kernel size", None),
    ("block: {type: inverted_bottleneck, expand_ratio: 0}\n", ":6:", "block.expand_ratio: "
     "expected a value greater than 0, got 0", None),
    ("block: {type: inverted_bottleneck, depthwise_position: middle, pointwise: linear}\n"
     "norm: layer_norm\n", ":6:", "block.pointwise: expected `depthwise_position: first`",
     "pointwise: conv"),
    ("block: {type: convnext, norm: batch_norm}\n", ":6:", "block.pointwise: expected "
     "layer_norm or none", "norm: layer_norm, or pointwise: conv"),
], ids=["groups", "even_kernel", "expand_ratio", "linear_middle", "linear_batch_norm"])
def test_block_setting_errors(tmp_path, capsys, extra, where, message, hint):
    err = _error(tmp_path, BASE + textwrap.indent(extra, "    "), capsys)
    assert f"bad.yaml{where}" in err and message in err, err
    if hint:
        assert "hint: " in err and hint in err, err
    assert "Traceback" not in err


def test_convnext_brings_its_own_layer_norm_into_a_batch_norm_network(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(textwrap.dedent(BASE) + "block: {type: convnext}\nnorm: batch_norm\n")
    graph = archspec.resolve(path)
    assert graph.node("stages.0.blocks.0.norm").kind == "layer_norm"


def test_downsample_errors(tmp_path, capsys):
    err = _error(tmp_path, BASE + """\
      downsample: {type: layer, kernel_size: 0}
    block: {type: convnext}
""", capsys)
    assert "bad.yaml:6:" in err and "stages.downsample.kernel_size: expected a value greater than 0, " \
        "got 0" in err, err
    assert "hint: Kernel of the conv" in err
    err = _error(tmp_path, BASE + """\
      downsample: {type: layers}
    block: {type: convnext}
""", capsys)
    assert "stages.downsample.type: unknown downsampling type 'layers'" in err
    assert "did you mean 'layer'?" in err


def test_head_conv_and_init_errors(tmp_path, capsys):
    err = _error(tmp_path, BASE + """\
    block: {type: inverted_bottleneck}
    head: {conv: {out_channels: 0}}
""", capsys)
    assert "bad.yaml:7:" in err and "head.conv.out_channels: expected a value greater than 0" in err
    err = _error(tmp_path, BASE + """\
    block: {type: inverted_bottleneck}
    init: {type: trunc_normal, std: -1}
""", capsys)
    assert "bad.yaml:7:" in err and "init.std: expected a value greater than 0, got -1" in err


def test_an_even_head_kernel_on_a_1x1_map_is_a_located_error(tmp_path):
    """torch refuses a 2x2 conv on a 1x1 map (padding (k - 1) // 2 = 0): validate must too, or
    what it accepts would not build (hypothesis drew this case in test_properties)."""
    import archspec
    from archspec.errors import SpecError
    spec = tmp_path / "s.yaml"
    spec.write_text("name: t\ninput: {image_size: 16}\nstages: {depths: [1, 1, 1], "
                    "widths: [32, 64, 128]}\nblock: {type: basic}\n"
                    "head: {conv: {kernel_size: 2, out_channels: 64}}\n")
    with pytest.raises(SpecError) as err:
        archspec.resolve(spec)
    (problem,) = err.value.problems
    assert problem.path == "head.conv.kernel_size"
    assert (problem.location.line, problem.location.col) == (5, 28)
    assert "fits the 1x1 feature map" in problem.message
    for kernel in (1, 3):  # an odd kernel keeps the 1x1 map, and builds
        model = archspec.build(spec, [f"head.conv.kernel_size={kernel}"])
        assert model.eval()(__import__("torch").randn(1, 3, 16, 16)).shape == (1, 1000)
