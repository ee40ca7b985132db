"""bench/gpu_check.py in its CPU smoke mode: the same code path the GPU run takes (model pairs,
deploy mode, alternating rounds, JSON + markdown), on tiny inputs. Slow step: it builds five
ResNet-50-sized networks twice."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_gpu_check_quick_cpu(tmp_path):
    started = time.time()
    done = subprocess.run([sys.executable, "bench/gpu_check.py", str(tmp_path), "--device", "cpu",
                           "--quick", "--no-install"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    rows = {(r["model"], r["mode"]): r for r in result["rows"]}
    assert set(rows) == {(m, mode) for m in ("resnet50", "resnext50_32x4d", "resnest50d",
                                             "convnext_tiny", "mobilenetv2_100")
                         for mode in ("train", "infer")}
    for (model, mode), row in rows.items():
        assert "skipped" not in row, row
        assert row["archspec"]["images_per_s"] > 0
        assert ("deploy" in row) == (mode == "infer")
        assert ("hand-written" in row) == (model in ("resnet50", "resnext50_32x4d",
                                                     "convnext_tiny")), (model, row)
    markdown = (tmp_path / "gpu_check.md").read_text()
    assert sum(line.startswith("|") for line in markdown.splitlines()) == 1 + 1 + 10  # header,
    # rule, one line per row
    assert markdown in done.stdout
    print(f"gpu_check --quick took {time.time() - started:.0f} s")


def test_gpu_check_refuses_cuda_without_a_gpu(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    done = subprocess.run([sys.executable, "bench/gpu_check.py", str(tmp_path), "--no-install",
                           "--models", "resnet50"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert "no CUDA device" in done.stderr and "Traceback" not in done.stderr
