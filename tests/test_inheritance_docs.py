"""docs/spec.md's inheritance examples run: each ```yaml file=NAME block is written side by side,
each ```yaml result=NAME block is the flat spec that NAME must resolve to (every setting, as
`explain` reports it), and each ```text notes=NAME block is exactly the notes NAME prints."""
from __future__ import annotations

import re

import pytest

import archspec
from archspec.provenance import settings_of
from conftest import ROOT

TEXT = (ROOT / "docs" / "spec.md").read_text()
FILES = dict(re.findall(r"```yaml file=(\S+)\n(.*?)```", TEXT, re.S))
RESULTS = re.findall(r"```yaml result=(\S+)\n(.*?)```", TEXT, re.S)
NOTES = dict(re.findall(r"```text notes=(\S+)\n(.*?)```", TEXT, re.S))


@pytest.fixture
def folder(tmp_path, monkeypatch):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)  # notes name the files as the docs do
    return tmp_path


def _values(graph) -> dict:
    return {k: s.value for k, s in settings_of(graph).items()}


def test_the_docs_have_the_examples():
    assert len(FILES) >= 5 and len(RESULTS) >= 3 and len(NOTES) >= 2


@pytest.mark.parametrize("name,flat", RESULTS, ids=[n for n, _ in RESULTS])
def test_child_resolves_to_the_documented_result(folder, name, flat):
    (folder / "flat.yaml").write_text(flat)
    child, expected = archspec.resolve(name), archspec.resolve("flat.yaml")
    assert _values(child) == _values(expected)
    assert (child.params, child.macs) == (expected.params, expected.macs)


@pytest.mark.parametrize("name", sorted(NOTES))
def test_child_prints_the_documented_notes(folder, name):
    spec = archspec.load(name)
    archspec.resolve(spec)
    assert [n.text() for n in spec.notes] == NOTES[name].strip().splitlines()


def test_strict_turns_dropped_settings_into_errors(folder):
    with pytest.raises(archspec.SpecError) as err:
        archspec.resolve("modern.yaml", strict=True)
    assert [p.path for p in err.value.problems] == ["stem.pool", "block.stride_on"]
    assert str(err.value.problems[0].location) == "resnet_like.yaml:2:47"
    archspec.resolve("ratio.yaml", strict=True)  # an exclusive choice is no error


def test_validate_prints_the_notes_and_strict_fails(folder, capsys):
    from archspec import cli
    assert cli.main(["validate", "modern.yaml"]) == 0
    out = capsys.readouterr().out
    assert "note: resnet_like.yaml:2:47: stem.pool dropped: a patchify stem has no pool" in out
    assert cli.main(["validate", "--strict", "modern.yaml"]) == 2
    err = capsys.readouterr().err
    assert "resnet_like.yaml:2:47: stem.pool: stem.pool dropped: a patchify stem has no pool" \
        in err
    assert cli.main(["validate", "--strict", "ratio.yaml"]) == 0
