"""YAML -> plain data plus a source map (YAML path -> file:line:col), with `base:` and `--set`.

YAML is read with PyYAML's safe loader (no object construction). Each value remembers where it was
written, so an error found anywhere later (pydantic, resolve) points at the user's own line.
"""
from __future__ import annotations

import copy
import functools
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

import yaml

from .catalog import locate, suggest, zoo_folder
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
    #: Bases read from outside the first file's folder, for `validate` to show.
    outside: list[str] = field(default_factory=list)
    #: Every file read (real paths, bases first): what the spec depends on.
    files: list[str] = field(default_factory=list)

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


# ---- bounds: whatever a file holds, loading it is bounded in time and memory ----------------

@dataclass(frozen=True)
class Limit:
    """One bound on what a spec may make the loader do; `ARCHSPEC_<env>` raises it."""

    env: str
    default: int
    what: str

    @property
    def value(self) -> int:
        try:
            return max(1, int(os.environ.get(self.env, "")))
        except ValueError:
            return self.default

    def problem(self, where: Location | None, path: str, found: str) -> Problem:
        return Problem(where, path, f"{found}, over the limit of {self.value:,} {self.what}",
                       f"if this spec is legitimate, raise the limit: {self.env}="
                       f"{self.value * 10}")


#: The loader's bounds (docs/robustness.md). Real specs are a few KB, a few levels deep, with
#: lists of a handful of stages: each limit is far above any of them.
LIMITS = {
    "file_bytes": Limit("ARCHSPEC_MAX_SPEC_BYTES", 256 * 1024, "bytes in a spec file"),
    "depth": Limit("ARCHSPEC_MAX_SPEC_DEPTH", 32, "levels of nesting"),
    "values": Limit("ARCHSPEC_MAX_SPEC_VALUES", 10_000,
                    "values in a spec, with every alias expanded"),
    "entries": Limit("ARCHSPEC_MAX_SPEC_ENTRIES", 1_000, "entries in one list or mapping"),
    "bases": Limit("ARCHSPEC_MAX_SPEC_BASES", 64, "files in one `base:` chain"),
    # Sizes of the network itself, checked while resolving (no memory is allocated for it):
    # the largest published CNNs have about 10^9 parameters and 10^11 MACs per image.
    "blocks": Limit("ARCHSPEC_MAX_BLOCKS", 10_000, "blocks in a network"),
    "params": Limit("ARCHSPEC_MAX_PARAMS", 10**11, "parameters"),
    "macs": Limit("ARCHSPEC_MAX_MACS", 10**12, "MACs per image"),
    "tensor": Limit("ARCHSPEC_MAX_TENSOR", 2**34, "values in one feature map of one image"),
}


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark):
        self.mark = mark


class _BoundedComposer(yaml.composer.Composer):
    """PyYAML's composer, stopping at the nesting limit (it recurses once per level)."""

    @functools.cached_property
    def _max_depth(self) -> int:  # read once per document, not once per node
        return LIMITS["depth"].value

    def compose_node(self, parent, index):  # noqa: D102 (PyYAML's hook)
        depth = getattr(self, "_depth", 0)
        if depth >= self._max_depth:
            raise _TooDeep(self.peek_event().start_mark)
        self._depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth


class SpecLoader(_BoundedComposer, yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 scalars: `1:1:3:1` stays a string (YAML 1.1 reads it as
    the base-60 integer 219781), `yes`/`no`/`on`/`off` and dates stay strings, and `1e-6` is a
    float. Composing stops at the nesting limit."""


if getattr(yaml, "__with_libyaml__", False):
    from yaml.cyaml import CParser

    class _FastSpecLoader(_BoundedComposer, CParser, yaml.constructor.SafeConstructor,
                          yaml.resolver.Resolver):
        """The same loader reading its events from libyaml's C parser (about 4x faster than
        PyYAML's Python scanner and parser) while composing in Python, so the nesting bound
        above still holds (libyaml's own composer would bypass it)."""

        def __init__(self, stream):
            CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            yaml.composer.Composer.__init__(self)
else:  # PyYAML built without libyaml: the pure-Python parser
    _FastSpecLoader = SpecLoader


SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
                           "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp",
                           "tag:yaml.org,2002:value")]
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
_FastSpecLoader.yaml_implicit_resolvers = SpecLoader.yaml_implicit_resolvers


def safe_load(text: str, file: str = "<value>"):
    """Parse a YAML value with the spec loader's rules and bounds (used for `--set` values)."""
    return read_yaml(text, file, allow_empty=True)[0]


def _loc(mark: yaml.Mark, file: str) -> Location:
    return Location(file, mark.line + 1, mark.column + 1)


_PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in
                        ("str", "int", "float", "bool", "null", "seq", "map"))
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Budget(Exception):
    """Raised inside `_Reader` when a bound is reached: reading stops at once."""

    def __init__(self, problem: Problem):
        self.problem = problem


class _Reader:
    """Turns a composed YAML node tree into data and a SourceMap, reporting duplicate keys.
    Aliases are expanded here (the composed tree shares their nodes), so this is where the
    expansion budget is counted: an alias bomb stops after `LIMITS["values"]` values."""

    def __init__(self, file: str):
        self.file = file
        self.sources = SourceMap()
        self.problems: list[Problem] = []
        self._constructor = SpecLoader("")
        self._values = 0
        self._max_values = LIMITS["values"].value
        self._max_entries = LIMITS["entries"].value
        self._max_depth = LIMITS["depth"].value

    def read(self, node: yaml.Node, path: Path) -> Any:
        where = _loc(node.start_mark, self.file)
        self._values += 1
        if len(path) >= self._max_depth:  # a recursive alias (`a: &a [*a]`) nests forever
            raise _Budget(LIMITS["depth"].problem(where, format_path(path[:3]) + "...",
                                                  f"values nested {len(path)} levels deep"))
        if self._values > self._max_values:
            raise _Budget(LIMITS["values"].problem(where, format_path(path),
                                                   "aliases expand to more values"))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) \
                and len(node.value) > self._max_entries:
            raise _Budget(LIMITS["entries"].problem(where, format_path(path),
                                                    f"{len(node.value):,} entries"))
        self.sources.values[path] = where
        if node.tag not in _PLAIN_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            self.problems.append(Problem(where, format_path(path),
                                         f"unsupported YAML tag '{tag}'",
                                         "specs hold plain data: numbers, strings, lists, mappings"))
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.read(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict:
        merged = self._merged(node, path)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self._constructor.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                self.problems.append(Problem(
                    _loc(key_node.start_mark, self.file), format_path(path),
                    f"expected a name as key, got {_short(key)}"))
                continue
            if key in out:
                self.problems.append(Problem(
                    _loc(key_node.start_mark, self.file), format_path(path + (key,)),
                    f"duplicate key '{key}' (first written at line "
                    f"{self.sources.keys[path + (key,)].line})",
                    "remove one of the two; YAML keeps only the last, silently"))
                continue
            if merged.pop(key, None) is not None:
                self.sources.drop_below(path + (key,))
            self.sources.keys[path + (key,)] = _loc(key_node.start_mark, self.file)
            out[key] = self.read(value_node, path + (key,))
        return {**merged, **out}

    def _merged(self, node: yaml.MappingNode, path: Path) -> dict:
        """YAML merge keys (`<<: *defaults`, `<<: [*a, *b]`): the merged mappings' keys fill in
        what the mapping does not set itself; earlier mappings win. Merged values keep the
        location where they were written (at the anchor)."""
        sources: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources += value_node.value if isinstance(value_node, yaml.SequenceNode) \
                    else [value_node]
        merged: dict[Any, Any] = {}
        own = self.sources.values[path]
        for source in reversed(sources):  # read the last first: earlier ones overwrite it
            if not isinstance(source, yaml.MappingNode):
                self.problems.append(Problem(
                    _loc(source.start_mark, self.file), format_path(path + ("<<",)),
                    "expected a mapping (or a list of mappings) to merge",
                    "<<: *defaults, where `defaults: &defaults {...}` is a mapping"))
                continue
            merged.update(self._mapping(source, path))
            self.sources.values[path] = own
        return merged


def _short(value: Any) -> str:
    """A value for a message, cut short: never a whole file's worth of text."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _compose(text: str) -> yaml.Node | None:
    """The document's node tree, parsed by libyaml; a syntax error is reported as PyYAML's
    Python parser words it ("expected ',' or ']', but got ':'" says what it found, where
    libyaml says "did not find expected ',' or ']'")."""
    try:
        return yaml.compose(text, Loader=_FastSpecLoader)
    except yaml.YAMLError:
        if _FastSpecLoader is SpecLoader:
            raise
        return yaml.compose(text, Loader=SpecLoader)  # raises its own error


def read_yaml(text: str, file: str, allow_empty: bool = False) -> tuple[Any, SourceMap]:
    """Parse one YAML document safely, keeping the location of every key and value. Bounded
    (`LIMITS`): size, nesting, entries per list, values after alias expansion."""
    size = LIMITS["file_bytes"]
    if len(text) > size.value:
        raise SpecError([size.problem(Location(file), "<file>", f"{len(text):,} characters")])
    try:
        node = _compose(text)
    except _TooDeep as exc:
        raise SpecError([LIMITS["depth"].problem(_loc(exc.mark, file), "<yaml>",
                                                 "values nested deeper")])
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_yaml_problem(exc, file)])
    except yaml.YAMLError as exc:
        raise SpecError([Problem(Location(file), "<yaml>", f"invalid YAML: {exc}")])
    if node is None:
        if allow_empty:
            return None, SourceMap()
        raise SpecError([Problem(Location(file, 1, 1), "<spec>",
                                 "the file holds no settings (it is empty or only comments)",
                                 "a spec needs at least `name:`, `stages:` and `block:` "
                                 "(docs/spec.md)")])
    reader = _Reader(file)
    try:
        data = reader.read(node, ())
    except _Budget as exc:
        raise SpecError([exc.problem])
    if reader.problems:
        raise SpecError(reader.problems)
    return data, reader.sources


def _yaml_problem(exc: yaml.MarkedYAMLError, file: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    where = _loc(mark, file) if mark else Location(file)
    if exc.context == "expected a single document in the stream":
        return Problem(where, "<yaml>", "expected one YAML document, found a second one here",
                       "a spec file holds one document: remove this `---` and what follows, "
                       "or move it into a file of its own")
    what = " ".join(s for s in (exc.context, exc.problem) if s)
    return Problem(where, "<yaml>", f"invalid YAML: {what}",
                   "check indentation, colons and quotes around this point")


def display_path(path: str) -> str:
    """Paths in messages: relative to the working directory when that is shorter."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if len(rel) < len(path) else path


def load_file(path: str | os.PathLike, schema: Schema = lambda path: None,
              _chain: tuple[str, ...] = (), settings: frozenset[str] = frozenset(),
              _named_at: Location | None = None) -> tuple[dict, SourceMap]:
    """Load a spec (a file, or a zoo name: see `catalog`) and everything it inherits through
    `base:`, merged by the rules of `archspec.merge` (`schema` says which settings are typed).
    Only regular files are read, bounded in size. `settings` (the spec's top-level names) lets
    a base file that is not a spec at all be refused without echoing anything it holds. Bases
    outside the folder of the first file are allowed, and listed in `SourceMap.outside`."""
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
    text = read_text(path, shown, _named_at)
    data, sources = read_yaml(text, shown)
    sources.files.append(real)
    if not isinstance(data, dict):
        raise SpecError([Problem(sources.value(()) or Location(shown), "<spec>",
                                 f"expected a mapping of settings, got {type(data).__name__}",
                                 "a spec starts with keys such as `name:`, `stem:`, `stages:`")])
    if _chain and settings and not (set(data) & (settings | {"base"})):
        raise SpecError([Problem(_named_at, "base",
                                 f"base file '{shown}' is not an archspec spec: none of its "
                                 f"{len(data)} top-level keys is a spec setting",
                                 "`base:` names another spec file")])
    base = data.pop("base", None)
    if base is None:
        return data, sources
    base_loc = sources.value(("base",))
    base_path = _base_path(base, base_loc, path)
    if os.path.realpath(base_path) in _chain + (real,):
        cycle = " -> ".join(display_path(p) for p in _chain + (real, os.path.realpath(base_path)))
        raise SpecError([Problem(base_loc, "base", f"inheritance cycle: {cycle}",
                                 "remove `base:` from one of these files")])
    bases = LIMITS["bases"]
    if len(_chain) + 1 >= bases.value:
        raise SpecError([bases.problem(base_loc, "base", f"{len(_chain) + 2} files")])
    base_data, base_sources = load_file(base_path, schema, _chain + (real,), settings, base_loc)
    base_sources.outside += sources.outside
    base_sources.files += sources.files
    top = os.path.dirname((_chain + (real,))[0])
    if _outside(top, base_path):
        base_sources.outside.append(
            f"{base_loc}: base: {display_path(os.path.normpath(base_path))} is outside the "
            f"spec's folder ({display_path(top)})")
    sources.keys.pop(("base",), None)
    sources.values.pop(("base",), None)
    merged = merge(base_data, data, base_sources, sources, schema)
    return merged, base_sources


def _outside(top: str, base_path: str) -> bool:
    """A base worth a note: neither in the first spec's folder tree nor in archspec's zoo."""
    real = os.path.realpath(base_path)
    zoo = os.path.realpath(zoo_folder())
    return all(os.path.commonpath([folder, real]) != folder for folder in (top, zoo))


def _base_path(base: Any, base_loc: Location | None, path: str | os.PathLike) -> str:
    """The file a `base:` value names (a path relative to the file `path`, or a zoo name)."""
    if not isinstance(base, str):
        raise SpecError([Problem(base_loc, "base", f"expected a file path, got {_short(base)}",
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
    return base_path


def read_text(path: str | os.PathLike, shown: str, named_at: Location | None = None) -> str:
    """The text of a spec file: a regular file (never a FIFO, device or folder, which could
    hang or never end), at most `LIMITS["file_bytes"]`, UTF-8. Errors never quote it; for a
    base file they are located at the `base:` that names it."""
    limit = LIMITS["file_bytes"]

    def fail(message: str, hint: str | None = None) -> SpecError:
        if named_at is not None:
            return SpecError([Problem(named_at, "base", f"base file '{shown}': {message}", hint)])
        return SpecError([Problem(Location(shown), "<file>", message, hint)])
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise fail("spec file not found", "check the path; `base:` paths are relative to the "
                   "file") from None
    except OSError as exc:
        raise fail(f"cannot read spec: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        mode = info.st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a pipe" if stat.S_ISFIFO(mode) \
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket"
            raise fail(f"cannot read it: it is {kind}, not a regular file",
                       "specs are read from files; save it to a .yaml file first")
        if info.st_size > limit.value:
            raise SpecError([limit.problem(named_at or Location(shown),
                                           "base" if named_at else "<file>",
                                           f"'{shown}' has {info.st_size:,} bytes")])
        raw = b""
        while len(raw) <= limit.value:  # and if it grew meanwhile, stop at the limit
            chunk = os.read(fd, limit.value + 1 - len(raw))
            if not chunk:
                break
            raw += chunk
    finally:
        os.close(fd)
    if len(raw) > limit.value:
        raise SpecError([limit.problem(named_at or Location(shown),
                                       "base" if named_at else "<file>",
                                       f"'{shown}' has more bytes")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(f"cannot read spec: not UTF-8 text (byte {exc.start:,} is not valid UTF-8)",
                   "save the file as UTF-8") from None


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
    except SpecError as exc:  # located in the value: say so on the command line
        raise SpecError([_override_problem(p, where, key) for p in exc.problems]) from None
    if len(parts) >= LIMITS["depth"].value:
        raise SpecError([LIMITS["depth"].problem(where, "<override>",
                                                 f"a path {len(parts)} levels deep")])
    path = tuple(int(p) if p.isdigit() else p for p in parts)
    return path, value


def _override_problem(problem: Problem, where: Location, key: str) -> Problem:
    if not problem.message.startswith("invalid YAML"):  # a bound: keep its hint
        return Problem(where, key, problem.message, problem.hint)
    return Problem(where, key, problem.message.replace("invalid YAML", "value is not valid YAML"),
                   "quote lists and mappings: --set 'stages.depths=[3,3,9,3]'")


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
