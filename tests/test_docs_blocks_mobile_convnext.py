"""docs/blocks_mobile_convnext.md: its YAML examples resolve, its Python examples run, and the
numbers it quotes are the ones archspec computes."""
from __future__ import annotations

import contextlib
import io
import os
import re

import pytest

import archspec
from conftest import ROOT, SPEC_DIR

DOC = (ROOT / "docs" / "blocks_mobile_convnext.md").read_text()
YAML = re.findall(r"```yaml\n(.*?)```", DOC, re.S)
PYTHON = re.findall(r"```python\n(.*?)```", DOC, re.S)


def test_the_page_has_examples():
    assert len(YAML) == 3 and len(PYTHON) == 1


@pytest.mark.parametrize("text", YAML, ids=["mobilenetv2", "convnext_tiny", "hybrid"])
def test_yaml_examples_resolve(tmp_path, text):
    path = tmp_path / "example.yaml"
    path.write_text(text)
    graph = archspec.resolve(path)
    if graph.name != "resnet_convnext_hybrid":  # the zoo specs, written out in the page
        assert graph.params == archspec.resolve(SPEC_DIR / f"{graph.name}.yaml").params
        assert f"{graph.params:,} parameters" in DOC


def test_python_examples_run():
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out):
            for code in PYTHON:
                exec(compile(code, "docs/blocks_mobile_convnext.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert out.getvalue().strip() == "28,589,128 parameters, 4.46 GMACs"


def test_roadmap_table_numbers():
    rows = re.findall(r"^\| `((?:variants/)?\w+)` \|.*\| (\d\.\d\d) \|$", DOC, re.M)
    assert len(rows) == 16
    for name, gmacs in rows:
        graph = archspec.resolve(SPEC_DIR / "roadmap" / "resnet50_to_convnext_t" / f"{name}.yaml")
        assert f"{graph.macs / 1e9:.2f}" == gmacs, name
