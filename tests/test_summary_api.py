"""archspec.summary(): the build table as text and data at three depths, checked against the
torch module's own parameter counts; notebook display (_repr_html_) and a short repr."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import archspec
from archspec.cli import main
from conftest import ROOT


def _own_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2_100", "convnext_atto"])
def test_rows_agree_with_the_module_at_every_depth(name):
    model = archspec.build(name)
    for depth in (1, 2, 3):
        rows = archspec.summary(name, depth=depth).rows
        for row in rows:  # every row names a module; its params are torch's count
            assert row["params"] == _own_params(model.get_submodule(row["name"])), row["name"]
        top = [r for r in rows if r["level"] == 1]
        assert sum(r["params"] for r in top) == _own_params(model)
    leaves = {n for n, m in model.named_modules() if not list(m.children())}
    layer_rows = {r["name"] for r in archspec.summary(name, depth=3).rows if r["level"] == 3}
    assert layer_rows and layer_rows <= leaves


def test_depth_one_is_the_table_build_prints(capsys):
    assert main(["build", "resnet18"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(str(archspec.summary("resnet18")) + "\n")
    data = archspec.summary("resnet18").as_dict()
    assert data["params"] == 11_689_512 and [r["name"] for r in data["rows"]][:2] == [
        "stem", "stages.0"]  # ARCHITECTURES.md: resnet18


def test_summary_of_a_module_and_overrides():
    model = archspec.build("resnet18", num_classes=10)
    assert str(archspec.summary(model)).splitlines()[1].endswith("output 10")
    text = str(archspec.summary("resnet18", num_classes=10, in_chans=1))
    assert text.startswith("resnet18 (+2 overrides):")
    with pytest.raises(ValueError, match="depth"):
        archspec.summary("resnet18", depth=4)


def test_repr_is_one_short_line():
    text = repr(archspec.resolve("resnet50"))
    assert "\n" not in text and len(text) < 120
    assert "resnet50" in text and "25,557,032" in text


@pytest.mark.parametrize("renderer", ["dot", "wasm"])
def test_notebook_html_has_the_table_and_a_diagram(renderer, monkeypatch):
    from archspec.lower.graphviz import RenderError, find_renderer
    monkeypatch.setenv("ARCHSPEC_RENDERER", renderer)
    try:
        find_renderer("svg")
    except RenderError:
        pytest.skip(f"renderer {renderer} not available here")
    html = archspec.resolve("resnet18")._repr_html_()
    assert "<table>" in html and "stages.3" in html and "<svg" in html
    model_html = archspec.build("resnet18")._repr_html_()
    assert "<table>" in model_html and "<svg" in model_html


def test_summary_of_a_spec_does_not_import_torch():
    code = ("import sys, archspec; s = archspec.summary('resnet50', depth=3); str(s); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_modules_still_pickle_and_deep_copy():
    """A module keeps its Spec, not the IR: it copies and pickles as plain PyTorch."""
    import copy
    import io
    for model in (archspec.build("resnet18"), archspec.build("resnet18", features_only=True)):
        clone = copy.deepcopy(model)
        assert clone.spec == model.spec
        buffer = io.BytesIO()
        torch.save(model, buffer)
        buffer.seek(0)
        again = torch.load(buffer, weights_only=False)
        assert again.feature_info.channels() == model.feature_info.channels()
