"""`archspec modernize`: the ConvNeXt roadmap applied to any ResNet-family spec.

Expected values come from outside the code under test: the hand-written roadmap chain
(specs/roadmap/resnet50_to_convnext_t/, itself tested against the authors' intermediate models in
test_roadmap_specs.py), `diff`'s catalogue of named steps, and published counts (ConvNeXt-B:
88,591,464 parameters, 15.36 GMACs, ARCHITECTURES.md).
"""
from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import yaml

import archspec
import cli
from archspec.commands.diff import chain_rows
from archspec.spec import load
from conftest import ROOT, SPEC_DIR, resolved, spec_id

ROADMAP = SPEC_DIR / "roadmap" / "resnet50_to_convnext_t"
RESNET_FAMILIES = ("basic", "bottleneck", "splat")
RESNET_SPECS = [p for p in sorted(SPEC_DIR.glob("*.yaml"))
                if load(p).block.type in RESNET_FAMILIES
                and archspec.resolve(p).params < 100_000_000]


@pytest.fixture(scope="module")
def resnet50_chain(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("modernized")
    assert cli.main(["modernize", "specs/resnet50.yaml", "-o", str(out), "--no-plot"]) == 0
    return out


def test_resnet50_with_defaults_is_the_roadmap_step_for_step(resnet50_chain):
    written = sorted(resnet50_chain.glob("*.yaml"))
    roadmap = sorted(ROADMAP.glob("*.yaml"))
    assert [p.name for p in written] == [p.name for p in roadmap]
    for mine, theirs in zip(written, roadmap):
        a, b = archspec.resolve(mine), resolved(theirs)
        assert (a.params, a.macs) == (b.params, b.macs), mine.name


def test_each_file_inherits_the_previous_one(resnet50_chain):
    written = sorted(resnet50_chain.glob("*.yaml"))
    first = yaml.safe_load(written[0].read_text())
    assert (resnet50_chain / first["base"]).resolve() == (SPEC_DIR / "resnet50.yaml").resolve()
    for prev, step in zip(written, written[1:]):
        assert yaml.safe_load(step.read_text())["base"] == prev.name


def test_readme_has_the_table_and_the_chain_summary(resnet50_chain):
    text = (resnet50_chain / "README.md").read_text()
    assert "| 13 | 13_separate_downsampling.yaml | separate downsampling layers | 28,589,128 |" \
        in text
    assert "## `archspec diff --chain` over these files" in text
    assert "Unrecognised changes: 0." in text


@pytest.mark.parametrize("spec_path", RESNET_SPECS, ids=[spec_id(p) for p in RESNET_SPECS])
def test_diff_chain_names_every_step_and_nothing_is_unrecognised(spec_path, tmp_path):
    chain = archspec.modernize(spec_path, tmp_path)
    rows = chain_rows(sorted(str(p) for p in tmp_path.glob("*.yaml")))
    assert len(rows) == len(chain) >= 12
    for step, row in zip(chain[1:], rows[1:]):
        assert row["steps"], (step.label, row["changes"])
        assert row["unrecognised"] == [], (step.label, row["unrecognised"])
    catalogue = {"stage_ratio": "stage compute ratio", "patchify_stem": "patchify stem",
                 "move_up_depthwise": "move the depthwise conv up", "kernel": "kernel size",
                 "fewer_activations": "fewer activations", "fewer_norms": "fewer norms",
                 "layer_norm": "norm swap",
                 "separate_downsampling": "separate downsampling layers"}
    for step, row in zip(chain[1:], rows[1:]):  # the step's own name is among those diff found
        if step.key in catalogue:
            assert catalogue[step.key] in row["steps"], (step.label, row["steps"])


def test_the_larger_roadmap_resnet200_to_convnext_b(tmp_path):
    """ARCHITECTURES.md: the same steps from ResNet-200 (3,24,36,3) lead to ConvNeXt-B, with
    depths (3,3,27,3) and width 128 (x2). ConvNeXt-B: 88,591,464 parameters, 15.36 GMACs (a MAC
    count within 0.5%, ARCHITECTURES.md's rule for reference counts)."""
    (tmp_path / "resnet200.yaml").write_text(
        f"name: resnet200\nbase: {SPEC_DIR / 'resnet50.yaml'}\nstages:\n  depths: [3, 24, 36, 3]\n")
    chain = archspec.modernize(tmp_path / "resnet200.yaml", depths=[3, 3, 27, 3], width_factor=2)
    assert chain[0].graph.params == 64_673_832  # timm resnet200
    last = chain[-1].graph
    assert last.params == 88_591_464 and abs(last.macs / 15.36e9 - 1) < 0.005


def test_steps_skip_and_options(tmp_path):
    chain = archspec.modernize(SPEC_DIR / "resnet50.yaml", skip=["inverted_bottleneck"],
                               kernel_sizes=[9])
    assert {s.key for s in chain.skipped} >= {"move_up_depthwise", "kernel", "fewer_norms"}
    assert "inverted_bottleneck" not in [s.key for s in chain]
    only = archspec.modernize(SPEC_DIR / "resnet50.yaml", steps=["stage_ratio", "kernel"])
    assert [s.label for s in only] == ["resnet50", "stage_ratio"]  # kernel needs the block
    ib = archspec.modernize(SPEC_DIR / "resnet50.yaml", kernel_sizes=[9], block_widths=[64] * 4)
    labels = [s.label for s in ib]
    assert "kernel_9" in labels and "kernel_5" not in labels
    assert ib[labels.index("kernel_9")].graph.node("stages.2.blocks.0.conv_dw").kernel_size == 9
    assert ib[labels.index("inverted_bottleneck")].graph.stages[3].width == 64
    assert all(isinstance(s, archspec.Spec) for s in ib.specs)


def test_never_overwrites_without_overwrite(tmp_path):
    assert cli.main(["modernize", "specs/resnet50.yaml", "-o", str(tmp_path), "--no-plot"]) == 0
    assert cli.main(["modernize", "specs/resnet50.yaml", "-o", str(tmp_path), "--no-plot"]) == 2
    (tmp_path / "mine.yaml").write_text("name: mine\n")  # a user file: never touched
    assert cli.main(["modernize", "specs/resnet50.yaml", "-o", str(tmp_path), "--no-plot",
                     "--overwrite", "--steps", "stage_ratio"]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == [
        "00_resnet50.yaml", "01_stage_ratio.yaml", "mine.yaml"]


def test_bad_options_are_located_errors(tmp_path, capsys):
    assert cli.main(["modernize", "specs/resnet50.yaml", "-o", str(tmp_path),
                     "--steps", "gleu"]) == 2
    assert "unknown step 'gleu'" in capsys.readouterr().err
    assert cli.main(["modernize", "specs/resnet50.yaml", "-o", str(tmp_path),
                     "--depths", "3,3,9"]) == 2
    err = capsys.readouterr().err
    assert "--depths: expected 4 entries" in err and "Traceback" not in err


def test_modernize_does_not_import_torch(tmp_path):
    code = (f"import sys, cli; rc = cli.main(['modernize', 'specs/resnest50d.yaml', '-o', "
            f"{str(tmp_path)!r}, '--no-plot']); print(rc, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "0 False", out.stderr
