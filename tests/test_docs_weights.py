"""docs/weights.md: its Python examples run as written, in order, and print what the page says;
its `archspec convert` line runs as written."""
from __future__ import annotations

import os
import re
import shlex

from conftest import ROOT

DOC = ROOT / "docs" / "weights.md"


def test_weights_doc_examples_run(tmp_path, capsys):
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 6
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict = {}  # the blocks continue one session
        for i, code in enumerate(blocks):
            exec(compile(code, f"{DOC.name}[python block {i + 1}]", "exec"), namespace)
        printed = capsys.readouterr().out
        for said in re.findall(r"^prints `(.*?)`", text, flags=re.M | re.S):
            assert " ".join(said.split()) in " ".join(printed.split()), said
        table = re.search(r"```\n(weights: resnet50d_timm.pth.*?)```", text, flags=re.S)
        assert table.group(1).strip() in printed
        from archspec.cli import main
        for line in re.findall(r"^\$ archspec (.*)$", text, flags=re.M):
            assert main(shlex.split(line)) == 0
        assert (tmp_path / "resnet50d.safetensors").exists()
    finally:
        os.chdir(cwd)
