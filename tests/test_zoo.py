"""`cli.py list` and docs/zoo.md: the zoo table, computed from the specs, without torch."""
from __future__ import annotations

import json
import pathlib
import runpy
import subprocess
import sys

from archspec.cli import main
from conftest import ROOT, SPEC_DIR
from test_reference import REFERENCE


def test_list_does_not_import_torch():
    code = ("import sys; from archspec.cli import main; rc = main(['list']); "
            "assert 'torch' not in sys.modules, 'list imported torch'; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resnet50 " in done.stdout


def test_list_rows_are_the_top_level_specs_with_reference_counts(capsys):
    assert main(["list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(r["file"] for r in rows.values()) == sorted(p.name for p in
                                                               SPEC_DIR.glob("*.yaml"))
    for name, (params, gmacs) in REFERENCE.items():  # ARCHITECTURES.md, for those present
        if name in rows:
            assert rows[name]["params"] == params
            assert abs(rows[name]["macs"] / 1e9 - gmacs) <= 0.005 * gmacs + 0.005
    assert rows["seresnext50_32x4d"]["family"] == "ResNet bottleneck + SE"
    assert rows["resnest50d"]["family"] == "ResNeSt split attention"
    assert rows["resnest101e"]["input_size"] == "224x224"


def test_list_table(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "family", "params", "MACs", "input", "description"]
    row = next(line for line in lines if line.startswith("resnet50 "))
    assert "ResNet bottleneck" in row and "25,557,032" in row and "4.09G" in row


def test_list_skips_subfolders_and_reports_bad_specs(tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    spec = (SPEC_DIR / "resnet18.yaml").read_text()
    (tmp_path / "a.yaml").write_text(spec.replace("name: resnet18", "name: a"))
    (tmp_path / "sub" / "b.yaml").write_text(spec.replace("name: resnet18", "name: b"))
    (tmp_path / "c.yaml").write_text(spec.replace("name: resnet18", "name: c")
                                     .replace("type: basic", "type: basik"))
    assert main(["list", str(tmp_path), "--json"]) == 2
    out = capsys.readouterr()
    assert [r["name"] for r in json.loads(out.out)] == ["a"]
    assert "c.yaml:8:9: block.type: unknown block type 'basik'" in out.err


def test_docs_zoo_is_generated_from_the_specs():
    script = runpy.run_path(str(ROOT / "scripts" / "gen_zoo.py"))
    committed = (ROOT / "docs" / "zoo.md").read_text()
    assert script["render"]() == committed, (
        "docs/zoo.md is out of date with specs/: run `python scripts/gen_zoo.py` and commit it")
    for path in SPEC_DIR.glob("*.yaml"):
        assert f"(../specs/{path.name})" in committed
