"""docs/modules.md: its Python examples run as written, in order, from the repository root."""
from __future__ import annotations

import os
import re

from conftest import ROOT

DOC = ROOT / "docs" / "modules.md"


def test_modules_doc_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 5
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for i, code in enumerate(blocks):
            exec(compile(code, f"{DOC.name}[python block {i + 1}]", "exec"), {})
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out
    # what the page says the examples print
    assert "[512, 1024, 2048]\n[8, 16, 32]\n['stages.1', 'stages.2', 'stages.3']" in printed
    assert "out_indices: expected a feature index from 0 to 4 (or -5 to -1 from the end), got 5" \
        in printed
    assert "[(128, 28, 28), (256, 14, 14), (512, 7, 7)]" in printed
    assert "'module': 'stem.act1'" in printed
