"""What `validate` and `list` print about a spec, cached on disk: an unchanged spec is not loaded,
validated and resolved again, and a cache hit imports neither pydantic nor YAML (stdlib only).

An entry is keyed by the spec file's absolute path and holds the spec's summary (name, params,
MACs, notes, family, input size, description). It is used only while every file the spec was
read from (the file and its `base:` chain) has the size and modification time it had, and
archspec's own source files are unchanged (their sizes and modification times). Invalid specs
are never cached, and neither are runs with `--set` overrides.

Location: `$ARCHSPEC_CACHE_DIR`, else `$XDG_CACHE_HOME/archspec`, else `~/.cache/archspec`.
`ARCHSPEC_NO_CACHE=1` turns the cache off. Unreadable or unwritable caches are ignored.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
from typing import Any

_PACKAGE = pathlib.Path(__file__).resolve().parent
_VERSION = 1


def cache_dir() -> pathlib.Path | None:
    if os.environ.get("ARCHSPEC_NO_CACHE"):
        return None
    base = os.environ.get("ARCHSPEC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "archspec")
    return pathlib.Path(base) / "summaries"


@functools.cache
def code_fingerprint() -> str:
    """Sizes and modification times of archspec's .py files: any edit invalidates the cache."""
    digest = hashlib.sha1(str(_VERSION).encode())
    for root, dirs, files in os.walk(_PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                st = os.stat(os.path.join(root, name))
                digest.update(f"{root}/{name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()


def _stamp(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _entry(path: str) -> pathlib.Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    return folder / (hashlib.sha1(os.path.abspath(path).encode()).hexdigest() + ".json")


def lookup(path: str | os.PathLike) -> dict[str, Any] | None:
    entry = _entry(str(path))
    if entry is None:
        return None
    try:
        data = json.loads(entry.read_text())
        if data["code"] != code_fingerprint() or data["spec"] != os.path.abspath(path):
            return None
        if any(_stamp(file) != stamp for file, stamp in data["files"]):
            return None
        return data["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(path: str | os.PathLike, files: list[str], summary: dict[str, Any]) -> None:
    entry = _entry(str(path))
    if entry is None:
        return
    data = {"spec": os.path.abspath(path), "code": code_fingerprint(),
            "files": [[f, _stamp(f)] for f in dict.fromkeys(files)], "summary": summary}
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f"{entry.stem}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, entry)
    except OSError:
        pass


def summary(path: str | os.PathLike) -> dict[str, Any]:
    """The summary of a valid spec (raises SpecError for an invalid one), from the cache when
    the spec and archspec are unchanged."""
    hit = lookup(path)
    if hit is not None:
        return hit
    from .resolver import resolve
    from .spec import load
    from .zoo import family_of
    spec = load(path)
    graph = resolve(spec)
    _, h, w = graph.input_shape
    result = {"name": graph.name, "params": graph.params, "macs": graph.macs,
              "notes": list(graph.notes), "family": family_of(graph), "input_size": f"{h}x{w}",
              "description": graph.description}
    store(path, spec.sources.files, result)
    return result
