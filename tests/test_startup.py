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
