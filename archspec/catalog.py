"""Specs by name: where the zoo lives, and how a name or a path given by the user becomes a file.

The zoo is the `specs/` folder of the repository, the one copy: a checkout reads it in place and
a wheel carries it as the package data of `archspec.zoo_specs` (setup.py maps the folder, it does
not copy it). A zoo name is a spec's path inside that folder without `.yaml`: `resnet50`,
`roadmap/resnet50_to_convnext_t/05_inverted_bottleneck`. Wherever a spec is accepted:

- `zoo:NAME` always means the zoo;
- otherwise an existing file wins (a path, or for `base:` a path relative to the naming file);
- otherwise a zoo name (with or without `.yaml`) is looked up;
- otherwise the caller reports "not found" with `suggest()`'s did-you-mean over the zoo names.

Light on purpose (no pydantic, no torch): the loader and `archspec list` import it.
"""
from __future__ import annotations

import difflib
import os
import pathlib

#: Prefix that always names a zoo spec, never a file: `base: zoo:resnet50d`.
ZOO_PREFIX = "zoo:"


def zoo_folder() -> pathlib.Path:
    """The folder of the zoo's YAML files: the installed package data, else (in a checkout) the
    repository's `specs/` folder beside the package."""
    package = pathlib.Path(__file__).resolve().parent
    installed = package / "zoo_specs"
    if installed.is_dir():
        return installed
    return package.parent / "specs"


def zoo_names(roadmap: bool = False) -> list[str]:
    """The names of the zoo's specs, sorted: the top-level files, and with `roadmap=True` also
    every spec in subfolders (`roadmap/resnet50_to_convnext_t/00_resnet50`)."""
    folder = zoo_folder()
    files = folder.rglob("*.yaml") if roadmap else folder.glob("*.yaml")
    return sorted(p.relative_to(folder).with_suffix("").as_posix() for p in files)


def _bare(name: str) -> str:
    """`name` without its `zoo:` prefix."""
    return name[len(ZOO_PREFIX):] if name.startswith(ZOO_PREFIX) else name


def _in_zoo(name: str) -> pathlib.Path | None:
    """`name` (a `zoo:` prefix allowed) as a path inside the zoo folder; None for names that
    would climb out of it (`..`) or are absolute."""
    name = _bare(name)
    parts = pathlib.PurePosixPath(name.rstrip("/")).parts
    if not parts or name.startswith("/") or ".." in parts or "\\" in name:
        return None
    return zoo_folder().joinpath(*parts)


def zoo_path(name: str) -> str | None:
    """The file of zoo spec `name` (`resnet50`, `resnet50.yaml`, `zoo:resnet50`, a roadmap name),
    or None."""
    path = _in_zoo(name.removesuffix(".yaml"))
    path = path.parent / f"{path.name}.yaml" if path else None
    return str(path) if path and path.is_file() else None


def zoo_dir(name: str) -> str | None:
    """A folder inside the zoo (`roadmap/resnet50_to_convnext_t`), or None."""
    path = _in_zoo(name)
    return str(path) if path and path.is_dir() else None


def locate(source: str, relative_to: str | None = None) -> str | None:
    """The file a spec argument names: `zoo:NAME`, else an existing path (relative to the folder
    `relative_to` when given), else a zoo name; None when it names nothing."""
    if source.startswith(ZOO_PREFIX):
        return zoo_path(source)
    path = os.path.join(relative_to, source) if relative_to else source
    if os.path.exists(path):
        return path
    return zoo_path(source)


def suggest(source: str) -> str:
    """A hint for a name that is neither a file nor a zoo spec: the closest zoo names."""
    name = _bare(source).removesuffix(".yaml")
    # A zoo name misspelt, or a path such as specs/resnt50.yaml: compare the last part first.
    close = difflib.get_close_matches(pathlib.PurePath(name).name, zoo_names(), n=3, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(name, zoo_names(roadmap=True), n=3, cutoff=0.75)
    if close:
        return f"did you mean {', '.join(repr(c) for c in close)}? `archspec list` shows the zoo"
    return "give a spec file or a zoo name; `archspec list` shows the zoo"
