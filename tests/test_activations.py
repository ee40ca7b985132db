"""Activations: pycls's `acts` and the training activation-memory estimate.

Expected values come from torch, not from archspec: the output sizes of the built module's layers
(forward hooks), the tensors autograd actually saves (saved_tensors_hooks) and the peak memory
torch's profiler records during a training step on CPU; and, loosely, pycls's published `acts`.
"""
from __future__ import annotations

import json
import math

import pytest

import archspec
import cli
from archspec.activations import training_memory
from conftest import SPEC_DIR

# pycls MODEL_ZOO.md (facebookresearch/pycls, "ResNet Models" / "ResNeXt Models"): acts in
# millions at 224x224. pycls's own ResNets differ slightly from torchvision's (its table gives
# ResNet-50 22.6M parameters, not 25.6M), so these agree to about 2%, not exactly.
PYCLS_ACTS = {"resnet50": 11.1, "resnet101": 16.2, "resnet152": 22.6, "resnext50_32x4d": 14.4}

#: the zoo specs the memory measurement runs on (64x64 inputs, batch 8: seconds each)
MEASURED = ["resnet18", "resnet50", "seresnet50", "resnest50d", "mobilenetv2_100",
            "convnext_tiny"]


@pytest.mark.parametrize("name", sorted(PYCLS_ACTS))
def test_acts_near_pycls_published(name):
    acts = archspec.resolve(SPEC_DIR / f"{name}.yaml").acts
    assert abs(acts / (PYCLS_ACTS[name] * 1e6) - 1) < 0.025, acts


@pytest.mark.parametrize("name", ["resnet50", "convnext_tiny", "mobilenetv2_100", "resnest14d"])
def test_acts_equal_the_modules_output_sizes(name):
    """pycls's convention on the built module: outputs of every conv, linear and pooling layer
    (global pooling excluded), counted by forward hooks."""
    import torch
    from torch import nn
    graph = archspec.resolve(SPEC_DIR / f"{name}.yaml", ["input.image_size=96"])
    model = archspec.to_module(graph).eval()
    counted = []

    def hook(module, inputs, output):
        counted.append(output.numel())
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.AvgPool2d)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.randn(1, 3, 96, 96))
    assert graph.acts == sum(counted)
    assert sum(archspec.resolve(SPEC_DIR / f"{name}.yaml", ["input.image_size=96"])
               .section_acts(s.id) for s in graph.sections) == graph.acts


def _measure(graph, batch: int) -> tuple[int, int]:
    """(bytes autograd saves, peak bytes the profiler sees in one forward + backward) on CPU,
    parameter storage and gradients excluded (they exist before the step)."""
    import torch
    from torch.autograd.graph import saved_tensors_hooks
    from torch.profiler import ProfilerActivity, profile
    torch.manual_seed(0)
    model = archspec.to_module(graph).train()
    x = torch.randn(batch, *graph.input_shape)
    model(x).sum().backward()  # gradients allocated once, as in training
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model(x).sum().backward()
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage),
                    key=lambda e: e.time_range.start)
    level = peak = 0
    for e in events:
        level += e.self_cpu_memory_usage
        peak = max(peak, level)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t
    with saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(saved.values()), peak


@pytest.mark.slow
def test_training_memory_estimate_against_torch(tmp_path):
    """The estimate against what torch saves and its measured peak; the ratios are recorded in
    docs/explore.md. The saved-tensor count is close (the estimate leaves out batch-norm
    statistics and copies made inside a layer); the peak adds backward's temporaries."""
    import torch
    torch.set_num_threads(1)
    batch, rows = 8, []
    for name in MEASURED:
        graph = archspec.resolve(SPEC_DIR / f"{name}.yaml", ["input.image_size=64"])
        estimate = training_memory(graph, batch).total
        saved, peak = _measure(graph, batch)
        rows.append({"spec": name, "estimate": estimate, "saved": saved, "peak": peak,
                     "estimate/saved": round(estimate / saved, 3),
                     "estimate/peak": round(estimate / peak, 3)})
        assert 0.9 <= estimate / saved <= 1.05, rows[-1]
        assert 0.5 <= estimate / peak <= 1.05, rows[-1]
    (tmp_path / "ratios.json").write_text(json.dumps(rows, indent=2))
    print(json.dumps(rows, indent=2))


def test_estimate_scales_with_batch_and_dtype():
    graph = archspec.resolve(SPEC_DIR / "resnet50.yaml")
    one, eight = training_memory(graph, 1), training_memory(graph, 8)
    assert eight.total == 8 * one.total
    half = training_memory(graph, 8, "bfloat16")
    assert 0.5 * eight.total < half.total < eight.total  # max-pool indices stay int64
    assert sum(one.per_section.values()) == one.total
    # the network input (3x224x224, kept by the stem conv) counts with the stem
    assert one.per_node["input"] == 4 * 3 * 224 * 224


def test_shown_in_build_and_list(capsys):
    assert cli.main(["build", "specs/resnet18.yaml", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    graph = archspec.resolve(SPEC_DIR / "resnet18.yaml")
    assert out["acts"] == graph.acts
    assert out["train_memory"]["bytes"] == training_memory(graph, 32).total
    assert [s["acts"] for s in out["stages"]] == [graph.section_acts(s.id) for s in graph.stages]
    assert cli.main(["list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["resnet18"]["acts"] == graph.acts
    assert math.isclose(rows["resnet50"]["acts"],
                        archspec.resolve(SPEC_DIR / "resnet50.yaml").acts)
