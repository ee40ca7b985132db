"""Hypothesis strategies for specs, built from the registries and the spec models themselves.

Every block family, stem and downsampling kind is drawn from its registry, and the settings of
each from its pydantic model (Literal options, bools, bounded ints and floats, nested models): a
new family or setting is covered with no edit here. Numbers are kept small (widths up to 32,
images up to 64 pixels), so each generated network builds and runs in milliseconds.

`near_misses` breaks one value of a generated spec in a way no setting accepts (docs/robustness.md).
"""
from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union

import annotated_types
from hypothesis import strategies as st
from pydantic import BaseModel

from archspec.blocks import BLOCKS, DOWNSAMPLES, STEMS
from archspec.blocks.base import Activation
from archspec.spec import HeadSpec, InitSpec, Spec

#: Friendly numbers tried first for floats (ratios, reductions, layer scale).
_NICE_FLOATS = (1e-6, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 4.0, 6.0, 1e12)


def _bounds(metadata: list) -> tuple[float | None, float | None, bool, bool]:
    lo = hi = None
    lo_open = hi_open = False
    for m in metadata:
        if isinstance(m, annotated_types.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, annotated_types.Ge):
            lo = m.ge
        elif isinstance(m, annotated_types.Lt):
            hi, hi_open = m.lt, True
        elif isinstance(m, annotated_types.Le):
            hi = m.le
    return lo, hi, lo_open, hi_open


def _ints(metadata: list) -> st.SearchStrategy:
    lo, _, lo_open, _ = _bounds(metadata)
    first = 1 if lo is None else int(lo) + (1 if lo_open else 0)
    return st.integers(first, first + 7)


def _floats(metadata: list) -> st.SearchStrategy:
    lo, hi, lo_open, hi_open = _bounds(metadata)

    def fits(x: float) -> bool:
        return (lo is None or x > lo or (x == lo and not lo_open)) and \
            (hi is None or x < hi or (x == hi and not hi_open))
    nice = [x for x in _NICE_FLOATS if fits(x)]
    low = 0.0 if lo is None else float(lo)
    high = low + 8.0 if hi is None else float(hi)
    anything = st.floats(low, high, allow_nan=False, allow_infinity=False,
                         exclude_min=lo_open, exclude_max=hi_open)
    return st.one_of(st.sampled_from(nice), anything) if nice else anything


def for_type(ann: Any, metadata: list = ()) -> st.SearchStrategy:
    """A strategy for values of a (pydantic field) annotation."""
    origin = typing.get_origin(ann)
    if ann is type(None):
        return st.none()
    if origin is Literal:
        return st.sampled_from(typing.get_args(ann))
    if origin in (Union, types.UnionType):
        return st.one_of([for_type(a, metadata) for a in typing.get_args(ann)])
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(ann)
        return for_type(inner, list(metadata) + list(extra))
    if origin is list:
        return st.lists(for_type(typing.get_args(ann)[0]), min_size=1, max_size=3)
    if ann is bool:
        return st.booleans()
    if ann is int:
        return _ints(list(metadata))
    if ann is float:
        return _floats(list(metadata))
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return model(ann)
    raise TypeError(f"tests/strategies.py: no strategy for {ann!r}; add one")


def model(cls: type[BaseModel], fixed: dict | None = None) -> st.SearchStrategy:
    """A mapping of settings for a spec model: required ones always, the others sometimes."""
    fixed = dict(fixed or {})
    required, optional = {}, {}
    for name, f in cls.model_fields.items():
        if name in fixed:
            continue
        strategy = for_type(f.annotation, f.metadata)
        (required if f.is_required() else optional)[name] = strategy
    return st.fixed_dictionaries({**{k: st.just(v) for k, v in fixed.items()}, **required},
                                 optional=optional)


def tagged(registry: dict[str, type[BaseModel]]) -> st.SearchStrategy:
    """A member of a registry (block family, stem, downsampling) with some of its settings."""
    return st.sampled_from(sorted(registry)).flatmap(
        lambda tag: model(registry[tag], {"type": tag}))


@st.composite
def specs(draw) -> dict:
    """A whole spec as plain data (what a YAML file holds)."""
    n = draw(st.integers(1, 4))
    stages: dict[str, Any] = {
        "depths": draw(st.lists(st.integers(1, 2), min_size=n, max_size=n)),
        "widths": draw(st.lists(st.sampled_from([4, 8, 12, 16, 24, 32]), min_size=n,
                                max_size=n)),
    }
    if draw(st.booleans()):
        stages["strides"] = draw(st.lists(st.sampled_from([1, 2]), min_size=n, max_size=n))
    if draw(st.booleans()):
        stages["downsample"] = draw(tagged(DOWNSAMPLES))
    if draw(st.booleans()):
        stage = draw(st.integers(0, n - 1))
        family = draw(st.sampled_from(sorted(BLOCKS)))
        settings = draw(model(BLOCKS[family], {"type": family}))
        if draw(st.booleans()):  # an override of the same family may leave out `type`
            settings.pop("type")
        stages["overrides"] = {stage: settings}
    size = draw(st.sampled_from([16, 24, 32, 40, 64]))
    spec: dict[str, Any] = {
        "name": draw(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)),
        "input": {"channels": draw(st.integers(1, 3)),
                  "image_size": draw(st.sampled_from([size, [size, size // 2 + 8]]))},
        "stages": stages,
        "block": draw(tagged(BLOCKS)),
        "stem": draw(tagged(STEMS)),
    }
    optional = {
        "norm": st.sampled_from(["batch_norm", "layer_norm", "none"]),
        "activation": for_type(Activation),
        "head": model(HeadSpec).map(_small_head),
        "drop_path_rate": st.sampled_from([0.0, 0.1, 0.5]),
        "zero_init_residual": st.booleans(),
        "init": model(InitSpec),
    }
    for name, f in Spec.model_fields.items():  # settings added later are drawn from the model
        if name not in spec and name not in optional and name != "description":
            optional[name] = for_type(f.annotation, f.metadata)
    for key, strategy in optional.items():
        if draw(st.booleans()):
            spec[key] = draw(strategy)
    _shrink_stem(spec["stem"])
    return spec


def _small_head(head: dict) -> dict:
    head = dict(head)
    head["num_classes"] = head.get("num_classes", 5) % 11
    if isinstance(head.get("conv"), dict):
        head["conv"] = {**head["conv"], "out_channels": min(head["conv"]["out_channels"], 16)}
    return head


def _shrink_stem(stem: dict) -> None:
    """Stems from the registry keep their real defaults (64 channels, a 7x7 conv); draw small."""
    if stem.get("type") in ("classic", "patchify"):
        stem.setdefault("out_channels", 8)
    if stem.get("type") == "deep":
        stem.setdefault("widths", [4, 8])


# ---- near misses ----------------------------------------------------------------------------

def _leaves(data: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    if isinstance(data, dict):
        return [leaf for k, v in data.items() for leaf in _leaves(v, path + (k,))]
    if isinstance(data, list):
        return [leaf for i, v in enumerate(data) for leaf in _leaves(v, path + (i,))]
    return [(path, data)]


def _set(data: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _mappings(data: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(data, dict):
        return [path] + [p for k, v in data.items() for p in _mappings(v, path + (k,))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _mappings(v, path + (i,))]
    return []


@st.composite
def near_misses(draw) -> tuple[dict, str]:
    """A generated spec with one thing broken that no setting accepts; and what was broken."""
    import copy
    spec = copy.deepcopy(draw(specs()))
    numbers = [(p, v) for p, v in _leaves(spec)
               if isinstance(v, (int, float)) and not isinstance(v, bool)]
    tags = [(p, v) for p, v in _leaves(spec) if p[-1] == "type" and "overrides" not in p]
    how = draw(st.sampled_from(["unknown_key", "number_as_text", "number_as_bool",
                                "negative", "unknown_type"]))
    if how in ("number_as_text", "number_as_bool", "negative") and numbers:
        path, value = draw(st.sampled_from(numbers))
        broken = {"number_as_text": str(value), "number_as_bool": True,
                  "negative": -1 - abs(value)}[how]
        if how == "negative" and path[:2] == ("init", "std"):
            broken = -1.0
        _set(spec, path, broken)
        return spec, f"{how} at {path}"
    if how == "unknown_type" and tags:
        path, value = draw(st.sampled_from(tags))
        _set(spec, path, value + "_x")
        return spec, f"unknown type at {path}"
    path = draw(st.sampled_from([p for p in _mappings(spec) if "overrides" not in p[-1:]]))
    target = spec
    for key in path:
        target = target[key]
    target["zz_unknown"] = 1
    return spec, f"unknown key at {path}"
