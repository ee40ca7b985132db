"""docs/api.md: its Python examples run as written, in order, from an empty folder outside the
repository (so zoo names, not paths), and print what the page says they print."""
from __future__ import annotations

import re

from conftest import ROOT

DOC = ROOT / "docs" / "api.md"


def test_api_doc_examples_run(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 7
    monkeypatch.chdir(tmp_path)
    for i, code in enumerate(blocks):
        exec(compile(code, f"{DOC.name}[python block {i + 1}]", "exec"), {})
    printed = capsys.readouterr().out
    assert "['resnext101_32x8d', 'resnext101_64x4d', 'resnext50_32x4d']" in printed
    assert "unknown keyword argument 'pretrained'. Accepted: num_classes, in_chans" in printed
    assert "[64, 64, 128, 256, 512] [2, 4, 8, 16, 32]" in printed
    assert "['head.num_classes=10']" in printed
    assert "resnt50: <file>: spec file not found\n  hint: did you mean 'resnet50'" in printed
    assert (tmp_path / "my_resnet50d.yaml").exists()


def test_docs_name_only_files_that_exist():
    """Links and repository paths in README.md and docs/*.md point at files in the repository
    (`{a,b}` read as shell brace expansion)."""
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    path = re.compile(r"(?<![\w./-])((?:specs|docs|scripts|tests|archspec|bench|\.ci)/"
                      r"[\w./*{},-]+)")
    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        for target in link.findall(text):
            if not target.startswith(("http:", "https:", "mailto:")) \
                    and not (doc.parent / target).exists():
                missing.append(f"{doc.name}: link {target}")
        for found in set(path.findall(text)):
            for name in _expand(found.rstrip(".,:;")):
                if not (list(ROOT.glob(name)) if "*" in name else (ROOT / name).exists()):
                    missing.append(f"{doc.name}: {name}")
    assert missing == []


def _expand(text: str) -> list[str]:
    m = re.search(r"\{([^{}]*)\}", text)
    if not m:
        return [text]
    return [x for part in m.group(1).split(",")
            for x in _expand(text[:m.start()] + part + text[m.end():])]
