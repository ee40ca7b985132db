"""Load a checkpoint into an archspec module: recognise its layout, map every tensor, report.

    report = load_weights(model, "resnet50_a1_0-14fe96d1.pth")             # strict, layout auto
    report = load_weights(model, "convnext_tiny.pth", source="torchvision", strict=False)
    print(report.table())

strict=True refuses unless every checkpoint tensor is used and every archspec tensor is filled
with an equal shape (a missing `num_batches_tracked` counter is no loss: BatchNorm keeps its own).
strict=False loads what agrees and says what it skipped and why; a classifier whose number of
classes differs is left as initialised, as timm does when fine-tuning.
"""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .files import WeightsError, read, spec_of, unwrap
from .layouts import LAYOUTS, SOURCES, module_map

SOURCE_NAMES = ("auto", "timm", "torchvision", "archspec")
MAX_LISTED = 20  # per kind, in a strict-load error
#: tensors whose absence is no loss: BatchNorm's step counter (older torchvision files lack it)
OPTIONAL = ("num_batches_tracked",)


@dataclass
class LoadReport:
    """What `load_weights` did, key by key."""

    file: str
    layout: str
    """The layout recognised: archspec, timm, timm_legacy or torchvision."""
    loaded: list[str] = field(default_factory=list)
    """archspec tensors filled from the checkpoint."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(checkpoint key, why it was not used)."""
    initialised: list[str] = field(default_factory=list)
    """archspec tensors the checkpoint did not fill: they keep the module's values (freshly
    initialised after `build`)."""
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.skipped and not self.initialised

    def table(self, limit: int = 8) -> str:
        """A short summary: counts, then the first skipped and initialised tensors by module."""
        lines = [f"weights: {self.file} ({self.layout} layout)",
                 f"  loaded       {len(self.loaded):>6} tensors",
                 f"  skipped      {len(self.skipped):>6} checkpoint tensors",
                 f"  initialised  {len(self.initialised):>6} tensors (not in the checkpoint)"]
        for key, why in self.skipped[:limit]:
            lines.append(f"    skipped {key}: {why}")
        lines += _more(len(self.skipped) - limit, "skipped")
        for text in _by_module(self.initialised)[:limit]:
            lines.append(f"    initialised {text}")
        lines += _more(len(_by_module(self.initialised)) - limit, "initialised modules")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _more(n: int, what: str) -> list[str]:
    return [f"    ... and {n} more {what}"] if n > 0 else []


def _by_module(keys: list[str]) -> list[str]:
    """['a.b.weight', 'a.b.bias'] -> ['a.b: weight, bias'], modules in first-seen order."""
    groups: dict[str, list[str]] = defaultdict(list)
    for key in keys:
        module, _, tensor = key.rpartition(".")
        groups[module].append(tensor)
    return [f"{m}: {', '.join(ts)}" if m else ", ".join(ts) for m, ts in groups.items()]


def load_weights(module: nn.Module, checkpoint: "str | os.PathLike | dict",
                 source: str = "auto", strict: bool = True) -> LoadReport:
    """Load a timm, torchvision or archspec checkpoint (a `.pt`/`.pth`/`.safetensors` path or
    a state dict) into an archspec module; returns the LoadReport. See docs/weights.md."""
    if source not in SOURCE_NAMES:
        raise ValueError(f"source: expected one of {', '.join(SOURCE_NAMES)}, got {source!r}")
    if isinstance(checkpoint, dict):
        file, (state, meta) = "<state dict>", unwrap(checkpoint)
    else:
        file = os.fspath(checkpoint)
        state, meta = read(file)
    return load_state(module, state, meta, file, source, strict)


def load_state(module: nn.Module, state: dict[str, torch.Tensor], meta: dict[str, Any],
               file: str, source: str = "auto", strict: bool = True) -> LoadReport:
    """`load_weights` on tensors already read from `file` (its metadata in `meta`)."""
    spec_data = spec_data_of(module, "load_weights")
    own = module.state_dict()
    plan = _plan(spec_data, own, state, meta, source, file, strict)
    out = _match(plan, own, state, file)
    if strict and not out.report.complete:
        raise WeightsError(file, _strict_message(out, plan), _strict_hint(out.report))
    _assign(module, own, state, plan, out.report)
    return out.report


def spec_data_of(module: nn.Module, caller: str) -> dict:
    """The spec an archspec module was built from (plain data); a TypeError for other modules."""
    spec_data = getattr(module, "spec_data", None)
    if not isinstance(spec_data, dict):
        raise TypeError(f"{caller} needs a module built by archspec (archspec.build)")
    return spec_data


def graph_of(spec_data: dict):
    """The IR of a spec given as plain data (what modules and checkpoints carry)."""
    from .. import resolve
    from ..spec import load as load_spec
    return resolve(load_spec(spec_data))


@dataclass
class _Plan:
    layout: str
    keys: dict[str, tuple[str, str | None]]  # archspec key -> (checkpoint key, reshape)
    classifier: tuple[str, ...]        # archspec keys of the classifier
    notes: list[str]


def _plan(spec_data: dict, own: dict, state: dict, meta: dict, source: str,
          file: str, strict: bool) -> _Plan:
    graph = graph_of(spec_data)
    classifier = graph.classifier
    fc = tuple(k for k in own if classifier and k.rpartition(".")[0] == classifier.id)
    notes = _spec_notes(spec_data, spec_of(meta, file), file)
    candidates = ["archspec", *LAYOUTS] if source == "auto" else \
        ["archspec"] if source == "archspec" else list(SOURCES[source])
    best = None
    for layout in candidates:
        keys = _keys(graph, own, layout)
        score = sum(k in state and state[k].numel() == own[mine].numel()
                    for mine, (k, _) in keys.items())
        if best is None or score > best[0]:
            best = (score, layout, keys)
    score, layout, keys = best
    if score == 0 or (strict and score < len(state) / 2):
        raise WeightsError(file, _other_network(graph.name, state, score, layout, candidates)
                           + "".join(f"\n  note: {n}" for n in notes),
                           "is it a checkpoint of another network? Build the spec it was "
                           "trained from, or name its layout with source=")
    return _Plan(layout, keys, fc, notes)


def _other_network(name: str, state: dict, score: int, layout: str, candidates) -> str:
    """Fewer than half of the checkpoint's tensors have a place in the module (strict)."""
    if score == 0:
        return (f"none of its {len(state)} tensors is a tensor of {name} in the "
                f"{' or '.join(candidates)} layout (its first keys: "
                f"{', '.join(list(state)[:4])})")
    return (f"a checkpoint of another network: only {score} of its {len(state)} tensors have "
            f"a place in {name} (best layout: {layout})")


def _keys(graph, own: dict, layout: str) -> dict[str, tuple[str, str | None]]:
    """archspec key -> (checkpoint key, reshape) in one layout; keys without a rule stay out."""
    if layout == "archspec":
        return {k: (k, None) for k in own}
    targets = module_map(graph, layout)
    out = {}
    for key in own:
        module, _, tensor = key.rpartition(".")
        target = targets.get(module)
        if target is not None:
            out[key] = (target.key(tensor), target.reshape)
    return out


@dataclass
class _Outcome:
    report: LoadReport
    unmatched: list[str] = field(default_factory=list)  # checkpoint keys nothing maps to
    missing: list[str] = field(default_factory=list)    # archspec keys the checkpoint lacks
    shapes: list[str] = field(default_factory=list)     # "key: checkpoint X, here Y"


def _match(plan: _Plan, own: dict, state: dict, file: str) -> _Outcome:
    out = _Outcome(LoadReport(file, plan.layout, notes=list(plan.notes)))
    report, used = out.report, set()
    for key, mine in own.items():
        theirs, reshape = plan.keys.get(key, (None, None))
        if theirs is None or theirs not in state:
            if not key.endswith(OPTIONAL):
                report.initialised.append(key)
                out.missing.append(key)
            continue
        used.add(theirs)
        got = state[theirs]
        if got.shape == mine.shape or (reshape and got.numel() == mine.numel()):
            report.loaded.append(key)
            continue
        shapes = f"{tuple(got.shape)} in the checkpoint, {tuple(mine.shape)} here"
        why = (f"classifier: {shapes} (another number of classes)" if key in plan.classifier
               else f"shape {shapes}") + f"; {key} left as initialised"
        report.skipped.append((theirs, why))
        report.initialised.append(key)
        out.shapes.append(f"{key} <- {theirs}: {shapes}")
    out.unmatched = [k for k in state if k not in used]
    report.skipped += [(k, "no tensor of this network maps to it") for k in out.unmatched]
    return out


def _assign(module: nn.Module, own: dict, state: dict, plan: _Plan, report: LoadReport) -> None:
    new = {k: state[plan.keys[k][0]].reshape(own[k].shape) for k in report.loaded}
    with torch.no_grad():
        module.load_state_dict(new, strict=False)


def _strict_message(out: _Outcome, plan: _Plan) -> str:
    lines = [f"does not load strictly ({plan.layout} layout; {len(out.report.loaded)} tensors "
             f"agree)"]
    lines += _listing("checkpoint tensors that no archspec tensor maps to", out.unmatched)
    lines += _listing("archspec tensors the checkpoint lacks", out.missing)
    if out.shapes:
        lines.append(f"  shapes that disagree ({len(out.shapes)}):")
        lines += [f"    {text}" for text in out.shapes[:MAX_LISTED]]
        lines += _more(len(out.shapes) - MAX_LISTED, "")
    lines += [f"  note: {n}" for n in out.report.notes]
    return "\n".join(lines)


def _listing(title: str, keys: list[str]) -> list[str]:
    if not keys:
        return []
    shown = _by_module(keys[:MAX_LISTED])
    return ([f"  {title} ({len(keys)}), by module:"] + [f"    {t}" for t in shown]
            + _more(len(keys) - MAX_LISTED, "tensors"))


def _strict_hint(report: LoadReport) -> str:
    return (f"strict=False (CLI: --no-strict) loads the {len(report.loaded)} tensors that agree "
            "and reports the rest; a classifier with another number of classes is then left "
            "as initialised")


def _spec_notes(mine: dict, theirs: Any, file: str) -> list[str]:
    """When an archspec checkpoint carries a spec other than the module's: what differs."""
    if not isinstance(theirs, dict) or theirs == mine:
        return []
    from ..diffing import diff_resolved
    from ..resolver import resolve
    from ..spec import load as load_spec
    try:
        a, b = load_spec(theirs), load_spec(mine)
    except Exception:  # a spec of another archspec version: nothing to compare it with
        return ["the checkpoint's spec is not one this archspec version reads"]
    d = diff_resolved(a, resolve(a), b, resolve(b))
    said = [s.name for s in d.steps] + [c.text() for c in d.settings]
    if not said and not d.architectural:
        return []
    return [f"the checkpoint was written for spec {a.name!r}, this module is {b.name!r}: "
            + "; ".join(said[:8]) + (" ..." if len(said) > 8 else "")]
