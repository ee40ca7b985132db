"""The timm-shaped model API (docs/api.md): build's timm keywords, feature maps as timm lists them
(../shared/reference/timm_models.md, read here, never copied), forward_intermediates,
reset_classifier(global_pool), model.spec and to_yaml. Witnesses: torch's own ops and counts."""
from __future__ import annotations

import pathlib
import re

import pytest
import torch

import archspec
from conftest import ROOT

TIMM_MD = ROOT.parent / "shared" / "reference" / "timm_models.md"
if not TIMM_MD.exists():  # the worktree layout: /work/wt/iNN next to /work/shared
    TIMM_MD = pathlib.Path("/work/shared/reference/timm_models.md")


def _timm_feature_maps() -> dict[str, list[tuple[int, int]]]:
    """model -> [(channels, reduction)] from the reference table's last column."""
    if not TIMM_MD.exists():
        return {}
    out = {}
    for line in TIMM_MD.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"(\d+@\d+ ?)+", cells[5]):
            out[cells[0]] = [tuple(map(int, m.split("@"))) for m in cells[5].split()]
    return out


TIMM_MAPS = _timm_feature_maps()
ZOO_IN_TIMM = sorted(n for n in archspec.list_models() if n in TIMM_MAPS)


def test_reference_table_covers_the_zoo_families():
    if not TIMM_MAPS:
        pytest.skip("../shared/reference/timm_models.md not present")
    assert {"resnet50", "mobilenetv2_100", "convnext_tiny", "resnest50d"} <= set(ZOO_IN_TIMM)


@pytest.mark.parametrize("name", ZOO_IN_TIMM)
def test_feature_maps_are_timms(name):
    """Channels and reduction of every map, as timm's feature_info lists them (MobileNetV2: 5
    maps, one per reduction; ResNets: the stem's activation at reduction 2 first)."""
    graph = archspec.resolve(name)
    assert [(f["num_chs"], f["reduction"]) for f in graph.features()] == TIMM_MAPS[name]


def _small(name="resnet18", **kwargs):
    torch.manual_seed(0)
    return archspec.build(name, ["input.image_size=64"], **kwargs).eval()


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2_100", "convnext_atto"])
def test_features_only_default_is_every_map_with_torch_shapes(name):
    model = _small(name, features_only=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        maps = model(x)
    assert [m.shape[1] for m in maps] == model.feature_info.channels()
    assert [64 // m.shape[-1] for m in maps] == model.feature_info.reduction()
    if name in TIMM_MAPS:
        assert len(maps) == len(TIMM_MAPS[name])


def test_forward_intermediates_follows_timm():
    model = _small("resnet18")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x), rtol=0, atol=0)
        assert [m.shape[1] for m in maps] == model.feature_info.channels()
        # the stem's map is the output of its activation, before the max pool
        act = model.stem.act1(model.stem.norm1(model.stem.conv1(x)))
        torch.testing.assert_close(maps[0], act, rtol=0, atol=0)
        last2 = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert [m.shape[1] for m in last2] == model.feature_info.channels()[-2:]
        picked = model.forward_intermediates(x, indices=[0, -1], intermediates_only=True)
        torch.testing.assert_close(picked[1], final, rtol=0, atol=0)
        early, maps = model.forward_intermediates(x, indices=[1], stop_early=True)
        assert early.shape == maps[0].shape  # stopped after stages.0
    with pytest.raises(ValueError, match="indices"):
        model.forward_intermediates(x, indices=[7])


def test_forward_intermediates_agrees_with_features_only():
    torch.manual_seed(3)
    full = _small("mobilenetv2_100")
    backbone = _small("mobilenetv2_100", features_only=True, out_indices=(1, 3))
    backbone.load_state_dict(full.state_dict(), strict=False)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours = full.forward_intermediates(x, indices=(1, 3), intermediates_only=True)
        theirs = backbone(x)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_build_timm_keywords_set_the_spec():
    model = _small("resnet18", num_classes=10, in_chans=1, drop_path_rate=0.1,
                   global_pool="max")
    assert model.stem.conv1.weight.shape[1] == 1  # in_chans
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        assert model(x).shape == (2, 10) and model.num_classes == 10
        pooled = model.forward_head(model.forward_features(x), pre_logits=True)
        torch.testing.assert_close(pooled, model.forward_features(x).amax((2, 3)))
    assert model.spec.drop_path_rate == 0.1 and model.spec.head.pool == "max"
    rates = [m.rate for m in model.modules() if type(m).__name__ == "DropPath"]
    assert rates and max(rates) == pytest.approx(0.1)
    old = archspec.build("resnet18", head__num_classes=7)  # the `__` path form still works
    assert old.num_classes == 7


def test_unknown_keyword_lists_the_accepted_ones():
    with pytest.raises(TypeError) as err:
        archspec.build("resnet18", pretrained=True)
    text = str(err.value)
    assert "'pretrained'" in text
    for word in ("num_classes", "in_chans", "drop_path_rate", "global_pool", "features_only",
                 "out_indices", "block__groups=32", "--set"):
        assert word in text


def test_reset_classifier_with_global_pool():
    model = _small("resnet18")
    model.reset_classifier(5, global_pool="max")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert model(x).shape == (2, 5)
        features = model.forward_features(x)
        torch.testing.assert_close(model.forward_head(features, pre_logits=True),
                                   features.amax((2, 3)))
    model.reset_classifier(0)
    with torch.no_grad():
        assert model(x).shape == (2, model.num_features)
    with pytest.raises(ValueError, match="global_pool"):
        model.reset_classifier(3, global_pool="token")


def test_model_spec_round_trips_through_yaml(tmp_path):
    model = archspec.build("resnet50d", num_classes=10)
    text = archspec.to_yaml(model.spec)
    assert "num_classes: 10" in text and "base:" not in text
    (tmp_path / "again.yaml").write_text(text)
    again = archspec.build(tmp_path / "again.yaml")
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert {k: v.shape for k, v in again.state_dict().items()} == shapes
    assert archspec.to_yaml(again) == text  # a module works too
    assert archspec.to_yaml("resnet50d") == archspec.to_yaml(archspec.load("resnet50d"))


def test_module_from_a_bare_ir_has_no_spec():
    model = archspec.to_module(archspec.resolve("resnet18"))
    assert model.spec is None
    with pytest.raises(TypeError, match="bare IR"):
        archspec.to_yaml(model)
