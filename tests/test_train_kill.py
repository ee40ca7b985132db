"""SIGKILL at random moments: a training run killed at any point (mid-step, mid-evaluation,
mid-checkpoint-write) leaves either no last.pt or a complete one, and `--resume` after each kill
ends at the same weights as an uninterrupted run with the same seed.

The kill times are random (a fresh seed each run, printed on failure so it can be replayed with
ARCHSPEC_KILL_SEED). Each epoch is two steps and ends with a checkpoint, so kills land in saves
as well as in steps.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from archspec.train import checkpoint
from train_util import ROOT, TINY_SPEC, metrics, one_thread, run_cli  # noqa: F401

ARGS = [TINY_SPEC, "--data", "synthetic", "--synthetic-samples", "64", "--epochs", "6",
        "--batch-size", "32", "--set", "drop_path_rate=0.2", "--seed", "5", "--device", "cpu",
        "--no-progress"]


def _start(out, resume: bool) -> subprocess.Popen:
    cmd = [sys.executable, "cli.py", "train", *ARGS, "--out", str(out)]
    if resume:
        cmd.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _kill_once(out, rng: random.Random, resume: bool) -> bool:
    """Start (or resume) the run, wait until it trains, SIGKILL it after a random delay.
    Returns False if it finished first."""
    proc = _start(out, resume)
    started = time.monotonic()
    while not (out / "metrics.jsonl").exists() and proc.poll() is None:
        if time.monotonic() - started > 240:
            proc.kill()
            pytest.fail("the run never started training")
        time.sleep(0.01)
    time.sleep(rng.uniform(0, 0.6))
    if proc.poll() is not None:
        assert proc.returncode == 0, proc.stderr.read()
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


@pytest.mark.slow
def test_random_sigkills_then_resume_end_at_the_uninterrupted_weights(tmp_path):
    seed = int(os.environ.get("ARCHSPEC_KILL_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    code, _, err = run_cli(*ARGS, "--out", str(tmp_path / "straight"))
    assert code == 0, err

    out = tmp_path / "killed"
    kills = 0
    for attempt in range(4):
        if not _kill_once(out, rng, resume=attempt > 0):
            break
        kills += 1
        last = out / "last.pt"
        if last.exists():  # complete, whatever the moment of the kill
            state = checkpoint.load(str(last))
            assert 1 <= state["epoch"] <= 6, f"ARCHSPEC_KILL_SEED={seed}"
    code, _, err = run_cli(*ARGS, "--out", str(out), "--resume")
    assert code == 0, f"ARCHSPEC_KILL_SEED={seed}: {err}"
    assert kills >= 1, "no kill landed before the run finished"
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(out / "last.pt", weights_only=True)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), f"ARCHSPEC_KILL_SEED={seed}: {key}"
    assert [r["epoch"] for r in metrics(out)] == list(range(1, 7))
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]
