"""YAML -> plain data plus a source map (YAML path -> file:line:col), with `base:` and `--set`.

YAML is read with PyYAML's safe loader (no object construction). Each value remembers where it was
written, so an error found anywhere later (pydantic, resolve) points at the user's own line.
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .catalog import locate, suggest
from .errors import Location, Path, Problem, SpecError, format_path
from .merge import MergeNote, Schema, merge


@dataclass
class SourceMap:
    """Where each YAML path was written: the key's location and the value's location; which
    settings a type change carried over (path -> how), and the notes inheritance left."""

    keys: dict[Path, Location] = field(default_factory=dict)
    values: dict[Path, Location] = field(default_factory=dict)
    carried: dict[Path, str] = field(default_factory=dict)
    notes: list[MergeNote] = field(default_factory=list)

    def value(self, path: Path) -> Location | None:
        """Location of the value at `path`, or of its nearest written ancestor."""
        path = tuple(path)
        while True:
            if path in self.values:
                return self.values[path]
            if not path:
                return None
            path = path[:-1]

    def key(self, path: Path) -> Location | None:
        path = tuple(path)
        return self.keys.get(path) or self.value(path)

    def drop_below(self, prefix: Path) -> None:
        n = len(prefix)
        for table in (self.keys, self.values, self.carried):
            for p in [p for p in table if p[:n] == prefix and len(p) > n]:
                del table[p]

    def forget(self, path: Path) -> None:
        """No file wrote `path` any more (inheritance removed it)."""
        self.drop_below(path)
        for table in (self.keys, self.values, self.carried):
            table.pop(path, None)

    def copy_from(self, other: "SourceMap", prefix: Path) -> None:
        """Take `other`'s locations at and below `prefix`."""
        n = len(prefix)
        for name in ("keys", "values", "carried"):
            mine, theirs = getattr(self, name), getattr(other, name)
            for p, loc in theirs.items():
                if p[:n] == prefix:
                    mine[p] = loc

    def update(self, other: "SourceMap") -> None:
        self.keys.update(other.keys)
        self.values.update(other.values)
        self.carried.update(other.carried)
        self.notes.extend(other.notes)


class SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 scalars: `1:1:3:1` stays a string (YAML 1.1 reads it as
    the base-60 integer 219781), `yes`/`no`/`on`/`off` stay strings, and `1e-6` is a float."""


SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
                           "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"))
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


if getattr(yaml, "__with_libyaml__", False):
    class _CSpecLoader(yaml.cyaml.CParser, yaml.constructor.SafeConstructor,
                       yaml.resolver.Resolver):
        """The spec loader's rules on libyaml's C parser (about 10x faster than PyYAML's pure
        Python one; `list` parses every spec of the zoo). Same nodes, same marks."""

        yaml_implicit_resolvers = SpecLoader.yaml_implicit_resolvers

        def __init__(self, stream):
            yaml.cyaml.CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _COMPOSERS: tuple = (_CSpecLoader, SpecLoader)
else:  # pragma: no cover - PyYAML built without libyaml
    _COMPOSERS = (SpecLoader,)


def _compose(text: str):
    """The node tree of `text`. Errors always come from PyYAML's own parser, so their wording
    and positions do not depend on whether libyaml is installed."""
    try:
        return yaml.compose(text, Loader=_COMPOSERS[0])
    except yaml.YAMLError:
        if len(_COMPOSERS) == 1:
            raise
    return yaml.compose(text, Loader=SpecLoader)


def safe_load(text: str):
    """Parse a YAML value with the spec loader's rules (used for `--set` values)."""
    return yaml.load(text, Loader=SpecLoader)


def _loc(mark: yaml.Mark, file: str) -> Location:
    return Location(file, mark.line + 1, mark.column + 1)


_PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in
                        ("str", "int", "float", "bool", "null", "seq", "map"))


class _Reader:
    """Turns a composed YAML node tree into data and a SourceMap, reporting duplicate keys."""

    def __init__(self, file: str):
        self.file = file
        self.sources = SourceMap()
        self.problems: list[Problem] = []
        self._constructor = SpecLoader("")

    def read(self, node: yaml.Node, path: Path) -> Any:
        self.sources.values[path] = _loc(node.start_mark, self.file)
        if node.tag not in _PLAIN_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            self.problems.append(Problem(_loc(node.start_mark, self.file), format_path(path),
                                         f"unsupported YAML tag '{tag}'",
                                         "specs hold plain data: numbers, strings, lists, mappings"))
            return None
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._constructor.construct_object(key_node, deep=True)
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    self.problems.append(Problem(
                        _loc(key_node.start_mark, self.file), format_path(path),
                        f"expected a name as key, got {key!r}"))
                    continue
                if key in out:
                    self.problems.append(Problem(
                        _loc(key_node.start_mark, self.file), format_path(path + (key,)),
                        f"duplicate key '{key}' (first written at line "
                        f"{self.sources.keys[path + (key,)].line})",
                        "remove one of the two; YAML keeps only the last, silently"))
                    continue
                self.sources.keys[path + (key,)] = _loc(key_node.start_mark, self.file)
                out[key] = self.read(value_node, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.read(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)


def read_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document safely, keeping the location of every key and value."""
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(s for s in (exc.context, exc.problem) if s)
        raise SpecError([Problem(_loc(mark, file) if mark else Location(file), "<yaml>",
                                 f"invalid YAML: {what}",
                                 "check indentation, colons and quotes around this point")])
    except yaml.YAMLError as exc:
        raise SpecError([Problem(Location(file), "<yaml>", f"invalid YAML: {exc}")])
    if node is None:
        return {}, SourceMap()
    reader = _Reader(file)
    data = reader.read(node, ())
    if reader.problems:
        raise SpecError(reader.problems)
    return data, reader.sources


def display_path(path: str) -> str:
    """Paths in messages: relative to the working directory when that is shorter."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if len(rel) < len(path) else path


def load_file(path: str | os.PathLike, schema: Schema = lambda path: None,
              _chain: tuple[str, ...] = ()) -> tuple[dict, SourceMap]:
    """Load a spec (a file, or a zoo name: see `catalog`) and everything it inherits through
    `base:`, merged by the rules of `archspec.merge` (`schema` says which settings are typed)."""
    found = locate(str(path))
    if found is None:
        raise SpecError([Problem(Location(display_path(str(path))), "<file>",
                                 "spec file not found", suggest(str(path)))])
    path = found
    real = os.path.realpath(path)
    shown = display_path(str(path))
    if real in _chain:
        cycle = " -> ".join(display_path(p) for p in _chain + (real,))
        raise SpecError([Problem(Location(shown), "base",
                                 f"inheritance cycle: {cycle}",
                                 "remove `base:` from one of these files")])
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise SpecError([Problem(Location(shown), "<file>", "spec file not found",
                                 "check the path; `base:` paths are relative to the file")])
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(Location(shown), "<file>", f"cannot read spec: {exc}")])
    data, sources = read_yaml(text, shown)
    if not isinstance(data, dict):
        raise SpecError([Problem(sources.value(()) or Location(shown), "<spec>",
                                 f"expected a mapping of settings, got {type(data).__name__}",
                                 "a spec starts with keys such as `name:`, `stem:`, `stages:`")])
    base = data.pop("base", None)
    if base is None:
        return data, sources
    base_loc = sources.value(("base",))
    if not isinstance(base, str):
        raise SpecError([Problem(base_loc, "base", f"expected a file path, got {base!r}",
                                 "base: resnet50.yaml (relative to this file), or a zoo name: "
                                 "base: zoo:resnet50")])
    here = os.path.dirname(os.path.abspath(path))
    base_path = locate(base, relative_to=here)
    if base_path is None:
        hint = suggest(base)
        raise SpecError([Problem(base_loc, "base", f"base file '{base}' not found (looked for "
                                 f"{display_path(os.path.join(here, base))} and the zoo)",
                                 hint if hint.startswith("did you mean") else
                                 "the path is relative to the file that names it; a zoo spec "
                                 "is named as base: zoo:resnet50")])
    if os.path.realpath(base_path) in _chain + (real,):
        cycle = " -> ".join(display_path(p) for p in _chain + (real, os.path.realpath(base_path)))
        raise SpecError([Problem(base_loc, "base", f"inheritance cycle: {cycle}",
                                 "remove `base:` from one of these files")])
    base_data, base_sources = load_file(base_path, schema, _chain + (real,))
    sources.keys.pop(("base",), None)
    sources.values.pop(("base",), None)
    merged = merge(base_data, data, base_sources, sources, schema)
    return merged, base_sources


def parse_override(text: str) -> tuple[Path, Any]:
    """'stages.depths=[3,3,9,3]' -> (('stages', 'depths'), [3, 3, 9, 3])."""
    where = Location(f"--set {text}")
    if "=" not in text:
        raise SpecError([Problem(where, "<override>", "expected PATH=VALUE",
                                 "for example --set block.groups=32")])
    key, _, raw = text.partition("=")
    parts = [p for p in key.strip().split(".")]
    if not all(parts):
        raise SpecError([Problem(where, "<override>", f"expected a dotted path, got '{key}'",
                                 "for example --set stages.depths=[3,3,9,3]")])
    try:
        value = safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise SpecError([Problem(where, key, f"value is not valid YAML: {exc}",
                                 "quote lists and mappings: --set 'stages.depths=[3,3,9,3]'")])
    path = tuple(int(p) if p.isdigit() else p for p in parts)
    return path, value


def apply_overrides(data: dict, sources: SourceMap, overrides: list[str],
                    schema: Schema = lambda path: None) -> dict:
    """Apply `--set PATH=VALUE` overrides, each one more layer merged by the inheritance rules
    (a list entry is set in place); each value's source is the override itself."""
    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        where = Location(f"--set {text}")
        if _through_list(data, path):
            _set_in_list(data, path, value, where)
            sources.forget(path)
            sources.keys[path] = where
            sources.values[path] = where
            continue
        layer: Any = value
        for elem in reversed(path):
            layer = {elem: layer}
        data = merge(data, layer, sources, _sources_of(layer, where), schema)
    return data


def _sources_of(value: Any, where: Location, path: Path = ()) -> SourceMap:
    """A source map placing every path of `value` at `where`."""
    out = SourceMap()
    stack = [(path, value)]
    while stack:
        here, item = stack.pop()
        out.values[here] = where
        if here:
            out.keys[here] = where
        if isinstance(item, dict):
            stack += [(here + (k,), v) for k, v in item.items()]
        elif isinstance(item, list):
            stack += [(here + (i,), v) for i, v in enumerate(item)]
    return out


def _through_list(data: Any, path: Path) -> bool:
    """Whether `path` goes through (or ends in) an entry of a list."""
    node = data
    for elem in path[:-1]:
        if isinstance(node, list):
            return True
        if not isinstance(node, dict) or elem not in node:
            return False
        node = node[elem]
    return isinstance(node, list)


def _set_in_list(data: Any, path: Path, value: Any, where: Location) -> None:
    node: Any = data
    for i, elem in enumerate(path):
        if isinstance(node, list):
            if not isinstance(elem, int) or not 0 <= elem < len(node):
                raise SpecError([Problem(where, format_path(path[: i + 1]),
                                         f"no list entry {elem} (the list has {len(node)})")])
        elif not isinstance(node, dict):
            raise SpecError([Problem(where, format_path(path[:i]),
                                     f"cannot set '{elem}' inside a {type(node).__name__}")])
        if i == len(path) - 1:
            node[elem] = value
        else:
            if isinstance(node, dict) and not isinstance(node.get(elem), (dict, list)):
                node[elem] = {}
            node = node[elem]
