"""Inheritance: how a spec combines with its `base:` (and `--set`, the last layer). The rules,
stated once here and in docs/spec.md ("Inheritance"):

1. Mappings merge key by key; lists and single values (null included) replace.
2. Settings that exclude each other (`stages.depths`, `stages.ratio` with `unit`,
   `stages.regnet`): the child's choice wins and removes the base's, with a note naming both
   files.
3. A mapping whose `type` changes (the stem, the block, a stage override, the downsampling, a
   norm, the init) keeps the inherited settings that the new type also has (same name and
   meaning) and drops the others, each with a note ("stem.pool dropped: a patchify stem has no
   pool"). A shared setting that no file wrote, whose default differs between the two types, gets
   a note too, so no value changes without a word.

Which paths are typed, and what each type has, comes from the spec models (`spec.typed_setting`):
this module knows the rules, not the families. Source maps follow the data, so every value keeps
the file:line that wrote it; carried settings are marked in `SourceMap.carried`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .errors import Location, Path, Problem, format_path

if TYPE_CHECKING:  # the loader imports this module
    from .loader import SourceMap


@dataclass(frozen=True)
class TypedSetting:
    """A setting written as a mapping with a `type` (or as the bare type name)."""

    label: str                                        # "stem", "block", "downsampling", ...
    default_type: str | None                          # the type when none is written
    settings: Callable[[str], dict[str, Any] | None]  # type -> {setting: default}; None: unknown


#: path -> what is typed there (None: a plain mapping or value)
Schema = Callable[[Path], "TypedSetting | None"]

#: mapping path -> groups of keys that exclude each other
EXCLUSIVE: dict[Path, tuple[tuple[str, ...], ...]] = {
    ("stages",): (("depths",), ("ratio", "unit"), ("regnet",)),
}


@dataclass(frozen=True)
class MergeNote:
    """Something inheritance did that a reader should know: `dropped` (a setting the new type
    lacks; an error under --strict), `replaced` (an exclusive choice), `default` (a shared
    setting's default differs between the old and the new type)."""

    kind: str
    path: Path
    message: str
    location: Location | None = None

    def text(self) -> str:
        return (f"{self.location}: " if self.location else "") + self.message

    def problem(self) -> Problem:
        return Problem(self.location, format_path(self.path), self.message,
                       "write the setting again under the new type, or remove it from the base "
                       "(--strict turns dropped settings into errors)")


def _show(value: Any, key: str = "") -> str:
    if value is None:
        return f"the network's {key}" if key in ("norm", "activation") else "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def as_mapping(value: Any, typed: TypedSetting | None) -> Any:
    """`norm: layer_norm` is `norm: {type: layer_norm}`: a bare type name of a typed setting."""
    return {"type": value} if typed is not None and isinstance(value, str) else value


def merge(base: Any, over: Any, base_src: "SourceMap", over_src: "SourceMap", schema: Schema,
          path: Path = ()) -> Any:
    """`over` laid on `base` by the rules above. `base_src` becomes the merged source map and
    collects the notes."""
    typed = schema(path)
    base, over = as_mapping(base, typed), as_mapping(over, typed)
    if not (isinstance(base, dict) and isinstance(over, dict)):
        base_src.drop_below(path)
        base_src.copy_from(over_src, path)
        return copy.deepcopy(over)
    retyped = False
    if typed is not None:
        kept = retype(base, over, path, typed, base_src, over_src.value(path + ("type",)))
        retyped, base = kept is not base, kept
    base = _exclusive(base, over, path, base_src, over_src)
    out = dict(base)
    for key, value in over.items():
        if key in out:
            out[key] = merge(out[key], value, base_src, over_src, schema, path + (key,))
        else:
            out[key] = copy.deepcopy(value)
            base_src.copy_from(over_src, path + (key,))
    if path in over_src.values:  # a retyped mapping is where its new type was written
        if retyped:
            base_src.values[path] = over_src.values[path]
        base_src.values.setdefault(path, over_src.values[path])
    return out


def retype(base: dict, over: dict, path: Path, typed: TypedSetting, src: "SourceMap",
           where: Location | None) -> dict:
    """The inherited mapping `base` as seen by `over`'s type: the settings both types have are
    kept (and marked carried), the others dropped, each with a note in `src`."""
    old = base.get("type", typed.default_type)
    new = over.get("type", old)
    if old is None or new == old:
        return base
    old_settings, new_settings = typed.settings(old), typed.settings(new)
    if old_settings is None or new_settings is None:  # an unknown type: pydantic reports it
        return {k: v for k, v in base.items() if k != "type"}
    kept: dict[str, Any] = {}
    for key, value in base.items():
        if key == "type":
            continue
        here = path + (key,)
        if key in new_settings:
            kept[key] = value
            src.carried[here] = f"carried over from the {old} {typed.label}"
        elif key not in over:
            src.notes.append(MergeNote(
                "dropped", here, f"{format_path(here)} dropped: {_a(new)} {typed.label} has no "
                f"{key}", src.value(here)))
            src.forget(here)
    for key in sorted(set(old_settings) & set(new_settings) - set(base) - set(over)):
        was, now = old_settings[key], new_settings[key]
        if was != now:
            here = path + (key,)
            src.notes.append(MergeNote(
                "default", here, f"{format_path(here)} is now {_show(now, key)}, the {new} "
                f"{typed.label}'s default ({_a(old)} {typed.label} has {_show(was, key)}); write "
                f"it to keep the old value", where))
    return kept


def _exclusive(base: dict, over: dict, path: Path, src: "SourceMap",
               over_src: "SourceMap") -> dict:
    """Where keys exclude each other, the group `over` writes removes the others from `base`."""
    groups = EXCLUSIVE.get(path, ())
    chosen = [g for g in groups if any(k in over for k in g)]
    if len(chosen) != 1:
        return base  # none written, or several in one file: validation reports that
    gone = [k for g in groups if g is not chosen[0] for k in g if k in base]
    if not gone:
        return base
    written = [k for k in chosen[0] if k in over]
    new_at = ", ".join(f"{format_path(path + (k,))} ({over_src.value(path + (k,))})"
                       for k in written)
    old_at = ", ".join(f"{format_path(path + (k,))} ({src.value(path + (k,))})" for k in gone)
    src.notes.append(MergeNote("replaced", path + (written[0],),
                               f"{new_at} {'replace' if len(written) > 1 else 'replaces'} "
                               f"{old_at}: "
                               f"the two exclude each other"))
    for key in gone:
        src.forget(path + (key,))
    return {k: v for k, v in base.items() if k not in gone}
