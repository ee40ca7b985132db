"""Deploy mode: an inference-only torch module with the trained module's function, made cheaper.

`to_deploy(model)` lowers the IR rewritten by `deploy_plan.deploy_graph` (batch norms folded into
the convs before them, activations and residual adds fused into the conv that feeds them, layer
scales folded into ConvNeXt's second linear layer, dropout and drop path removed) and fills it
with weights computed from the trained module's (folding in float64). The result is a `Network`
(same `forward_features` / `forward_head` / `feature_info`) that:

- runs each fused conv or linear layer as one oneDNN call (`torch.ops.mkldnn._convolution_pointwise`
  / `_linear_pointwise`: the activation, and the residual add, are applied while the output is
  written) on CPU in float32 without autograd; everywhere else (CUDA, other dtypes, gradients,
  and whenever torch.compile, torch.export or the ONNX exporter traces it) it runs the same
  computation as plain `F.conv2d` / `F.linear` and the activation, so the exported graph holds
  only standard operators;
- keeps its weights and its input in the channels-last memory format (`channels_last=True`,
  the default), which oneDNN convolutions read without reordering and which makes ConvNeXt's
  permutes free views;
- refuses `train()`: the norms are gone.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..ir import ArchGraph, Group, Node
from .deploy_plan import deploy_graph
from .torch import Network, ResidualBlock

#: activation -> (oneDNN post-op name, its scalars, its algorithm)
_ONEDNN_ACT: dict[str | None, tuple[str, list[float], str | None]] = {
    None: ("none", [], None),
    "relu": ("relu", [], None),
    "relu6": ("hardtanh", [0.0, 6.0], None),
    "silu": ("swish", [], None),
    "gelu": ("gelu", [], "none"),  # exact (erf) GELU, nn.GELU's default
    "sigmoid": ("sigmoid", [], None),
    "hard_swish": ("hardswish", [], None),
}
#: activation -> the same function in plain torch (the portable path)
_TORCH_ACT: dict[str | None, Callable[[torch.Tensor], torch.Tensor]] = {
    None: lambda x: x,
    "relu": F.relu,
    "relu6": F.relu6,
    "silu": F.silu,
    "gelu": F.gelu,
    "sigmoid": torch.sigmoid,
    "hard_swish": F.hardswish,
}
_ONEDNN = torch.backends.mkldnn.is_available()


def _fast(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether to call oneDNN's fused kernels: CPU float32 eager inference only."""
    return (_ONEDNN and x.device.type == "cpu" and x.dtype == torch.float32
            and weight.dtype == torch.float32
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
            and not torch.compiler.is_compiling() and not torch.jit.is_tracing()
            and not torch.jit.is_scripting())


class FusedConv2d(nn.Module):
    """conv (+ folded batch norm) (+ activation), one kernel on CPU. Parameters `weight` and
    `bias` as nn.Conv2d's."""

    def __init__(self, node: Node):
        super().__init__()
        k, groups = node.kernel_size, node.groups
        self.weight = nn.Parameter(torch.empty(node.out_channels, node.in_channels // groups, k, k),
                                   requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(node.out_channels), requires_grad=False)
        self.stride, self.padding, self.dilation, self.groups = (
            node.stride, node.padding, node.dilation, groups)
        self.act: str | None = node.attrs.get("act")
        self._args = ([self.padding] * 2, [self.stride] * 2, [self.dilation] * 2, groups)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _fast(x, self.weight):
            name, scalars, algorithm = _ONEDNN_ACT[self.act]
            return torch.ops.mkldnn._convolution_pointwise(x, self.weight, self.bias, *self._args,
                                                           name, scalars, algorithm)
        return _TORCH_ACT[self.act](self._conv(x))

    def forward_add(self, x: torch.Tensor, other: torch.Tensor, act: str | None) -> torch.Tensor:
        """act(conv(x) + other): a residual block's last conv, the shortcut and the activation
        after the sum in one call."""
        if _fast(x, self.weight) and other.dtype == torch.float32:
            name, scalars, algorithm = _ONEDNN_ACT[act]
            name = None if act is None else name  # the binary form takes no "none" post-op
            return torch.ops.mkldnn._convolution_pointwise.binary(
                x, other, self.weight, self.bias, *self._args, "add", 1.0, name, scalars,
                algorithm)
        return _TORCH_ACT[act](self._conv(x) + other)

    def extra_repr(self) -> str:
        w = self.weight.shape
        return (f"{w[1] * self.groups}, {w[0]}, kernel_size={w[2]}, stride={self.stride}, "
                f"padding={self.padding}, groups={self.groups}, act={self.act}")


class FusedLinear(nn.Module):
    """linear (+ folded layer scale) (+ activation), one kernel on CPU."""

    def __init__(self, node: Node):
        super().__init__()
        out_features, in_features = node.param_shapes[0][1]
        self.weight = nn.Parameter(torch.empty(out_features, in_features), requires_grad=False)
        self.bias = (nn.Parameter(torch.zeros(out_features), requires_grad=False)
                     if node.bias else None)
        self.act: str | None = node.attrs.get("act")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _fast(x, self.weight) and self.bias is not None:
            name, scalars, algorithm = _ONEDNN_ACT[self.act]
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, name, scalars,
                                                      algorithm)
        return _TORCH_ACT[self.act](F.linear(x, self.weight, self.bias))

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, act={self.act}"


class FusedAddResidual(ResidualBlock):
    """A residual block whose last branch conv adds the shortcut (and applies the activation
    after the sum) as it writes its output: the shortcut runs first."""

    @classmethod
    def adopt(cls, block: ResidualBlock, fused: dict[str, Any]) -> "FusedAddResidual":
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        for name, child in block.named_children():
            new.add_module(name, child)
        if block.downsample is None:
            new.downsample = None
        new._branch, new._post = block._branch, block._post
        new._head = tuple(n for n in block._branch if n != fused["conv"])
        new._last, new._act = fused["conv"], fused["act"]
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = x
        for name in self._head:
            out = getattr(self, name)(out)
        return getattr(self, self._last).forward_add(out, shortcut, self._act)


class DeployNetwork(Network):
    """The deploy-mode network: inference only, input moved to the module's memory format."""

    channels_last: bool = True

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward_features(self._layout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self._layout(x))

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def train(self, mode: bool = True) -> "DeployNetwork":
        if mode:
            raise RuntimeError("a deploy-mode module is inference-only (its batch norms are "
                               "folded into the convs); train the module archspec.build returns "
                               "and call .to_deploy() on it")
        return super().train(False)

    def to_deploy(self, **kwargs: Any) -> "DeployNetwork":
        return self


def _folded_weights(node: Node, source: nn.Module, graph: ArchGraph,
                    model: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weight and bias of a fused conv/linear node, from the trained layers it absorbed."""
    w = source.weight.detach().double()
    b = source.bias.detach().double() if source.bias is not None else None
    for absorbed in node.attrs.get("folded", ()):
        kind = graph.node(absorbed).kind
        layer = model.get_submodule(absorbed)
        if kind == "batch_norm":
            scale = layer.weight.double() / torch.sqrt(layer.running_var.double() + layer.eps)
            w = w * scale.view(-1, *([1] * (w.ndim - 1)))
            b = (b if b is not None else torch.zeros_like(scale)) - layer.running_mean.double()
            b = b * scale + layer.bias.double()
        elif kind == "layer_scale":
            gamma = layer.gamma.detach().double().flatten()
            w = w * gamma.view(-1, *([1] * (w.ndim - 1)))
            b = b * gamma if b is not None else None
    return w, b


def _load(deploy: nn.Module, dgraph: ArchGraph, model: nn.Module, graph: ArchGraph) -> None:
    with torch.no_grad():
        for node in dgraph.nodes:
            if not node.is_module or not node.params:
                continue
            target, source = deploy.get_submodule(node.id), model.get_submodule(node.id)
            if isinstance(target, (FusedConv2d, FusedLinear)):
                w, b = _folded_weights(node, source, graph, model)
                target.weight.copy_(w.reshape(target.weight.shape))
                if target.bias is not None:
                    target.bias.copy_(b if b is not None else torch.zeros_like(target.bias))
            else:
                target.load_state_dict(source.state_dict())


def lower(dgraph: ArchGraph) -> DeployNetwork:
    """The deploy module of a rewritten graph (weights uninitialized)."""
    net = DeployNetwork(dgraph.groups[""], dgraph)
    for node in dgraph.nodes:
        if node.kind == "conv2d":
            net.set_submodule(node.id, FusedConv2d(node))
        elif node.kind == "linear":
            net.set_submodule(node.id, FusedLinear(node))
    for group in dgraph.groups.values():
        if "fused_add" in group.attrs:
            net.set_submodule(group.id, FusedAddResidual.adopt(net.get_submodule(group.id),
                                                               group.attrs["fused_add"]))
    return net


def to_deploy(model: Network, graph: ArchGraph | None = None, *,
              channels_last: bool = True) -> DeployNetwork:
    """The inference module of a trained `Network` (see the module docstring). `graph`: the IR
    it was built from (default: the one the module keeps). Outputs equal `model.eval()`'s
    within float rounding."""
    if not isinstance(model, Network):
        raise TypeError(f"to_deploy: expected a Network built by archspec, got "
                        f"{type(model).__name__} (features_only backbones are not supported)")
    graph = graph if graph is not None else model.graph
    classifier = graph.classifier
    if model.num_classes != (classifier.out_channels if classifier else 0):
        raise ValueError(f"to_deploy: the module's classifier has {model.num_classes} classes, "
                         f"its IR {classifier.out_channels if classifier else 0}: build the spec "
                         f"with head.num_classes={model.num_classes} and load the weights")
    dgraph = deploy_graph(graph)
    deploy = lower(dgraph)
    _load(deploy, dgraph, model, graph)
    param = next(model.parameters())
    deploy.channels_last = channels_last
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return deploy.to(device=param.device, dtype=param.dtype, memory_format=fmt).eval()
