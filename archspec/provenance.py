"""Provenance: every resolved setting, the value the network uses, and where that value came from.

A setting's source is, in the order looked for:
- `spec` or `base`: the file:line:col that wrote it (the spec itself, or a file it inherits through
  `base:`), marked when a type change carried it over from the old type;
- `set`: a `--set PATH=VALUE` argument;
- `network`: a stem's, block's or downsampling layer's `norm`/`activation` left unset is the
  network-wide one (whose own source is given);
- `default`: the default of the setting's model (for a stem, block or norm: that type's default);
- `derived`: a value computed from others (depths from ratio x unit, widths and depths scaled by
  the multipliers), which say how.

The resolver stores the table in the IR (`graph.attrs["settings"]`), so `explain`, `build
--explain` and `diff` all read one record. No torch import.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .errors import Location, Path, format_path
from .loader import display_path
from .scaling import Scaling

_NORM_EPS = {"batch_norm": 1e-5, "layer_norm": 1e-6}


@dataclass(frozen=True)
class Source:
    kind: str       # spec, base, set, network, default, derived
    where: str      # file:line:col, the --set argument, or what the default belongs to
    how: str = ""   # carried over / derived from ...

    def text(self) -> str:
        return self.where + (f" ({self.how})" if self.how else "")

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "where": self.where, "how": self.how}


@dataclass(frozen=True)
class Setting:
    path: str
    value: Any
    source: Source

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "value": self.value, "source": self.source.as_dict()}


class _Finder:
    """Where a YAML path was written, as a Source."""

    def __init__(self, spec: Any):
        self.sources = spec.sources
        self.top = _display(spec.path) if spec.path else None

    def written(self, path: Path) -> Location | None:
        values = self.sources.values
        if path in values:
            return values[path]
        parent = path[:-1]
        if path and path[-1] == "type" and parent in values and not any(
                k[:len(parent)] == parent and len(k) > len(parent) for k in self.sources.keys):
            return values[parent]  # `norm: layer_norm`: the bare type name
        return None

    def find(self, candidates: list[Path], owner: str) -> Source:
        """The first candidate path that some file (or --set) wrote; else the owner's default."""
        for i, path in enumerate(candidates):
            loc = self.written(path)
            if loc is not None:
                how = self.sources.carried.get(path, "")
                if i and not how:
                    how = f"from {_dotted(path[:1])}"
                return self.at(loc, how)
        return Source("default", f"default of {owner}")



    def at(self, loc: Location, how: str = "") -> Source:
        if loc.file.startswith("--set "):
            return Source("set", loc.file, how)
        return Source("spec" if loc.file == self.top else "base", str(loc), how)


def _display(path: str) -> str:
    return display_path(path)


def _dotted(path: Path) -> str:
    return format_path(path)


class _Table:
    """Builds the ordered table of settings."""

    def __init__(self, spec: Any):
        self.spec = spec
        self.find = _Finder(spec)
        self.out: dict[str, Setting] = {}

    def add(self, key: str, value: Any, source: Source) -> None:
        self.out[key] = Setting(key, value, source)

    def model(self, prefix: str, model: Any, candidates: list[Path], owner: str,
              network: bool = False) -> None:
        """Each field of a spec model; `network`: its null norm/activation is the network's."""
        if model is None:
            self.add(prefix, None, self.find.find(candidates, owner))
            return
        dump = model.model_dump(mode="json")
        for name in type(model).model_fields:
            key, here = f"{prefix}.{name}", [c + (name,) for c in candidates]
            value = getattr(model, name)
            if network and name in ("norm", "activation") and value is None \
                    and self.find.find(here, owner).kind == "default":
                self.network(key, name)
            elif name == "norm" and value is not None:
                self.norm(key, value, here, owner)
            elif isinstance(value, BaseModel):
                self.model(key, value, here, f"{key} ({owner})")
            else:
                self.add(key, dump[name], self.find.find(here, owner))

    def norm(self, prefix: str, norm: Any, candidates: list[Path], owner: str) -> None:
        """A norm with its eps and momentum resolved (the values the layers get)."""
        kind = norm.type
        self.add(f"{prefix}.type", kind, self.find.find([c + ("type",) for c in candidates],
                                                       owner))
        eps = norm.eps if norm.eps is not None else _NORM_EPS.get(kind, 0.0)
        self.add(f"{prefix}.eps", eps, self.find.find([c + ("eps",) for c in candidates],
                                                     f"the {kind} norm"))
        self.add(f"{prefix}.momentum", norm.momentum or 0.1,
                 self.find.find([c + ("momentum",) for c in candidates],
                                "a norm (PyTorch's)"))

    def network(self, key: str, name: str) -> None:
        """`key` takes the network-wide `name` (norm or activation)."""
        for net_key, setting in list(self.out.items()):
            if net_key == name or net_key.startswith(name + "."):
                self.add(key + net_key[len(name):], setting.value,
                         Source("network", f"the network's `{net_key}`",
                                setting.source.text()))

    def scaled(self, key: str, unscaled: Any, scaled: Any, source: Source,
               depth: bool = False, scope: str = "") -> None:
        """A width or depth the multipliers changed: the value used, derived from the written
        one."""
        scaling = Scaling.of(self.spec)
        name = "depth_multiplier" if depth else "width_multiplier"
        factor = scaling.depth if depth else scaling.width
        rule = "rounded up" if depth else f"make_divisible by {scaling.divisor}"
        how = f"{_text(unscaled)} x {name} {factor:g} " \
              f"({self.find.find([(name,)], 'the network').text()}), {rule}{scope}"
        self.add(key, scaled, Source("derived", source.where,
                                     f"{source.how}; {how}" if source.how else how))


def _text(value: Any) -> str:
    return "[" + ", ".join(map(str, value)) + "]" if isinstance(value, list) else str(value)


#: Spec fields `resolved_settings` handles itself (the rest are walked generically)
_OWN = ("name", "description", "input", "norm", "activation", "stem", "stages", "block", "head")


def resolved_settings(spec: Any, depths: list[int], widths: list[int], strides: list[int],
                      blocks: list[Any], block_paths: list[Path]) -> dict[str, Setting]:
    """Every setting of a validated spec with the values the resolver used, and their sources."""
    t = _Table(spec)
    scaling = Scaling.of(spec)
    for key in ("name", "description"):
        t.add(key, getattr(spec, key), t.find.find([(key,)], "the spec"))
    t.model("input", spec.input, [("input",)], "the input")
    t.norm("norm", spec.norm, [("norm",)], "the network")
    t.add("activation", spec.activation, t.find.find([("activation",)], "the network"))
    _stem(t, spec, scaling)
    _layout(t, spec, depths, widths, strides)
    downsample = spec.stages.downsample
    t.model("stages.downsample", downsample, [("stages", "downsample")],
            f"`{downsample.type}` downsampling", network=True)
    for i, (block, path) in enumerate(zip(blocks, block_paths)):
        candidates = [path] if path == ("block",) else [path, ("block",)]
        t.model(f"stages[{i}].block", block, candidates, f"the {block.type} block", network=True)
    if spec.stages.regnet is not None:
        _adjusted_group_widths(t, spec, blocks)
    _head(t, spec, scaling)
    for name in type(spec).model_fields:
        if name not in _OWN:
            t.model(name, getattr(spec, name), [(name,)], "the network") \
                if isinstance(getattr(spec, name), BaseModel) else \
                t.add(name, spec.model_dump(mode="json", include={name})[name],
                      t.find.find([(name,)], "the network"))
    return t.out


def _stem(t: _Table, spec: Any, scaling: Scaling) -> None:
    stem = scaling.model(spec.stem, "stem")
    t.model("stem", stem, [("stem",)], f"the {stem.type} stem", network=True)
    if stem is not spec.stem:
        for name in stem.width_settings:
            key = f"stem.{name}"
            t.scaled(key, getattr(spec.stem, name), t.out[key].value, t.out[key].source)


def _head(t: _Table, spec: Any, scaling: Scaling) -> None:
    head = spec.head
    if head.conv is not None:
        head = head.model_copy(update={"conv": scaling.model(head.conv, "head")})
    t.model("head", head, [("head",)], "the head", network=True)
    if head.conv is not None and head.conv is not spec.head.conv:
        for name in head.conv.width_settings:
            key, written = f"head.conv.{name}", getattr(spec.head.conv, name)
            if t.out[key].value != written:
                t.scaled(key, written, t.out[key].value, t.out[key].source,
                         scope=f", at least {written} (scaling_scope.head)"
                         if scaling.head == "at_least_written" else "")


def _layout(t: _Table, spec: Any, depths: list[int], widths: list[int],
            strides: list[int]) -> None:
    st, find = spec.stages, t.find.find
    if st.regnet is not None:
        _generated(t, spec, depths, widths, strides)
        return
    if st.depths is not None:
        source = find([("stages", "depths")], "the stages")
        written = list(st.depths)
    else:
        source = Source("derived", "stages.ratio x stages.unit",
                        f"ratio {find([('stages', 'ratio')], 'the stages').text()}, "
                        f"unit {find([('stages', 'unit')], 'the stages').text()}")
        written = [r * (st.unit or 0) for r in st.ratio or []]
    if written != depths:
        t.scaled("stages.depths", written, depths, source, depth=True,
                 scope=", the first and last as written (scaling_scope.end_depths)"
                 if spec.scaling_scope.end_depths == "fixed" else "")
    else:
        t.add("stages.depths", depths, source)
    source = find([("stages", "widths")], "the stages")
    if list(st.widths) != widths:
        t.scaled("stages.widths", list(st.widths), widths, source)
    else:
        t.add("stages.widths", widths, source)
    t.add("stages.strides", strides,
          find([("stages", "strides")], "the stages (1 for the first, 2 after)"))


def _generated(t: _Table, spec: Any, depths: list[int], widths: list[int],
               strides: list[int]) -> None:
    """Stages from the RegNet generator: its settings, then the widths and depths it gave."""
    t.model("stages.regnet", spec.stages.regnet, [("stages", "regnet")], "the RegNet generator")
    source = Source("derived", "stages.regnet",
                    "RegNet width generator, " +
                    t.find.find([("stages", "regnet", "w0"), ("stages", "regnet")],
                                "the stages").text())
    t.add("stages.depths", depths, source)
    t.add("stages.widths", widths, source)
    t.add("stages.strides", strides,
          t.find.find([("stages", "strides")], "the stages (2 for each generated stage)"))


def _adjusted_group_widths(t: _Table, spec: Any, blocks: list[Any]) -> None:
    """A group width the RegNet generator lowered (to a stage's inner width) is derived."""
    written, _ = spec.stage_blocks(len(blocks))
    for i, (before, after) in enumerate(zip(written, blocks)):
        key = f"stages[{i}].block.group_width"
        if getattr(before, "group_width", None) != getattr(after, "group_width", None):
            t.add(key, after.group_width,
                  Source("derived", "stages.regnet", f"group width {before.group_width} "
                         f"lowered to the stage's inner width, {t.out[key].source.text()}"))


def settings_of(graph: Any) -> dict[str, Setting]:
    """The settings table the resolver stored in the IR."""
    return {key: Setting(key, entry["value"], Source(**entry["source"]))
            for key, entry in (graph.attrs.get("settings") or {}).items()}


def as_attrs(settings: dict[str, Setting]) -> dict[str, dict[str, Any]]:
    """The table as plain data, for the IR's attrs."""
    return {key: {"value": s.value, "source": s.source.as_dict()} for key, s in settings.items()}
