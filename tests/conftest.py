"""Shared fixtures: every spec under specs/ (the suites parametrize over the folder, not a list)."""
from __future__ import annotations

import functools
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPEC_DIR = ROOT / "specs"
SPEC_FILES = sorted(p for p in SPEC_DIR.rglob("*.yaml"))


def spec_id(path: pathlib.Path) -> str:
    return str(path.relative_to(SPEC_DIR)).removesuffix(".yaml")


all_specs = pytest.mark.parametrize("spec_path", SPEC_FILES, ids=[spec_id(p) for p in SPEC_FILES])


@functools.lru_cache(maxsize=None)
def resolved(path: pathlib.Path):
    import archspec
    return archspec.resolve(path)
