"""archspec: declarative CNN architectures. One resolved IR; graph, diagram and module from it.

    >>> import archspec
    >>> graph = archspec.resolve("specs/resnet50.yaml")   # no torch needed
    >>> graph.params, graph.macs
    (25557032, 4089184256)
    >>> model = archspec.build("specs/resnet50.yaml")     # torch.nn.Module
    >>> dot = archspec.to_dot("specs/resnet50.yaml", level="stage")  # graphviz.Digraph, no torch
    >>> model = archspec.build("specs/resnet50.yaml", weights="resnet50.pth")  # timm/torchvision
    >>> archspec.save(model, "mine.safetensors"); archspec.load_model("mine.safetensors")
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Sequence

from .errors import InternalError, Location, Problem, SpecError
from .ir import ArchGraph, Feature, FeatureInfo, Group, Node

if TYPE_CHECKING:
    from .spec import Spec, load
    import graphviz
    import networkx
    from torch import nn

__all__ = ["ArchGraph", "Feature", "FeatureInfo", "Group", "InternalError", "Location", "Node",
           "Problem", "Spec", "SpecError", "build", "diff", "load", "load_model",
           "load_weights", "modernize", "resolve", "save", "to_dot", "to_module",
           "to_networkx"]


def __getattr__(name: str) -> Any:
    """`archspec.Spec` and `archspec.load` on first use: the spec models import pydantic, which
    commands that never load a spec (`--help`, `modernize --help`) do not need."""
    if name in ("Spec", "load"):
        from . import spec
        return getattr(spec, name)
    raise AttributeError(f"module 'archspec' has no attribute {name!r}")


def _overrides(kwargs: dict[str, Any]) -> list[str]:
    """build(spec, head__num_classes=10) -> ['head.num_classes=10'] (`__` separates levels)."""
    import json
    return [f"{key.replace('__', '.')}={json.dumps(value)}" for key, value in kwargs.items()]


def resolve(spec: "str | os.PathLike | Spec | ArchGraph", overrides: list[str] | tuple = (),
            *, strict: bool = False, **kwargs: Any) -> ArchGraph:
    """Load (if given a path) and resolve a spec into the IR. Never imports torch. `strict`: a
    setting that inheritance dropped (see docs/spec.md, "Inheritance") is an error."""
    from .resolver import resolve as _resolve
    from .spec import Spec, load
    if isinstance(spec, ArchGraph):
        if overrides or kwargs:
            raise TypeError("overrides need a spec, not a resolved graph")
        return spec
    if not isinstance(spec, Spec) or overrides or kwargs:
        if isinstance(spec, Spec):
            raise TypeError("pass a path to apply overrides")
        spec = load(spec, list(overrides) + _overrides(kwargs))
    graph = _resolve(spec)
    if strict and spec.strict_problems():
        raise SpecError(spec.strict_problems())
    return graph


def build(spec: "str | os.PathLike | Spec | ArchGraph", overrides: list[str] | tuple = (), *,
          features_only: bool = False, out_indices: "Sequence[int] | None" = None,
          weights: "str | os.PathLike | None" = None, weights_source: str = "auto",
          strict: bool = True, mode: str = "train", **kwargs: Any) -> "nn.Module":
    """Build the torch module of a spec. Keyword overrides use `__` between levels:
    `build("specs/resnet50.yaml", head__num_classes=10)`. `features_only=True` builds the
    backbone returning the maps of the stages in `out_indices` (stage indices from 0; default
    all), with `feature_info` (channels, reduction, module) from the IR; see docs/modules.md.
    `weights`: a timm, torchvision or archspec checkpoint to load (`load_weights` with
    `weights_source` and `strict`); an incomplete load prints its report's table on stderr and
    the report is the module's `weights_report` (docs/weights.md). `mode="deploy"` returns the
    inference-only module (`.to_deploy()` of the built, loaded network; see docs/deploy.md)."""
    from .lower.torch import FeatureNetwork, to_module as _to_module
    if mode not in ("train", "deploy"):
        raise ValueError(f"mode: expected 'train' or 'deploy', got {mode!r}")
    if mode == "deploy" and features_only:
        raise TypeError("mode='deploy' builds a classification network: leave out features_only")
    graph = resolve(spec, overrides, **kwargs)
    if weights is None:
        model = _to_module(graph, features_only=features_only, out_indices=out_indices)
        return model.to_deploy() if mode == "deploy" else model
    info = graph.feature_info(out_indices) if features_only else None
    model = _to_module(graph, out_indices=out_indices)  # (out_indices alone: its TypeError)
    report = load_weights(model, weights, source=weights_source, strict=strict)
    if not report.complete:
        import sys
        print(report.table(), file=sys.stderr)
    model.weights_report = report
    if mode == "deploy":
        return model.to_deploy()
    return FeatureNetwork(model, info) if info is not None else model


def load_weights(module: "nn.Module", checkpoint: "str | os.PathLike | dict",
                 source: str = "auto", strict: bool = True):
    """Load a timm, torchvision or archspec checkpoint (`.pt`, `.pth`, `.safetensors` or a
    state dict) into an archspec module, the names mapped from the IR; returns a `LoadReport`
    (loaded / skipped with reason / initialised; `.table()`). See docs/weights.md."""
    from .weights import load_weights as _load_weights
    return _load_weights(module, checkpoint, source=source, strict=strict)


def save(module: "nn.Module", path: "str | os.PathLike", *, overwrite: bool = True) -> None:
    """Write a self-describing checkpoint: weights, the spec (YAML and hash), archspec version."""
    from .weights import save as _save
    _save(module, path, overwrite=overwrite)


def load_model(path: "str | os.PathLike") -> "nn.Module":
    """Rebuild a network from a checkpoint archspec wrote (its embedded spec) with its weights."""
    from .weights import load_model as _load_model
    return _load_model(path)


def to_module(graph: ArchGraph, features_only: bool = False,
              out_indices: "Sequence[int] | None" = None) -> "nn.Module":
    from .lower.torch import to_module as _to_module
    return _to_module(graph, features_only=features_only, out_indices=out_indices)


def to_networkx(spec: "str | os.PathLike | Spec | ArchGraph") -> "networkx.DiGraph":
    from .lower.networkx import to_networkx as _to_networkx
    return _to_networkx(resolve(spec))


def to_dot(spec: "str | os.PathLike | Spec | ArchGraph", level: str = "block", *,
           expand: bool = False, stats: bool = True, rankdir: str = "TB",
           **options: Any) -> "graphviz.Digraph":
    """The diagram of a spec as a `graphviz.Digraph` (`.source` is the DOT text). Never imports
    torch. level: `stage`, `block` (runs of identical blocks collapsed unless `expand`) or
    `layer`; stats: params and MACs on nodes; rankdir: `TB` or `LR`; further options
    (`collapse`, `title`, `legend`, `dpi`, `html_labels`) as `archspec.lower.graphviz.to_dot`.
    See docs/render.md."""
    from .lower.graphviz import to_dot as _to_dot
    return _to_dot(resolve(spec), level, expand=expand, stats=stats, rankdir=rankdir, **options)


def diff(a: "str | os.PathLike | Spec", b: "str | os.PathLike | Spec"):
    """What changed from spec `a` to spec `b` after resolution: settings, named modernization
    steps, effect on params/MACs/shapes, and layers added, removed and changed (a `Diff`; its
    `as_dict()` is what `cli.py diff --json` prints). Never imports torch."""
    from .diffing import diff as _diff
    return _diff(a, b)


def modernize(spec: "str | os.PathLike", out_dir: "str | os.PathLike | None" = None, *,
              steps: "Sequence[str] | None" = None, skip: Sequence[str] = (),
              overwrite: bool = False, **options: Any):
    """The ConvNeXt roadmap (Liu et al. 2022) applied to a ResNet-family spec, one spec per step
    in the paper's order: a list of steps (`.spec`, `.graph`, `.settings`; the start first; its
    `.specs` are the Spec objects, `.skipped` the steps that did not apply). With `out_dir`,
    also writes them (each `base:` the previous) and README.md, as `archspec modernize` does.
    Options (`depths`, `width_factor`, `kernel_sizes`, ...): `archspec.modernizing.Options`;
    see docs/modernize.md. Never imports torch."""
    from .modernizing import modernize as _modernize
    return _modernize(spec, out_dir, steps=list(steps) if steps else None, skip=tuple(skip),
                      overwrite=overwrite, **options)
