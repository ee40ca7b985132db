"""The command line, called in-process (`cli.main([...])`)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import cli
from conftest import ROOT


def test_build_json_is_one_object_with_the_documented_fields(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(["build", "specs/resnet50.yaml", "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out)  # exactly one JSON document: json.loads rejects trailing text
    # ARCHITECTURES.md reference: resnet50 has 25,557,032 parameters and 4.09 GMACs
    assert summary["name"] == "resnet50"
    assert summary["params"] == 25_557_032
    assert round(summary["macs"] / 1e9, 2) == 4.09
    assert summary["flops"] == 2 * summary["macs"]
    assert summary["input_shape"] == [3, 224, 224]
    assert summary["output_shape"] == [1000]
    assert [s["name"] for s in summary["stages"]] == [f"stages.{i}" for i in range(4)]
    assert [s["depth"] for s in summary["stages"]] == [3, 4, 6, 3]
    assert [s["output_shape"] for s in summary["stages"]] == [
        [256, 56, 56], [512, 28, 28], [1024, 14, 14], [2048, 7, 7]]
    parts = summary["stem"]["params"] + summary["head"]["params"] + sum(
        s["params"] for s in summary["stages"])
    assert parts == summary["params"]
    assert all({"name", "depth", "output_shape", "params", "macs"} <= set(s)
               for s in summary["stages"])


def test_build_table(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(["build", "specs/resnet18.yaml"]) == 0
    out = capsys.readouterr().out
    assert "11,689,512" in out  # ARCHITECTURES.md: resnet18
    for row in ("stem", "stages.0", "stages.3", "head", "total"):
        assert f"\n{row} " in out


def test_build_with_overrides(capsys, monkeypatch):
    """ResNet-50 with groups 32 x 4d is ResNeXt-50 32x4d: 25,028,904 params (ARCHITECTURES.md)."""
    monkeypatch.chdir(ROOT)
    assert cli.main(["build", "specs/resnet50.yaml", "--json", "--set", "block.groups=32",
                     "--set", "block.width_per_group=4"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 25_028_904


def test_validate_many(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(["validate", "specs/resnet18.yaml", "specs/resnet50d.yaml"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ok  specs/resnet18.yaml: resnet18, 11,689,512 params")
    assert out[1].startswith("ok  specs/resnet50d.yaml: resnet50d, 25,576,264 params")


def test_validate_reports_each_bad_file_and_fails(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = cli.main(["validate", "specs/resnet18.yaml", "tests/bad_specs/wrong_type.yaml"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out.startswith("ok  specs/resnet18.yaml")
    assert "wrong_type.yaml:3:15" in err


@pytest.mark.parametrize("argv", [["--help"], ["build", "--help"], ["validate", "--help"]])
def test_help(argv, capsys):
    assert cli.main(argv) == 0
    assert "usage:" in capsys.readouterr().out


def test_usage_error_exit_2(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_console_script_and_cli_py_share_the_entry():
    """pyproject's `archspec` console script and cli.py run the same function."""
    import tomllib

    from archspec.cli import main
    assert cli.main is main
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"archspec": "archspec.cli:main"}


def test_cli_py_runs_as_a_script():
    result = subprocess.run([sys.executable, "cli.py", "validate", "specs/resnet34.yaml"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "21,797,672 params" in result.stdout  # ARCHITECTURES.md: resnet34
