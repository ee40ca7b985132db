"""`archspec schema`: a JSON Schema (draft 2020-12) that the `jsonschema` library checks, accepting
every spec file as written and rejecting the typical mistakes that `load` rejects."""
from __future__ import annotations

import json

import pytest

jsonschema = pytest.importorskip("jsonschema")

import archspec  # noqa: E402
from archspec.cli import main  # noqa: E402
from archspec.loader import read_yaml  # noqa: E402
from archspec.schema import spec_schema  # noqa: E402
from conftest import SPEC_FILES, spec_id  # noqa: E402

SCHEMA = spec_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _as_editor_sees(text: str) -> dict:
    """YAML -> the JSON data an editor validates (mapping keys become strings)."""
    data, _ = read_yaml(text, "<test>")
    return json.loads(json.dumps(data))


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("path", SPEC_FILES, ids=[spec_id(p) for p in SPEC_FILES])
def test_every_spec_file_is_accepted_as_written(path):
    errors = [e.message for e in VALIDATOR.iter_errors(_as_editor_sees(path.read_text()))]
    assert errors == []


GOOD = """\
name: net
stem: {pool: none}
norm: layer_norm
init: trunc_normal
stages: {ratio: "1:1:3:1", unit: 1, widths: [32, 64, 128, 256], downsample: layer}
block: {type: convnext}
"""

BAD = {
    "unknown top-level key": "name: n\nstages: {depths: [1], widths: [8]}\nblock: {type: basic}\n"
                             "dropout: 0.1\n",
    "typo in a block setting": "name: n\nstages: {depths: [1], widths: [8]}\n"
                               "block: {type: bottleneck, group: 32}\n",
    "unknown block type": "name: n\nstages: {depths: [1], widths: [8]}\nblock: {type: botleneck}\n",
    "block without a type": "name: n\nstages: {depths: [1], widths: [8]}\nblock: {groups: 2}\n",
    "depths as a string": "name: n\nstages: {depths: '3,4', widths: [8, 16]}\n"
                          "block: {type: basic}\n",
    "negative width": "name: n\nstages: {depths: [1], widths: [-8]}\nblock: {type: basic}\n",
    "unknown activation": "name: n\nactivation: relu7\nstages: {depths: [1], widths: [8]}\n"
                          "block: {type: basic}\n",
    "unknown norm shorthand": "name: n\nnorm: group_norm\nstages: {depths: [1], widths: [8]}\n"
                              "block: {type: basic}\n",
    "unknown stem type": "name: n\nstem: {type: tiny}\nstages: {depths: [1], widths: [8]}\n"
                         "block: {type: basic}\n",
    "head pool not avg or max": "name: n\nstages: {depths: [1], widths: [8]}\n"
                                "block: {type: basic}\nhead: {pool: mean}\n",
    "drop path rate over 1": "name: n\nstages: {depths: [1], widths: [8]}\nblock: {type: basic}\n"
                             "drop_path_rate: 1.5\n",
    "missing stages": "name: n\nblock: {type: basic}\n",
    "base not a string": "base: 50\nname: n\n",
    "unknown key under a base": "base: zoo:resnet50\nhead: {classes: 10}\n",
    "zero input channels": "name: n\ninput: {channels: 0}\nstages: {depths: [1], widths: [8]}\n"
                           "block: {type: basic}\n",
}


def test_shorthands_are_accepted():
    assert list(VALIDATOR.iter_errors(_as_editor_sees(GOOD))) == []
    assert archspec.resolve(archspec.load(_as_editor_sees(GOOD))).params > 0  # and load agrees


@pytest.mark.parametrize("text", BAD.values(), ids=BAD.keys())
def test_typical_mistakes_are_rejected(text, tmp_path):
    assert list(VALIDATOR.iter_errors(_as_editor_sees(text))), "the schema accepted it"
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(archspec.SpecError):  # archspec itself rejects it too
        archspec.resolve(path)


def test_every_field_is_documented():
    undocumented = []
    for name, definition in SCHEMA["$defs"].items():
        if name.startswith("Partial"):
            continue
        for options in [definition, *definition.get("anyOf", [])]:
            for field, prop in options.get("properties", {}).items():
                if field != "type" and not prop.get("description"):
                    undocumented.append(f"{name}.{field}")
    assert undocumented == []
    depths = SCHEMA["$defs"]["StagesSpec"]["properties"]["depths"]["description"]
    assert depths.startswith("Blocks per stage")


def test_cli_writes_the_schema(tmp_path, capsys):
    out = tmp_path / "archspec.schema.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(json.dumps(SCHEMA))
    assert "wrote" in capsys.readouterr().out
