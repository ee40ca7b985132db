"""Spec -> ArchGraph: the only place where widths, strides, shapes and costs are worked out.

The stage loop is that of torchvision's `ResNet._make_layer`: a stage's first block takes the
stage's stride (and a shortcut projection when the shape changes), the rest keep the shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .blocks import BlockContext
from .blocks.regnet import RegNetStages, generate
from .blocks.stems import StemContext
from .errors import Path, Problem, SpecError, format_path
from .ir import ArchGraph
from .loader import LIMITS
from .primitives import Builder, Tensor
from .provenance import as_attrs, resolved_settings
from .scaling import Scaling
from .spec import Spec


def resolve(spec: Spec) -> ArchGraph:
    """Resolve a validated spec into the IR; raise SpecError for settings that cannot work."""
    scaling = Scaling.of(spec)
    layout = _stage_layout(spec)
    depths = scaling.depths(layout.depths)
    widths = [scaling.channels(w) for w in layout.widths]
    strides = layout.strides
    b = Builder()
    b.notes += spec.sources.outside  # how the spec was read (a base outside its folder)
    problems: list[Problem] = []
    h, w = spec.input.hw
    x = b.input((spec.input.channels, h, w))
    if sum(depths) > LIMITS["blocks"].value:
        raise SpecError([LIMITS["blocks"].problem(
            spec.location(("stages", "depths" if spec.stages.depths else "unit")),
            "stages", f"{sum(depths):,} blocks")])
    with b.group("", "network", x):
        b.source = _where(spec, ("stem",))
        stem = scaling.model(spec.stem, "stem")
        with b.group("stem", "sequential", x, family=f"{stem.type} stem"):
            x = stem.plan(StemContext(b, x, stem.norm or spec.norm,
                                      stem.activation or spec.activation))
        _check_size(spec, b, 0, "the stem", ("input", "image_size"))
        _check_spatial(spec, x, ("stem",), problems)
        with b.group("stages", "stages", x):
            x = _plan_stages(spec, b, x, list(zip(depths, widths, strides)), layout, problems)
        b.source = _where(spec, ("head",))
        first = len(b.nodes)
        x = _plan_head(spec, b, x, scaling)
        _check_size(spec, b, first, "the head", ("head",))
    if problems:
        raise SpecError(problems)
    if not scaling.identity:
        b.source = _where(spec, ("width_multiplier",) if scaling.width != 1
                          else ("depth_multiplier",))
        changed = scaling.changes(spec)
        b.note(f"scaled: {scaling.rule()}: stage widths {_text(layout.widths)} -> "
               f"{_text(widths)}, depths -> {_text(depths)}" + (f", {changed}" if changed else ""))
    if layout.generated is not None:
        b.source = _where(spec, ("stages", "regnet", "w0"))
        b.note(layout.generated.text(spec.stages.regnet))
    b.notes += [note.text() for note in spec.notes]
    blocks, block_paths = layout.blocks, layout.block_paths
    settings = resolved_settings(spec, depths, widths, strides, blocks, block_paths)
    graph = b.finish(spec.name, spec.description, (spec.input.channels, h, w),
                     attrs={"source": spec.path, "init": spec.init.model_dump(),
                            "scaling": scaling.as_dict(), "settings": as_attrs(settings),
                            # the validated spec, so a module can write it into checkpoints
                            "spec": spec.model_dump(mode="json")})
    graph.lint()
    return graph


def _text(values: list[int]) -> str:
    return "(" + ",".join(map(str, values)) + ")"


def _plan_stages(spec: Spec, b: Builder, x: Tensor, layout: list[tuple[int, int, int]],
                 stages: "_Layout", problems: list[Problem]) -> Tensor:
    """Each stage: [separate downsampling layer], then its blocks (torchvision's _make_layer)."""
    blocks, block_paths = stages.blocks, stages.block_paths
    total_blocks = sum(depth for depth, _, _ in layout)
    downsample = spec.stages.downsample
    done = 0
    for i, ((depth, width, stride), block, path) in enumerate(zip(layout, blocks, block_paths)):
        b.source = _where(spec, path)
        with b.group(str(i), "stage", x, family=block.family, block_type=block.type,
                     stage=i, depth=depth, width=width, stride=stride,
                     **stages.stage_attrs(i)):
            block_stride = stride
            if downsample.type == "layer":  # ConvNeXt: the blocks keep the shape
                block_stride = 1
                if stride > 1 or x.channels != width:
                    b.source = _where(spec, ("stages", "downsample"))
                    x = downsample.plan(b, x, width, stride, downsample.norm or spec.norm)
                    b.source = _where(spec, path)
            with b.group("blocks", "sequential", x):
                for j in range(depth):
                    rate = spec.drop_path_rate * done / max(
                        total_blocks - (spec.drop_path_schedule == "linear"), 1)
                    first = len(b.nodes)
                    x = _plan_block(spec, b, x, block, path, problems, width=width,
                                    stride=block_stride if j == 0 else 1, rate=rate, stage=i,
                                    index=j)
                    _check_size(spec, b, first, f"stages[{i}].blocks[{j}]",
                                ("stages", "widths"))
                    done += 1
        _check_spatial(spec, x, ("stages", "strides"), problems, stage=i)
    return x


def _plan_block(spec: Spec, b: Builder, x: Tensor, block, path: Path,
                problems: list[Problem], *, width: int, stride: int, rate: float, stage: int,
                index: int) -> Tensor:
    """One block: its checks, then its plan inside a group that says it is a block."""
    ctx = BlockContext(
        builder=b, x=x, out_channels=width, stride=stride, norm=block.norm or spec.norm,
        activation=block.activation or spec.activation,
        zero_init_residual=spec.zero_init_residual, drop_path_rate=rate, path=path,
        stage=stage, index=index)
    found = block.check(ctx)
    if found:
        problems += [_locate(spec, p, path) for p in found]
        raise SpecError(problems)
    with b.group(str(index), "residual", x, block_type=block.type, is_block=True,
                 family=block.family, stage=stage, index=index, stride=stride):
        return block.plan(ctx)


def _plan_head(spec: Spec, b: Builder, x: Tensor, scaling: Scaling) -> Tensor:
    head = spec.head
    # `classifier` names the final linear layer's slot (present when num_classes > 0), so
    # `forward_head(pre_logits=True)` and `reset_classifier` know which child it is.
    with b.group("head", "sequential", x, family="head", classifier="fc"):
        if head.conv is not None:  # MobileNetV2's pre-logits 1x1 conv to 1280
            conv, norm = scaling.model(head.conv, "head"), head.conv.norm or spec.norm
            _check_head_kernel(spec, x, conv.kernel_size)
            x = b.conv("conv", x, conv.out_channels, conv.kernel_size, bias=norm.type == "none")
            if norm.type != "none":
                x = b.norm("conv_norm", x, norm.type, norm.resolved_eps, momentum=norm.momentum)
            if (conv.activation or spec.activation) != "none":
                x = b.act("conv_act", x, conv.activation or spec.activation)
        x = b.global_pool("pool", x, head.pool)
        if head.norm.type != "none":
            x = b.norm("norm", x, head.norm.type, head.norm.resolved_eps, momentum=head.norm.momentum)
        if head.dropout > 0:
            x = b.dropout("dropout", x, head.dropout)
        if head.num_classes:
            x = b.linear("fc", x, head.num_classes)
    return x


@dataclass(frozen=True)
class _Layout:
    """The stages as written or generated, before the multipliers: depths, widths, strides, the
    block of each stage (and its YAML path), and what the RegNet generator resolved, if used."""

    depths: list[int]
    widths: list[int]
    strides: list[int]
    blocks: list[Any]
    block_paths: list[Path]
    generated: RegNetStages | None = None

    def stage_attrs(self, i: int) -> dict[str, Any]:
        """What a stage group records beyond its shape: a generated stage's group width."""
        if self.generated is None:
            return {}
        group_width = self.generated.group_widths[i]
        return {"generated": "RegNet"} | ({} if group_width is None
                                          else {"group_width": group_width})


def _stage_layout(spec: Spec) -> _Layout:
    """Depths, widths and strides of the stages, checked against each other; or generated."""
    st = spec.stages
    problems: list[Problem] = []
    loc = spec.location

    def problem(path: Path, message: str, hint: str) -> None:
        problems.append(Problem(loc(path), format_path(path), message, hint))

    if st.regnet is not None:
        return _generated_layout(spec)
    if st.widths is None:
        problem(("stages",), "required setting `widths` is missing",
                "give `widths: [256, 512, 1024, 2048]`, or generate them with `regnet: {w0: 48, "
                "wa: 20.71, wm: 2.65, depth: 27}`")
        raise SpecError(problems)
    n = len(st.widths)
    if st.depths is not None and (st.ratio is not None or st.unit is not None):
        problem(("stages", "ratio" if st.ratio is not None else "unit"),
                "expected either `depths` or `ratio` with `unit`, got both",
                "remove `depths`, or remove `ratio` and `unit`")
    depths = st.depths
    if depths is None:
        if st.ratio is None or st.unit is None:
            missing = "unit" if st.ratio is not None else "ratio" if st.unit is not None \
                else "depths"
            replaced = [n.message for n in spec.notes if n.kind == "replaced"]
            problem(("stages",), f"required setting `{missing}` is missing",
                    "give `depths: [3, 4, 6, 3]`, or `ratio: [1, 1, 3, 1]` with `unit: 3`"
                    + "".join(f" ({r})" for r in replaced))
            depths = [1] * n
        else:
            depths = [r * st.unit for r in st.ratio]
    what = "depths" if st.depths is not None else "ratio"
    if len(depths) != n:
        problem(("stages", what), f"expected {n} entries (one per width), got {len(depths)}",
                f"`widths` has {n} entries; give both lists the same length")
    strides = st.strides if st.strides is not None else [1] + [2] * (n - 1)
    if len(strides) != n:
        problem(("stages", "strides"), f"expected {n} entries (one per width), got {len(strides)}",
                f"`widths` has {n} entries; give both lists the same length")
    if problems:
        raise SpecError(problems)
    blocks, paths = spec.stage_blocks(n)
    return _Layout(list(depths), list(st.widths), list(strides), blocks, paths)


def _generated_layout(spec: Spec) -> _Layout:
    """RegNet: the generator's widths and depths, each stage's group width made compatible
    (archspec.blocks.regnet). Settings it replaces, or multipliers, are errors."""
    st, gen = spec.stages, spec.stages.regnet
    problems: list[Problem] = []
    for key in ("widths", "depths", "ratio", "unit"):
        if getattr(st, key) is not None:
            problems.append(Problem(spec.location(("stages", key)), f"stages.{key}",
                                    f"expected either `regnet` or `{key}`, got both",
                                    f"remove `{key}` (the RegNet generator sets the widths and "
                                    f"depths; `{key}: null` drops an inherited one), or remove "
                                    f"`regnet`"))
    for key in ("width_multiplier", "depth_multiplier"):
        if getattr(spec, key) != 1:
            problems.append(Problem(spec.location((key,)), key,
                                    f"expected 1 with a RegNet generator, got "
                                    f"{getattr(spec, key):g}",
                                    "scale the generator instead: w0 and wa for width, depth "
                                    "for depth"))
    if st.strides is not None and len(st.strides) != gen.stages:
        problems.append(Problem(spec.location(("stages", "strides")), "stages.strides",
                                f"expected {gen.stages} entries (one per generated stage), got "
                                f"{len(st.strides)}", f"`regnet` asks for {gen.stages} stages"))
    if problems:
        raise SpecError(problems)
    blocks, paths = spec.stage_blocks(gen.stages)
    generated = generate(gen, blocks, paths, lambda p: spec.sources.values.get(tuple(p)))
    blocks = [b.model_copy(update={"group_width": g}) if g is not None and g != b.group_width
              else b for b, g in zip(blocks, generated.group_widths)]
    strides = list(st.strides) if st.strides is not None else [2] * gen.stages
    return _Layout(generated.depths, generated.widths, strides, blocks, paths, generated)


def _check_spatial(spec: Spec, x: Tensor, path: Path, problems: list[Problem],
                   stage: int | None = None) -> None:
    if len(x.shape) == 3 and min(x.shape[1:]) < 1:
        where = f"stage {stage}" if stage is not None else "the stem"
        problems.append(Problem(spec.location(("input", "image_size")), "input.image_size",
                                f"expected an image that keeps at least 1x1 pixels after {where}, "
                                f"got {spec.input.hw[0]}x{spec.input.hw[1]}",
                                "use a larger image_size or fewer stride-2 stages"))
        raise SpecError(problems)


def _check_head_kernel(spec: Spec, x: Tensor, kernel: int) -> None:
    """The head conv (padding (k - 1) // 2) must leave at least 1x1 of the last stage's map:
    an even kernel larger than a 1x1 map leaves nothing (torch refuses to run it)."""
    h, w = x.shape[1:]
    if min(h, w) + 2 * ((kernel - 1) // 2) >= kernel:
        return
    raise SpecError([Problem(spec.location(("head", "conv", "kernel_size")),
                             "head.conv.kernel_size",
                             f"expected a kernel that fits the {h}x{w} feature map the last "
                             f"stage leaves (padding (k - 1) // 2 = {(kernel - 1) // 2}), got "
                             f"{kernel}", "an odd kernel (its padding keeps the size), or 1")])


def _check_size(spec: Spec, b: Builder, first: int, where: str, path: Path) -> None:
    """Refuse a network no machine could hold, while resolving it: before the torch module
    (or anything else) allocates memory for it. Checked after the stem, each block, the head."""
    params, macs = b._params_upto[-1], b._macs_upto[-1]
    found = None
    if params > LIMITS["params"].value:
        limit, found = LIMITS["params"], f"{params:,} parameters by {where}"
    elif macs > LIMITS["macs"].value:
        limit, found = LIMITS["macs"], f"{macs:,} MACs per image by {where}"
    else:
        biggest = max(b.nodes[first:], key=lambda n: math.prod(n.out_shape), default=None)
        if biggest is not None and math.prod(biggest.out_shape) > LIMITS["tensor"].value:
            limit = LIMITS["tensor"]
            found = (f"{math.prod(biggest.out_shape):,} values in the output of {biggest.id} "
                     f"{'x'.join(map(str, biggest.out_shape))}")
    if found is not None:
        raise SpecError([limit.problem(spec.location(path),
                                       "<network>", f"too large to build: {found}")])


def _where(spec: Spec, path: Path) -> str | None:
    location = spec.location(path)
    return str(location) if location else None


def _locate(spec: Spec, problem: Problem, block_path: Path) -> Problem:
    """Attach the file position of the setting a block check complains about."""
    parts = problem.path.replace("[", ".").replace("]", "").split(".")
    path = tuple(int(p) if p.isdigit() else p for p in parts)
    return Problem(spec.location(path) or spec.location(block_path), problem.path,
                   problem.message, problem.hint)

