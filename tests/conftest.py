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


# Specs with more parameters than this take about a minute each to build and run through the
# torch suites on 2 cores (convnext_large, 198M): those run in the slow step (`pytest -m slow`).
# Their analytic counts are still checked by the default run (test_reference.py).
BIG_PARAMS = 100_000_000


def _marks(path: pathlib.Path) -> list:
    import archspec
    try:
        big = archspec.resolve(path).params > BIG_PARAMS
    except Exception:  # a broken spec fails in the tests themselves, not at collection
        big = False
    return [pytest.mark.slow] if big else []


all_specs = pytest.mark.parametrize(
    "spec_path", [pytest.param(p, id=spec_id(p), marks=_marks(p)) for p in SPEC_FILES])


@functools.lru_cache(maxsize=None)
def resolved(path: pathlib.Path):
    import archspec
    return archspec.resolve(path)
