"""docs/blocks.md runs: each ```yaml example with a `name:` resolves and builds, each ```console
example prints what the page shows, and every setting of the families it documents appears."""
from __future__ import annotations

import re
import shlex

import pytest

import archspec
from archspec.blocks.eca import EcaSpec
from archspec.blocks.grn import GlobalResponseNormSpec
from archspec.blocks.regnet import RegNetSpec, RegNetStagesSpec
from archspec.blocks.se import SqueezeExciteSpec
from archspec.blocks.splat import SplatSpec
from archspec.cli import main
from archspec.spec import ScalingScopeSpec
from conftest import ROOT

PAGE = ROOT / "docs" / "blocks.md"
TEXT = PAGE.read_text()
YAML = [t for t in re.findall(r"```yaml\n(.*?)```", TEXT, re.S) if re.search(r"^name:", t, re.M)]
CONSOLE = re.findall(r"```console\n(.*?)```", TEXT, re.S)


@pytest.mark.parametrize("text", YAML, ids=[re.search(r"^name: (\S+)", t, re.M).group(1)
                                            for t in YAML])
def test_yaml_example_resolves_and_builds(text, tmp_path):
    (tmp_path / "specs").symlink_to(ROOT / "specs")  # examples use `base: specs/...`
    path = tmp_path / "example.yaml"
    path.write_text(text)
    graph = archspec.resolve(path, ["input.image_size=32"])
    model = archspec.to_module(graph)
    assert sum(p.numel() for p in model.parameters()) == graph.params > 0


@pytest.mark.parametrize("block", CONSOLE)
def test_console_example_prints_what_the_page_shows(block, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    command, *expected = block.rstrip("\n").split("\n")
    args = shlex.split(command.removeprefix("$ python cli.py "))
    main(args)
    captured = capsys.readouterr()
    assert (captured.out + captured.err).rstrip("\n").split("\n") == expected


def test_page_has_examples():
    assert len(YAML) >= 5 and len(CONSOLE) >= 3


@pytest.mark.parametrize("model", [SqueezeExciteSpec, EcaSpec, SplatSpec, ScalingScopeSpec,
                                   GlobalResponseNormSpec, RegNetSpec, RegNetStagesSpec])
def test_every_setting_is_documented(model):
    for field in model.model_fields:
        if field not in ("type", "norm", "activation"):
            assert f"`{field}`" in TEXT, f"docs/blocks.md does not mention `{field}`"
