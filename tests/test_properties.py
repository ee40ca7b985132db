"""Property-based tests (hypothesis): every generated spec either builds a network that agrees
with its IR, or is rejected with a located message (docs/robustness.md).

The default run is bounded and reproducible: `derandomize=True` (the examples are a function of
the test, not of the clock) and a few dozen examples per property. The `slow` step runs many
more, and trains one step of each generated spec in a worker process, so that a native crash
inside torch fails the test with the spec that caused it instead of killing the run.
"""
from __future__ import annotations

import os
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

FAST = settings(max_examples=30, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FIXED = ROOT / "specs" / "resnet18.yaml"


class _QuotingDumper(yaml.SafeDumper):
    """Writes every string quoted: PyYAML leaves text such as `1e-06` bare, which archspec's
    loader (YAML 1.2 numbers) reads back as a number, so a "number as text" near-miss would
    not reach the file as text."""


_QuotingDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="'"))


def write_spec(data: dict, folder: str) -> pathlib.Path:
    path = pathlib.Path(folder) / "generated.yaml"
    path.write_text(yaml.dump(data, Dumper=_QuotingDumper, sort_keys=False))
    return path


def _same_file(shown: str, path: pathlib.Path) -> bool:
    """Messages name a file relative to the working folder when that is shorter."""
    return os.path.realpath(shown) == os.path.realpath(path)


def check_located(exc: SpecError, path: pathlib.Path) -> None:
    """Every problem names the file and a line in it (or an override), with a message."""
    assert exc.problems
    for problem in exc.problems:
        assert problem.location is not None, problem.format()
        assert _same_file(problem.location.file, path) and problem.location.line >= 1, \
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
    check_views(graph, path)


def check_near_miss(case: tuple[dict, str]) -> None:
    data, broken = case
    with tempfile.TemporaryDirectory() as folder:
        path = write_spec(data, folder)
        with pytest.raises(SpecError) as info:
            archspec.resolve(path)
        check_located(info.value, path)


def check_views(graph: archspec.ArchGraph, path: pathlib.Path) -> None:
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
    check_near_miss(case)


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
        shown = err.getvalue().split(":", 1)[0]
        assert _same_file(shown, path) and "Traceback" not in err.getvalue()


# ---- slow step: many more examples, one training step each in a worker process -------------

SLOW = settings(max_examples=400, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


class TrainWorker:
    """tests/fuzz_worker.py, restarted after a crash; `run(path)` returns its answer, or the
    signal or exit code that ended it."""

    def __init__(self) -> None:
        self.proc = None

    def run(self, path: pathlib.Path) -> dict:
        import json
        import os
        import subprocess
        import sys
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "tests" / "fuzz_worker.py")], cwd=ROOT, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            return {"ok": False, "error": f"the worker process died (exit code {code}; a "
                                          f"negative code is the signal, e.g. -11 SIGSEGV)"}
        return json.loads(line)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def worker():
    w = TrainWorker()
    yield w
    w.close()


@pytest.mark.slow
def test_many_generated_specs_train_one_step_or_are_rejected_located(worker, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("fuzz"))

    @SLOW
    @given(specs())
    def check(data):
        graph, path = resolve_or_reject(data, folder)
        if graph is None:
            return
        answer = worker.run(path)
        assert answer["ok"], f"{answer['error']}\nspec:\n{path.read_text()}"
        check_views(graph, path)
    check()


@pytest.mark.slow
@SLOW
@given(near_misses())
def test_many_near_misses_are_rejected_located(case):
    check_near_miss(case)
