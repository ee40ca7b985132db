"""Reference parity: each zoo spec against the published counts in ARCHITECTURES.md
(torchvision / timm model metadata: parameters exactly, GMACs to within 0.5% of the printed value).
Computed analytically (no torch); test_consistency ties the module to the same numbers.
Every zoo spec named in ../shared/reference/timm_models.json (timm 1.0.31, measured) is also held
to that table: parameters exactly, MACs at 224 within 0.5%."""
from __future__ import annotations

import json

import pytest

from conftest import REFERENCE_DIR, SPEC_DIR, resolved

# name: (parameters, GMACs) as printed in ../shared/ARCHITECTURES.md, "Reference parameter counts".
REFERENCE = {
    "resnet18": (11_689_512, 1.81),
    "resnet34": (21_797_672, 3.66),
    "resnet50": (25_557_032, 4.09),
    "resnet101": (44_549_160, 7.80),
    "resnet152": (60_192_808, 11.51),
    "resnet50c": (25_576_264, 4.33),
    "resnet50d": (25_576_264, 4.33),
    "resnet26d": (16_014_408, 2.58),
    "wide_resnet50_2": (68_883_240, 11.40),
    "resnext50_32x4d": (25_028_904, 4.23),
    "resnext101_32x8d": (88_791_336, 16.41),
    "seresnet50": (28_088_024, 4.09),
    "seresnext50_32x4d": (27_559_896, 4.23),
    "resnest14d": (10_611_688, 2.75),
    "resnest26d": (17_069_448, 3.62),
    "resnest50d": (27_483_240, 5.37),
    "resnest101e": (48_275_016, 10.20),
    "resnest50d_1s4x24d": (25_677_000, 4.40),
    "resnest50d_4s2x40d": (30_417_592, 4.37),
    "mobilenetv2_100": (3_504_872, 0.30),
    "convnext_atto": (3_695_520, 0.55),
    "convnext_tiny": (28_589_128, 4.46),
    "convnext_small": (50_223_688, 8.68),
    "convnext_base": (88_591_464, 15.36),
    # ARCHITECTURES.md: "The original SE-ResNet-50 ... same parameters as seresnet50, ~3.86 GMACs";
    # ResNet-50 v1 likewise (stride on the first 1x1: ~3.86G vs 4.09G).
    "resnet50_v1": (25_557_032, 3.86),
    "seresnet50_v1": (28_088_024, 3.86),
    # Not in ARCHITECTURES.md's table. torchvision's ConvNeXt_Large_Weights metadata: num_params
    # 197767336, GFLOPS 34.36 (https://docs.pytorch.org/vision/stable/models/generated/
    # torchvision.models.convnext_large.html); timm's convnext_large.fb_in1k card: 197.8M, 34.4.
    "convnext_large": (197_767_336, 34.36),
}
PRESENT = sorted(n for n in REFERENCE if (SPEC_DIR / f"{n}.yaml").exists())

# ../shared/reference/timm_models.json: timm 1.0.31's parameters and MACs at 224 (FlopCounterMode
# / 2), read as published rather than copied here. Every zoo spec named like a model there is
# checked against it (the Selective Kernel ResNets, and any later family's networks).
TIMM_TABLE = REFERENCE_DIR / "timm_models.json" if REFERENCE_DIR else None
TIMM = json.loads(TIMM_TABLE.read_text()) if TIMM_TABLE else {}
IN_TIMM_TABLE = sorted(n for n in TIMM if (SPEC_DIR / f"{n}.yaml").exists())


@pytest.mark.skipif(TIMM_TABLE is None, reason="../shared/reference/timm_models.json not found")
@pytest.mark.parametrize("name", IN_TIMM_TABLE)
def test_timm_table_params_exact_and_macs_within_half_percent(name):
    graph = resolved(SPEC_DIR / f"{name}.yaml")
    assert graph.params == TIMM[name]["params"]
    assert abs(graph.macs - TIMM[name]["macs_224"]) <= 0.005 * TIMM[name]["macs_224"]


def test_the_selective_kernel_zoo_is_checked_against_the_timm_table():
    if TIMM_TABLE is None:
        pytest.skip("../shared/reference/timm_models.json not found")
    assert {"skresnet18", "skresnet34", "skresnet50", "skresnext50_32x4d"} <= set(IN_TIMM_TABLE)


@pytest.mark.parametrize("name", PRESENT)
def test_params_exact_and_macs_within_half_percent(name):
    graph = resolved(SPEC_DIR / f"{name}.yaml")
    params, gmacs = REFERENCE[name]
    assert graph.params == params
    # The table prints two decimals, so allow the rounding of the printed value as well.
    assert abs(graph.macs / 1e9 - gmacs) <= 0.005 * gmacs + 0.005


def test_issue_zoo_is_present():
    """The core issue's ResNet zoo (the later ones join as their issues land)."""
    for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet50c",
                 "resnet50d", "resnet26d", "wide_resnet50_2", "resnet50_v1"):
        assert name in PRESENT


def test_mobile_and_convnext_zoo_is_present():
    """The vocabulary issue's MobileNetV2 and ConvNeXt specs."""
    for name in ("mobilenetv2_100", "convnext_atto", "convnext_tiny", "convnext_small",
                 "convnext_base", "convnext_large"):
        assert name in PRESENT


def test_resnet_v1_and_v15_differ_only_in_macs():
    """ARCHITECTURES.md: A (stride on 1x1) and B (stride on 3x3) have equal parameters,
    ~3.86G vs 4.09G MACs."""
    v1 = resolved(SPEC_DIR / "resnet50_v1.yaml")
    v15 = resolved(SPEC_DIR / "resnet50.yaml")
    assert v1.params == v15.params
    assert round(v1.macs / 1e9, 2) == 3.86 and round(v15.macs / 1e9, 2) == 4.09


@pytest.mark.skipif(TIMM_TABLE is None, reason="../shared/reference/timm_models.json not found")
def test_rest_of_resnet_convnext_and_mobilenetv2_zoo_is_present():
    """Issue 14's networks that the spec language expresses without new blocks."""
    for name in ("resnet18d", "resnet34d", "resnet101d", "resnet152d", "resnet200d",
                 "resnext101_64x4d", "seresnext101_32x8d", "wide_resnet101_2",
                 "seresnext26d_32x4d", "resnest200e", "resnest269e", "convnext_femto",
                 "convnext_pico", "convnext_nano", "convnext_xlarge", "mobilenetv2_050",
                 "mobilenetv2_110d", "mobilenetv2_120d", "mobilenetv2_140",
                 # tiered stems: the deep stem at widths (24, 32, 64)
                 "resnet10t", "resnet14t", "resnet26t", "resnet50t", "seresnext26t_32x4d"):
        assert name in IN_TIMM_TABLE
