"""What `validate` and `list` print about a spec, remembered on disk between runs.

Checking a spec means importing pydantic, building the spec models and resolving the network:
about 0.15 s before the first spec, then a few milliseconds per spec. An unchanged spec gives the
same answer, so `validate` and `list` keep each valid spec's summary (name, counts, notes,
family, input size, description) and use it again, importing neither pydantic nor YAML, while
everything the answer depends on is unchanged:

- every file the spec was read from (the spec and its `base:` chain): their contents' hashes
  (so an edit within the file system's timestamp resolution is still seen);
- archspec's own source files (sizes and modification times), the Python version, and the
  installed pydantic and PyYAML (their files' modification times);
- the block families installed as `archspec.blocks` entry points (names, modules, versions);
- the `ARCHSPEC_*` environment variables (the loader's and resolver's limits);
- the working folder (notes name files relative to it).

Invalid specs are never stored (their errors are always computed afresh), nor are runs with
`--set` overrides or `--strict`, nor any answer while a block family is registered that neither
archspec nor an entry point provides (a module the user imported in-process).

Location: `$ARCHSPEC_CACHE_DIR`, else `$XDG_CACHE_HOME/archspec`, else `~/.cache/archspec`.
`ARCHSPEC_NO_CACHE=1` turns it off. An unreadable, unwritable or corrupt cache is ignored.
Stdlib only: a hit imports nothing else of archspec's dependencies.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import pathlib
import sys
from typing import Any

_PACKAGE = pathlib.Path(__file__).resolve().parent
_FORMAT = 1  # bump when the summary's fields change


def cache_dir() -> pathlib.Path | None:
    """Where summaries are kept; None when the cache is turned off."""
    if os.environ.get("ARCHSPEC_NO_CACHE"):
        return None
    base = os.environ.get("ARCHSPEC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "archspec")
    return pathlib.Path(base) / "summaries"


def _stamp(path: str | os.PathLike) -> str:
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


def _content(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@functools.cache
def fingerprint() -> str:
    """Everything besides the spec's own files that a summary depends on (see the module)."""
    digest = hashlib.sha256(f"{_FORMAT};{sys.version};".encode())
    for root, dirs, files in os.walk(_PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                digest.update(f"{os.path.relpath(path, _PACKAGE)}={_stamp(path)};".encode())
    for module in ("pydantic", "pydantic_core", "yaml"):
        found = importlib.util.find_spec(module)
        origin = found.origin if found is not None else None
        digest.update(f"{module}={_stamp(origin) if origin else None};".encode())
    digest.update(json.dumps(_entry_points()).encode())
    digest.update(json.dumps(sorted((k, v) for k, v in os.environ.items()
                                    if k.startswith("ARCHSPEC_"))).encode())
    return digest.hexdigest()


def _entry_points() -> list[tuple[str, str, str]]:
    """The installed `archspec.blocks` entry points: name, module, distribution version."""
    from .plugins import family_entry_points
    return [(p.name, p.value, p.dist.version if p.dist else "") for p in family_entry_points()]


def _entry(path: str) -> pathlib.Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    return folder / (hashlib.sha256(_key(path).encode()).hexdigest() + ".json")


def _key(path: str | os.PathLike) -> str:
    """The spec as given, and the working folder: notes name files relative to it."""
    return f"{os.path.abspath(path)}\0{os.getcwd()}"


def lookup(path: str | os.PathLike) -> dict[str, Any] | None:
    """The stored summary of `path`, if everything it depends on is unchanged."""
    entry = _entry(str(path))
    if entry is None or not entry.is_file():
        return None
    try:
        data = json.loads(entry.read_text())
        if data["spec"] != _key(path) or data["fingerprint"] != fingerprint():
            return None
        if any(_content(file) != digest for file, digest in data["files"]):
            return None
        return data["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(path: str | os.PathLike, files: list[str], summary: dict[str, Any]) -> None:
    """Remember a valid spec's summary (written to a temporary file, then renamed)."""
    entry = _entry(str(path))
    if entry is None or not _only_known_families():
        return
    try:
        data = {"spec": _key(path), "fingerprint": fingerprint(),
                "files": [[f, _content(f)] for f in dict.fromkeys(files)], "summary": summary}
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f"{entry.stem}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, entry)
    except (OSError, TypeError, ValueError):
        pass


def _only_known_families() -> bool:
    """Whether every registered block family comes from archspec or an entry point (the
    fingerprint covers those; a module imported in-process it cannot see)."""
    from .blocks import BLOCKS
    modules = {value.split(":")[0] for _, value, _ in _entry_points()}
    return all(cls.__module__.startswith("archspec.") or cls.__module__ in modules
               for cls in BLOCKS.values())


def summary(path: str | os.PathLike) -> dict[str, Any]:
    """The summary of a valid spec (raises SpecError for an invalid one): from the cache when
    nothing it depends on changed, else computed and stored."""
    cacheable = os.path.isfile(path)  # a zoo name could later name a local file instead
    hit = lookup(path) if cacheable else None
    if hit is not None:
        return hit
    from .activations import training_memory
    from .resolver import resolve
    from .spec import load
    from .summary import MEMORY_BATCH, MEMORY_DTYPE
    from .zoo import family_of
    spec = load(path)
    graph = resolve(spec)
    _, h, w = graph.input_shape
    result = {"name": graph.name, "params": graph.params, "macs": graph.macs,
              "acts": graph.acts, "notes": list(graph.notes), "family": family_of(graph),
              "train_memory": training_memory(graph, MEMORY_BATCH, MEMORY_DTYPE).total,
              "input_size": f"{h}x{w}", "description": graph.description}
    if cacheable:
        store(path, spec.sources.files, result)
    return result
