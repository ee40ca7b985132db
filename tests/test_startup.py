"""Start-up work of the torch-free commands (issue 17): libyaml parses specs to the very nodes
and source positions PyYAML's pure-Python parser gives, and errors keep PyYAML's wording."""
from __future__ import annotations

import pytest
import yaml

from archspec import loader
from archspec.errors import SpecError

from conftest import SPEC_FILES


def _pure_python(monkeypatch) -> None:
    monkeypatch.setattr(loader, "_COMPOSERS", (loader.SpecLoader,))


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")
def test_libyaml_gives_the_same_data_and_locations(monkeypatch):
    assert loader._COMPOSERS[0] is not loader.SpecLoader
    fast = {p: loader.read_yaml(p.read_text(), str(p)) for p in SPEC_FILES}
    _pure_python(monkeypatch)
    for path, (data, sources) in fast.items():
        data2, sources2 = loader.read_yaml(path.read_text(), str(path))
        assert data == data2 and sources.keys == sources2.keys \
            and sources.values == sources2.values, path


@pytest.mark.parametrize("text", ["a: [1, 2\nb: 3\n", "a:\n  - 1\n - 2\n", "ratio: 1:1:3:1\n"
                                  "x: yes\ny: 1e-6\nz: !!python/name:os.system ''\n"])
def test_errors_and_scalars_do_not_depend_on_the_parser(monkeypatch, text):
    def outcome():
        try:
            return loader.read_yaml(text, "f.yaml")[0]
        except SpecError as exc:
            return str(exc)
    fast = outcome()
    _pure_python(monkeypatch)
    assert fast == outcome()


# ---- the summary cache (archspec/summary_cache.py) -------------------------------------------

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from conftest import ROOT  # noqa: E402


def _cli(tmp_path, *args, cache=True):
    env = {**os.environ, "ARCHSPEC_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("ARCHSPEC_NO_CACHE", None)
    if not cache:
        env["ARCHSPEC_NO_CACHE"] = "1"
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True)


def test_a_cache_hit_imports_neither_pydantic_nor_yaml(tmp_path):
    spec = str(ROOT / "specs" / "resnet152.yaml")
    first = _cli(tmp_path, "validate", spec)
    assert first.returncode == 0 and list((tmp_path / "cache").rglob("*.json"))
    cli = str(ROOT / "cli.py")
    probe = (f"import sys, runpy; sys.argv = [{cli!r}, 'validate', {spec!r}]\n"
             f"try:\n    runpy.run_path({cli!r}, run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'yaml', 'torch'}))")
    env = {**os.environ, "ARCHSPEC_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.stdout.splitlines() == first.stdout.splitlines() + ["[]"], done.stderr


def test_the_cache_follows_the_spec_and_its_base(tmp_path):
    (tmp_path / "base.yaml").write_text((ROOT / "specs" / "resnet18.yaml").read_text())
    (tmp_path / "child.yaml").write_text("base: base.yaml\nname: child\n")
    cold = _cli(tmp_path, "validate", "child.yaml", cache=False).stdout
    assert _cli(tmp_path, "validate", "child.yaml").stdout == cold   # fills the cache
    assert _cli(tmp_path, "validate", "child.yaml").stdout == cold   # read from it
    base = (tmp_path / "base.yaml").read_text()
    (tmp_path / "base.yaml").write_text(base.replace("num_classes: 1000", "num_classes: 10")
                                        if "num_classes: 1000" in base
                                        else base + "head: {num_classes: 10}\n")
    changed = _cli(tmp_path, "validate", "child.yaml")
    assert changed.stdout == _cli(tmp_path, "validate", "child.yaml", cache=False).stdout
    assert changed.stdout != cold  # the base's edit shows: 11,689,512 -> fewer params
    (tmp_path / "child.yaml").write_text("base: base.yaml\nname: child\nstages: {widths: 3}\n")
    for _ in range(2):  # an invalid spec is reported every time, never cached
        bad = _cli(tmp_path, "validate", "child.yaml")
        assert bad.returncode == 2 and "stages.widths" in bad.stderr


def test_list_is_the_same_with_and_without_the_cache(tmp_path):
    cold = _cli(tmp_path, "list", "--json", cache=False)
    _cli(tmp_path, "list", "--json")
    warm = _cli(tmp_path, "list", "--json")
    assert cold.returncode == warm.returncode == 0
    assert json.loads(warm.stdout) == json.loads(cold.stdout)
