"""The docs' examples run: every ```yaml block in docs/*.md that is a whole spec validates, and the
generated reference is current."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

import archspec
from conftest import ROOT

DOCS = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)
EXAMPLES = [(doc, i, text) for doc in DOCS for i, text in enumerate(BLOCK.findall(doc.read_text()))
            if re.search(r"^name:", text, re.M)]


@pytest.mark.parametrize("doc,index,text", EXAMPLES,
                         ids=[f"{d.stem}-{i}" for d, i, _ in EXAMPLES])
def test_yaml_example_is_a_valid_spec(doc, index, text, tmp_path):
    (tmp_path / "specs").symlink_to(ROOT / "specs")  # examples use `base: specs/...`
    path = tmp_path / "example.yaml"
    path.write_text(text)
    graph = archspec.resolve(path)
    assert graph.params > 0


def test_spec_guide_has_examples():
    assert len([e for e in EXAMPLES if e[0].name == "spec.md"]) >= 6


def test_spec_reference_is_current():
    result = subprocess.run([sys.executable, "scripts/gen_spec_reference.py", "--check"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
