"""docs/modernize.md and docs/explore.md: every `$ archspec ...` line runs, from a folder holding
`specs/`; the numbers and output lines the pages show are what the commands produce; the Python
example prints what its comments say; the figures the pages show exist."""
from __future__ import annotations

import re
import shlex

import pytest

import archspec
import cli
from archspec.activations import training_memory
from conftest import ROOT, SPEC_DIR

DOCS = ROOT / "docs"


def _commands(text: str) -> list[tuple[list[str], list[str]]]:
    """(argv, the output lines shown under it) for each `$ archspec` line of a console block."""
    out = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for chunk in re.split(r"^(?=\$ )", block, flags=re.M):
            lines = chunk.rstrip("\n").splitlines()
            if lines and lines[0].startswith("$ archspec "):
                out.append((shlex.split(lines[0][len("$ archspec "):]), lines[1:]))
    return out


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "specs").symlink_to(SPEC_DIR)
    yaml_block = re.search(r"```yaml\n(name: resnet200.*?)```",
                           (DOCS / "modernize.md").read_text(), re.S).group(1)
    (tmp_path / "resnet200.yaml").write_text(yaml_block)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run_all(doc: str, capsys) -> dict[str, str]:
    printed = {}
    commands = _commands((DOCS / doc).read_text())
    assert commands
    for argv, shown in commands:
        assert cli.main(argv) == 0, argv
        out = capsys.readouterr().out
        for line in shown:  # each line the page shows is a line the command printed
            assert line in out.splitlines(), (argv, line)
        printed[" ".join(argv)] = out
    return printed


def _table(text: str, after: str) -> list[tuple[str, str, str]]:
    """(step number, params, GMACs) of the first `| # | step | params | GMACs |` table after
    `after`."""
    part = text[text.index(after):]
    table = part[part.index("| # | step | params | GMACs |"):].split("\n\n")[0]
    return re.findall(r"^\| (\d+) \| [^|]+ \| ([\d,]+) \| ([\d.]+) \|$", table, re.M)


def test_modernize_doc(workdir, capsys):
    _run_all("modernize.md", capsys)
    text = (DOCS / "modernize.md").read_text()
    for folder, after in (("resnet50_modern", "## ResNet-50 to ConvNeXt-T"),
                          ("resnet200_modern", "## The larger roadmap")):
        readme = (workdir / "build" / folder / "README.md").read_text()
        rows = {n: (p, g) for n, p, g in re.findall(
            r"^\| (\d+) \| \S+\.yaml \| [^|]+ \| ([\d,]+) \| [^|]* \| ([\d.]+) \|", readme, re.M)}
        shown = _table(text, after)
        assert len(shown) >= 6
        for number, params, gmacs in shown:
            assert rows[number] == (params, gmacs), (folder, number)
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, "docs/modernize.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed == [c.strip() for c in re.findall(r"# (.+)$", code, re.M)]


def test_explore_doc(workdir, capsys):
    printed = _run_all("explore.md", capsys)
    text = (DOCS / "explore.md").read_text()
    build = next(out for argv, out in printed.items() if argv.startswith("build "))
    line = re.search(r"```\n(acts [^\n]+)\n```", text).group(1)
    assert line in build.splitlines()
    # the estimate column of the measurement table is the estimate (the measured columns come
    # from the slow test in tests/test_activations.py)
    for name, estimate in re.findall(r"^\| (\w+) \| ([\d,]+) \|", text, re.M):
        graph = archspec.resolve(SPEC_DIR / f"{name}.yaml", ["input.image_size=64"])
        assert training_memory(graph, 8).total == int(estimate.replace(",", "")), name


@pytest.mark.parametrize("doc", ["modernize.md", "explore.md"])
def test_figures_exist(doc):
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (DOCS / doc).read_text())
    assert figures
    for figure in figures:
        assert (DOCS / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", figure
