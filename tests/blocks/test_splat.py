"""ResNeSt split attention (Zhang et al. 2020): what SplAt computes, its channel layout (the
reference's, so published checkpoints load), its widths, avd, and its errors."""
from __future__ import annotations

import itertools
import re

import pytest
import torch

import archspec
from blockutil import BLOCK, check_block_against_module, one_block, resolve
from conftest import SPEC_DIR

SPLAT = f"{BLOCK}.conv2"


def _splat(radix: int, groups: int, width_per_group: int = 64, out: int = 256, **block):
    """A one-block network whose SplAt has width floor(out/4 x d/64) x groups; eval mode with
    non-trivial norm statistics and weights, so every term of the equations matters."""
    graph = resolve(one_block({"type": "splat", "radix": radix, "groups": groups,
                               "width_per_group": width_per_group, **block}, 16, out))
    model = archspec.to_module(graph).eval()
    torch.manual_seed(0)
    for name, p in model.named_parameters():
        torch.nn.init.normal_(p, std=0.5 if "fc" in name else 0.2)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return graph, model.get_submodule(SPLAT)


def _reference(splat, x: torch.Tensor, radix: int, groups: int) -> torch.Tensor:
    """ResNeSt eqs. (1)-(3), cardinal group by cardinal group, on the module's weights.

    Layout (ARCHITECTURES.md, the reference implementation): the conv's R*w outputs are
    split-major, so split r of cardinal group k is channels r*w + k*c .. r*w + (k+1)*c (c = w/K);
    the fc2 logits of group k are its R*c outputs ordered (split, channel)."""
    bn0, bn1 = splat.bn0, splat.bn1

    def bn(layer, t, channels):
        return torch.nn.functional.batch_norm(
            t, layer.running_mean[channels], layer.running_var[channels], layer.weight[channels],
            layer.bias[channels], False, 0.0, layer.eps)

    u = torch.relu(bn(bn0, splat.conv(x), slice(None)))
    w = u.shape[1] // radix
    c = w // groups
    a = splat.fc1.out_channels // groups
    outputs = []
    for k in range(groups):
        splits = [u[:, r * w + k * c: r * w + (k + 1) * c] for r in range(radix)]
        s = sum(splits).mean((2, 3))                                   # eq. (1)-(2): gap of U^k
        w1 = splat.fc1.weight[k * a:(k + 1) * a].flatten(1)             # dense layer of group k
        hidden = s @ w1.T + splat.fc1.bias[k * a:(k + 1) * a]
        hidden = torch.relu(bn(bn1, hidden[:, :, None, None], slice(k * a, (k + 1) * a)))
        hidden = hidden.flatten(1)
        w2 = splat.fc2.weight[k * radix * c:(k + 1) * radix * c].flatten(1)
        logits = (hidden @ w2.T + splat.fc2.bias[k * radix * c:(k + 1) * radix * c])
        logits = logits.reshape(-1, radix, c)                          # (split, channel)
        weights = torch.softmax(logits, 1) if radix > 1 else torch.sigmoid(logits)
        outputs.append(sum(weights[:, r, :, None, None] * splits[r] for r in range(radix)))  # (3)
    return torch.cat(outputs, 1)


@pytest.mark.parametrize("radix, groups, width_per_group", [(2, 1, 64), (4, 2, 40), (1, 4, 24),
                                                            (3, 2, 48)])
def test_matches_the_paper_equations_in_the_reference_layout(radix, groups, width_per_group):
    _, splat = _splat(radix, groups, width_per_group)
    x = torch.randn(2, splat.conv.in_channels, 6, 5)
    with torch.no_grad():
        assert torch.allclose(splat(x), _reference(splat, x, radix, groups), atol=1e-5)


def test_radix_one_is_sigmoid_gating():
    _, splat = _splat(1, 4, 24)
    assert isinstance(splat.rsoftmax, torch.nn.Module)
    logits = torch.randn(3, 96, 1, 1)
    assert torch.equal(splat.rsoftmax(logits), torch.sigmoid(logits))
    x = torch.randn(2, splat.conv.in_channels, 4, 4)
    with torch.no_grad():
        u = splat.act0(splat.bn0(splat.conv(x)))
        gate = torch.sigmoid(splat.fc2(splat.act1(splat.bn1(splat.fc1(u.mean((2, 3),
                                                                              keepdim=True))))))
        assert torch.allclose(splat(x), u * gate, atol=1e-6)


@pytest.mark.parametrize("radix, groups", [(2, 1), (2, 4), (4, 2)])
def test_radix_softmax_sums_to_one_over_the_splits_of_each_group(radix, groups):
    _, splat = _splat(radix, groups, 64 // groups)
    c = 64 // groups
    logits = torch.randn(3, groups * radix * c, 1, 1) * 3
    weights = splat.rsoftmax(logits).reshape(3, radix, groups, c)     # split-major out
    assert torch.allclose(weights.sum(1), torch.ones(3, groups, c))
    assert (weights > 0).all()
    # Logits come group-major, then split: logit (k, r, j) becomes weight (r, k, j).
    by_group = logits.reshape(3, groups, radix, c)
    for k, j in itertools.product(range(groups), range(c)):
        assert torch.allclose(weights[:, :, k, j], torch.softmax(by_group[:, k, :, j], 1))


def test_sub_layers_are_named_as_the_reference():
    """timm `SplitAttn` (timm/layers/split_attn.py): conv, bn0, act0, fc1, bn1, act1, fc2,
    rsoftmax; its parameters, shapes included, for ResNeSt-50's first block: 2s1x64d, w = 64,
    conv 64 -> 128 in 2 groups, a = max(64 * 2 / 4, 32) = 32."""
    graph = archspec.resolve(SPEC_DIR / "resnest50d.yaml")
    prefix = "stages.0.blocks.0.conv2."
    params = {f"{n.id[len(prefix):]}.{name}": shape for n in graph.under(prefix[:-1])
              for name, shape in n.param_shapes}
    assert params == {
        "conv.weight": (128, 32, 3, 3),
        "bn0.weight": (128,), "bn0.bias": (128,),
        "fc1.weight": (32, 64, 1, 1), "fc1.bias": (32,),
        "bn1.weight": (32,), "bn1.bias": (32,),
        "fc2.weight": (128, 32, 1, 1), "fc2.bias": (128,),
    }
    modules = [n.name for n in graph.under(prefix[:-1]) if n.is_module]
    assert modules == ["conv", "bn0", "act0", "pool", "fc1", "bn1", "act1", "fc2", "rsoftmax"]


@pytest.mark.parametrize("spec, widths, attention", [
    # (w per stage, a per stage): a = max(w R / 4, 32), a multiple of 8 (ARCHITECTURES.md)
    ("resnest50d", [64, 128, 256, 512], [32, 64, 128, 256]),           # 2s1x64d
    ("resnest50d_1s4x24d", [96, 192, 384, 768], [32, 48, 96, 192]),    # R=1: 24 -> 32, 48, ...
    ("resnest50d_4s2x40d", [80, 160, 320, 640], [80, 160, 320, 640]),  # R=4: w R / 4 = w
])
def test_widths_and_attention_widths(spec, widths, attention):
    graph = archspec.resolve(SPEC_DIR / f"{spec}.yaml")
    for i, (w, a) in enumerate(zip(widths, attention)):
        node = f"stages.{i}.blocks.0.conv2"
        assert graph.node(f"{node}.sum_weighted" if graph.groups[node].attrs["radix"] > 1
                          else f"{node}.scale").out_channels == w
        assert graph.node(f"{node}.fc1").out_channels == a


def test_attention_width_rounds_to_a_multiple_of_8():
    """w = 200, R = 1: w R / 4 = 50 -> 48 (nearest multiple of 8)."""
    graph = resolve(one_block({"type": "splat", "radix": 1}, 16, 800))
    assert graph.node(f"{SPLAT}.fc1").out_channels == 48


@pytest.mark.parametrize("avd_first", [False, True])
def test_avd_moves_the_stride_to_an_average_pool(avd_first):
    graph = resolve(one_block({"type": "splat", "avd_first": avd_first}, 16, 64, stride=2))
    children = graph.groups[BLOCK].children
    pool = "avd_first" if avd_first else "avd_last"
    assert children.index(pool) == children.index("conv2") + (-1 if avd_first else 1)
    node = graph.node(f"{BLOCK}.{pool}")
    assert (node.kind, node.kernel_size, node.stride, node.padding) == ("avg_pool", 3, 2, 1)
    assert graph.node(f"{SPLAT}.conv").stride == 1
    model = archspec.to_module(graph)
    layer = model.get_submodule(f"{BLOCK}.{pool}")
    assert isinstance(layer, torch.nn.AvgPool2d) and layer.count_include_pad


def test_no_avd_in_unstrided_blocks_and_when_off():
    stride1 = resolve(one_block({"type": "splat"}, 16, 64, stride=1))
    off = resolve(one_block({"type": "splat", "avd": False}, 16, 64, stride=2))
    for graph in (stride1, off):
        assert not {"avd_first", "avd_last"} & set(graph.groups[BLOCK].children)
    assert off.node(f"{SPLAT}.conv").stride == 2


GRID = list(itertools.product([1, 2], [(1, 1), (2, 1), (1, 2), (4, 2)], [(16, 64), (64, 64)],
                              [False, True]))


@pytest.mark.parametrize("stride, radix_groups, channels, avd_first", GRID)
def test_plan_matches_module(stride, radix_groups, channels, avd_first):
    radix, groups = radix_groups
    c_in, c_out = channels
    graph = resolve(one_block({"type": "splat", "radix": radix, "groups": groups,
                               "width_per_group": 64 // groups, "avd_first": avd_first},
                              c_in, c_out, stride=stride))
    check_block_against_module(graph)


def test_shortcut_default_is_avg_down():
    graph = resolve(one_block({"type": "splat"}, 16, 64, stride=2))
    assert graph.node(f"{BLOCK}.downsample.0").kind == "avg_pool"


# ---- errors ---------------------------------------------------------------------------------

def _error(tmp_path, block: str) -> str:
    path = tmp_path / "net.yaml"
    path.write_text("name: net\ninput: {image_size: 32}\n"
                    "stages: {depths: [1, 1], widths: [64, 256]}\n"
                    f"block:\n  type: splat\n{block}")
    with pytest.raises(archspec.SpecError) as exc:
        archspec.resolve(path)
    # The file as "net.yaml", however the message spells its directory (absolute or relative).
    return re.sub(r"^\S*net\.yaml", "net.yaml", str(exc.value), flags=re.M)


def test_radix_below_one(tmp_path):
    message = _error(tmp_path, "  radix: 0\n")
    assert message.startswith("net.yaml:6:10: block.radix: expected ")
    assert "greater than or equal to 1, got 0\n  hint: Splits per cardinal group (R, at least 1)" \
        in message


def test_width_not_divisible_by_groups_times_radix(tmp_path):
    # Stage 0: out 64, planes 16, w = 16; radix 3 does not divide it.
    message = _error(tmp_path, "  radix: 3\n")
    assert message.startswith("net.yaml:6:10: block.radix: expected the split-attention width (16) "
                              "divisible by groups x radix (1 x 3 = 3), got a remainder of 1")
    assert "hint: radix: 2, or change width_per_group" in message


def test_attention_width_not_divisible_by_groups(tmp_path):
    # w = floor(16 * 4 / 64) * 3 = 3, a = 32 (the minimum), fc1 has 3 groups.
    message = _error(tmp_path, "  radix: 1\n  groups: 3\n  width_per_group: 4\n")
    assert message.startswith("net.yaml:7:11: block.groups: expected the attention width (32) "
                              "divisible by groups, got groups 3")
    assert "hint: attention_divisor: 24 with attention_min_channels: 48, or another groups" \
        in message
    # The hint works: with it the same block resolves, and its attention width is 48.
    graph = archspec.resolve(tmp_path / "net.yaml", ["block.attention_divisor=24",
                                                     "block.attention_min_channels=48"])
    assert graph.node("stages.0.blocks.0.conv2.fc1").out_channels == 48


def test_avd_first_without_avd(tmp_path):
    message = _error(tmp_path, "  avd: false\n  avd_first: true\n")
    assert message.startswith("net.yaml:7:14: block.avd_first: expected `avd: true` with "
                              "`avd_first: true`")


def test_width_below_one(tmp_path):
    message = _error(tmp_path, "  width_per_group: 2\n")
    assert "block.width_per_group: expected a split-attention width of at least 1, got 0.5" \
        in message
