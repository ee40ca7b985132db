"""Shared fixtures: every spec under specs/ (the suites parametrize over the folder, not a list)."""
from __future__ import annotations

import functools
import os
import pathlib
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# validate and list remember valid specs' summaries (archspec/summary_cache.py): a fresh folder
# per test session, inherited by the commands the tests start, never the user's own cache.
os.environ["ARCHSPEC_CACHE_DIR"] = tempfile.mkdtemp(prefix="archspec-test-cache-")
SPEC_DIR = ROOT / "specs"
SPEC_FILES = sorted(p for p in SPEC_DIR.rglob("*.yaml"))


def _reference_dir() -> pathlib.Path | None:
    """../shared/reference (timm facts and state-dict manifests), from a checkout or a worktree;
    ARCHSPEC_REFERENCE overrides. None where it is absent (the tests that need it skip)."""
    for base in (os.environ.get("ARCHSPEC_REFERENCE"), ROOT.parent / "shared" / "reference",
                 ROOT.parent.parent / "shared" / "reference"):
        if base and (pathlib.Path(base) / "state_dict_keys").is_dir():
            return pathlib.Path(base)
    return None


REFERENCE_DIR = _reference_dir()


def spec_id(path: pathlib.Path) -> str:
    return str(path.relative_to(SPEC_DIR)).removesuffix(".yaml")


# Specs with more parameters than this (the largest ResNets, ResNeSts and ConvNeXts: resnet200d at
# 65M is 200 layers deep, convnext_large at 198M takes about a minute) run the torch suites only in
# the slow step (`pytest -m slow`), which keeps the default run within CI's time.
# Their analytic counts are still checked by the default run (test_reference.py).
BIG_PARAMS = 60_000_000


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
