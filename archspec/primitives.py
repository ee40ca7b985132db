"""Shape, parameter and MAC formulas for every layer kind, and the builder that records them.

This is the only place where a layer's numbers are computed. Families describe their layers by
calling `Builder` methods in forward order; each call appends one explicit IR node.

Counting conventions (ARCHITECTURES.md): MACs are multiply-accumulates of conv and linear layers
only, bias additions excluded, exactly what `torch.utils.flop_counter.FlopCounterMode` counts
(it reports 2 x MACs). Norms, activations, pools and element-wise ops cost 0 MACs here.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from .errors import InternalError
from .kinds import kind as declared
from .ir import EMPTY, ArchGraph, Group, Node, Residual, Shape


class Tensor(NamedTuple):
    """A value flowing between nodes: who produced it, its shape, and its layout: channels
    first (C, H, W), or channels last (H, W, C) between two `permute` nodes."""

    producer: str
    shape: Shape
    channels_last: bool = False
    reduction: int = 1  # product of the strides from the input to here (4 after a ResNet stem)

    @property
    def channels(self) -> int:
        return self.shape[-1] if self.channels_last else self.shape[0]


def conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None,
                   round_limit: float = 0.9) -> int:
    """timm's `make_divisible` (the EfficientNet/MobileNet channel rule): `value` rounded to the
    nearest multiple of `divisor` (halves up), at least `min_value` (default: the divisor), and
    one divisor more when that lost more than 1 - round_limit of the value (10% by default;
    `round_limit=0` never adds one)."""
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


def nearest_divisor(n: int, near: int) -> int:
    """The divisor of `n` closest to `near` (the smaller on a tie): the hint for a `groups`
    that does not divide a width."""
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: (abs(d - near), d))


def pool_out(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size, including its ceil-mode rule."""
    span = size + 2 * padding - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


@dataclass
class _OpenGroup:
    id: str
    kind: str
    in_shape: Shape
    attrs: dict[str, Any]
    source: str | None
    structure: dict[str, Any] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    first_node: int = 0


class Builder:
    """Records nodes and groups in forward order; `finish()` returns the immutable ArchGraph."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.groups: dict[str, Group] = {}
        self.notes: list[str] = []
        self.source: str | None = None
        self._stack: list[_OpenGroup] = []
        self._params_upto = [0]  # running totals, so a group's sum is one subtraction
        self._macs_upto = [0]

    # ---- structure ----------------------------------------------------------------------
    def _full(self, name: str) -> str:
        prefix = self._stack[-1].id if self._stack else ""
        return f"{prefix}.{name}" if prefix else name

    def _register(self, name: str) -> str:
        if name not in _VALID_NAMES:  # each distinct local name is checked once per process
            if not _LOCAL_NAME.fullmatch(name):
                raise InternalError(f"'{name}' is not a valid module name "
                                    f"(inside '{self._full('')[:-1]}')")
            _VALID_NAMES.add(name)
        if self._stack:
            self._stack[-1].children.append(name)
        return self._full(name)

    def group(self, local: str, kind: str, x: Tensor | None, *, family: str | None = None,
              block_type: str | None = None, is_block: bool = False, stage: int | None = None,
              index: int | None = None, stride: int | None = None, depth: int | None = None,
              width: int | None = None, classifier: str | None = None, fused_paths: int = 1,
              **settings: Any) -> "_GroupScope":
        """A module containing the nodes created inside the `with` block. The keyword arguments
        named like `Group`'s structural fields are those; any other is a setting (`attrs`)."""
        full = self._register(local) if local else ""
        structure = {"family": family, "block_type": block_type, "is_block": is_block,
                     "stage": stage, "index": index, "stride": stride, "depth": depth,
                     "width": width, "classifier": classifier, "fused_paths": fused_paths}
        open_group = _OpenGroup(full, kind, x.shape if x else (), settings, self.source,
                                structure, first_node=len(self.nodes))
        self._stack.append(open_group)
        return _GroupScope(self, open_group)

    def _close(self, open_group: _OpenGroup) -> None:
        full = open_group.id
        first, end = open_group.first_node, len(self.nodes)
        residual = None
        if open_group.kind == "residual":
            if "add" in open_group.children:
                residual = self._split_residual(open_group)
            else:  # a block whose shape change leaves no shortcut (MobileNetV2): a plain chain
                open_group.kind = "sequential"
        self.groups[full] = Group(
            id=full, kind=open_group.kind, children=tuple(open_group.children),
            in_shape=open_group.in_shape,
            out_shape=self.nodes[-1].out_shape if end > first else (),
            params=self._params_upto[end] - self._params_upto[first],
            macs=self._macs_upto[end] - self._macs_upto[first],
            reduction=self.nodes[-1].reduction if end > first else 1,
            attrs=MappingProxyType(open_group.attrs), source=open_group.source,
            residual=residual, **open_group.structure)

    def _split_residual(self, group: _OpenGroup) -> Residual:
        """Residual blocks: children before `add` form the branch (but `downsample`, the
        shortcut); children after it are applied to the sum. The `add` is marked the merge."""
        children = group.children
        cut = children.index("add")
        merge_id = f"{group.id}.add" if group.id else "add"
        for i in range(len(self.nodes) - 1, group.first_node - 1, -1):
            if self.nodes[i].id == merge_id:
                self.nodes[i] = self.nodes[i]._replace(residual=True)
                break
        return Residual(branch=tuple(c for c in children[:cut] if c != "downsample"),
                        shortcut="downsample" if "downsample" in children[:cut] else None,
                        post=tuple(children[cut + 1:]), merge="add")

    def _add(self, name: str, kind: str, inputs: tuple[Tensor, ...], out_shape: Shape, *,
             channels_last: bool | None = None, kernel_size: int | None = None,
             stride: int | None = None, padding: int | None = None, groups: int | None = None,
             dilation: int | None = None, bias: bool | None = None,
             param_shapes: tuple[tuple[str, Shape], ...] = (), macs: int = 0,
             attrs: dict[str, Any] | None = None) -> Tensor:
        """Append one node. Its output keeps the layout of its first input unless told, and its
        reduction (product of strides so far) grows by its stride; merges keep the coarsest.
        Written out long-hand: this runs once per layer of every resolve."""
        node_id = self._register(name)
        params = 0
        for _, shape in param_shapes:
            params += math.prod(shape)
        if inputs:
            first = inputs[0]
            in_shape, reduction = first.shape, first.reduction
            producers: tuple[str, ...] = (first.producer,)
            if len(inputs) > 1:
                producers = tuple([t.producer for t in inputs])
                reduction = max([t.reduction for t in inputs])
            if channels_last is None:
                channels_last = first.channels_last
        else:
            in_shape, reduction, producers = out_shape, 1, ()
            channels_last = bool(channels_last)
        if stride:
            reduction *= stride
        node = _new_node(Node, (
            node_id, kind, producers, in_shape, out_shape, kernel_size, stride, padding, groups,
            dilation, bias, param_shapes, params, macs,
            MappingProxyType(attrs) if attrs else EMPTY, self.source, channels_last, reduction,
            False))
        self.nodes.append(node)
        self._params_upto.append(self._params_upto[-1] + params)
        self._macs_upto.append(self._macs_upto[-1] + macs)
        return Tensor(node_id, out_shape, channels_last, reduction)

    def note(self, text: str) -> None:
        """Tell the user about a value archspec adjusted (never adjust silently)."""
        where = f"{self.source}: " if self.source else ""
        self.notes.append(where + text)

    def finish(self, name: str, description: str, input_shape: Shape,
               attrs: dict[str, Any] | None = None) -> ArchGraph:
        return ArchGraph(name=name, description=description, input_shape=input_shape,
                         nodes=tuple(self.nodes), groups=MappingProxyType(dict(self.groups)),
                         notes=tuple(self.notes), attrs=MappingProxyType(attrs or {}))

    # ---- layers -------------------------------------------------------------------------
    def op(self, name: str, kind: str, inputs: tuple[Tensor, ...], out_shape: Shape,
           **fields: Any) -> Tensor:
        """Record one node of a kind a family declared with `archspec.kinds.register_kind` (the
        extension point for layers the methods below do not cover): its inputs, its output
        shape, and any other `Node` field by keyword (kernel_size, stride, groups, param_shapes,
        macs, attrs, ...). Parameters are counted from `param_shapes`."""
        declared(kind)  # views read its role: an undeclared kind is an internal error here
        return self._add(name, kind, tuple(inputs), out_shape, **fields)

    def input(self, shape: Shape) -> Tensor:
        return self._add("input", "input", (), shape)

    def conv(self, name: str, x: Tensor, out_channels: int, kernel_size: int, stride: int = 1,
             groups: int = 1, bias: bool = False, padding: int | None = None,
             dilation: int = 1) -> Tensor:
        c, h, w = x.shape
        if padding is None:
            padding = (kernel_size - 1) // 2 * dilation
        oh = conv_out(h, kernel_size, stride, padding, dilation)
        ow = conv_out(w, kernel_size, stride, padding, dilation)
        weight = (out_channels, c // groups, kernel_size, kernel_size)
        shapes = (("weight", weight),) + ((("bias", (out_channels,)),) if bias else ())
        macs = oh * ow * math.prod(weight)
        return self._add(name, "conv2d", (x,), (out_channels, oh, ow), kernel_size=kernel_size,
                         stride=stride, padding=padding, groups=groups, dilation=dilation,
                         bias=bias, param_shapes=shapes, macs=macs)

    def linear(self, name: str, x: Tensor, out_features: int, bias: bool = True) -> Tensor:
        """A linear layer over the last dimension (as torch's nn.Linear): the features of a
        pooled vector (C,), or the channels of a channels-last map (H, W, C) at every position."""
        in_features = x.shape[-1]
        positions = math.prod(x.shape[:-1])
        shapes = (("weight", (out_features, in_features)),)
        if bias:
            shapes += (("bias", (out_features,)),)
        return self._add(name, "linear", (x,), x.shape[:-1] + (out_features,), bias=bias,
                         param_shapes=shapes, macs=positions * out_features * in_features)

    def norm(self, name: str, x: Tensor, kind: str, eps: float, zero_init: bool = False,
             momentum: float | None = None, channels_last: bool = False) -> Tensor:
        """Batch norm, or layer norm over the channels at each position: channels first (C, H, W)
        by default, or channels last (H, W, C) after a `permute` (layer norm only)."""
        if channels_last and kind != "layer_norm":
            raise InternalError(f"{kind} on a channels-last tensor ({name})")
        c = x.shape[-1] if channels_last else x.channels
        attrs: dict[str, Any] = {"eps": eps}
        if momentum is not None:
            attrs["momentum"] = momentum
        if zero_init:
            attrs["zero_init"] = True
        if channels_last:
            attrs["channels_last"] = True
        return self._add(name, kind, (x,), x.shape,
                         param_shapes=(("weight", (c,)), ("bias", (c,))), attrs=attrs)

    def permute(self, name: str, x: Tensor, layout: str) -> Tensor:
        """Reorder a feature map to `channels_last` (C, H, W) -> (H, W, C), or back to
        `channels_first`. The IR records the real tensor shapes on either side."""
        if layout == "channels_last":
            dims, out = (0, 2, 3, 1), x.shape[1:] + x.shape[:1]
        elif layout == "channels_first":
            dims, out = (0, 3, 1, 2), x.shape[-1:] + x.shape[:-1]
        else:
            raise InternalError(f"unknown layout {layout!r} ({name})")
        return self._add(name, "permute", (x,), out, channels_last=layout == "channels_last",
                         attrs={"dims": dims, "layout": layout})

    def layer_scale(self, name: str, x: Tensor, init: float, channels_last: bool = False) -> Tensor:
        """Per-channel learnable scale `gamma` (CaiT, ConvNeXt), starting at `init`."""
        c = x.shape[-1] if channels_last else x.channels
        attrs: dict[str, Any] = {"init": init}
        if channels_last:
            attrs["channels_last"] = True
        return self._add(name, "layer_scale", (x,), x.shape, param_shapes=(("gamma", (c,)),),
                         attrs=attrs)

    def act(self, name: str, x: Tensor, kind: str) -> Tensor:
        return self._add(name, kind, (x,), x.shape)

    def max_pool(self, name: str, x: Tensor, kernel_size: int, stride: int,
                 padding: int = 0) -> Tensor:
        c, h, w = x.shape
        out = (c, pool_out(h, kernel_size, stride, padding, False),
               pool_out(w, kernel_size, stride, padding, False))
        return self._add(name, "max_pool", (x,), out, kernel_size=kernel_size, stride=stride,
                         padding=padding)

    def avg_pool(self, name: str, x: Tensor, kernel_size: int, stride: int, padding: int = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
        c, h, w = x.shape
        out = (c, pool_out(h, kernel_size, stride, padding, ceil_mode),
               pool_out(w, kernel_size, stride, padding, ceil_mode))
        return self._add(name, "avg_pool", (x,), out, kernel_size=kernel_size, stride=stride,
                         padding=padding, attrs={"ceil_mode": ceil_mode,
                                                 "count_include_pad": count_include_pad})

    def global_pool(self, name: str, x: Tensor, kind: str = "avg", flatten: bool = True) -> Tensor:
        out = (x.channels,) if flatten else (x.channels, 1, 1)
        return self._add(name, "global_pool", (x,), out, attrs={"pool": kind, "flatten": flatten})

    def dropout(self, name: str, x: Tensor, p: float) -> Tensor:
        return self._add(name, "dropout", (x,), x.shape, attrs={"p": p})

    def drop_path(self, name: str, x: Tensor, rate: float) -> Tensor:
        return self._add(name, "drop_path", (x,), x.shape, attrs={"rate": rate})

    def add(self, name: str, *xs: Tensor) -> Tensor:
        return self._add(name, "add", xs, xs[0].shape)

    def mul(self, name: str, x: Tensor, gate: Tensor) -> Tensor:
        return self._add(name, "mul", (x, gate), x.shape)

    def split_sum(self, name: str, x: Tensor, radix: int) -> Tensor:
        """Functional: view the C channels as `radix` splits of C / radix, split-major (channel
        r x C / radix + i is element i of split r), and add the splits up (ResNeSt)."""
        c = x.channels
        return self._add(name, "split_sum", (x,), (c // radix,) + x.shape[1:],
                         attrs={"radix": radix})

    def radix_softmax(self, name: str, x: Tensor, radix: int, groups: int) -> Tensor:
        """ResNeSt's r-softmax over attention logits laid out group-major (groups, radix, C /
        (groups x radix)): softmax across the radix within each group, output split-major
        (radix, groups, ...); a sigmoid when radix is 1. Same shape, no parameters."""
        return self._add(name, "radix_softmax", (x,), x.shape, groups=groups,
                         attrs={"radix": radix})


#: NamedTuple construction from a positional tuple, skipping keyword matching (fields in order)
_new_node = tuple.__new__
if Node._fields != (
        "id", "kind", "inputs", "in_shape", "out_shape", "kernel_size", "stride", "padding",
        "groups", "dilation", "bias", "param_shapes", "params", "macs", "attrs", "source",
        "channels_last", "reduction", "residual"):
    raise ImportError("internal error: Builder._add lists Node's fields in another order")


class _GroupScope:
    """`with builder.group(...)`: closes the group (records it with its totals) on a clean exit;
    after an error nothing is recorded. A class rather than @contextmanager: it runs for every
    block of every resolve."""

    __slots__ = ("builder", "group")

    def __init__(self, builder: Builder, group: _OpenGroup) -> None:
        self.builder, self.group = builder, group

    def __enter__(self) -> _OpenGroup:
        return self.group

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.builder._stack.pop()
        if exc_type is None:
            self.builder._close(self.group)
        return False


_LOCAL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_VALID_NAMES: set[str] = set()
