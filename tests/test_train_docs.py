"""docs/training.md: the examples tagged `<!-- doc-test: NAME -->` run as written."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from train_util import ROOT

DOC = ROOT / "docs" / "training.md"
TAGGED = re.compile(r"<!-- doc-test: (\S+) -->\n```(\w+)\n(.*?)```", re.S)
BLOCKS = {name: (lang, text) for name, lang, text in TAGGED.findall(DOC.read_text())}


def run_block(name: str, cwd) -> subprocess.CompletedProcess:
    lang, text = BLOCKS[name]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", text] if lang == "python" else ["bash", "-c", text]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture
def workdir(tmp_path):
    """A folder like the repository root: the examples' paths (specs/, cli.py) resolve."""
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    (tmp_path / "cli.py").symlink_to(ROOT / "cli.py")
    return tmp_path


def test_the_doc_tags_its_examples():
    assert set(BLOCKS) == {"make-data", "train", "load", "own-loop", "api"}


def test_own_training_loop_example(workdir):
    result = run_block("own-loop", workdir)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"loss \d+\.\d{3}\n", result.stdout)


def test_python_api_example(workdir):
    result = run_block("api", workdir)
    assert result.returncode == 0, result.stderr
    lines = (workdir / "out" / "resnet18" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["epoch"] == 1


@pytest.mark.slow
def test_worked_example_on_a_folder_of_images(workdir):
    """Draw the folder, train ResNet-18 on it, load best.pt: as a reader would, in order."""
    for name in ("make-data", "train", "load"):
        result = run_block(name, workdir)
        assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
    final = json.loads((workdir / "out/shapes/metrics.jsonl").read_text().splitlines()[-1])
    assert final["epoch"] == 8 and final["val_acc"] >= 0.6  # chance: 0.25
    assert "['circle', 'cross', 'square', 'triangle']" in result.stdout
