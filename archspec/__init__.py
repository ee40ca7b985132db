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

__version__ = "0.1.0"

import os
from typing import TYPE_CHECKING, Any, Sequence

from .errors import InternalError, Location, Problem, SpecError
from .ir import ArchGraph, Feature, FeatureInfo, Group, Node
# The module archspec.summary is loaded first, so the function `summary` below (the public API)
# is what `archspec.summary` names; `from archspec.summary import ...` still finds the module.
from . import summary as _summary_module  # noqa: F401  (light: no torch, no pydantic)

if TYPE_CHECKING:
    import graphviz
    import networkx
    from torch import nn

__all__ = ["ArchGraph", "Feature", "FeatureInfo", "Group", "InternalError", "Location", "Node",
           "Problem", "Spec", "SpecError", "build", "diff", "list_models", "load", "load_model",
           "load_weights", "modernize", "resolve", "save", "summary", "to_dot", "to_module",
           "to_networkx", "to_yaml"]


def __getattr__(name: str) -> Any:
    """`archspec.Spec` and `archspec.load` on first use: importing them builds the pydantic
    models, which the commands answered from the summary cache never need."""
    if name in ("Spec", "load"):
        from . import spec as _spec_module
        return getattr(_spec_module, name)
    raise AttributeError(f"module 'archspec' has no attribute '{name}'")


#: Keywords of `build` and `resolve` that mean what they mean in `timm.create_model`, and the
#: spec setting each one sets.
TIMM_KEYWORDS = {"num_classes": "head.num_classes", "in_chans": "input.channels",
                 "drop_path_rate": "drop_path_rate", "global_pool": "head.pool"}


def _overrides(kwargs: dict[str, Any]) -> list[str]:
    """build(spec, num_classes=10, block__groups=32) -> ['head.num_classes=10',
    'block.groups=32']: timm's keywords by name, any setting by its path with `__` for `.`."""
    import json
    out = []
    for key, value in kwargs.items():
        path = TIMM_KEYWORDS.get(key) or (key.replace("__", ".") if "__" in key else None)
        if path is None:
            raise TypeError(
                f"unknown keyword argument {key!r}. Accepted: "
                f"{', '.join(TIMM_KEYWORDS)} (as in timm.create_model), features_only, "
                f"out_indices, weights, weights_source and strict (build only), and any spec "
                f"setting by its `--set` path with `__` between levels: block__groups=32, head__dropout=0.2, "
                f"stages__depths=[3, 4, 6, 3] (or overrides=['block.groups=32'])")
        out.append(f"{path}={json.dumps(value)}")
    return out


def _spec(spec: "str | os.PathLike | Spec | ArchGraph", overrides: Sequence[str],
          kwargs: dict[str, Any]) -> "Spec | ArchGraph":
    """A loaded spec (with overrides applied), or the given Spec / ArchGraph as it is."""
    from .spec import Spec, load
    if isinstance(spec, (Spec, ArchGraph)):
        if overrides or kwargs:
            raise TypeError("overrides need a spec file or zoo name, not a loaded "
                            f"{type(spec).__name__}")
        return spec
    return load(spec, list(overrides) + _overrides(kwargs))


def resolve(spec: "str | os.PathLike | Spec | ArchGraph", overrides: Sequence[str] = (), *,
            strict: bool = False, **kwargs: Any) -> ArchGraph:
    """Load (a path or a zoo name: `resolve("resnet50")`) and resolve a spec into the IR, with
    `overrides` (`["block.groups=32"]`) and keywords as `build`'s. Never imports torch.
    `strict`: a setting that inheritance dropped (see docs/spec.md, "Inheritance") is an
    error."""
    from .resolver import resolve as _resolve
    loaded = _spec(spec, overrides, kwargs)
    if isinstance(loaded, ArchGraph):
        return loaded
    graph = _resolve(loaded)
    if strict and loaded.strict_problems():
        raise SpecError(loaded.strict_problems())
    return graph


def build(spec: "str | os.PathLike | Spec | ArchGraph", overrides: Sequence[str] = (), *,
          features_only: bool = False, out_indices: "int | Sequence[int] | None" = None,
          weights: "str | os.PathLike | None" = None, weights_source: str = "auto",
          strict: bool = True, mode: str = "train", **kwargs: Any) -> "nn.Module":
    """Build the torch module of a spec file or zoo name, as `timm.create_model` would:
    `build("resnet50", num_classes=10, in_chans=1, drop_path_rate=0.1, global_pool="max")`.
    Any other setting: `block__groups=32` (its `--set` path, `__` between levels) or
    `overrides=["block.groups=32"]`. `features_only=True` builds the backbone returning the
    feature maps at `out_indices` (indices into `feature_info`, as timm's: a ResNet's 0 is the
    stem at reduction 2; default all). The module's `spec` is the Spec it was built from
    (`archspec.to_yaml(model.spec)` writes it back). See docs/modules.md and docs/api.md.
    `weights`: a timm, torchvision or archspec checkpoint to load (`load_weights` with
    `weights_source` and `strict`); an incomplete load prints its report's table on stderr and
    the report is the module's `weights_report` (docs/weights.md). `mode="deploy"` returns the
    inference-only module (`.to_deploy()` of the built, loaded network; see docs/deploy.md)."""
    from .lower.torch import to_module as _to_module
    from .resolver import resolve as _resolve
    if mode not in ("train", "deploy"):
        raise ValueError(f"mode: expected 'train' or 'deploy', got {mode!r}")
    if mode == "deploy" and features_only:
        raise TypeError("mode='deploy' builds a classification network: leave out features_only")
    loaded = _spec(spec, overrides, kwargs)
    graph = loaded if isinstance(loaded, ArchGraph) else _resolve(loaded)
    if weights is None:
        model = _to_module(graph, features_only=features_only, out_indices=out_indices)
    else:
        model = _with_weights(graph, features_only, out_indices,
                              dict(checkpoint=weights, source=weights_source, strict=strict))
    from .spec import Spec
    model.spec = loaded if isinstance(loaded, Spec) else None
    return model.to_deploy() if mode == "deploy" else model


def _with_weights(graph: ArchGraph, features_only: bool, out_indices: Any,
                  load: dict[str, Any]) -> "nn.Module":
    """The full network with a checkpoint loaded (its names are the classifier's), then the
    backbone cut from it when `features_only`."""
    from .lower.torch import FeatureNetwork, to_module as _to_module
    info = graph.feature_info(out_indices) if features_only else None
    model = _to_module(graph, out_indices=out_indices)  # (out_indices alone: its TypeError)
    report = load_weights(model, **load)
    if not report.complete:
        import sys
        print(report.table(), file=sys.stderr)
    model.weights_report = report
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
              out_indices: "int | Sequence[int] | None" = None) -> "nn.Module":
    from .lower.torch import to_module as _to_module
    return _to_module(graph, features_only=features_only, out_indices=out_indices)


def to_yaml(spec: "str | os.PathLike | Spec | nn.Module") -> str:
    """A spec as YAML text, every setting explicit (inheritance and overrides applied): the
    `spec` of a module from `build`, a loaded Spec, or a file / zoo name. `load` reads it back
    to the same network."""
    import yaml
    from .spec import Spec, load
    if not isinstance(spec, Spec):
        spec = getattr(spec, "spec", None) if hasattr(spec, "spec") else load(spec)
    if spec is None:
        raise TypeError("this module was built from a bare IR, not a spec: build it with "
                        "archspec.build(spec) to keep its spec")
    data = spec.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


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


def list_models(pattern: "str | Sequence[str] | None" = None, *, roadmap: bool = False
                ) -> list[str]:
    """Zoo names matching fnmatch `pattern`s, as timm's `list_models`: `list_models("resnet*")`,
    `list_models(["resnet*", "convnext_*"])`; `roadmap=True` (or a pattern such as
    `"roadmap/*"`) includes the roadmap specs. Every name works in `build`, `resolve`, `diff`,
    `to_dot` and `base:`. Never imports torch."""
    from .zoo import list_models as _list_models
    return _list_models(pattern, roadmap=roadmap)


def summary(spec: "str | os.PathLike | Spec | ArchGraph | nn.Module", depth: int = 1,
            overrides: Sequence[str] = (), **kwargs: Any):
    """The table `archspec build` prints, for a spec (file, zoo name, Spec), an ArchGraph or a
    module from `build`: `str(summary("resnet50"))`. depth 1: stem, stages, head; 2: also each
    block (and the layers outside blocks); 3: also every layer. `.rows` and `.as_dict()` give
    the same as data; notebooks show it as HTML with the stage-level diagram. Overrides and
    keywords as `resolve`'s (the header then says "(+N overrides)"). Never imports torch for a
    spec or a graph."""
    from .summary import Summary
    if hasattr(spec, "spec") and not isinstance(spec, (str, os.PathLike)):  # a built module
        if spec.spec is None:
            raise TypeError("this module was built from a bare IR: pass that ArchGraph")
        spec = spec.spec
    applied = list(overrides) + _overrides(kwargs)
    return Summary(resolve(spec, overrides, **kwargs), depth, applied)


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
