"""The recipe: optimizer, parameter groups and learning-rate schedule (Bag of Tricks, He et al.
2019, "Bag of Tricks for Image Classification with Convolutional Neural Networks", section 3).

- No bias decay: weight decay applies only to the weights of convolution and fully connected
  layers; biases and the scale and shift of norm layers are left unregularized. The IR decides:
  a parameter decays when it is the `weight` of a node of kind `conv2d` or `linear`. A module
  parameter the IR does not list (none today) decays when it has two or more dimensions.
- Learning rate: linear warm-up from lr/steps to lr over the warm-up epochs, then cosine decay
  to 0 at the last step (Loshchilov & Hutter 2017), updated at every step.
- Label smoothing: `torch.nn.CrossEntropyLoss(label_smoothing=...)`.
- Zero-init residual: the spec's `zero_init_residual` (the module is built that way).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

#: Node kinds whose `weight` takes weight decay (Bag of Tricks: conv and fully connected).
DECAYED_KINDS = ("conv2d", "linear")


@dataclass(frozen=True)
class Groups:
    decay: list[nn.Parameter]
    no_decay: list[nn.Parameter]

    def report(self, weight_decay: float) -> str:
        n_d = sum(p.numel() for p in self.decay)
        n_n = sum(p.numel() for p in self.no_decay)
        if not self.no_decay:
            return f"weight decay {weight_decay:g} on all {len(self.decay)} tensors ({n_d:,})"
        return (f"weight decay {weight_decay:g} on {len(self.decay)} conv/linear weights "
                f"({n_d:,} params), none on {len(self.no_decay)} biases and norm tensors "
                f"({n_n:,} params)")


def parameter_groups(model: nn.Module, graph, bias_decay: bool) -> Groups:
    """Split the parameters into those that take weight decay and those that do not."""
    decayed = {f"{n.id}.weight" for n in graph.nodes if n.kind in DECAYED_KINDS
               and any(name == "weight" for name, _ in n.param_shapes)}
    listed = {f"{n.id}.{name}" for n in graph.nodes for name, _ in n.param_shapes}
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if bias_decay:
            yes = True
        elif name in listed:
            yes = name in decayed
        else:
            yes = p.ndim > 1
        (decay if yes else no_decay).append(p)
    return Groups(decay, no_decay)


def make_optimizer(name: str, groups: Groups, lr: float, weight_decay: float, momentum: float
                   ) -> torch.optim.Optimizer:
    params = [{"params": groups.decay, "weight_decay": weight_decay},
              {"params": groups.no_decay, "weight_decay": 0.0}]
    params = [g for g in params if g["params"]]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr)
    raise ValueError(name)


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """The learning-rate multiplier at optimizer step `step` (0-based)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def make_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
                   ) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped after every optimizer step. A plain function, so the scheduler's saved state is
    just its step count: a resumed run follows the schedule of its own command line."""
    def factor(step: int) -> float:
        return lr_factor(step, warmup_steps, total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
