"""The ConvNeXt authors' intermediate models (ResNet-50 -> ConvNeXt-T), hand-written in plain torch.

Written from the description of the authors' `models/modeling_resnet.py` (anonymous ConvNeXt
submission) in ../shared/ARCHITECTURES.md, sharing no code with archspec: the tests count its
parameters with `numel()` and its MACs with torch's FlopCounterMode, so an archspec rule that
gives a layer a bias it should not have (or drops one) shows as a difference.

`roadmap_model(step)` builds step 0 (ResNet-50) to 11 (BN -> LN) in ARCHITECTURES.md's numbering;
step 12 (separate downsampling) is ConvNeXt-T itself, whose count is published (28,589,128).
"""
from __future__ import annotations

import torch
from torch import nn


class _LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) map (weight and bias of C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _norm(step: int, c: int) -> nn.Module:
    return _LayerNorm2d(c, eps=1e-6) if step >= 11 else nn.BatchNorm2d(c)


def _act(step: int) -> nn.Module:
    return nn.GELU() if step >= 8 else nn.ReLU()


class _Bottleneck(nn.Module):
    """Steps 0-4: torchvision's bottleneck (stride on the 3x3), depthwise 3x3 from step 3."""

    def __init__(self, step: int, d_in: int, d_out: int, stride: int):
        super().__init__()
        mid = d_out // 4
        self.body = nn.Sequential(
            nn.Conv2d(d_in, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid if step >= 3 else 1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, d_out, 1, bias=False), nn.BatchNorm2d(d_out))
        self.short = None if stride == 1 and d_in == d_out else nn.Sequential(
            nn.Conv2d(d_in, d_out, 1, stride, bias=False), nn.BatchNorm2d(d_out))
        self.out = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + (x if self.short is None else self.short(x)))


class _Inverted(nn.Module):
    """Steps 5-11: 1x1 d_in -> 4 d_out, depthwise kxk, 1x1 -> d_out (depthwise first from step
    6); one activation from step 9, one norm from step 10; the block's convs gain a bias at BN ->
    LN (step 11) while the shortcut's 1x1 (followed by its own norm) stays bias-free."""

    def __init__(self, step: int, d_in: int, d_out: int, stride: int, kernel: int):
        super().__init__()
        bias, every_norm, every_act = step >= 11, step < 10, step < 9
        hidden, dw_first = 4 * d_out, step >= 6
        dw_width = d_in if dw_first else hidden
        dw = [nn.Conv2d(dw_width, dw_width, kernel, stride, kernel // 2, groups=dw_width,
                        bias=bias), _norm(step, dw_width)] + ([_act(step)] if every_act else [])
        expand = [nn.Conv2d(d_in, hidden, 1, bias=bias)] + (
            [_norm(step, hidden)] if every_norm else []) + [_act(step)]
        project = [nn.Conv2d(hidden, d_out, 1, bias=bias)] + (
            [_norm(step, d_out)] if every_norm else [])
        self.body = nn.Sequential(*(dw + expand if dw_first else expand + dw), *project)
        self.short = None if stride == 1 and d_in == d_out else nn.Sequential(
            nn.Conv2d(d_in, d_out, 1, stride, bias=False), _norm(step, d_out))
        self.out = _act(step) if every_act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + (x if self.short is None else self.short(x)))


def roadmap_model(step: int, kernel: int | None = None) -> nn.Module:
    """ARCHITECTURES.md's step `step` (0-11). The depthwise kernel is 3 until step 7 makes it 7;
    `kernel` sets it for steps 7-11 (the paper's sweep: 5, 7, 9, 11)."""
    if kernel is None or step < 7:
        kernel = 7 if step >= 7 else 3
    depths = (3, 4, 6, 3) if step == 0 else (3, 3, 9, 3)
    scale = 1.5 if step >= 4 else 1
    stem_width = int(64 * scale)
    if step >= 2:
        stem = [nn.Conv2d(3, stem_width, 4, 4, bias=True)]
    else:
        stem = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                nn.MaxPool2d(3, 2, 1)]
    widths = [int(w * scale) for w in (256, 512, 1024, 2048)] if step < 5 else [96, 192, 384, 768]
    layers, d_in = list(stem), stem_width
    for i, (depth, width) in enumerate(zip(depths, widths)):
        for j in range(depth):
            stride = 2 if i > 0 and j == 0 else 1
            if step < 5:
                layers.append(_Bottleneck(step, d_in, width, stride))
            else:
                layers.append(_Inverted(step, d_in, width, stride, kernel))
            d_in = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(d_in, 1000))


def counts(model: nn.Module) -> tuple[int, int]:
    """(parameters by numel, MACs at 224x224 by FlopCounterMode / 2), on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode
    params = sum(p.numel() for p in model.parameters())
    model = model.to("meta")
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, 224, 224, device="meta"))
    return params, counter.get_total_flops() // 2
