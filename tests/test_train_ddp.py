"""`archspec train` under torchrun: two CPU processes, gloo, DistributedDataParallel.

Started exactly as a user would (`python -m torch.distributed.run --standalone
--nproc_per_node=2 cli.py train ...`), so torchrun's own environment (RANK, WORLD_SIZE, ...) is
what the trainer reads.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from train_util import ROOT, TINY_SPEC, metrics

ARGS = [TINY_SPEC, "--data", "synthetic", "--synthetic-samples", "512", "--batch-size", "16",
        "--seed", "1", "--device", "cpu"]


def torchrun(*args: str, env: dict | None = None, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         f"--nproc_per_node={nproc}", "cli.py", "train", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_two_gloo_processes_train_and_loss_falls(tmp_path):
    proc = torchrun(*ARGS, "--epochs", "3", "--lr", "0.8", "--scale-lr", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "processes: 2 processes (gloo, cpu); batch 16 per process x 2 = 32 global; " \
           "16 steps per epoch" in out  # 512 images / 32 per global step
    assert "lr 0.1 = 0.8 x 32/256 (--scale-lr: linear scaling" in out
    for epoch in (1, 2, 3):  # only rank 0 prints
        assert out.count(f"epoch {epoch}/3 ") == 1
    lines = metrics(tmp_path)
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert lines[-1]["train_loss"] < 0.7 * lines[0]["train_loss"]
    # After 16 of 48 steps, cosine decay from 0.1: 0.1 x (1 + cos(pi / 3)) / 2 = 0.075.
    assert lines[0]["lr"] == pytest.approx(0.075)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["rng"]["world_size"] == 2
    ranks = state["rng"]["ranks"]
    assert len(ranks) == 2 and not torch.equal(ranks[0]["torch"], ranks[1]["torch"])
    assert not any(k.startswith("module.") for k in state["model"])  # the bare module's names


@pytest.mark.slow
def test_killed_ddp_run_resumes_to_the_uninterrupted_result(tmp_path):
    """As the single-process test, with two processes: each rank's generators are saved by
    rank 0 and restored on its own rank."""
    args = [*ARGS, "--epochs", "2", "--set", "drop_path_rate=0.2"]
    a = torchrun(*args, "--out", str(tmp_path / "a"))
    assert a.returncode == 0, a.stderr[-3000:]
    b = tmp_path / "b"
    killed = torchrun(*args, "--out", str(b),
                      env={"ARCHSPEC_TRAIN_TEST_KILL_AFTER_STEPS": "20"})  # epoch 2, step 4
    assert killed.returncode != 0
    assert torch.load(b / "last.pt", weights_only=True)["epoch"] == 1
    resumed = torchrun(*args, "--out", str(b), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after epoch 1" in resumed.stdout
    wa = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    wb = torch.load(b / "last.pt", weights_only=True)["model"]
    assert max((wa[k].double() - wb[k].double()).abs().max().item() for k in wa) <= 1e-6
    assert [r["train_loss"] for r in metrics(b)] == pytest.approx(
        [r["train_loss"] for r in metrics(tmp_path / "a")], rel=1e-6)


def test_a_mistake_stops_every_process_and_is_printed_once(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    proc = torchrun(TINY_SPEC, "--data", str(data), "--device", "cpu", "--out",
                    str(tmp_path / "out"))
    assert proc.returncode != 0
    assert proc.stderr.count("the folder is empty (no class subfolders)") == 1
    assert not (tmp_path / "out").exists()
