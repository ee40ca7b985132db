"""Inheritance without surprises: a property test of the merge rules over generated base/child
pairs, explain's attribution of every setting of every zoo spec, and the docs' table of the
settings a type change carries over.

The rules (docs/spec.md, "Inheritance") are re-stated here as a small oracle on plain data; the
test checks that archspec's resolution of the child equals the resolution of the flat spec the
oracle writes, setting by setting."""
from __future__ import annotations

import os
import re
import tempfile

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archspec
from archspec.blocks import BLOCKS, STEMS
from archspec.provenance import Setting, settings_of
from conftest import ROOT, SPEC_FILES, spec_id

# ---- the oracle ----------------------------------------------------------------------------

REGISTRIES = {("stem",): (STEMS, "classic"), ("block",): (BLOCKS, None)}


def expected(base, child, path=()):
    """The child laid over the base by the documented rules."""
    if not (isinstance(base, dict) and isinstance(child, dict)):
        return child
    out = dict(base)
    if path in REGISTRIES:
        registry, default = REGISTRIES[path]
        old = base.get("type", default)
        new = child.get("type", old)
        if new != old:
            out = {k: v for k, v in out.items() if k in registry[new].model_fields}
    if path == ("stages",) and {"ratio", "unit"} & set(child):
        out.pop("depths", None)
    if path == ("stages",) and "depths" in child:
        out.pop("ratio", None)
        out.pop("unit", None)
    for key, value in child.items():
        out[key] = expected(out[key], value, path + (key,)) if key in out else value
    return out


# ---- generated specs -----------------------------------------------------------------------

def _some(**options):
    """A mapping with any subset of the given settings."""
    return st.fixed_dictionaries({}, optional=options)


WIDTHS = st.sampled_from([16, 24, 32, 48])
STEM = st.one_of(
    _some(out_channels=WIDTHS, kernel_size=st.sampled_from([3, 7]),
          pool=st.sampled_from(["max", "none"])).map(lambda d: {"type": "classic", **d}),
    _some(widths=st.lists(WIDTHS, min_size=1, max_size=3), pool=st.sampled_from(["max", "none"]))
    .map(lambda d: {"type": "deep", **d}),
    _some(out_channels=WIDTHS, patch_size=st.sampled_from([2, 4]),
          activation=st.sampled_from(["relu", "none"])).map(lambda d: {"type": "patchify", **d}),
)
SHORTCUT = st.sampled_from(["projection", "avg_pool_projection"])
BLOCK = st.one_of(
    _some(shortcut=SHORTCUT).map(lambda d: {"type": "basic", **d}),
    _some(shortcut=SHORTCUT, groups=st.sampled_from([1, 2, "depthwise"]),
          stride_on=st.sampled_from(["1x1", "3x3"]),
          bottleneck_ratio=st.sampled_from([0.25, 0.5])).map(lambda d: {"type": "bottleneck", **d}),
    _some(shortcut=SHORTCUT, groups=st.sampled_from([2, "depthwise"]),
          expand_ratio=st.sampled_from([2, 4]), kernel_size=st.sampled_from([3, 5]),
          expand_from=st.sampled_from(["input", "output"]))
    .map(lambda d: {"type": "inverted_bottleneck", **d}),
    _some(kernel_size=st.sampled_from([3, 7]), layer_scale_init=st.sampled_from([1e-6, None]))
    .map(lambda d: {"type": "convnext", **d}),
)
DEPTHS = st.lists(st.integers(1, 2), min_size=2, max_size=2)
LAYOUT = st.one_of(st.fixed_dictionaries({"depths": DEPTHS}),
                   st.fixed_dictionaries({"ratio": st.sampled_from(["1:2", [2, 1]]),
                                          "unit": st.integers(1, 2)}))
STAGE_WIDTHS = st.lists(st.sampled_from([32, 64]), min_size=2, max_size=2)
BASE = st.fixed_dictionaries({
    "name": st.just("base"), "input": st.just({"image_size": 32}), "stem": STEM, "block": BLOCK,
    "stages": st.tuples(LAYOUT, STAGE_WIDTHS).map(lambda t: {**t[0], "widths": t[1]})})
CHILD = st.fixed_dictionaries({"name": st.just("child")}, optional={
    "stem": st.one_of(STEM, STEM.map(lambda d: {k: v for k, v in d.items() if k != "type"})),
    "block": st.one_of(BLOCK, BLOCK.map(lambda d: {k: v for k, v in d.items() if k != "type"})),
    "stages": st.one_of(LAYOUT, st.fixed_dictionaries({"widths": STAGE_WIDTHS})),
    "head": st.fixed_dictionaries({"num_classes": st.integers(1, 20)})})


def _resolve(path):
    try:
        return archspec.resolve(path)
    except archspec.SpecError as exc:
        return str(exc).replace(os.path.dirname(str(path)) + os.sep, "")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(base=BASE, child=CHILD)
def test_resolved_child_is_the_base_with_the_childs_edits_applied(base, child):
    flat = expected({k: v for k, v in base.items()}, {k: v for k, v in child.items()})
    flat["name"] = "child"
    with tempfile.TemporaryDirectory() as folder:
        for name, data in (("base.yaml", base), ("flat.yaml", flat),
                           ("child.yaml", {"base": "base.yaml", **child})):
            with open(os.path.join(folder, name), "w") as fh:
                yaml.safe_dump(data, fh, sort_keys=False)
        got = _resolve(os.path.join(folder, "child.yaml"))
        want = _resolve(os.path.join(folder, "flat.yaml"))
        if isinstance(want, str):  # the combination is invalid as a flat spec too
            assert isinstance(got, str), want
            return
        assert not isinstance(got, str), got
        assert {k: s.value for k, s in settings_of(got).items()} == \
            {k: s.value for k, s in settings_of(want).items()}
        spec = archspec.load(os.path.join(folder, "child.yaml"))
        dropped = {n.path for n in spec.notes if n.kind == "dropped"}
        for part in ("stem", "block"):
            lost = set(base[part]) - set(flat[part]) - {"type"}
            assert dropped >= {(part, k) for k in lost}


# ---- explain on the zoo --------------------------------------------------------------------

def _chain(path) -> list[str]:
    """The spec file and every file it inherits from, read as plain YAML (not by archspec)."""
    files = [os.path.realpath(path)]
    while True:
        data = yaml.safe_load(open(files[-1]))
        if "base" not in data:
            return files
        files.append(os.path.realpath(os.path.join(os.path.dirname(files[-1]), data["base"])))


def _written_anywhere(files: list[str], key: str) -> bool:
    """Whether any file writes the setting `key` (a stage block's also under `block:` or an
    override), read as plain YAML."""
    names = [p for p in re.split(r"[.\[\]]", key) if p and not p.isdigit()]
    if names[:2] == ["stages", "block"]:
        names = names[1:]
    for f in files:
        data = yaml.safe_load(open(f))
        candidates = [data]
        if names[0] == "block":
            candidates += list((data.get("stages") or {}).get("overrides", {}).values())
        for node in candidates:
            for name in names[1:] if node is not data else names:
                node = node.get(name) if isinstance(node, dict) else None
            if node is not None:
                return True
    return False


@pytest.mark.parametrize("path", SPEC_FILES, ids=[spec_id(p) for p in SPEC_FILES])
def test_explain_attributes_every_setting_to_a_real_source(path):
    graph = archspec.resolve(path)
    table = settings_of(graph)
    files = _chain(path)
    assert table and {s.source.kind for s in table.values()} <= {
        "spec", "base", "set", "network", "default", "derived"}
    for key, s in table.items():
        kind, where = s.source.kind, s.source.where
        if kind in ("spec", "base"):
            file, line, _ = where.rsplit(":", 2)
            real = os.path.realpath(file)
            assert real in files and (real == files[0]) == (kind == "spec"), (key, where)
            text = open(real).read().splitlines()[int(line) - 1]
            names = [p for p in re.split(r"[.\[\]]", key) if p and not p.isdigit()]
            assert any(f"{n}:" in text for n in names[-2:]), (key, where, text)
        elif kind == "default":
            assert not _written_anywhere(files, key), (key, "written, but called a default")
        elif kind == "network":
            net = where.strip("`").split("`")[1]  # "the network's `norm.type`"
            assert table[net].value == s.value, key


@pytest.mark.parametrize("path", SPEC_FILES, ids=[spec_id(p) for p in SPEC_FILES])
def test_explain_values_are_the_resolved_specs(path, capsys):
    """What `explain --json` prints equals what the resolved spec and its IR say."""
    import json

    from archspec import cli
    spec = archspec.load(path)
    graph = archspec.resolve(spec)
    assert cli.main(["explain", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)["settings"]
    sources = settings_of(graph)
    assert [s["path"] for s in printed] == list(sources)
    table = {s["path"]: Setting(s["path"], s["value"], sources[s["path"]].source)
             for s in printed}
    assert table["stages.depths"].value == [g.depth for g in graph.stages]
    assert table["stages.widths"].value == [g.width for g in graph.stages]
    assert table["stages.strides"].value == [g.stride for g in graph.stages]
    blocks, _ = spec.stage_blocks(len(graph.stages))
    for i, block in enumerate(blocks):
        dump = block.model_dump(mode="json")
        for name, value in dump.items():
            if name not in ("norm", "activation") or value is not None:
                key = f"stages[{i}].block.{name}"
                shown = table[key].value if key in table else {
                    k.rsplit(".", 1)[1]: v.value for k, v in table.items()
                    if k.startswith(key + ".")}
                if name == "norm":
                    value = {**value, "eps": value["eps"] or shown["eps"],
                             "momentum": value["momentum"] or 0.1}
                if isinstance(value, dict) and isinstance(shown, dict):
                    value = {k: v for k, v in value.items() if k in shown}
                assert shown == value, key
    dump = spec.model_dump(mode="json")
    for key, s in table.items():
        if key.startswith(("stages", "name", "description")) or s.source.kind != "spec":
            continue
        node = dump
        for part in key.split("."):
            node = node[part]
        assert node == s.value, key


def test_explain_cli_and_build_explain(capsys):
    from archspec import cli
    roadmap = "specs/roadmap/resnet50_to_convnext_t/05_inverted_bottleneck.yaml"
    os.chdir(ROOT)
    assert cli.main(["explain", roadmap, "stem.out_channels", "block.groups"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"stem\.out_channels +96 +specs/roadmap/resnet50_to_convnext_t/04_wider"
                     r"\.yaml:7:17 \(carried over from the classic stem\)", out)
    assert re.search(r"block\.groups +depthwise +specs/roadmap/resnet50_to_convnext_t/"
                     r"03_depthwise\.yaml", out)
    assert cli.main(["explain", "specs/resnet18.yaml", "--json", "--set",
                     "width_multiplier=0.5"]) == 0
    import json
    data = json.loads(capsys.readouterr().out)
    widths = next(s for s in data["settings"] if s["path"] == "stages.widths")
    assert widths["value"] == [32, 64, 128, 256] and widths["source"]["kind"] == "derived"
    assert "--set width_multiplier=0.5" in widths["source"]["how"]
    assert cli.main(["explain", "specs/resnet18.yaml", "no.such"]) == 2


def test_diff_names_the_file_that_changed_a_setting():
    d = archspec.diff(ROOT / "specs/resnet50.yaml", ROOT / "specs/resnext50_32x4d.yaml")
    [groups] = [c for c in d.settings if c.path == "block.groups"]
    assert groups.new_source.startswith(os.path.relpath(ROOT / "specs/resnext50_32x4d.yaml")
                                        .split("specs/")[0] + "specs/resnext50_32x4d.yaml:")
    assert groups.old_source == "default of the bottleneck block"


# ---- the docs' table of shared settings ----------------------------------------------------

def test_docs_table_lists_what_a_type_change_carries_over():
    text = (ROOT / "docs" / "spec.md").read_text()
    rows = re.findall(r"^\| (`(?:stem|block)\.[^|]*) \| ([^|]+) \|$", text, re.M)
    documented = {}
    for names, types in rows:
        for name in re.findall(r"`([^`]+)`", names):
            documented[name] = {t.strip() for t in types.split(",")}
    for part, registry in (("stem", STEMS), ("block", BLOCKS)):
        have: dict[str, set] = {}
        for tag, cls in registry.items():
            for name in cls.model_fields:
                if name != "type":
                    have.setdefault(f"{part}.{name}", set()).add(tag)
        ib = set(BLOCKS["inverted_bottleneck"].model_fields)
        for name, tags in have.items():
            if len(tags) > 1 and name not in documented:
                assert tags == {"inverted_bottleneck", "convnext"} and \
                    name.split(".")[1] in ib, name  # "every other inverted_bottleneck setting"
            elif name in documented:
                assert documented[name] == tags, name
