"""Loading: safe YAML with positions, `base:` inheritance, `--set` overrides."""
from __future__ import annotations

import os

import pytest

import archspec
from archspec.errors import SpecError
from archspec.loader import load_file, read_yaml
from conftest import ROOT


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


BASE = """\
name: base
stem: {type: classic, out_channels: 64}
stages:
  depths: [2, 2]
  widths: [64, 128]
block:
  type: bottleneck
  groups: 1
  shortcut: projection
head: {num_classes: 10}
"""


def test_positions_of_keys_and_values():
    data, sources = read_yaml("a:\n  b: [1, 2]\n  c: x\n", "f.yaml")
    assert data == {"a": {"b": [1, 2], "c": "x"}}
    assert str(sources.value(("a", "b", 1))) == "f.yaml:2:10"
    assert str(sources.key(("a", "c"))) == "f.yaml:3:3"
    assert str(sources.value(("a", "c"))) == "f.yaml:3:6"


def test_yaml_is_read_safely():
    with pytest.raises(SpecError, match="unsupported YAML tag '!!python/object/apply:os.system'"):
        read_yaml("a: !!python/object/apply:os.system ['true']\n", "f.yaml")


def test_yaml_1_2_scalars():
    """`1:1:3:1` is a ratio, not the YAML 1.1 base-60 integer 219781; `on` is not a bool."""
    data, _ = read_yaml("r: 1:1:3:1\nb: on\nt: true\ne: 1e-6\nn: 07\n", "f.yaml")
    assert data == {"r": "1:1:3:1", "b": "on", "t": True, "e": 1e-6, "n": 7}


def test_base_deep_merges_and_lists_replace(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml",
                  "base: base.yaml\nname: child\nstages:\n  depths: [3]\n  widths: [32]\n"
                  "block:\n  groups: 4\n")
    data, sources = load_file(child)
    assert data["stages"] == {"depths": [3], "widths": [32]}
    assert data["block"] == {"type": "bottleneck", "groups": 4, "shortcut": "projection"}
    assert data["head"] == {"num_classes": 10}
    # inherited values point at the file that wrote them, overridden ones at the child
    assert sources.value(("block", "shortcut")).file.endswith("base.yaml")
    assert sources.value(("block", "groups")).file.endswith("child.yaml")
    assert sources.value(("stages", "depths", 0)).file.endswith("child.yaml")


def test_base_mapping_with_another_type_keeps_only_what_the_new_type_has(tmp_path):
    """A deep stem has no `out_channels`: the classic stem's is dropped, with a note that names
    the file that wrote it (docs/spec.md, "Inheritance")."""
    from archspec.spec import typed_setting
    write(tmp_path, "base.yaml", BASE)
    child = write(tmp_path, "child.yaml", "base: base.yaml\nstem:\n  type: deep\n")
    data, sources = load_file(child, typed_setting)
    assert data["stem"] == {"type": "deep"}
    [note] = sources.notes
    assert note.kind == "dropped" and note.location.file.endswith("base.yaml")
    assert note.message == "stem.out_channels dropped: a deep stem has no out_channels"


def test_base_chain_of_three(tmp_path):
    write(tmp_path, "a.yaml", BASE)
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub, "b.yaml", "base: ../a.yaml\nname: b\n")
    c = write(sub, "c.yaml", "base: b.yaml\nhead: {num_classes: 5}\n")
    spec = archspec.load(c)
    assert spec.name == "b" and spec.head.num_classes == 5 and spec.stages.widths == [64, 128]


def test_cycle_prints_the_chain(tmp_path):
    write(tmp_path, "a.yaml", "base: b.yaml\n")
    write(tmp_path, "b.yaml", "base: c.yaml\n")
    write(tmp_path, "c.yaml", "base: a.yaml\n")
    with pytest.raises(SpecError) as info:
        load_file(tmp_path / "a.yaml")
    message = str(info.value)
    assert "inheritance cycle:" in message
    chain = message.split("inheritance cycle:")[1]
    assert chain.index("a.yaml") < chain.index("b.yaml") < chain.index("c.yaml")
    assert "c.yaml:1:7: base:" in message


def test_overrides(tmp_path):
    path = write(tmp_path, "base.yaml", BASE)
    spec = archspec.load(path, ["stages.depths=[3,3]", "block.groups=32",
                                "stages.widths.1=256", "head.dropout=0.5"])
    assert spec.stages.depths == [3, 3]
    assert spec.block.groups == 32
    assert spec.stages.widths == [64, 256]
    assert spec.head.dropout == 0.5


def test_override_creates_missing_mappings(tmp_path):
    path = write(tmp_path, "base.yaml", BASE)
    spec = archspec.load(path, ["stages.overrides.1={groups: 2}", "input.image_size=[128,96]"])
    assert spec.stages.overrides == {1: {"groups": 2}}
    assert spec.input.hw == (128, 96)


def test_override_out_of_list_range(tmp_path):
    path = write(tmp_path, "base.yaml", BASE)
    with pytest.raises(SpecError, match=r"stages.widths\[5\]: no list entry 5 \(the list has 2\)"):
        archspec.load(path, ["stages.widths.5=1"])


def test_files_are_never_written(tmp_path):
    path = write(tmp_path, "base.yaml", BASE)
    before = path.read_text()
    archspec.build(path, ["block.groups=2"])
    assert path.read_text() == before


def test_ratio_and_unit_give_depths():
    graph = archspec.resolve(ROOT / "specs" / "resnet50.yaml",
                             ["stages.depths=null", "stages.ratio=1:1:3:1", "stages.unit=3"])
    assert [s.depth for s in graph.stages] == [3, 3, 9, 3]


def test_keyword_overrides_in_build_api():
    graph = archspec.resolve(ROOT / "specs" / "resnet18.yaml", head__num_classes=10)
    assert graph.output_shape == (10,)


# ---- hostile and careless input: bounded, located, never a crash (docs/robustness.md) -------

def test_merge_keys_fill_in_what_the_mapping_does_not_set():
    text = ("defaults: &d {type: bottleneck, groups: 2, shortcut: projection}\n"
            "block:\n  <<: *d\n  groups: 4\n")
    data, sources = read_yaml(text, "f.yaml")
    assert data["block"] == {"type": "bottleneck", "groups": 4, "shortcut": "projection"}
    assert str(sources.value(("block", "groups"))) == "f.yaml:4:11"  # the mapping's own value
    assert str(sources.value(("block", "type"))) == "f.yaml:1:21"  # where the anchor wrote it


def test_merge_key_list_earlier_mappings_win():
    data, _ = read_yaml("a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n", "f.yaml")
    assert data["c"] == {"x": 1, "y": 2}


def test_merge_keys_in_a_spec(tmp_path):
    spec = write(tmp_path, "s.yaml", BASE.replace("block:\n  type: bottleneck\n",
                                                  "block:\n  <<: {type: bottleneck}\n"))
    assert archspec.load(spec).block.type == "bottleneck"


def test_a_limit_can_be_raised_by_its_environment_variable(monkeypatch):
    text = "x: [" + ", ".join(["1"] * 1500) + "]\n"
    with pytest.raises(SpecError, match=r"1,500 entries, over the limit of 1,000 entries.*\n"
                                        r"  hint: .*ARCHSPEC_MAX_SPEC_ENTRIES=10000"):
        read_yaml(text, "f.yaml")
    monkeypatch.setenv("ARCHSPEC_MAX_SPEC_ENTRIES", "2000")
    assert len(read_yaml(text, "f.yaml")[0]["x"]) == 1500


def test_alias_bomb_stops_quickly():
    """Nine levels of nine aliases (9^9 values once expanded) are refused in well under 2 s
    (of CPU time: the wall clock of a shared CI machine measures its neighbours too)."""
    import time
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9))
    started = time.process_time()
    with pytest.raises(SpecError, match="aliases expand to more values, over the limit"):
        read_yaml(text, "f.yaml")
    assert time.process_time() - started < 2


def test_deep_override_value_is_bounded():
    with pytest.raises(SpecError, match=r"--set name=\[\[\[.*: name: values nested deeper, "
                                        r"over the limit of 32 levels"):
        archspec.load(ROOT / "specs" / "resnet18.yaml", ["name=" + "[" * 3000 + "]" * 3000])


def test_dates_and_equals_signs_stay_strings():
    data, _ = read_yaml("name: 2024-05-01\ndescription: =\n", "f.yaml")
    assert data == {"name": "2024-05-01", "description": "="}


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs FIFOs")
def test_base_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    import os
    os.mkfifo(tmp_path / "pipe.yaml")  # opening it for reading would wait for a writer forever
    spec = write(tmp_path, "s.yaml", "name: x\nbase: pipe.yaml\n")
    with pytest.raises(SpecError, match=r"s\.yaml:2:7: base: base file '.*pipe\.yaml': cannot "
                                        r"read it: it is a pipe, not a regular file"):
        load_file(spec)


def test_large_file_is_refused_before_parsing(tmp_path):
    spec = write(tmp_path, "s.yaml", "name: x\ndescription: " + "a" * 300_000 + "\n")
    with pytest.raises(SpecError, match="300,0.. bytes, over the limit of 262,144 bytes"):
        load_file(spec)


def test_base_outside_the_spec_folder_is_shown(tmp_path, capsys):
    import cli
    write(tmp_path, "base.yaml", BASE)
    (tmp_path / "sub").mkdir()
    child = write(tmp_path / "sub", "child.yaml", "base: ../base.yaml\nname: child\n")
    assert cli.main(["validate", str(child)]) == 0
    out = capsys.readouterr().out
    # the file is shown relative to the working folder when that is shorter
    note = next(line for line in out.splitlines() if line.startswith("note: "))
    shown = note.removeprefix("note: ").split(":", 1)[0]
    assert os.path.realpath(shown) == os.path.realpath(child) and ":1:7: base: " in note
    assert "base.yaml is outside the spec's folder" in out
    # a base in the same folder (or below it) is not worth a note
    inside = write(tmp_path, "inside.yaml", "base: base.yaml\nname: inside\n")
    assert cli.main(["validate", str(inside)]) == 0
    assert "note:" not in capsys.readouterr().out


def test_a_zoo_base_is_not_outside(tmp_path, capsys):
    """Inheriting from the zoo is the normal case: no "outside the spec's folder" note for it or
    for the zoo's own bases (resnet50d -> resnet50c -> resnet50)."""
    import cli
    child = write(tmp_path, "mine.yaml", "base: zoo:resnet50d\nname: mine\n")
    assert cli.main(["validate", str(child)]) == 0
    assert "outside the spec's folder" not in capsys.readouterr().out
