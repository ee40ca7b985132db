"""Apply the ConvNeXt modernization roadmap (Liu et al. 2022, Section 2) to a ResNet-family spec.

Each step of the paper, in its order, is a function from the current spec to the few settings it
changes; `modernize` chains them, each spec inheriting from the previous one (`base:`), so the
files read as the roadmap itself and `diff --chain` names every step. Step names are the keys
of `diff`'s catalogue where one exists. No torch import.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable

import yaml

from .errors import Problem, SpecError
from .ir import ArchGraph
from .loader import SourceMap, load_file
from .merge import merge
from .spec import Spec, load, typed_setting

#: marks files this command wrote, so `--overwrite` replaces only those
HEADER = "# written by `archspec modernize`"


@dataclass
class Options:
    """Settings of the steps; None means "derived from the spec" as each field says."""

    depths: list[int] | None = None
    """stage_ratio: the new depths. Default: Swin's 1:1:3:1 x the first stage's depth
    (ResNet-50 (3,4,6,3) -> (3,3,9,3))."""
    patch_size: int = 4
    """patchify_stem: kernel and stride of the patchify conv (its width stays the stem's)."""
    width_factor: float = 1.5
    """wider: every width x this (the paper: 64 -> 96), unless stem_width/widths are given."""
    stem_width: int | None = None
    """wider: the new stem width."""
    widths: list[int] | None = None
    """wider: the new stage widths."""
    block_widths: list[int] | None = None
    """inverted_bottleneck: the stage widths d. Default: each stage's spatial (3x3) width, so
    ResNet-50's 96..768 after widening."""
    expand_ratio: float = 4
    """inverted_bottleneck: hidden width = expand_ratio x d_out."""
    kernel_sizes: list[int] = field(default_factory=lambda: [5, 7])
    """kernel: one spec per size, in order (the paper: 5, then 7; 9 and 11 as variants)."""
    activation: str = "gelu"
    """gelu: the activation that replaces the network's."""
    norm: str = "layer_norm"
    """layer_norm: the norm that replaces batch norm (eps 1e-6 for layer norm)."""
    downsample_kernel: int = 2
    """separate_downsampling: kernel (= stride) of the downsampling conv."""
    layer_scale_init: float | None = 1e-6
    """separate_downsampling: ConvNeXt's layer scale; None for none."""


@dataclass
class State:
    """The chain so far: the merged data of the last spec, that spec and its IR."""

    data: dict
    spec: Spec
    graph: ArchGraph

    @property
    def block(self) -> dict:
        return self.data["block"]

    @property
    def inverted(self) -> bool:
        return self.block.get("type") == "inverted_bottleneck"


@dataclass
class ChainStep:
    """One written spec: the step's key, its label (file and name part), the settings it wrote
    (what the file holds besides name, description and base), and the resolved result."""

    key: str
    label: str
    title: str
    settings: dict
    spec: Spec
    graph: ArchGraph
    file: str | None = None


@dataclass
class Skipped:
    key: str
    reason: str


# ---- the steps -----------------------------------------------------------------------------

def _stage_ratio(s: State, o: Options) -> list[tuple[str, dict]] | str:
    n = len(s.graph.stages)
    if o.depths is None and n != 4:
        return f"the 1:1:3:1 ratio is for 4 stages, the spec has {n}: give --depths"
    depths = _per_stage(s, "depths", o.depths) or [
        r * s.graph.stages[0].depth for r in (1, 1, 3, 1)]
    out: dict[str, Any] = {"depths": list(depths)}
    for key in ("ratio", "unit"):
        if s.data["stages"].get(key) is not None:
            out[key] = None
    return [("stage_ratio", {"stages": out})]


def _per_stage(s: State, option: str, values: list[int] | None) -> list[int] | None:
    """An option with one entry per stage; a wrong length is the user's mistake."""
    n = len(s.graph.stages)
    if values is not None and len(values) != n:
        flag = "--" + option.replace("_", "-")
        raise SpecError([Problem(None, flag, f"expected {n} entries (one per stage of "
                                 f"{s.spec.name}), got {len(values)}",
                                 f"give {n} comma-separated integers")])
    return list(values) if values is not None else None


def _patchify_stem(s: State, o: Options) -> list[tuple[str, dict]] | str:
    width = s.graph.groups["stem"].out_shape[0]
    return [("patchify_stem", {"stem": {"type": "patchify", "out_channels": width,
                                        "patch_size": o.patch_size, "norm": "none"}})]


def _depthwise(s: State, o: Options) -> list[tuple[str, dict]] | str:
    block = s.spec.block
    if block.type != "bottleneck":
        return (f"a {block.type} block has no grouped 3x3 to make depthwise; the inverted "
                "bottleneck brings the depthwise conv")
    out: dict[str, Any] = {"groups": "depthwise"}
    widths = s.graph.stages[-1].width
    mid, _ = block.mid_channels(widths)
    if mid != int(widths * block.bottleneck_ratio):  # ResNeXt / Wide: keep the 3x3 width
        out["bottleneck_ratio"] = mid / widths
    return [("depthwise", {"block": out})]


def _wider(s: State, o: Options) -> list[tuple[str, dict]] | str:
    scale = lambda w: int(round(w * o.width_factor))  # noqa: E731
    widths = _per_stage(s, "widths", o.widths) or [scale(st.width)
                                                   for st in s.graph.stages]
    stem: dict[str, Any] = {}
    if s.data["stem"].get("type") == "deep":
        stem["widths"] = [scale(w) for w in s.spec.stem.widths]
        if o.stem_width:
            stem["widths"][-1] = o.stem_width
    else:
        stem["out_channels"] = o.stem_width or scale(s.graph.groups["stem"].out_shape[0])
    return [("wider", {"stem": stem, "stages": {"widths": list(widths)}})]


def _spatial_widths(s: State) -> list[int]:
    blocks, _ = s.spec.stage_blocks(len(s.graph.stages))
    out = []
    for stage, block in zip(s.graph.stages, blocks):
        mid = getattr(block, "mid_channels", None)
        out.append(mid(stage.width)[0] if mid else stage.width)
    return out


def _inverted_bottleneck(s: State, o: Options) -> list[tuple[str, dict]] | str:
    old = s.spec.block
    block: dict[str, Any] = {
        "type": "inverted_bottleneck", "expand_ratio": o.expand_ratio, "expand_from": "output",
        "kernel_size": 3, "depthwise_position": "middle", "norms": "after_every_conv",
        "activations": "after_expand_and_depthwise", "activation_after_add": True,
        "shortcut": old.shortcut, "conv_bias": "never"}
    for key in ("norm", "activation", "se", "attention"):  # what the block carried over its family
        if s.block.get(key) is not None:
            block[key] = copy.deepcopy(s.block[key])
    if s.block.get("groups", "depthwise") != "depthwise":  # a type change carries `groups` over
        block["groups"] = "depthwise"  # (archspec.merge); the inverted bottleneck is depthwise
    widths = _per_stage(s, "block_widths", o.block_widths) or _spatial_widths(s)
    return [("inverted_bottleneck", {"stages": {"widths": list(widths)}, "block": block})]


def _needs_inverted(step: Callable) -> Callable:
    def wrapped(s: State, o: Options) -> list[tuple[str, dict]] | str:
        if not s.inverted:
            return "needs the inverted bottleneck block (that step was skipped)"
        return step(s, o)
    wrapped.__name__ = step.__name__
    return wrapped


@_needs_inverted
def _move_up_depthwise(s: State, o: Options) -> list[tuple[str, dict]] | str:
    return [("move_up_depthwise", {"block": {"depthwise_position": "first"}})]


@_needs_inverted
def _kernel(s: State, o: Options) -> list[tuple[str, dict]] | str:
    return [(f"kernel_{k}", {"block": {"kernel_size": k}}) for k in o.kernel_sizes]


def _gelu(s: State, o: Options) -> list[tuple[str, dict]] | str:
    out: dict[str, Any] = {"activation": o.activation}
    for part in ("stem", "block"):  # explicit per-part activations follow the network's
        if s.data[part].get("activation") not in (None, "none"):
            out[part] = {"activation": o.activation}
    return [(o.activation, out)]


@_needs_inverted
def _fewer_activations(s: State, o: Options) -> list[tuple[str, dict]] | str:
    return [("fewer_activations", {"block": {"activations": "after_expand",
                                             "activation_after_add": False}})]


@_needs_inverted
def _fewer_norms(s: State, o: Options) -> list[tuple[str, dict]] | str:
    return [("fewer_norms", {"block": {"norms": "after_depthwise"}})]


def _layer_norm(s: State, o: Options) -> list[tuple[str, dict]] | str:
    out: dict[str, Any] = {"norm": o.norm}
    for part in ("stem", "block"):
        norm = s.data[part].get("norm")
        if norm not in (None, "none") and not (isinstance(norm, dict)
                                               and norm.get("type") == "none"):
            out[part] = {"norm": o.norm}
    if s.inverted:  # convs no longer followed by batch norm gain a bias (ConvNeXt)
        out.setdefault("block", {})["conv_bias"] = "unless_batch_norm"
    return [(o.norm, out)]


def _separate_downsampling(s: State, o: Options) -> list[tuple[str, dict]] | str:
    norm = s.spec.norm.type
    out: dict[str, Any] = {"stages": {"downsample": {"type": "layer",
                                                     "kernel_size": o.downsample_kernel}}}
    if norm == "layer_norm":  # ConvNeXt's norms after the stem and the pooling
        out["stem"] = {"norm": norm}
        out["head"] = {"norm": norm}
        out["init"] = {"type": "trunc_normal", "std": 0.02}
    if s.inverted:
        block: dict[str, Any] = {}
        if o.layer_scale_init is not None:
            block["layer_scale_init"] = o.layer_scale_init
        if norm == "layer_norm" and s.block.get("depthwise_position") == "first":
            block["pointwise"] = "linear"  # ConvNeXt's channels-last Linear layers
        if block:
            out["block"] = block
    return [("separate_downsampling", out)]


#: (key, title, step), in the paper's order (Section 2, Table 10)
STEPS: tuple[tuple[str, str, Callable], ...] = (
    ("stage_ratio", "stage compute ratio", _stage_ratio),
    ("patchify_stem", "patchify stem", _patchify_stem),
    ("depthwise", "depthwise convolution (ResNeXt-ify)", _depthwise),
    ("wider", "wider network", _wider),
    ("inverted_bottleneck", "inverted bottleneck", _inverted_bottleneck),
    ("move_up_depthwise", "move up the depthwise conv", _move_up_depthwise),
    ("kernel", "larger kernel", _kernel),
    ("gelu", "ReLU -> GELU", _gelu),
    ("fewer_activations", "fewer activations", _fewer_activations),
    ("fewer_norms", "fewer norms", _fewer_norms),
    ("layer_norm", "BN -> LN", _layer_norm),
    ("separate_downsampling", "separate downsampling layers", _separate_downsampling),
)
STEP_KEYS = tuple(key for key, _, _ in STEPS)


# ---- the chain -------------------------------------------------------------------------------

class Chain(list):
    """The specs `modernize` made (ChainStep, the start first) and the steps it skipped."""

    def __init__(self, items=(), skipped=()):
        super().__init__(items)
        self.skipped: list[Skipped] = list(skipped)

    @property
    def specs(self) -> list[Spec]:
        return [step.spec for step in self]


def options_from(**kwargs: Any) -> Options:
    known = {f.name for f in fields(Options)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(f"unknown modernize option(s) {unknown}; known: {sorted(known)}")
    return Options(**{k: v for k, v in kwargs.items() if v is not None})


def select_steps(steps: "list[str] | None" = None, skip: "list[str] | tuple" = ()) -> list[str]:
    """The step keys to apply, in the paper's order; unknown names are a usage error."""
    wanted = list(steps) if steps else list(STEP_KEYS)
    bad = [k for k in [*wanted, *skip] if k not in STEP_KEYS]
    if bad:
        import difflib
        near = difflib.get_close_matches(bad[0], STEP_KEYS, n=1)
        raise SpecError([Problem(None, "--steps", f"unknown step '{bad[0]}'",
                                 (f"did you mean '{near[0]}'? " if near else "")
                                 + "known: " + ", ".join(STEP_KEYS))])
    return [k for k in STEP_KEYS if k in wanted and k not in skip]


def plan_chain(source: "str | os.PathLike", steps: "list[str] | None" = None,
               skip: "list[str] | tuple" = (), options: Options | None = None) -> Chain:
    """The chain in memory: resolve the start, then apply each selected step to the last spec."""
    from .resolver import resolve
    options = options or Options()
    keys = select_steps(steps, skip)
    data, _ = load_file(str(source), typed_setting)
    spec = load(source)
    state = State(data, spec, resolve(spec))
    chain = Chain([ChainStep("start", spec.name, "start", {}, spec, state.graph)])
    for key, title, step in STEPS:
        if key not in keys:
            continue
        result = step(state, options)
        if isinstance(result, str):
            chain.skipped.append(Skipped(key, result))
            continue
        for label, settings in result:
            state = _apply(state, settings, f"{spec.name}_{len(chain):02d}_{label}",
                           f"{spec.name} modernized, step {len(chain)}: {title} "
                           f"(Liu et al. 2022 roadmap)", key)
            chain.append(ChainStep(key, label, title, settings, state.spec, state.graph))
    return chain


def _apply(state: State, settings: dict, name: str, description: str, key: str) -> State:
    from .resolver import resolve
    # the same rules as loading the written chain (archspec.merge), so what is planned here is
    # what the inheriting files resolve to
    data = merge(state.data, copy.deepcopy(settings), SourceMap(), SourceMap(), typed_setting)
    data.update(name=name, description=description)
    try:
        spec = load(data)
        graph = resolve(spec)
    except SpecError as exc:
        raise SpecError([Problem(p.location, p.path, f"{p.message} (after step '{key}')",
                                 f"{p.hint}; or change that step's options, or --skip {key}")
                         for p in exc.problems]) from None
    return State(data, spec, graph)


# ---- writing ---------------------------------------------------------------------------------

def _file_name(index: int, step: ChainStep) -> str:
    return f"{index:02d}_{step.label}.yaml"


class _Dumper(yaml.SafeDumper):
    """Mappings in block style, lists in flow style (`depths: [3, 3, 9, 3]`)."""


_Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v,
                                                                flow_style=True))


def _yaml_text(step: ChainStep, index: int, base: str) -> str:
    head = [HEADER, f"# step {index}: {step.title}" if index else
            f"# the start: {step.spec.name}, unchanged"]
    body = {"name": step.spec.name, "description": step.spec.description, "base": base,
            **step.settings}
    return "\n".join(head) + "\n" + yaml.dump(body, Dumper=_Dumper, sort_keys=False, width=100)


def check_writable(out_dir: str, names: list[str], overwrite: bool, header: str = HEADER) -> None:
    """Refuse to replace a file unless --overwrite; even then, remove only stale `.yaml` files
    that start with `header` (written by this command)."""
    for name in names:
        path = os.path.join(out_dir, name)
        if os.path.exists(path) and not overwrite:
            raise SpecError([Problem(None, "--output", f"'{path}' exists; not overwriting it",
                                     "pass --overwrite (overwrite=True), or another folder")])
    if not overwrite or not os.path.isdir(out_dir):
        return
    for name in os.listdir(out_dir):  # a previous run's chain, which would break `diff --chain`
        path = os.path.join(out_dir, name)
        if name.endswith(".yaml") and name not in names and _ours(path, header):
            os.remove(path)


def _ours(path: str, header: str) -> bool:
    with open(path, encoding="utf-8") as f:
        return f.readline().startswith(header)


def write_chain(chain: Chain, source: "str | os.PathLike", out_dir: "str | os.PathLike",
                overwrite: bool = False) -> list[str]:
    """Write one YAML per step (each `base:` the previous) and README.md; return the paths."""
    out_dir = str(out_dir)
    names = [_file_name(i, step) for i, step in enumerate(chain)]
    check_writable(out_dir, names + ["README.md"], overwrite)
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.relpath(os.path.abspath(source), os.path.abspath(out_dir))
    paths = []
    for i, (step, name) in enumerate(zip(chain, names)):
        path = os.path.join(out_dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(_yaml_text(step, i, base))
        step.file = path
        paths.append(path)
        base = name
    return paths


def readme_text(chain: Chain, paths: list[str], command: str, extra: str = "") -> str:
    """The table (step, params, MACs, deltas, settings written) and `diff --chain`'s summary,
    the latter computed from the written files."""
    from .commands.diff import chain_rows, format_chain
    rows = chain_rows(paths)
    lines = [f"# {chain[0].spec.name}, modernized", "",
             f"Written by `{command}`: one spec per step of the ConvNeXt roadmap (Liu et al. "
             "2022, Section 2), each inheriting from the previous one (`base:`). Counts are "
             "archspec's analytic ones (MACs: conv + linear multiply-accumulates at the spec's "
             "input size).", "",
             "| # | file | step | params | Δparams | GMACs | ΔGMACs | settings written |",
             "|---|---|---|---|---|---|---|---|"]
    for i, (step, row) in enumerate(zip(chain, rows)):
        lines.append(_table_row(i, step, row))
    if chain.skipped:
        lines += ["", "Skipped steps:", ""]
        lines += [f"- `{s.key}`: {s.reason}" for s in chain.skipped]
    lines += ["", "## `archspec diff --chain` over these files", "",
              "The steps column is what `diff` recognises between consecutive specs, not a label "
              "written in the files.", "", format_chain(rows, "markdown")]
    unrecognised = [u for r in rows for u in r.get("unrecognised", [])]
    lines += ["", f"Unrecognised changes: {len(unrecognised)}."]
    lines += [f"- {u}" for u in unrecognised]
    return "\n".join(lines) + "\n" + extra


def _table_row(i: int, step: ChainStep, row: dict) -> str:
    from .commands.diff import _signed
    written = "; ".join(f"`{k}`" for k in _dotted(step.settings)) or "-"
    pd = "" if row["params_delta"] is None else _signed(row["params_delta"])
    md = "" if row["macs_delta"] is None else _signed(row["macs_delta"],
                                                      lambda v: f"{v / 1e9:.2f}")
    name = os.path.basename(step.file or "")
    return (f"| {i} | {name} | {step.title} | {row['params']:,} | {pd} | "
            f"{row['macs'] / 1e9:.2f} | {md} | {written} |")


def _dotted(settings: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in settings.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and key not in ("downsample", "init", "se", "attention", "norm"):
            out += _dotted(value, path)
        else:
            out.append(f"{path}: {_flow(value)}")
    return out


def _flow(value: Any) -> str:
    import json
    return json.dumps(value).replace('"', "") if not isinstance(value, str) else value


def modernize(spec: "str | os.PathLike", out_dir: "str | os.PathLike | None" = None, *,
              steps: "list[str] | None" = None, skip: "list[str] | tuple" = (),
              overwrite: bool = False, **options: Any) -> Chain:
    """The roadmap applied to `spec` (a ResNet-family spec file): a `Chain` of ChainStep, the
    start first (`.specs` gives the Spec objects). With `out_dir`, also writes the chain and
    README.md (never replacing a file unless `overwrite`). Options: see `Options`."""
    chain = plan_chain(spec, steps, skip, options_from(**options))
    if out_dir is not None:
        paths = write_chain(chain, spec, out_dir, overwrite)
        with open(os.path.join(str(out_dir), "README.md"), "w", encoding="utf-8") as f:
            f.write(readme_text(chain, paths, f"archspec.modernize({str(spec)!r}, ...)"))
    return chain
