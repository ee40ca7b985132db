"""Built modules carry what training code and detection frameworks expect (docs/modules.md):
forward_features / forward_head / reset_classifier, features_only with feature_info from the IR,
per-stage gradient checkpointing, stochastic depth, channels_last, autocast, state_dict reload,
torch.compile without graph breaks and torch.export (the last two under `-m slow`).

Each check runs on one spec per block family: for every registered block type, the smallest
spec in specs/ that uses it (a new family joins as soon as it has a spec). The witnesses are
torch's own: forward hooks, parameter counts, autograd, dynamo's explain, export.
"""
from __future__ import annotations

import functools
import io

import pytest
import torch

import archspec
from archspec.blocks import BLOCKS
from conftest import SPEC_FILES, resolved, spec_id

SIZE = 64  # small images keep the suite fast; every check holds at any size
BATCH = 2


@functools.lru_cache(maxsize=None)
def _block_types(path) -> frozenset[str]:
    spec = archspec.load(path)
    blocks, _ = spec.stage_blocks(spec.num_stages)
    return frozenset(b.type for b in blocks)


def family_specs() -> list[tuple[str, object]]:
    """(block type, smallest spec using it) for every registered block type with a spec."""
    picked = []
    for block_type in sorted(BLOCKS):
        users = [p for p in SPEC_FILES if block_type in _block_types(p)]
        if users:
            picked.append((block_type, min(users, key=lambda p: (resolved(p).params, p.name))))
    return picked


FAMILIES = family_specs()
by_family = pytest.mark.parametrize(
    "spec_path", [p for _, p in FAMILIES], ids=[f"{t}-{spec_id(p)}" for t, p in FAMILIES])


def test_every_family_with_a_spec_is_covered():
    assert {t for t, _ in FAMILIES} == {t for p in SPEC_FILES for t in _block_types(p)}
    assert "bottleneck" in {t for t, _ in FAMILIES} and "basic" in {t for t, _ in FAMILIES}


def _graph(spec_path, *overrides):
    return archspec.resolve(spec_path, [f"input.image_size={SIZE}", *overrides])


def _build(spec_path, *overrides, seed=0, **kwargs):
    torch.manual_seed(seed)
    return archspec.build(spec_path, [f"input.image_size={SIZE}", *overrides], **kwargs)


def _input(graph, seed=1):
    return torch.randn((BATCH,) + graph.input_shape, generator=torch.Generator().manual_seed(seed))


# ---- forward_features / forward_head / reset_classifier -------------------------------------

@by_family
def test_forward_is_features_then_head(spec_path):
    graph = _graph(spec_path)
    model = _build(spec_path).eval()
    x = _input(graph)
    with torch.no_grad():
        features = model.forward_features(x)
        assert tuple(features.shape[1:]) == graph.groups["stages"].out_shape
        assert features.shape[1] == model.num_features
        torch.testing.assert_close(model.forward_head(features), model(x), rtol=0, atol=0)


@by_family
def test_pre_logits_is_what_the_classifier_reads(spec_path):
    graph = _graph(spec_path)
    model = _build(spec_path).eval()
    x = _input(graph)
    seen = []
    model.head.fc.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    with torch.no_grad():
        model(x)
        pre = model.forward_head(model.forward_features(x), pre_logits=True)
    assert pre.shape == (BATCH, model.head_hidden_size) == (BATCH, graph.classifier.in_channels)
    torch.testing.assert_close(pre, seen[0], rtol=0, atol=0)


@by_family
def test_reset_classifier_equals_building_with_that_many_classes(spec_path):
    model = _build(spec_path).eval()
    x = _input(_graph(spec_path))
    for classes in (10, 0, 1000):
        model.reset_classifier(classes)
        other = _graph(spec_path, f"head.num_classes={classes}")  # resolved independently
        ir = {f"{n.id}.{name}": shape for n in other.nodes for name, shape in n.param_shapes}
        assert {k: tuple(p.shape) for k, p in model.named_parameters()} == ir
        with torch.no_grad():
            assert tuple(model(x).shape[1:]) == other.output_shape
        assert model.num_classes == classes


def test_reset_classifier_rejects_bad_counts():
    model = _build(FAMILIES[0][1])
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="num_classes"):
            model.reset_classifier(bad)


# ---- features_only ----------------------------------------------------------------------------

@by_family
def test_features_only_returns_the_chosen_maps(spec_path):
    graph = _graph(spec_path)
    n = len(graph.features())
    indices = tuple(range(1, n - 1)) or (0,)
    model = _build(spec_path, features_only=True, out_indices=indices).eval()
    info = model.feature_info
    assert info.out_indices == indices and len(info) == n  # timm: info[i] covers every map
    x = _input(graph)
    hooked = {}
    for name in info.module_name():
        model.get_submodule(name).register_forward_hook(
            lambda m, i, out, name=name: hooked.__setitem__(name, out))
    with torch.no_grad():
        maps = model(x)
    assert len(maps) == len(indices)
    for f, fmap in zip(info, maps):
        assert fmap is hooked[f["module"]]  # the map is the named module's output
        assert fmap.shape[1] == f["num_chs"]
        assert f["reduction"] * fmap.shape[2] == SIZE and f["reduction"] * fmap.shape[3] == SIZE
        assert tuple(fmap.shape[1:]) == f.shape
    # Stages past the last map asked for and the head are not built.
    last = max(info[i].stage for i in indices)
    kept = ["stem"] + [s.id for s in graph.stages[:last]]
    assert sum(p.numel() for p in model.parameters()) == sum(graph.groups[k].params for k in kept)


@by_family
def test_features_only_loads_a_classification_checkpoint(spec_path):
    full = _build(spec_path, seed=1).eval()
    backbone = _build(spec_path, features_only=True, out_indices=(-1,), seed=2).eval()
    result = backbone.load_state_dict(full.state_dict(), strict=False)
    assert result.missing_keys == []
    assert result.unexpected_keys and all(k.startswith("head.") for k in result.unexpected_keys)
    x = _input(_graph(spec_path))
    with torch.no_grad():
        torch.testing.assert_close(backbone(x)[0], full.forward_features(x), rtol=0, atol=0)


def test_feature_info_from_the_ir_alone():
    graph = resolved(FAMILIES[0][1])
    info = graph.feature_info((-1,))
    last = graph.stages[-1]
    assert info.out_indices == (len(graph.features()) - 1,) and info.module_name() == [last.id]
    assert info.channels() == [last.out_shape[0]]
    assert info.reduction() == [graph.input_shape[1] // last.out_shape[1]]
    assert info.get_dicts(keys=["num_chs", "reduction"]) == [
        {"num_chs": last.out_shape[0], "reduction": graph.input_shape[1] // last.out_shape[1]}]


@pytest.mark.parametrize("indices, expected", [
    ((1, 5), "expected a feature index from 0 to 4 (or -5 to -1 from the end), got 5"),
    ((-6,), "got -6"),
    ((2, 1), "expected distinct feature indices in increasing order, got (2, 1)"),
    ((1, -4), "expected distinct feature indices in increasing order"),
    ((), "expected at least one feature index"),
    (("1",), "expected a feature index (an integer), got '1'"),
    (6, "expected the number of last maps to take, 1 to 5, got 6"),
])
def test_bad_out_indices_are_spec_errors(indices, expected):
    spec = next(p for p in SPEC_FILES if p.name == "resnet50.yaml")
    with pytest.raises(archspec.SpecError) as err:
        archspec.build(spec, features_only=True, out_indices=indices)
    text = str(err.value)
    assert text.startswith("out_indices: ") and expected in text
    assert "hint: " in text and "4: stages.3 (2048 channels, reduction 32)" in text


def test_out_indices_need_features_only():
    with pytest.raises(TypeError, match="features_only=True"):
        archspec.build(FAMILIES[0][1], out_indices=(1,))


# ---- training features ------------------------------------------------------------------------

@by_family
def test_grad_checkpointing_recomputes_each_stage_and_keeps_gradients(spec_path):
    graph = _graph(spec_path)
    x = _input(graph)
    grads = []
    calls = []
    for enable in (False, True):
        model = _build(spec_path, "zero_init_residual=false").train()
        model.set_grad_checkpointing(enable)
        count = {}
        for i, stage in enumerate(model.stages):
            # a pre-hook: the recomputation stops early, once it has what backward needs
            stage.register_forward_pre_hook(
                lambda m, a, i=i: count.__setitem__(i, count.get(i, 0) + 1))
        model(x).square().mean().backward()
        calls.append(count)
        grads.append({k: p.grad for k, p in model.named_parameters()})
    n = len(graph.stages)
    assert calls[0] == {i: 1 for i in range(n)}
    assert calls[1] == {i: 2 for i in range(n)}  # forward, then again in backward
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-4, atol=1e-5, msg=name)


@by_family
def test_grad_checkpointing_on_a_features_only_backbone(spec_path):
    model = _build(spec_path, features_only=True).train()
    model.set_grad_checkpointing(True)
    maps = model(_input(_graph(spec_path)))
    sum(m.mean() for m in maps).backward()
    assert all(p.grad is not None for p in model.parameters())


@by_family
def test_stochastic_depth_from_the_spec(spec_path):
    graph = _graph(spec_path, "drop_path_rate=0.5")
    rates = [n.attrs["rate"] for n in graph.nodes if n.kind == "drop_path"]
    assert rates and rates == sorted(rates)
    # the linear schedule over all blocks: block i of n drops with 0.5 * i / (n - 1), whether or
    # not the last blocks are residual (MobileNetV2's last block is not, so it has none); timm's
    # EfficientNet builder (`drop_path_schedule: linear_exclusive`) with 0.5 * i / n
    blocks = sorted(graph.blocks, key=lambda g: (g.stage, g.index))
    exclusive = archspec.load(spec_path).drop_path_schedule == "linear_exclusive"
    for i, block in enumerate(blocks):
        found = [n.attrs["rate"] for n in graph.under(block.id) if n.kind == "drop_path"]
        assert found in ([], [pytest.approx(0.5 * i / (len(blocks) - 1 + exclusive))]), block.id
    with_dp = _build(spec_path, "drop_path_rate=0.5", "zero_init_residual=false")
    plain = _build(spec_path, "zero_init_residual=false")
    plain.load_state_dict(with_dp.state_dict(), strict=True)  # drop path has no state
    x = _input(graph)
    with torch.no_grad():
        torch.testing.assert_close(with_dp.eval()(x), plain.eval()(x), rtol=0, atol=0)
        with_dp.train()
        torch.manual_seed(0)
        a = with_dp.forward_features(x)
        torch.manual_seed(0)
        b = with_dp.forward_features(x)
        torch.manual_seed(1)
        c = with_dp.forward_features(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


@by_family
def test_channels_last_gives_the_same_result(spec_path):
    graph = _graph(spec_path)
    model = _build(spec_path, "zero_init_residual=false").eval()
    x = _input(graph)
    with torch.no_grad():
        reference = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.to(memory_format=torch.channels_last))
        features = model.forward_features(x.to(memory_format=torch.channels_last))
    assert features.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-4)
    model.train()
    model(x.to(memory_format=torch.channels_last)).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@by_family
def test_autocast_bf16_on_cpu(spec_path):
    graph = _graph(spec_path)
    model = _build(spec_path, "zero_init_residual=false").eval()
    x = _input(graph)
    with torch.no_grad():
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
    assert out.dtype == torch.bfloat16
    # bf16 keeps ~3 significant digits: the logits agree in direction, not bit for bit
    cos = torch.nn.functional.cosine_similarity(out.float(), reference, dim=1)
    assert (cos > 0.99).all(), cos
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(x).float().logsumexp(1).mean()
    loss.backward()
    for p in model.parameters():
        assert p.dtype == torch.float32 and p.grad.dtype == torch.float32
        assert torch.isfinite(p.grad).all()


@by_family
def test_state_dict_reloads_strictly_into_a_fresh_module(spec_path):
    graph = _graph(spec_path)
    model = _build(spec_path, seed=1).train()
    x = _input(graph)
    model(x).mean().backward()  # one training forward moves the norms' running statistics
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = _build(spec_path, seed=2)
    with torch.no_grad():
        assert not torch.equal(fresh.eval()(x), model.eval()(x))
    result = fresh.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(x), model.eval()(x), rtol=0, atol=0)


# ---- torch.compile and torch.export (slow) ----------------------------------------------------

@pytest.mark.slow
@pytest.mark.compile
@by_family
def test_compile_fullgraph_without_graph_breaks(spec_path):
    graph = _graph(spec_path, "drop_path_rate=0.1")
    model = _build(spec_path, "drop_path_rate=0.1")
    x = _input(graph)
    for training in (True, False):
        model.train(training)
        torch._dynamo.reset()
        explained = torch._dynamo.explain(model)(x)
        assert explained.graph_break_count == 0, explained.break_reasons
        assert explained.graph_count == 1
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)
    model.train()
    compiled(x).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.slow
@pytest.mark.compile
@by_family
def test_compile_features_only_backbone_without_graph_breaks(spec_path):
    model = _build(spec_path, features_only=True, out_indices=(0, -1)).eval()  # stem, last
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model)(_input(_graph(spec_path)))
    assert explained.graph_break_count == 0, explained.break_reasons


@pytest.mark.slow
@pytest.mark.compile
@by_family
def test_export(spec_path):
    graph = _graph(spec_path)
    model = _build(spec_path, "zero_init_residual=false").eval()
    x = _input(graph)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x), rtol=1e-5, atol=1e-5)
    backbone = _build(spec_path, features_only=True).eval()
    maps = torch.export.export(backbone, (x,)).module()(x)
    assert [m.shape[1] for m in maps] == backbone.feature_info.channels()


@pytest.mark.slow
@pytest.mark.compile
def test_compile_with_grad_checkpointing():
    """Per-stage checkpointing under torch.compile (fullgraph). aot_eager: the backend that
    runs AOTAutograd as inductor does, without generating code (dynamo's bare "eager" backend
    trips over the norms' in-place `num_batches_tracked` update inside a checkpoint)."""
    spec_path = FAMILIES[0][1]
    x = _input(_graph(spec_path))
    grads = []
    for compiled in (False, True):
        model = _build(spec_path, "zero_init_residual=false").train()
        model.set_grad_checkpointing(True)
        torch._dynamo.reset()
        fn = torch.compile(model, backend="aot_eager", fullgraph=True) if compiled else model
        fn(x).square().mean().backward()
        grads.append([p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
