"""Outputs go only where the user said, whole or not at all (archspec/outputs.py): render -o
refuses links, read-only files, folders and devices; train's default folder is a safe name."""
from __future__ import annotations

import os
import stat

import pytest

import cli
from archspec.outputs import OutputError, check_output, safe_name, write_atomic
from conftest import ROOT

SPEC = str(ROOT / "specs" / "resnet18.yaml")


def render(out, *flags) -> tuple[int, str]:
    import contextlib
    import io
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["render", SPEC, "-o", str(out), "--format", "dot", "--level", "stage",
                         *flags])
    return code, err.getvalue()


def test_render_refuses_a_symlink_unless_overwrite_and_never_writes_its_target(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "net.dot"
    link.symlink_to(target)
    code, err = render(link)
    assert code == 2 and f"-o {link}: is a symbolic link (to {target}); not written" in err
    assert "hint: --overwrite replaces the link itself" in err
    code, err = render(link, "--overwrite")
    assert code == 0, err
    assert not link.is_symlink() and link.read_text().startswith("digraph")
    assert target.read_text() == "keep me"


def test_render_refuses_a_read_only_file_unless_overwrite(tmp_path):
    out = tmp_path / "net.dot"
    out.write_text("previous")
    out.chmod(0o444)  # refused even for root, who may write it: the user made it read-only
    code, err = render(out)
    assert code == 2 and "is read-only; not written" in err
    assert out.read_text() == "previous"
    assert render(out, "--overwrite")[0] == 0
    assert out.read_text().startswith("digraph")


@pytest.mark.parametrize("overwrite", [False, True])
def test_render_never_replaces_a_device_or_a_folder(tmp_path, overwrite):
    flags = ["--overwrite"] if overwrite else []
    code, err = render("/dev/null", *flags)
    assert code == 2 and "-o /dev/null: is a device, not a file; archspec never replaces one" in err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    code, err = render(tmp_path, *flags)
    assert code == 2 and "is a folder" in err


def test_render_refuses_a_fifo(tmp_path):
    fifo = tmp_path / "net.dot"
    os.mkfifo(fifo)
    code, err = render(fifo, "--overwrite")
    assert code == 2 and "is a pipe, not a file" in err


def test_write_atomic_keeps_permissions_and_leaves_no_temporary_file(tmp_path):
    out = tmp_path / "a.bin"
    out.write_bytes(b"old")
    out.chmod(0o640)
    write_atomic(str(out), lambda f: f.write(b"new"))
    assert out.read_bytes() == b"new" and stat.S_IMODE(out.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["a.bin"]


@pytest.mark.parametrize("name, folder", [
    ("resnet50", "resnet50"), ("../../etc", "etc"), ("/abs/path", "abs_path"), ("..", "run"),
    (".hidden", "hidden"), ("a b/c", "a_b_c"), ("", "run"), ("x" * 100, "x" * 64),
])
def test_safe_name_never_leaves_its_folder(name, folder):
    assert safe_name(name) == folder
    assert os.path.dirname(os.path.join("out", safe_name(name))) == "out"


def test_train_default_folder_comes_from_the_sanitised_name(tmp_path, monkeypatch):
    """A spec named '../../escape' trains into ./out/escape, not two folders up."""
    from archspec.train import TrainConfig, train
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    summary = train(TrainConfig(spec=str(ROOT / "tests" / "data" / "tiny_basic.yaml"),
                                data="synthetic", epochs=1, batch_size=8, synthetic_samples=8,
                                overrides=["name=../../escape"], progress=False))
    assert summary["out"] == os.path.join("out", "escape")
    assert (tmp_path / "work" / "out" / "escape" / "last.pt").is_file()
    assert not (tmp_path / "escape").exists()


def test_train_refuses_a_linked_checkpoint(tmp_path):
    from archspec.train import TrainConfig, TrainError, train
    out = tmp_path / "run"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere.pt"
    elsewhere.write_bytes(b"not ours")
    (out / "last.pt").symlink_to(elsewhere)
    with pytest.raises(TrainError, match="last.pt: is a symbolic link"):
        train(TrainConfig(spec=str(ROOT / "tests" / "data" / "tiny_basic.yaml"),
                          data="synthetic", epochs=1, batch_size=8, synthetic_samples=8,
                          out=str(out), resume=True, progress=False))
    assert elsewhere.read_bytes() == b"not ours"
