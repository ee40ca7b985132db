"""`archspec train` mistakes: each a clear message, exit code 2, and no file of a run touched."""
from __future__ import annotations

import os
import pathlib
import pickle
import shutil

import pytest
import torch

from train_util import TINY_SPEC, make_shapes, one_thread, run_cli  # noqa: F401

SYNTHETIC = [TINY_SPEC, "--data", "synthetic", "--synthetic-samples", "64", "--batch-size", "32"]


def snapshot(folder: pathlib.Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 1-epoch synthetic run: a real last.pt, best.pt and metrics.jsonl to damage."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("finished") / "run"
    code, _, err = run_cli(*SYNTHETIC, "--epochs", "1", "--out", str(out))
    assert code == 0, err
    return out


@pytest.fixture
def run_copy(finished_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    return out


# ---- the data folder --------------------------------------------------------------------

def _layout(root: pathlib.Path, kind: str) -> pathlib.Path:
    shapes = make_shapes(root / "shapes", per_class=2)
    one_png = shapes / "circle" / "000.png"
    data = root / "data"
    if kind == "missing":
        return data
    data.mkdir()
    if kind == "loose images":
        shutil.copy(one_png, data / "a.png")
    elif kind == "class without images":
        (data / "cat").mkdir()
        (data / "dog").mkdir()
        shutil.copy(one_png, data / "cat" / "1.png")
        (data / "dog" / "notes.txt").write_text("no images here")
    elif kind == "one class":
        (data / "cat").mkdir()
        shutil.copy(one_png, data / "cat" / "1.png")
    elif kind == "a file":
        data.rmdir()
        data.write_text("not a folder")
    return data


@pytest.mark.parametrize("kind, message", [
    ("missing", "data: no such folder"),
    ("empty", "the folder is empty (no class subfolders)"),
    ("a file", "not a folder"),
    ("loose images", "1 image lies directly in the folder, and there are no class subfolders"),
    ("class without images", "a class folder has no images: "),
    ("one class", "only one class ('cat'); a classifier needs at least two"),
])
def test_bad_data_folder(tmp_path, capsys, kind, message):
    data = _layout(tmp_path, kind)
    out = tmp_path / "out"
    code, _, err = run_cli(TINY_SPEC, "--data", str(data), "--out", str(out))
    assert code == 2
    assert message in err and str(data) in err
    assert "hint:" in err and "Traceback" not in err
    assert not out.exists()  # checked before anything is written


def test_class_without_images_names_the_folder(tmp_path):
    data = _layout(tmp_path, "class without images")
    code, _, err = run_cli(TINY_SPEC, "--data", str(data), "--out", str(tmp_path / "out"))
    assert code == 2 and str(data / "dog") in err


@pytest.mark.parametrize("workers", ["0", "2"])  # decoded here, or in loader processes
def test_unreadable_image_is_named_and_checkpoints_are_kept(tmp_path, workers):
    data = make_shapes(tmp_path / "data", per_class=10)
    out = tmp_path / "out"
    args = [TINY_SPEC, "--data", str(data), "--batch-size", "8", "--val-split", "0",
            "--out", str(out), "--workers", workers]
    code, _, err = run_cli(*args, "--epochs", "1")
    assert code == 0, err
    before = snapshot(out)
    bad = data / "square" / "004.png"
    bad.write_bytes(b"this is not a PNG")
    code, _, err = run_cli(*args, "--epochs", "2", "--resume")
    assert code == 2
    assert f"cannot read image {bad}" in err and "UnidentifiedImageError" in err
    assert "Traceback" not in err
    assert snapshot(out) == before  # last.pt and metrics.jsonl untouched


def test_val_classes_must_exist_in_training(tmp_path):
    train = make_shapes(tmp_path / "train", per_class=2)
    val = make_shapes(tmp_path / "val", per_class=2)
    shutil.move(val / "cross", val / "star")
    code, _, err = run_cli(TINY_SPEC, "--data", str(train), "--val-data", str(val),
                           "--out", str(tmp_path / "out"))
    assert code == 2 and "classes not in the training data: star" in err


def test_image_folders_need_one_or_three_channels(tmp_path):
    data = make_shapes(tmp_path / "data", per_class=2)
    code, _, err = run_cli(TINY_SPEC, "--data", str(data), "--set", "input.channels=4",
                           "--out", str(tmp_path / "out"))
    assert code == 2 and "the spec's input has 4 channels" in err


def test_explicit_num_classes_that_disagrees_with_the_data(tmp_path):
    data = make_shapes(tmp_path / "data", per_class=2)
    code, _, err = run_cli(TINY_SPEC, "--data", str(data), "--set", "head.num_classes=7",
                           "--out", str(tmp_path / "out"))
    assert code == 2 and "head.num_classes=7 disagrees with the data, which has 4 classes" in err


def test_spec_error_keeps_its_location(tmp_path):
    code, _, err = run_cli(*SYNTHETIC, "--set", "stages.widths=[16]", "--out", str(tmp_path))
    assert code == 2 and "tiny_basic.yaml:" in err and "stages.depths" in err


@pytest.mark.parametrize("option, value, message", [
    ("--epochs", "0", "--epochs: expected at least 1, got 0"),
    ("--label-smoothing", "1.5", "--label-smoothing: expected 0 <= x < 1"),
    ("--warmup-epochs", "5", "--warmup-epochs: expected 0 to --epochs (1), got 5"),
    ("--val-split", "0.2", "--val-split: not used with --data synthetic"),
])
def test_bad_options(tmp_path, option, value, message):
    code, _, err = run_cli(*SYNTHETIC, "--epochs", "1", option, value, "--out", str(tmp_path))
    assert code == 2 and message in err


# ---- the output folder and its checkpoints -----------------------------------------------

def test_existing_run_is_not_overwritten_without_a_flag(run_copy):
    before = snapshot(run_copy)
    code, _, err = run_cli(*SYNTHETIC, "--epochs", "1", "--out", str(run_copy))
    assert code == 2 and "already holds a training run" in err and "--resume" in err
    assert snapshot(run_copy) == before
    code, _, err = run_cli(*SYNTHETIC, "--epochs", "1", "--out", str(run_copy), "--resume",
                           "--overwrite")
    assert code == 2 and "given together with --overwrite" in err
    assert snapshot(run_copy) == before


def test_overwrite_starts_again(run_copy):
    (run_copy / "metrics.jsonl").write_text('{"epoch": 1, "marker": true}\n')
    code, stdout, err = run_cli(*SYNTHETIC, "--epochs", "1", "--out", str(run_copy),
                                "--overwrite")
    assert code == 0, err
    assert "marker" not in (run_copy / "metrics.jsonl").read_text()
    assert "resuming" not in stdout


def test_resume_of_a_finished_run_has_nothing_to_do(run_copy):
    before = snapshot(run_copy)
    code, stdout, _ = run_cli(*SYNTHETIC, "--epochs", "1", "--out", str(run_copy), "--resume")
    assert code == 0 and "nothing to do" in stdout
    assert snapshot(run_copy) == before


def test_checkpoint_of_another_spec_is_refused(run_copy):
    before = snapshot(run_copy)
    code, _, err = run_cli(*SYNTHETIC, "--epochs", "2", "--out", str(run_copy), "--resume",
                           "--set", "stages.widths=[16,64]")
    assert code == 2
    assert "was trained from a different spec; not resuming, nothing written" in err
    assert "stages.widths: checkpoint [16, 32], now [16, 64]" in err
    assert snapshot(run_copy) == before


def _truncate(path: pathlib.Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: pathlib.Path) -> None:
    path.write_bytes(os.urandom(4096))


def _empty(path: pathlib.Path) -> None:
    path.write_bytes(b"")


def _not_ours(path: pathlib.Path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch exploited",))


def _malicious(path: pathlib.Path) -> None:
    torch.save({"format": "archspec.train/1", "payload": _Exploit()}, path)


@pytest.mark.parametrize("damage, message", [
    (_truncate, "not a complete torch.save file"),
    (_garbage, "not a complete torch.save file"),
    (_empty, "the file is empty"),
    (_not_ours, "not an archspec training checkpoint"),
    (_malicious, "refused by weights_only loading, it holds more than tensors and plain values: "),
])
def test_damaged_checkpoint_is_refused(run_copy, monkeypatch, damage, message):
    monkeypatch.chdir(run_copy)
    damage(run_copy / "last.pt")
    before = snapshot(run_copy)
    code, _, err = run_cli(*SYNTHETIC, "--epochs", "2", "--out", str(run_copy), "--resume")
    assert code == 2
    assert f"{run_copy / 'last.pt'}: " in err and message in err, err
    assert "Traceback" not in err
    assert snapshot(run_copy) == before
    assert not (run_copy / "exploited").exists()


def test_save_is_atomic(tmp_path, monkeypatch):
    """A write that dies halfway leaves the previous checkpoint whole and no temporary file."""
    from archspec.train import checkpoint
    path = str(tmp_path / "last.pt")
    checkpoint.save({"format": checkpoint.FORMAT, "epoch": 1}, path)
    original = torch.save

    def dies_halfway(obj, f):
        original(obj, f)
        f.truncate(f.tell() // 2)
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save({"format": checkpoint.FORMAT, "epoch": 2}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]


def test_nothing_but_plain_values_goes_into_a_checkpoint(tmp_path):
    from archspec.errors import InternalError
    from archspec.train import checkpoint
    with pytest.raises(InternalError, match="cannot go into a checkpoint"):
        checkpoint.save({"bad": pathlib.Path("x")}, str(tmp_path / "x.pt"))
    assert not list(tmp_path.iterdir())
    assert pickle.loads(pickle.dumps(checkpoint.plain({"v": torch.__version__})))["v"].__class__ \
        is str


def test_resume_with_another_optimizer_is_refused(run_copy):
    before = snapshot(run_copy)
    code, _, err = run_cli(*SYNTHETIC, "--epochs", "2", "--out", str(run_copy), "--resume",
                           "--optimizer", "adamw")
    assert code == 2 and "trained with --optimizer sgd, this run asks for adamw" in err
    assert snapshot(run_copy) == before
