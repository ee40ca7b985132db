"""`archspec train` on a CUDA device (marker `gpu`: never part of CI, run where a GPU is).

Mixed precision (bf16, and fp16 with its gradient scaler), channels-last, torch.compile, and the
NCCL path: torchrun with one process per GPU, killed mid-epoch and resumed.
"""
from __future__ import annotations

import pytest
import torch

from test_train_ddp import torchrun
from train_util import TINY_SPEC, metrics, run_cli

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

SYNTHETIC = [TINY_SPEC, "--data", "synthetic", "--synthetic-samples", "1024", "--batch-size",
             "64", "--epochs", "3", "--device", "cuda"]


@pytest.mark.parametrize("speed", [[], ["--amp", "bf16", "--channels-last"],
                                   ["--amp", "fp16", "--channels-last"]])
def test_cuda_training_learns(tmp_path, speed):
    code, stdout, err = run_cli(*SYNTHETIC, *speed, "--out", str(tmp_path))
    assert code == 0, err
    assert "1 process (cuda:0)" in stdout
    lines = metrics(tmp_path)
    assert lines[-1]["train_loss"] < 0.7 * lines[0]["train_loss"]
    assert lines[-1]["val_acc"] >= 0.7  # chance: 0.25
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["rng"]["ranks"][0]["cuda"] is not None
    assert (state["scaler"] is not None) == ("fp16" in speed)


@pytest.mark.compile
def test_cuda_compile(tmp_path):
    code, stdout, err = run_cli(*SYNTHETIC, "--compile", "--amp", "bf16", "--out", str(tmp_path))
    assert code == 0, err
    lines = metrics(tmp_path)
    assert lines[-1]["train_loss"] < 0.7 * lines[0]["train_loss"]


def test_nccl_run_killed_and_resumed(tmp_path):
    """torchrun, one process on the GPU: NCCL and DDP. A run killed in epoch 2 and resumed ends
    with the weights of an uninterrupted one, up to GPU arithmetic (cuDNN may pick kernels that
    sum in another order)."""
    args = [*SYNTHETIC[:-1], "cuda", "--set", "drop_path_rate=0.2"]
    args[args.index("--epochs") + 1] = "2"
    a = torchrun(*args, "--out", str(tmp_path / "a"), nproc=1)
    assert a.returncode == 0, a.stderr[-3000:]
    assert "1 process (nccl, cuda)" in a.stdout
    b = tmp_path / "b"
    killed = torchrun(*args, "--out", str(b), nproc=1,
                      env={"ARCHSPEC_TRAIN_TEST_KILL_AFTER_STEPS": "20"})  # 16 steps an epoch
    assert killed.returncode != 0
    resumed = torchrun(*args, "--out", str(b), "--resume", nproc=1)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    wa = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    wb = torch.load(b / "last.pt", weights_only=True)["model"]
    diff = max((wa[k].double() - wb[k].double()).abs().max().item() for k in wa)
    print(f"largest weight difference, straight vs killed and resumed: {diff:.3g}")
    assert diff <= 1e-3
    la, lb = metrics(tmp_path / "a"), metrics(b)
    assert lb[-1]["train_loss"] == pytest.approx(la[-1]["train_loss"], rel=1e-3)
