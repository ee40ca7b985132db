"""`archspec train`: a tiny spec learns a generated image task; checkpoints load safely, rebuild
the model, and a run killed mid-epoch resumes to the same weights as an uninterrupted one.

Accuracy is checked against chance (1 / classes) on images the run never saw, decoded and resized
here with Pillow, not by the training code; resumption is checked against a second, uninterrupted
run (the reference comes from the same command, not from a stored number).
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import archspec
from train_util import (ROOT, SHAPES, TINY_SPEC, make_shapes, metrics,  # noqa: F401
                        one_thread, run_cli)


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    """One training run on 4 classes of coloured shapes (60 PNGs each, 25% held out)."""
    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("shapes")
    data = make_shapes(base / "data", per_class=60, seed=0)
    out = base / "run"
    code, stdout, stderr = run_cli(
        TINY_SPEC, "--data", str(data), "--val-split", "0.25", "--epochs", "4",
        "--batch-size", "32", "--warmup-epochs", "1", "--label-smoothing", "0.1",
        "--crop-scale", "0.35", "--out", str(out), "--seed", "0")
    assert code == 0, stderr
    return out, stdout


def test_learns_coloured_shapes_well_above_chance(shapes_run):
    out, stdout = shapes_run
    lines = metrics(out)
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4]
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    chance = 1 / len(SHAPES)
    assert lines[-1]["val_acc"] >= 0.7 > chance + 0.4, lines[-1]


def test_progress_report_and_summary(shapes_run):
    _, stdout = shapes_run
    assert "4 classes, 180 training images, 60 validation images" in stdout
    assert "batch 32 per process x 1 = 32 global" in stdout
    assert stdout.count("img/s") == 4  # one line per epoch
    assert "linear warm-up over 1 epoch, then cosine" in stdout
    assert "done: 4 epochs" in stdout and "best: val acc" in stdout


def test_best_checkpoint_is_the_best_epoch_of_the_metrics(shapes_run):
    out, _ = shapes_run
    lines = metrics(out)
    best_epoch = max(lines, key=lambda r: r["val_acc"])["epoch"]  # first of equals, like `>`
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    assert best["epoch"] == best_epoch
    assert best["best"] == {"val_acc": lines[best_epoch - 1]["val_acc"], "epoch": best_epoch}
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 4


def test_checkpoint_rebuilds_a_model_that_classifies_new_images(shapes_run, tmp_path):
    """Load last.pt safely, rebuild from the spec stored in it, and classify freshly drawn
    shapes (another seed) resized by Pillow here: the weights are really the trained ones."""
    from PIL import Image
    out, _ = shapes_run
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    for key in ("model", "optimizer", "scheduler", "scaler", "epoch", "rng", "spec", "classes"):
        assert key in state
    assert state["rng"]["world_size"] == 1
    assert state["rng"]["ranks"][0]["torch"].dtype == torch.uint8  # torch.get_rng_state()
    model = archspec.build(archspec.load(state["spec"]))
    model.load_state_dict(state["model"])
    model.eval()
    fresh = make_shapes(tmp_path / "fresh", per_class=25, seed=123)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)  # ImageNet statistics
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    xs, ys = [], []
    for label, name in enumerate(state["classes"]):
        for path in sorted((fresh / name).iterdir()):
            img = Image.open(path).convert("RGB").resize((32, 32),
                                                         Image.Resampling.BILINEAR)
            x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(32, 32, 3)
            xs.append((x.permute(2, 0, 1).float() / 255 - mean) / std)
            ys.append(label)
    with torch.no_grad():
        predicted = model(torch.stack(xs)).argmax(1)
    accuracy = (predicted == torch.tensor(ys)).float().mean().item()
    assert accuracy >= 0.7, accuracy  # chance: 0.25


def _same_weights(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    """Run A: 2 epochs straight. Run B: the same, SIGKILLed mid-epoch 2 (a test hook kills the
    process after 11 of its 16 steps), then `--resume`d. Drop path is on, so B matches A only if
    the generator states were restored, not just the weights."""
    args = [TINY_SPEC, "--data", "synthetic", "--synthetic-samples", "256", "--epochs", "2",
            "--batch-size", "32", "--set", "drop_path_rate=0.2", "--warmup-epochs", "1",
            "--label-smoothing", "0.1", "--seed", "3", "--device", "cpu"]
    code, _, err = run_cli(*args, "--out", str(tmp_path / "a"))
    assert code == 0, err

    b = tmp_path / "b"
    env = {**os.environ, "ARCHSPEC_TRAIN_TEST_KILL_AFTER_STEPS": "11", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "cli.py", "train", *args, "--out", str(b)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr  # killed, not finished
    assert torch.load(b / "last.pt", weights_only=True)["epoch"] == 1
    assert [r["epoch"] for r in metrics(b)] == [1]
    assert not [p for p in os.listdir(b) if p.endswith(".tmp")]

    code, stdout, err = run_cli(*args, "--out", str(b), "--resume")
    assert code == 0, err
    assert "resuming after epoch 1" in stdout
    a_state = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b_state = torch.load(b / "last.pt", weights_only=True)
    assert _same_weights(a_state["model"], b_state["model"]) <= 1e-6
    assert _same_weights(a_state["optimizer"]["state"][0], b_state["optimizer"]["state"][0]) <= 1e-6
    ma, mb = metrics(tmp_path / "a"), metrics(b)
    assert [r["epoch"] for r in mb] == [1, 2]
    for ra, rb in zip(ma, mb):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert rb[key] == pytest.approx(ra[key], rel=1e-6, abs=1e-9), key


def test_resume_without_restored_generators_would_differ(tmp_path, monkeypatch):
    """The check above can fail: two identical 1-epoch runs, each resumed for a second epoch,
    one with the generator restore skipped, end with different weights (drop path draws)."""
    from archspec.train import checkpoint
    args = [TINY_SPEC, "--data", "synthetic", "--synthetic-samples", "128", "--batch-size", "32",
            "--set", "drop_path_rate=0.2"]
    for name in ("restored", "skipped"):
        assert run_cli(*args, "--epochs", "1", "--out", str(tmp_path / name))[0] == 0
    assert run_cli(*args, "--epochs", "2", "--out", str(tmp_path / "restored"), "--resume")[0] == 0
    monkeypatch.setattr(checkpoint, "set_rng_state", lambda *a: None)
    assert run_cli(*args, "--epochs", "2", "--out", str(tmp_path / "skipped"), "--resume")[0] == 0
    restored = torch.load(tmp_path / "restored" / "last.pt", weights_only=True)["model"]
    skipped = torch.load(tmp_path / "skipped" / "last.pt", weights_only=True)["model"]
    assert _same_weights(restored, skipped) > 1e-4


def test_bf16_autocast_and_channels_last_train(tmp_path):
    code, stdout, err = run_cli(TINY_SPEC, "--data", "synthetic", "--synthetic-samples", "128",
                                "--epochs", "2", "--batch-size", "32", "--amp", "bf16",
                                "--channels-last", "--out", str(tmp_path))
    assert code == 0, err
    assert "amp bf16; channels-last on" in stdout
    lines = metrics(tmp_path)
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in lines)


def test_num_classes_follows_the_data(tmp_path):
    data = make_shapes(tmp_path / "data", per_class=8)
    for f in (data / "cross").iterdir():  # 3 classes left; the spec says 4
        f.unlink()
    (data / "cross").rmdir()
    code, stdout, err = run_cli(TINY_SPEC, "--data", str(data), "--epochs", "1",
                                "--batch-size", "8", "--out", str(tmp_path / "run"))
    assert code == 0, err
    assert "head.num_classes set to 3 to match the data (the spec says 4)" in stdout
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["spec"]["head"]["num_classes"] == 3
    assert state["model"]["head.fc.weight"].shape[0] == 3
    assert state["classes"] == ["circle", "square", "triangle"]


@pytest.mark.slow
@pytest.mark.compile
def test_compile_trains(tmp_path):
    code, stdout, err = run_cli(TINY_SPEC, "--data", "synthetic", "--synthetic-samples", "128",
                                "--epochs", "2", "--batch-size", "32", "--compile",
                                "--out", str(tmp_path))
    assert code == 0, err
    assert "compile on" in stdout
    lines = metrics(tmp_path)
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]


def test_resume_applies_the_new_learning_rate_and_length(tmp_path):
    args = [TINY_SPEC, "--data", "synthetic", "--synthetic-samples", "64", "--batch-size", "32",
            "--out", str(tmp_path)]
    assert run_cli(*args, "--epochs", "1", "--lr", "0.1")[0] == 0
    code, stdout, err = run_cli(*args, "--epochs", "3", "--lr", "0.2", "--resume")
    assert code == 0, err
    assert "--epochs 1 -> 3; --lr 0.1 -> 0.2" in stdout
    # After epoch 2 of 3 the cosine factor is (1 + cos(2 pi / 3)) / 2 = 0.25, times the new lr.
    assert metrics(tmp_path)[1]["lr"] == pytest.approx(0.2 * 0.25)
