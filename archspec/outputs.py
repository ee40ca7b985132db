"""Files archspec writes: only where the user said, whole or not at all.

Every command that writes a file (render, diff --render, train's checkpoints, convert) goes
through here:

- `check_output(path, overwrite)` refuses targets that writing would damage or that were not
  meant: a symbolic link (replacing it would not write where it points, and writing through it
  would reach a file the user did not name), a read-only file, a folder, and a device, pipe or
  socket. `overwrite=True` allows replacing a link or a read-only file (the link itself is
  replaced, never its target); folders and devices are refused whatever the flag.
- `write_atomic(path, data)` writes a temporary file in the same folder, flushes it to disk and
  renames it over `path`: a crash or SIGKILL at any moment leaves the previous file or the new
  one, never a partial file. `data` is bytes, or a function that writes to a binary file object
  (`lambda f: torch.save(state, f)`).
- `safe_name(text)` turns a name from a spec into one path component that cannot leave its
  folder (no separators, no `..`, no leading dot).

No torch import here: `render` and `diff` use it.
"""
from __future__ import annotations

import os
import re
import stat
import tempfile
from typing import BinaryIO, Callable


class OutputError(Exception):
    """An output path that archspec will not write; `hint` says what to do instead."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint

    def __str__(self) -> str:
        return self.message + (f"\n  hint: {self.hint}" if self.hint else "")


def check_output(path: str, overwrite: bool = False, option: str = "-o") -> None:
    """Raise OutputError unless writing `path` replaces nothing but a regular writable file
    (or, with `overwrite`, a link or a read-only file). `option` names the flag in messages."""
    shown = f"{option} {path}" if option else path
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"{shown}: folder '{folder}' does not exist",
                          "create it first, or write elsewhere")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        raise OutputError(f"{shown}: is a folder", "give a file name inside it")
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        kind = "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
            "a pipe" if stat.S_ISFIFO(mode) else "a socket"
        raise OutputError(f"{shown}: is {kind}, not a file; archspec never replaces one",
                          "write to a regular file")
    if overwrite:
        return
    if stat.S_ISLNK(mode):
        raise OutputError(f"{shown}: is a symbolic link (to {os.readlink(path)}); not written",
                          "--overwrite replaces the link itself with the new file (its target "
                          "is left alone), or write to the target's path")
    writable_bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    if not info.st_mode & writable_bits or not os.access(path, os.W_OK):  # root: the bits
        raise OutputError(f"{shown}: is read-only; not written",
                          "--overwrite replaces it, or write elsewhere")


def write_atomic(path: str, data: bytes | Callable[[BinaryIO], object]) -> None:
    """Write the whole file or nothing: a temporary file beside it, then one rename. An existing
    file's permissions are kept; the rename is flushed to disk with the folder."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            if callable(data):
                data(out)
            else:
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, _mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _sync_folder(folder)


def _mode(path: str) -> int:
    """Keep an existing regular file's permissions (writable by its owner: the new file must be
    replaceable in turn); a new file gets 0666 minus the umask."""
    try:
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode):
            return (info.st_mode & 0o7777) | stat.S_IWUSR
    except FileNotFoundError:
        pass
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _sync_folder(folder: str) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_UNSAFE = re.compile(r"[^\w.-]+")


def safe_name(text: str, default: str = "run", max_length: int = 64) -> str:
    """One harmless path component from a spec's `name`: letters, digits, `_`, `.` and `-`
    kept, any run of other characters (`/`, spaces) made one `_`, no leading dot or `_`
    (hidden files, `..`), at most `max_length` characters; `default` if nothing is left."""
    name = _UNSAFE.sub("_", text).lstrip("._")[:max_length].rstrip("_")
    return name or default
