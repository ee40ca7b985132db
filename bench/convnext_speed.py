"""CPU forward speed of archspec's ConvNeXt-T against a plain reference written here.

    python bench/convnext_speed.py [--spec specs/convnext_tiny.yaml] [--batch 8] [--size 224]
                                   [--runs 10] [--threads 2]

The reference is the textbook ConvNeXt as torchvision's `CNBlock` structures it (depthwise conv,
permute to NHWC, LayerNorm, Linear, GELU, Linear, permute back, x layer scale, + input;
LayerNorm2d + 2x2 conv downsampling; patchify stem + LayerNorm2d; pool, LayerNorm, Linear),
written in ~40 lines with no archspec code. Both get the same weights (copied by parameter order,
checked by shape), so their outputs are compared too. Forward passes alternate in one process,
under `torch.no_grad()`, in eval mode; the script prints medians and their ratio archspec /
reference (1.00 = as fast), and the ratio of the fastest runs as a second reading.
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import archspec  # noqa: E402


class _LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                            self.eps).permute(0, 3, 1, 2)


class _Block(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dw = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        # a child module (not a bare parameter) so it comes last in parameters(), as in archspec
        self.layer_scale = nn.ParameterList([torch.full((dim, 1, 1), 1e-6)])

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.fc2(F.gelu(self.fc1(self.norm(y)))).permute(0, 3, 1, 2)
        return x + self.layer_scale[0] * y


class _Reference(nn.Module):
    def __init__(self, depths, dims, classes=1000):
        super().__init__()
        layers = [nn.Conv2d(3, dims[0], 4, 4), _LayerNorm2d(dims[0], eps=1e-6)]
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            if i:
                layers += [_LayerNorm2d(dims[i - 1], eps=1e-6), nn.Conv2d(dims[i - 1], dim, 2, 2)]
            layers += [_Block(dim) for _ in range(depth)]
        self.features = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.fc = nn.Linear(dims[-1], classes)

    def forward(self, x):
        return self.fc(self.norm(self.features(x).mean((2, 3))))


def _copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Same architecture, same parameter order: copy tensors one by one (shapes must agree up to
    the gamma's trailing 1x1)."""
    pairs = list(zip(src.parameters(), dst.parameters()))
    assert len(pairs) == len(list(dst.parameters())) == len(list(src.parameters()))
    with torch.no_grad():
        for s, d in pairs:
            if s.numel() != d.numel():
                raise SystemExit(f"parameter mismatch: {tuple(s.shape)} vs {tuple(d.shape)}")
            d.copy_(s.reshape(d.shape))


def _median_ms(model, x, runs):
    times = []
    with torch.no_grad():
        for _ in range(runs):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", default="specs/convnext_tiny.yaml")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    graph = archspec.resolve(ROOT / args.spec)
    ours = archspec.to_module(graph).eval()
    depths = [s.depth for s in graph.stages]
    dims = [s.width for s in graph.stages]
    ref = _Reference(depths, dims).eval()
    _copy_weights(ours, ref)
    x = torch.randn(args.batch, 3, args.size, args.size)
    with torch.no_grad():
        diff = (ours(x) - ref(x)).abs().max().item()
    for _ in range(2):  # warm-up
        _median_ms(ours, x, 1), _median_ms(ref, x, 1)
    a, r = [], []
    for _ in range(args.runs):  # alternate so drift in machine load hits both alike
        a.append(_median_ms(ours, x, 1))
        r.append(_median_ms(ref, x, 1))
    ma, mr = statistics.median(a), statistics.median(r)
    print(f"{args.spec} batch {args.batch} at {args.size}x{args.size}, {args.threads} threads: "
          f"archspec {ma:.1f} ms, reference {mr:.1f} ms (medians of {args.runs}); "
          f"ratio archspec/reference {ma / mr:.2f} (of the fastest runs: {min(a) / min(r):.2f}); "
          f"max |output difference| {diff:.2e}")


if __name__ == "__main__":
    main()
