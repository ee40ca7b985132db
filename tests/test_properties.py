"""Property-based tests (hypothesis): every generated spec either builds a network that agrees
with its IR, or is rejected with a located message (docs/robustness.md).

The default run is bounded and reproducible: `derandomize=True` (the examples are a function of
the test, not of the clock) and a few dozen examples per property. The `slow` step runs many
more, and trains one step of each generated spec in a worker process, so that a native crash
inside torch fails the test with the spec that caused it instead of killing the run.
"""
from __future__ import annotations

import pathlib
import tempfile

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

import archspec
import cli
from archspec.errors import SpecError
from conftest import ROOT
from strategies import near_misses, specs

FAST = settings(max_examples=40, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FIXED = ROOT / "specs" / "resnet18.yaml"


def write_spec(data: dict, folder: str) -> pathlib.Path:
    path = pathlib.Path(folder) / "generated.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def check_located(exc: SpecError, path: pathlib.Path) -> None:
    """Every problem names the file and a line in it (or an override), with a message."""
    assert exc.problems
    for problem in exc.problems:
        assert problem.location is not None, problem.format()
        assert problem.location.file == str(path) and problem.location.line >= 1, \
            problem.format()
        assert problem.message and "internal error" not in problem.message


def check_network(graph: archspec.ArchGraph, path: pathlib.Path) -> None:
    """The module agrees with the IR: parameter count and output shape; the views work."""
    import torch
    model = archspec.to_module(graph)
    assert sum(p.numel() for p in model.parameters()) == graph.params
    c, h, w = graph.input_shape
    model.train()
    with torch.no_grad():
        out = model(torch.randn(2, c, h, w))
    assert tuple(out.shape) == (2,) + tuple(graph.output_shape)
    for level in ("stage", "block", "layer"):
        assert archspec.to_dot(graph, level).source
    assert archspec.diff(FIXED, path).as_dict()


def resolve_or_reject(data: dict, folder: str):
    """The resolved graph of a generated spec, or None when it is rejected with located
    messages. Any other exception (an internal error) fails the test."""
    path = write_spec(data, folder)
    try:
        return archspec.resolve(path), path
    except SpecError as exc:
        check_located(exc, path)
        return None, path


@FAST
@given(specs())
def test_generated_spec_builds_as_resolved_or_is_rejected_located(data):
    with tempfile.TemporaryDirectory() as folder:
        graph, path = resolve_or_reject(data, folder)
        if graph is not None:
            check_network(graph, path)


@FAST
@given(near_misses())
def test_near_miss_is_rejected_with_a_located_message(case):
    data, broken = case
    with tempfile.TemporaryDirectory() as folder:
        path = write_spec(data, folder)
        with pytest.raises(SpecError) as info:
            archspec.resolve(path)
        check_located(info.value, path)


@FAST
@given(near_misses())
def test_near_miss_on_the_command_line_exits_2_without_traceback(case):
    import contextlib
    import io
    data, broken = case
    with tempfile.TemporaryDirectory() as folder:
        path = write_spec(data, folder)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(["validate", str(path)])
        assert code == 2, broken
        assert err.getvalue().startswith(f"{path}:") and "Traceback" not in err.getvalue()
