"""Deploy mode (archspec/lower/deploy.py): the inference module equals the trained module in eval
mode, after training steps moved its norms away from their initial values, for one spec of every
family in the zoo; what the rewrite removed is counted by torch itself (module types, parameter
counts, the profiler's operator names), not by the rewrite."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import archspec
from archspec.lower.deploy import DeployNetwork
from archspec.lower.deploy_plan import deploy_graph
from archspec.lower.torch import check_forward
from archspec.zoo import family_of

from conftest import SPEC_DIR, resolved

SIZE = 48


def _one_per_family() -> list:
    """The smallest spec of each family (`cli.py list`'s family column)."""
    best: dict[str, tuple[int, object]] = {}
    for path in sorted(SPEC_DIR.glob("*.yaml")):
        graph = resolved(path)
        family = family_of(graph)
        if family not in best or graph.params < best[family][0]:
            best[family] = (graph.params, path)
    return [pytest.param(p, id=p.stem) for _, p in sorted(best.values(), key=lambda v: str(v[1]))]


FAMILIES = _one_per_family()


def _trained(path, steps: int = 3, **overrides) -> nn.Module:
    torch.manual_seed(0)
    model = archspec.build(path, input__image_size=SIZE, **overrides)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(4, 3, SIZE, SIZE)
    for _ in range(steps):
        model(x).logsumexp(1).mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return model.eval()


def test_every_family_is_covered():
    families = {family_of(resolved(p)) for p in SPEC_DIR.glob("*.yaml")}
    assert len(FAMILIES) == len(families) >= 5


@pytest.mark.parametrize("path", FAMILIES)
def test_deploy_equals_eval_after_training(path):
    model = _trained(path, drop_path_rate=0.1)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    # the steps moved the statistics: a fold with initial values would hide mistakes
    assert all(m.num_batches_tracked.item() == 3 for m in norms)
    assert not norms or max(m.running_var.sub(1).abs().max().item() for m in norms) > 1e-3
    deploy = model.to_deploy()
    x = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = model(x)
        got = deploy(x)
        features = deploy.forward_features(x)
    scale = expected.abs().max().item()
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * max(scale, 1.0)), \
        (got - expected).abs().max().item()
    with torch.inference_mode():  # the fused oneDNN path (no autograd) and the portable one agree
        assert torch.allclose(deploy(x), got, rtol=1e-5, atol=1e-6 * max(scale, 1.0))
    assert torch.allclose(features, model.forward_features(x).detach(), rtol=1e-4,
                          atol=1e-5 * max(features.abs().max().item(), 1.0))
    # torch's own view of the result: no norm, dropout or drop-path module left, and an
    # activation module only where no conv feeds it (after a residual sum)
    kinds = {type(m).__name__ for m in deploy.modules()}
    assert not kinds & {"BatchNorm2d", "Dropout", "DropPath", "LayerScale"}
    dgraph = deploy.graph
    for name, m in deploy.named_modules():
        if isinstance(m, (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU)):
            assert dgraph.node(dgraph.node(name).inputs[0]).kind == "add", name
    # the module agrees with its (rewritten) IR: parameter count and every section's shape
    assert check_forward(deploy, dgraph) == sum(p.numel() for p in deploy.parameters())
    removed = sum(m.weight.numel() * 2 for m in norms)  # each norm's weight and bias go ...
    removed += sum(m.gamma.numel() for m in model.modules() if type(m).__name__ == "LayerScale")
    added = sum(m.weight.shape[0] for name, m in deploy.named_modules()  # ... a conv gains a bias
                if hasattr(m, "bias") and model.get_submodule(name).bias is None
                and m.bias is not None)
    assert dgraph.params == model.graph.params - removed + added


def test_fused_kernels_run_and_no_norm_op_is_left():
    model = _trained(SPEC_DIR / "resnet18.yaml", steps=1)
    deploy = model.to_deploy()
    x = torch.randn(1, 3, SIZE, SIZE)
    with torch.inference_mode(), torch.profiler.profile() as prof:
        deploy(x)
    names = {e.key for e in prof.key_averages()}
    assert "mkldnn::_convolution_pointwise" in names
    assert not {n for n in names if "batch_norm" in n or n == "aten::relu_" or n == "aten::add_"}
    with torch.inference_mode(), torch.profiler.profile() as prof:
        model(x)
    assert any("batch_norm" in e.key for e in prof.key_averages())  # the test can fail


def test_deploy_graph_removes_what_eval_does_not_need():
    for param in FAMILIES:
        graph = resolved(param.values[0])
        dgraph = deploy_graph(graph)
        dgraph.lint()
        kinds = [n.kind for n in dgraph.nodes]
        assert not {"batch_norm", "dropout", "drop_path", "layer_scale"} & set(kinds)
        assert dgraph.macs == graph.macs and dgraph.output_shape == graph.output_shape


def test_build_mode_deploy_and_errors():
    deploy = archspec.build(SPEC_DIR / "resnet18.yaml", mode="deploy", input__image_size=SIZE)
    assert isinstance(deploy, DeployNetwork) and not deploy.training
    assert deploy.to_deploy() is deploy
    with pytest.raises(RuntimeError, match="inference-only"):
        deploy.train()
    with pytest.raises(ValueError, match="mode"):
        archspec.build(SPEC_DIR / "resnet18.yaml", mode="fast")
    with pytest.raises(TypeError):
        archspec.build(SPEC_DIR / "resnet18.yaml", mode="deploy", features_only=True)
    model = archspec.build(SPEC_DIR / "resnet18.yaml", input__image_size=SIZE)
    model.reset_classifier(10)
    with pytest.raises(ValueError, match="head.num_classes=10"):
        model.to_deploy()


def test_channels_last_is_optional_and_copies_keep_the_ir():
    import copy
    model = _trained(SPEC_DIR / "mobilenetv2_100.yaml", steps=1)
    assert copy.deepcopy(model).graph is model.graph
    nchw = model.to_deploy(channels_last=False)
    assert nchw.stem.conv1.weight.is_contiguous()
    cl = model.to_deploy()
    assert cl.stem.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.inference_mode():
        assert torch.allclose(nchw(x), cl(x), atol=1e-5)


@pytest.mark.parametrize("name", ["resnet18", "convnext_atto"])
def test_torch_export(name):
    deploy = _trained(SPEC_DIR / f"{name}.yaml", steps=1).to_deploy()
    x = torch.randn(2, 3, SIZE, SIZE)
    exported = torch.export.export(deploy, (x,))
    targets = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert not any("mkldnn" in t for t in targets)  # standard operators only
    assert any("conv2d" in t for t in targets)
    with torch.inference_mode():
        assert torch.allclose(exported.module()(x), deploy(x), atol=1e-5)


@pytest.mark.slow
def test_onnx_export(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    import onnx
    deploy = _trained(SPEC_DIR / "resnet18.yaml", steps=1).to_deploy()
    x = torch.randn(1, 3, SIZE, SIZE)
    out = tmp_path / "resnet18.onnx"
    torch.onnx.export(deploy, (x,), str(out), dynamo=True)
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    ops = {n.op_type for n in proto.graph.node}
    assert "Conv" in ops and "BatchNormalization" not in ops


def test_deploy_doc_example_runs(capsys):
    import re
    from conftest import ROOT
    doc = (ROOT / "docs" / "deploy.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert blocks
    for i, code in enumerate(blocks):
        exec(compile(code, f"deploy.md[python block {i + 1}]", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "0" and printed[2] == "True"
    assert printed[1].startswith("FusedConv2d(3, 64, kernel_size=7, stride=2, padding=3") \
        and printed[1].endswith("act=relu)")
