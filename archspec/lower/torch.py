"""IR -> torch.nn.Module. The module tree is the IR's group tree, so module paths are IR ids.

Containers are plain PyTorch: `nn.Sequential` for chains, `ResidualBlock` for `branch(x) +
shortcut(x)`, `Network` on top. Each forward is ordinary Python over the child modules: nothing
reads the graph at run time, and `torch.compile(fullgraph=True)` sees straight-line code.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from torch.utils.checkpoint import checkpoint

from ..ir import ArchGraph, FeatureInfo, Group, Node
from ..kinds import KINDS
from . import torch_convnext  # noqa: F401  (permute, layer_scale)
from .registry import container, layer, register_container, register_layer


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor, at each position (ConvNeXt's channels_first)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class GlobalPool(nn.Module):
    """Average or max over all positions; flattens to (N, C) unless told not to."""

    def __init__(self, pool: str = "avg", flatten: bool = True):
        super().__init__()
        self.pool, self.flatten = pool, flatten

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool == "avg":
            x = x.mean((2, 3), keepdim=not self.flatten)
        else:
            x = x.amax((2, 3), keepdim=not self.flatten)
        return x

    def extra_repr(self) -> str:
        return f"pool={self.pool}, flatten={self.flatten}"


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016): in training, zero whole samples with probability
    `rate` and scale the survivors by 1 / (1 - rate); the identity in eval mode."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"rate={self.rate:g}"


class ResidualBlock(nn.Module):
    """out = post(branch(x) + shortcut(x)); the IR names which children play which part."""

    def __init__(self, group: Group, graph: ArchGraph):
        super().__init__()
        add_children(self, group, graph)
        wiring = group.residual
        self._branch: tuple[str, ...] = wiring.branch
        self._post: tuple[str, ...] = wiring.post
        if wiring.shortcut is None:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The branch first, then the shortcut: the IR's node order (and torchvision's), so the
        # shortcut's output is not held while the branch runs, and autograd's backward visits
        # the layers in the same order as in a hand-written block.
        out = x
        for name in self._branch:
            out = getattr(self, name)(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        out = out + shortcut if out is x else out.add_(shortcut)
        for name in self._post:
            out = getattr(self, name)(out)
        return out


class Stages(nn.Sequential):
    """The stages, in order. With gradient checkpointing on, each stage's activations are
    dropped after its forward and recomputed in the backward pass (torch.utils.checkpoint,
    non-reentrant), so training holds one stage's activations at a time."""

    def __init__(self, group: Group, graph: ArchGraph):
        super().__init__()
        add_children(self, group, graph)
        self.grad_checkpointing = False

    def run(self, stage: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(stage, x, use_reentrant=False)
        return stage(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self:
            x = self.run(stage, x)
        return x


class _IRRef:
    """The IR a module was built from. Copies of the module share it (the IR is immutable);
    pickling a whole module drops it (`Network.graph` is then None)."""

    __slots__ = ("graph",)

    def __init__(self, graph: ArchGraph | None):
        self.graph = graph

    def __deepcopy__(self, memo: dict) -> "_IRRef":
        return self

    def __reduce__(self):
        return (_IRRef, (None,))


def _take_indices(count: int, indices: "int | Sequence[int] | None") -> list[int]:
    """timm's `feature_take_indices`: None -> all; an int n -> the last n; a sequence -> those
    (negative from the end). A bad index is a ValueError naming the range."""
    if indices is None:
        indices = count
    if isinstance(indices, int):
        if not 0 < indices <= count:
            raise ValueError(f"indices: the last n maps, n from 1 to {count}, got {indices}")
        return list(range(count - indices, count))
    taken = []
    for i in indices:
        if not -count <= i < count:
            raise ValueError(f"indices: a feature index from 0 to {count - 1} (or negative "
                             f"from the end), got {i}")
        taken.append(i % count)
    return taken


def _run_features(stem: nn.Module, stages: "Stages", x: torch.Tensor, wanted: frozenset[str],
                  last_stage: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Stem layer by layer, then stages up to `last_stage` (a count), keeping the outputs of
    the modules named in `wanted` (`stem.act1`, `stages.2`), in network order."""
    maps = []
    for name, layer in stem.named_children():
        x = layer(x)
        if "stem." + name in wanted:
            maps.append(x)
    for i, stage in enumerate(stages):
        if i >= last_stage:
            break
        x = stages.run(stage, x)
        if f"stages.{i}" in wanted:
            maps.append(x)
    return x, maps


def _module_html(module: nn.Module) -> str | None:
    """In a notebook: the summary table and stage-level diagram of the spec the module was
    built from (`archspec.summary`), resolved again (fast; the module keeps no IR, so it
    pickles and deep-copies as plain PyTorch). None (plain repr) without a spec."""
    if module.spec is None:
        return None
    from ..resolver import resolve
    from ..summary import to_html
    return to_html(resolve(module.spec))


class Network(nn.Module):
    """stem -> stages -> head, with the entry points training code and timm-style tools expect:
    `forward_features`, `forward_head(pre_logits=...)`, `forward_intermediates`,
    `reset_classifier`, `set_grad_checkpointing`, and `feature_info` (every feature map, from
    the IR, as timm lists them)."""

    def __init__(self, group: Group, graph: ArchGraph):
        super().__init__()
        add_children(self, group, graph)
        self.spec_name = graph.name
        #: the Spec it was built from (set by `archspec.build`; None from a bare IR)
        self.spec = None
        #: the validated spec as plain data: archspec.save embeds it, load_weights maps by it
        self.spec_data: dict | None = graph.attrs.get("spec")
        head = graph.groups["head"]
        classifier = graph.classifier
        self._classifier_name: str = head.classifier or "fc"
        #: channels of `forward_features`' output (the last stage's)
        self.num_features: int = graph.groups["stages"].out_shape[0]
        #: channels of `forward_head(..., pre_logits=True)`: what the classifier reads
        self.head_hidden_size: int = classifier.in_channels if classifier else head.out_shape[0]
        self.num_classes: int = classifier.out_channels if classifier else 0
        self.feature_info = graph.feature_info()
        self._pre_logits: tuple[str, ...] = tuple(
            c for c in head.children if c != self._classifier_name and c in self.head._modules)
        self._ir = _IRRef(graph)

    @property
    def graph(self) -> ArchGraph | None:
        """The resolved IR this module was built from (None after unpickling a whole module)."""
        return self._ir.graph

    def to_deploy(self, *, channels_last: bool = True) -> "nn.Module":
        """An inference-only copy with batch norms folded into the convs, activations and
        residual adds fused into them, dropout and drop path removed (archspec/lower/deploy.py;
        docs/deploy.md). Outputs equal this module's in eval mode within float rounding."""
        from .deploy import to_deploy
        return to_deploy(self, channels_last=channels_last)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and stages: the last stage's map, (N, num_features, H/32, W/32) for ResNet."""
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The head on a `forward_features` map; `pre_logits=True` stops before the classifier
        (pooled, normed features of width `head_hidden_size`)."""
        if pre_logits:
            for name in self._pre_logits:
                x = self.head._modules[name](x)
            return x
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))

    def forward_intermediates(self, x: torch.Tensor, indices: "int | Sequence[int] | None" = None,
                              norm: bool = False, stop_early: bool = False,
                              output_fmt: str = "NCHW", intermediates_only: bool = False):
        """timm's convention: the maps of `feature_info` at `indices` (None: all; an int n: the
        last n; negative from the end), in network order; returns `(final, maps)` where `final`
        is `forward_features`' output, or just `maps` with `intermediates_only=True`.
        `stop_early` stops after the last map asked for (then `final` is that point's output);
        `norm` is accepted for compatibility (these networks have no final norm before the
        head)."""
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt: only 'NCHW' is produced, got {output_fmt!r}")
        taken = _take_indices(len(self.feature_info), indices)
        wanted = frozenset(self.feature_info.module_name(taken))
        last = (max(self.feature_info[i].stage for i in taken) if stop_early or
                intermediates_only else len(self.stages))
        final, maps = _run_features(self.stem, self.stages, x, wanted, last)
        return maps if intermediates_only else (final, maps)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier by a new linear layer with `num_classes` outputs (PyTorch's
        default init), or remove it for 0; `global_pool` (`avg` or `max`) changes the pooling.
        The module then equals one built with `head.num_classes=num_classes` (and `head.pool`):
        same parameter names and shapes."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes: expected an integer >= 0, got {num_classes!r}")
        if global_pool is not None:
            self._set_pool(global_pool)
        name = self._classifier_name
        device = dtype = None
        if name in self.head._modules:
            old = self.head._modules[name]
            device, dtype = old.weight.device, old.weight.dtype
            delattr(self.head, name)
        if num_classes:
            self.head.add_module(name, nn.Linear(self.head_hidden_size, num_classes,
                                                 device=device, dtype=dtype))
        self.num_classes = num_classes

    def _set_pool(self, global_pool: str) -> None:
        if global_pool not in ("avg", "max"):
            raise ValueError(f"global_pool: expected 'avg' or 'max', got {global_pool!r}")
        for layer in self.head.children():
            if isinstance(layer, GlobalPool):
                layer.pool = global_pool

    def _repr_html_(self) -> str | None:
        return _module_html(self)

    def get_classifier(self) -> nn.Module | None:
        return self.head._modules.get(self._classifier_name)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Checkpoint each stage in training (see `Stages`): less memory, one more forward."""
        self.stages.grad_checkpointing = enable


class FeatureNetwork(nn.Module):
    """A backbone for detection/segmentation: the stem and the stages up to the last map asked
    for; `forward` returns the chosen maps (`feature_info.out_indices`) as a list. Module paths
    (and so `state_dict` keys) are those of the full network, so a classification checkpoint
    loads with `strict=False` (the head's keys are the only ones left over)."""

    def __init__(self, network: Network, feature_info: FeatureInfo):
        super().__init__()
        picked = feature_info.picked()
        self._last_stage: int = max(f.stage for f in picked)
        self.stem = network.stem
        self.stages = network.stages
        del self.stages[self._last_stage:]
        self.spec_name = network.spec_name
        self.spec = network.spec
        self.spec_data = network.spec_data
        self.feature_info = feature_info
        self._wanted: frozenset[str] = frozenset(f.module for f in picked)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return _run_features(self.stem, self.stages, x, self._wanted, self._last_stage)[1]

    def _repr_html_(self) -> str | None:
        return _module_html(self)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.stages.grad_checkpointing = enable


def _sequential(group: Group, graph: ArchGraph) -> nn.Module:
    seq = nn.Sequential()
    add_children(seq, group, graph)
    return seq


register_container("network")(Network)
register_container("stages")(Stages)
register_container("stage")(_sequential)
register_container("sequential")(_sequential)
register_container("residual")(ResidualBlock)


def _activation(cls: type[nn.Module], inplace: bool) -> Callable[[Node], nn.Module]:
    if inplace:
        return lambda node: cls(inplace=True)
    return lambda node: cls()


for _kind in KINDS.values():  # the activations, as `archspec.kinds` names their torch class
    if _kind.role == "activation" and _kind.torch:
        register_layer(_kind.name)(_activation(getattr(nn, _kind.torch), _kind.inplace))


@register_layer("conv2d")
def _conv(node: Node) -> nn.Module:
    return nn.Conv2d(node.in_channels, node.out_channels, node.kernel_size, node.stride,
                     node.padding, node.dilation, node.groups, node.bias)


@register_layer("linear")
def _linear(node: Node) -> nn.Module:
    out_features, in_features = node.param_shapes[0][1]  # over the last dim (maybe channels-last)
    return nn.Linear(in_features, out_features, node.bias)


@register_layer("batch_norm")
def _batch_norm(node: Node) -> nn.Module:
    return nn.BatchNorm2d(node.out_channels, node.attrs["eps"], node.attrs.get("momentum", 0.1))


@register_layer("layer_norm")
def _layer_norm(node: Node) -> nn.Module:
    channels_first = len(node.in_shape) == 3 and not node.attrs.get("channels_last")
    cls = LayerNorm2d if channels_first else nn.LayerNorm
    return cls(node.param_shapes[0][1][0], node.attrs["eps"])


@register_layer("max_pool")
def _max_pool(node: Node) -> nn.Module:
    return nn.MaxPool2d(node.kernel_size, node.stride, node.padding)


@register_layer("avg_pool")
def _avg_pool(node: Node) -> nn.Module:
    return nn.AvgPool2d(node.kernel_size, node.stride, node.padding, node.attrs["ceil_mode"],
                        node.attrs["count_include_pad"])


@register_layer("global_pool")
def _global_pool(node: Node) -> nn.Module:
    return GlobalPool(node.attrs["pool"], node.attrs["flatten"])


@register_layer("dropout")
def _dropout(node: Node) -> nn.Module:
    return nn.Dropout(node.attrs["p"])


@register_layer("drop_path")
def _drop_path(node: Node) -> nn.Module:
    return DropPath(node.attrs["rate"])


def _layer(node: Node) -> nn.Module:
    """The torch module of one leaf node, exactly as the IR describes it."""
    try:
        factory = layer(node.kind)
    except KeyError:
        raise NotImplementedError(
            f"internal error: no torch layer for node kind '{node.kind}' ({node.id})") from None
    return factory(node)


def add_children(module: nn.Module, group: Group, graph: ArchGraph) -> None:
    """Add a group's children to `module`, in order, built as the IR describes them
    (functional nodes have no module). Every container calls it first."""
    prefix = f"{group.id}." if group.id else ""
    for child in group.children:
        full = prefix + child
        if full in graph.groups:
            sub = graph.groups[full]
            module.add_module(child, container(sub.kind)(sub, graph))
        else:
            node = graph.node(full)
            if node.is_module:
                module.add_module(child, _layer(node))


def init_weights(model: nn.Module, graph: ArchGraph) -> None:
    """He (fan-out) init for convs, unit/zero affine norms, zero-init of residual norms marked in
    the IR; linear layers keep PyTorch's default (as torchvision's ResNet). With the spec's
    `init: trunc_normal`, conv and linear weights are truncated normal (std from the spec) and
    their biases zero (ConvNeXt). Layer scales start at the value the IR records."""
    init = graph.attrs.get("init") or {"type": "kaiming_normal"}
    for node in graph.nodes:
        if not node.is_module or not node.params:
            continue
        layer = model.get_submodule(node.id)
        role = node.role
        if init["type"] == "trunc_normal" and role in ("conv", "linear"):
            nn.init.trunc_normal_(layer.weight, std=init["std"])  # bounds [-2, 2], as timm
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif role == "scale":
            nn.init.constant_(layer.gamma, node.attrs["init"])
        elif role == "conv":
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif role == "norm":
            nn.init.constant_(layer.weight, 0.0 if node.attrs.get("zero_init") else 1.0)
            nn.init.zeros_(layer.bias)


def to_module(graph: ArchGraph, features_only: bool = False,
              out_indices: "int | Sequence[int] | None" = None) -> Network | FeatureNetwork:
    """Build the torch module the IR describes, initialized. `features_only=True` gives the
    backbone returning the maps picked by `out_indices` (indices into `graph.features()`, as
    timm's; default all), with `feature_info` read from the IR; a bad index is a SpecError."""
    if out_indices is not None and not features_only:
        raise TypeError("out_indices selects feature maps: pass features_only=True as well")
    info = graph.feature_info(out_indices) if features_only else None  # validate before building
    model = Network(graph.groups[""], graph)
    init_weights(model, graph)
    if info is not None:
        return FeatureNetwork(model, info)
    return model


def check_forward(model: nn.Module, graph: ArchGraph) -> int:
    """Count the module's parameters and run one forward pass at batch 1; raise InternalError
    unless both, and every section's output shape, agree with the IR. Returns the count."""
    from ..errors import InternalError
    counted = sum(p.numel() for p in model.parameters())
    if counted != graph.params:
        raise InternalError(f"the module has {counted:,} parameters, the IR {graph.params:,}")
    seen: dict[str, tuple[int, ...]] = {}
    hooks = [model.get_submodule(s.id).register_forward_hook(
        lambda _m, _i, out, name=s.id: seen.__setitem__(name, tuple(out.shape[1:])))
        for s in graph.sections]
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros((1,) + graph.input_shape))
        model.train(was_training)
    finally:
        for h in hooks:
            h.remove()
    for s in graph.sections:
        if seen.get(s.id) != s.out_shape:
            raise InternalError(f"'{s.id}' produced {seen.get(s.id)}, the IR says {s.out_shape}")
    if tuple(out.shape[1:]) != graph.output_shape:
        raise InternalError(f"output {tuple(out.shape[1:])}, the IR says {graph.output_shape}")
    return counted



def module_children(group: Group, graph: ArchGraph, names: Sequence[str]) -> tuple[str, ...]:
    """The children among `names` that are modules (not functional nodes such as `mul`): what
    a composite container's forward calls in turn."""
    prefix = f"{group.id}." if group.id else ""
    return tuple(n for n in names
                 if prefix + n in graph.groups or graph.node(prefix + n).is_module)
