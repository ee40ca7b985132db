"""A bottleneck whose 3x3 conv would have no channels is a located error that names the setting
at fault; with groups, it counts channels per group (ResNeXt's d = width_per_group is per group:
torchvision's width = int(planes x d / 64) x groups)."""
from __future__ import annotations

import pytest

import archspec
from archspec.errors import SpecError
from conftest import SPEC_DIR


def test_grouped_width_is_reported_per_group():
    # ResNeXt-50 32x4d at stage widths 64..512 and d = 1: the first stage has 64 x 0.25 = 16
    # planes, 16 x 1 / 64 = 0.25 channels per group (8 summed over 32 groups, which misled)
    with pytest.raises(SpecError) as err:
        archspec.resolve(SPEC_DIR / "resnext50_32x4d.yaml",
                         ["block.width_per_group=1", "stages.widths=[64,128,256,512]"])
    problem = err.value.problems[0]
    assert problem.path == "block.width_per_group"
    assert "at least 1 channel per group of the 3x3 conv, got 0.25" in problem.message
    assert "raise width_per_group" in problem.hint


def test_ungrouped_width_names_the_ratio():
    with pytest.raises(SpecError) as err:
        archspec.resolve(SPEC_DIR / "resnet50.yaml", ["block.bottleneck_ratio=0.001"])
    (problem,) = err.value.problems
    assert problem.path == "block.bottleneck_ratio"
    assert "3x3 width of at least 1, got 0.256" in problem.message  # 256 x 0.001
