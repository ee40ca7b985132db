"""Zoo names work wherever a spec is accepted, from any working directory; paths win; unknown
names give did-you-mean over the zoo. Counts from ARCHITECTURES.md (via test_reference)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import archspec
from archspec import catalog
from archspec.cli import main
from conftest import ROOT, SPEC_DIR
from test_reference import REFERENCE


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Run from an empty folder, as a user of the installed package would."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_zoo_is_the_specs_folder_in_a_checkout():
    assert catalog.zoo_folder() == SPEC_DIR
    assert catalog.zoo_names() == sorted(p.stem for p in SPEC_DIR.glob("*.yaml"))
    assert "roadmap/resnet50_to_convnext_t/05_inverted_bottleneck" in catalog.zoo_names(True)


@pytest.mark.parametrize("name", ["resnet50", "resnet50d", "resnext50_32x4d", "convnext_tiny"])
def test_api_takes_zoo_names(name, elsewhere):
    params, _ = REFERENCE[name]
    assert archspec.resolve(name).params == params
    assert archspec.resolve(f"zoo:{name}").params == params
    assert archspec.resolve(f"{name}.yaml").params == params


def test_roadmap_spec_by_name(elsewhere):
    by_name = archspec.resolve("roadmap/resnet50_to_convnext_t/13_separate_downsampling")
    by_path = archspec.resolve(SPEC_DIR / "roadmap/resnet50_to_convnext_t/"
                                          "13_separate_downsampling.yaml")
    assert by_name.params == by_path.params == REFERENCE["convnext_tiny"][0]


def test_existing_path_wins_over_a_zoo_name(elsewhere):
    (elsewhere / "resnet50").write_text("name: mine\nstages: {depths: [1], widths: [64]}\n"
                                        "block: {type: basic}\n")
    assert archspec.resolve("resnet50").name == "mine"
    assert archspec.resolve("zoo:resnet50").name == "resnet50"  # the prefix forces the zoo


def test_base_names_a_zoo_spec(elsewhere):
    for base in ("zoo:resnet50d", "resnet50d"):
        (elsewhere / "mine.yaml").write_text(f"base: {base}\nname: mine\nhead: "
                                             "{num_classes: 10}\n")
        graph = archspec.resolve("mine.yaml")
        d_params = REFERENCE["resnet50d"][0]
        assert graph.params == d_params - 2048 * 990 - 990  # linear 2048->1000 became ->10


def test_base_file_beside_the_spec_wins(elsewhere):
    (elsewhere / "resnet50.yaml").write_text("name: local\nstages: {depths: [1], widths: [64]}\n"
                                             "block: {type: basic}\n")
    (elsewhere / "mine.yaml").write_text("base: resnet50.yaml\nname: mine\n")
    assert archspec.resolve("mine.yaml").params < 1_000_000
    (elsewhere / "mine.yaml").write_text("base: zoo:resnet50.yaml\nname: mine\n")
    assert archspec.resolve("mine.yaml").params == REFERENCE["resnet50"][0]


def test_unknown_name_is_a_located_did_you_mean(elsewhere, capsys):
    assert main(["build", "resnt50"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("resnt50: <file>: spec file not found")
    assert "did you mean 'resnet50'" in err and "Traceback" not in err
    (elsewhere / "mine.yaml").write_text("base: zoo:convnext_tny\nname: mine\n")
    with pytest.raises(archspec.SpecError) as exc:
        archspec.resolve("mine.yaml")
    assert "mine.yaml:1:7: base:" in str(exc.value)
    assert "did you mean 'convnext_tiny'" in str(exc.value)


def test_names_cannot_leave_the_zoo():
    assert catalog.zoo_path("../pyproject") is None
    assert catalog.zoo_path("/etc/passwd") is None


def test_cli_commands_take_zoo_names(elsewhere, capsys):
    assert main(["validate", "resnet50", "zoo:convnext_tiny"]) == 0
    assert main(["diff", "resnet50", "resnet50d", "--json"]) == 0
    capsys.readouterr()
    assert main(["render", "convnext_tiny", "-o", "c.dot"]) == 0
    assert "digraph" in (elsewhere / "c.dot").read_text()
    capsys.readouterr()
    assert main(["diff", "--chain", "roadmap/resnet50_to_convnext_t", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    steps = sorted((SPEC_DIR / "roadmap/resnet50_to_convnext_t").glob("*.yaml"))
    assert [r["name"] for r in rows] == [archspec.load(p).name for p in steps]


def test_build_by_name_from_another_folder():
    """The CLI as a subprocess from /: a zoo name, no path to the checkout."""
    out = subprocess.run([sys.executable, "-m", "archspec.cli", "build", "resnet18", "--json"],
                         cwd="/", capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["params"] == REFERENCE["resnet18"][0]


# ---- listing ---------------------------------------------------------------------------------

def test_list_models_patterns_like_timm():
    files = sorted(p.stem for p in SPEC_DIR.glob("*.yaml"))
    assert archspec.list_models() == files
    assert archspec.list_models("resnet*") == [f for f in files if f.startswith("resnet")]
    both = archspec.list_models(["resnet5*", "convnext_t*"])
    assert both == sorted([f for f in files if f.startswith("resnet5")] + ["convnext_tiny"])
    assert archspec.list_models("nothing*") == []
    roadmap = archspec.list_models("roadmap/*")
    assert len(roadmap) == len(list((SPEC_DIR / "roadmap").rglob("*.yaml")))
    assert all(archspec.resolve(n).params > 0 for n in roadmap[:2])


def test_cli_list_patterns_sort_and_json(capsys):
    assert main(["list", "resnet*", "convnext_t*", "--sort", "params", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = [r["name"] for r in rows]
    assert sorted(names) == archspec.list_models(["resnet*", "convnext_t*"])
    expected = {n: REFERENCE[n][0] for n in names if n in REFERENCE}
    ordered = [n for n in names if n in expected]
    assert ordered == sorted(expected, key=lambda n: (-expected[n], names.index(n)))
    assert main(["list", "--sort", "macs", "--json"]) == 0
    macs = [r["macs"] for r in json.loads(capsys.readouterr().out)]
    assert macs == sorted(macs, reverse=True)


def test_cli_list_no_match_is_an_error(capsys, tmp_path):
    assert main(["list", "resnt*"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "resnt*: <pattern>: matches no spec in the zoo" in captured.err
    assert "did you mean 'resnet" in captured.err
    assert main(["list", str(tmp_path)]) == 2
    assert "holds no *.yaml spec" in capsys.readouterr().err
