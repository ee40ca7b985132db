"""--version, and --set on build, validate and diff: the overrides applied are reported in the
text header ("resnet50 (+2 overrides)") and in --json. Expected counts: ARCHITECTURES.md."""
from __future__ import annotations

import json
import tomllib

import archspec
from archspec.cli import main
from conftest import ROOT

RESNEXT = ["--set", "block.groups=32", "--set", "block.width_per_group=4"]
RESNEXT50_PARAMS = 25_028_904  # ARCHITECTURES.md: resnext50_32x4d


def test_version(capsys):
    assert main(["--version"]) == 0
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" in declared.get("dynamic", [])  # one place: archspec.__version__
    assert capsys.readouterr().out.strip() == f"archspec {archspec.__version__}"


def test_build_reports_overrides(capsys):
    assert main(["build", "resnet50", *RESNEXT, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["overrides"] == ["block.groups=32", "block.width_per_group=4"]
    assert data["params"] == RESNEXT50_PARAMS
    assert main(["build", "resnet18", "--set", "head.num_classes=10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("resnet18 (+1 override): ")
    assert "override: head.num_classes=10" in lines
    assert main(["build", "resnet18", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["overrides"] == []


def test_validate_reports_overrides(capsys):
    assert main(["validate", "resnet50", *RESNEXT]) == 0
    out = capsys.readouterr().out
    assert f"ok  resnet50: resnet50 (+2 overrides), {RESNEXT50_PARAMS:,} params" in out
    assert "  override: block.width_per_group=4" in out


def test_diff_with_overrides(capsys):
    assert main(["diff", "resnet50", *RESNEXT]) == 0  # one spec: what the overrides change
    out = capsys.readouterr().out
    assert out.startswith("diff resnet50 -> resnet50 (+2 overrides): architectural change")
    assert "grouped convolution (ResNeXt)" in out
    assert main(["diff", "resnet50", "resnext50_32x4d", "--set-a", "block.groups=32",
                 "--set-a", "block.width_per_group=4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["overrides"] == {"a": ["block.groups=32", "block.width_per_group=4"], "b": []}
    assert data["architectural_change"] is False  # resnet50 + those overrides is ResNeXt-50


def test_validate_json_reports_overrides_and_errors(capsys):
    assert main(["validate", "resnet50", "resnt50", "--json", *RESNEXT]) == 2
    captured = capsys.readouterr()
    ok, bad = json.loads(captured.out)
    assert ok["valid"] and ok["params"] == RESNEXT50_PARAMS
    assert ok["overrides"] == ["block.groups=32", "block.width_per_group=4"]
    assert not bad["valid"] and "spec file not found" in bad["errors"][0]
    assert "did you mean 'resnet50'" in captured.err


def test_light_commands_do_not_import_torch():
    import subprocess
    import sys
    code = ("import sys, contextlib, io; from archspec.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    for argv in (['--help'], ['list', 'resnet*'], ['validate', 'resnet50', '--set',"
            " 'head.num_classes=10'], ['schema'], ['--version']):\n"
            "        main(argv)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr
