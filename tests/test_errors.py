"""Every bad spec in tests/bad_specs/ gives exactly the message in its .txt (location included),
on stderr, with exit code 2 and no traceback. The messages were written against the spec files:
the line:col of each points at the offending text."""
from __future__ import annotations

import os
import pathlib

import pytest

import cli
from conftest import ROOT

BAD = sorted((ROOT / "tests" / "bad_specs").glob("*.yaml"))
EXPECTED = [p for p in BAD if p.with_suffix(".txt").exists()]


@pytest.mark.parametrize("path", EXPECTED, ids=[p.stem for p in EXPECTED])
def test_bad_spec_message(path: pathlib.Path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = cli.main(["validate", str(path.relative_to(ROOT))])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    golden = path.with_suffix(".txt")
    if os.environ.get("ARCHSPEC_ACCEPT") == "1":
        golden.write_text(err)
    assert err == golden.read_text(), (
        f"the message differs from {golden.relative_to(ROOT)}; if the new one is right, "
        f"rewrite the golden files with: ARCHSPEC_ACCEPT=1 python -m pytest tests/test_errors.py")


def test_every_bad_spec_has_an_expected_message():
    helpers = {"cycle_b"}  # the other half of cycle_a's cycle
    assert {p.stem for p in BAD} - {p.stem for p in EXPECTED} == helpers


def test_build_reports_spec_errors_with_exit_2(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(["build", "tests/bad_specs/unknown_block_type.yaml"]) == 2
    assert "did you mean 'bottleneck'?" in capsys.readouterr().err


def test_bad_override_is_located_on_the_command_line(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = cli.main(["validate", "specs/resnet50.yaml", "--set", "block.groups=24",
                     "--set", "block.width_per_group=null"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("--set block.groups=24: block.groups: expected a divisor of the 3x3 "
                          "width (64), got 24")


def test_override_value_of_wrong_type(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(["validate", "specs/resnet50.yaml", "--set", "stages.depths=[3,x]"]) == 2
    err = capsys.readouterr().err
    assert "--set stages.depths=[3,x]: stages.depths[1]: expected a valid integer, got 'x'" in err


def test_override_without_equals(capsys):
    assert cli.main(["validate", "specs/resnet50.yaml", "--set", "block.groups"]) == 2
    assert "expected PATH=VALUE" in capsys.readouterr().err


def test_missing_file(capsys):
    assert cli.main(["validate", "no/such/spec.yaml"]) == 2
    assert "no/such/spec.yaml: <file>: spec file not found" in capsys.readouterr().err


def test_unknown_type_in_stage_override(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: n\nstages:\n  depths: [1, 1]\n  widths: [8, 16]\n  overrides:\n"
                    "    1: {type: basik}\nblock:\n  type: basic\n")
    assert cli.main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert ":6:15: stages.overrides[1].type: unknown block type 'basik'" in err
    assert "did you mean 'basic'?" in err


def test_lint_failure_is_an_internal_error():
    """A malformed IR is archspec's bug: the message says so and names the node."""
    import dataclasses

    import archspec
    from archspec.errors import InternalError
    graph = archspec.resolve(ROOT / "specs" / "resnet18.yaml")
    nodes = list(graph.nodes)
    i = next(k for k, n in enumerate(nodes) if n.id == "stages.1.blocks.0.conv1")
    nodes[i] = nodes[i]._replace(in_shape=(99, 56, 56))
    broken = dataclasses.replace(graph, nodes=tuple(nodes))
    with pytest.raises(InternalError, match=r"internal error: shape mismatch on edge "
                                            r"stages\.0\.blocks\.1\.act2 -> "
                                            r"stages\.1\.blocks\.0\.conv1"):
        broken.lint()
