"""`cli.py bench` (in-process) and the hand-written baselines of bench/parity.py.

Timings are not asserted (speed is measured by bench/parity.py, recorded in
docs/benchmarks.md); these tests check that the command reports what it claims, that bad
settings exit 2 without a traceback, and that each hand-written network is the same function as
the archspec module it is compared with.
"""
from __future__ import annotations

import json
import sys

import pytest
import torch

from archspec import cli
from conftest import ROOT, SPEC_DIR

sys.path.insert(0, str(ROOT / "bench"))
import handwritten  # noqa: E402
import parity  # noqa: E402

TINY = ["--size", "32", "--batch", "2", "--steps", "2", "--warmup", "1"]


def test_bench_json_reports_every_step(capsys):
    rc = cli.main(["bench", str(SPEC_DIR / "resnet18.yaml"), *TINY, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0
    result = json.loads(out)  # stdout is exactly one JSON object; progress went to stderr
    assert result["name"] == "resnet18" and result["mode"] == "train"
    assert result["batch"] == 2 and result["size"] == 32 and result["steps"] == 2
    times = result["step_times_s"]
    assert len(times) == 2 and all(t > 0 for t in times)
    assert result["min_s"] == min(times) and result["max_s"] == max(times)
    assert result["min_s"] <= result["median_s"] <= result["max_s"]
    assert result["images_per_s"] == pytest.approx(2 / result["median_s"])
    assert result["peak_memory_bytes"] > 0 and "RSS" in result["peak_memory_kind"]
    assert "warm-up 1/1" in err and "step 2/2" in err


def test_bench_text_infer_bf16_channels_last(capsys):
    rc = cli.main(["bench", str(SPEC_DIR / "resnet18.yaml"), *TINY, "--mode", "infer",
                   "--amp", "bf16", "--channels-last"])
    out, _ = capsys.readouterr()
    assert rc == 0
    assert "infer, batch 2, 32x32, cpu" in out and "bf16, channels_last, eager" in out
    for label in ("images/s", "step time    median", "peak memory", "11,689,512 params"):
        assert label in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_bench_cuda_without_a_gpu_is_a_clear_error(capsys):
    rc = cli.main(["bench", str(SPEC_DIR / "resnet18.yaml"), "--device", "cuda"])
    _, err = capsys.readouterr()
    assert rc == 2
    assert err.startswith("--device: expected a CUDA device, none is available")
    assert "hint: use --device cpu" in err and "Traceback" not in err


@pytest.mark.parametrize("args, expected", [
    (["--steps", "0"], "--steps: expected at least 1, got 0"),
    (["--warmup", "-1"], "--warmup: expected at least 0, got -1"),
    (["--batch", "0"], "--batch: expected a positive number, got 0"),
    (["--set", "stages.depths=[3,4]"], "stages.depths: expected 4 entries (one per width), got 2"),
])
def test_bench_bad_settings_exit_2(args, expected, capsys):
    rc = cli.main(["bench", str(SPEC_DIR / "resnet50.yaml"), *TINY, *args])
    _, err = capsys.readouterr()
    assert rc == 2 and expected in err and "Traceback" not in err


@pytest.mark.parametrize("name", sorted(handwritten.MODELS))
def test_handwritten_network_is_the_same_function(name):
    """Same parameter count as the archspec module, and, with archspec's weights copied in
    tensor by tensor, the same outputs: the parity benchmark compares like with like."""
    pair = parity.build_pair(name, size=64, seed=0)
    if pair is None:
        pytest.skip(f"specs/{name}.yaml is not in this tree yet")
    ours, theirs = pair
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel()
                                                            for p in theirs.parameters())
    if not parity.copy_weights(ours, theirs):
        pytest.skip(f"{name}: the tensors do not line up one to one; counts checked only")
    x = torch.randn(2, 3, 64, 64)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_handwritten_resnets_have_the_reference_counts():
    """torchvision's published parameter counts (ARCHITECTURES.md), independent of archspec."""
    counts = {"resnet50": 25_557_032, "resnext50_32x4d": 25_028_904, "convnext_tiny": 28_589_128}
    for name, make in handwritten.MODELS.items():
        assert sum(p.numel() for p in make().parameters()) == counts[name], name


@pytest.mark.slow
def test_parity_script_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "parity.json"
    parity.main(["--models", "resnet50,convnext_tiny", "--size", "32", "--batch", "2",
                 "--rounds", "2", "--steps", "1", "--warmup", "0", "--memory",
                 "--json", str(out)])
    table = capsys.readouterr().out
    result = json.loads(out.read_text())
    entry = result["models"]["resnet50"]
    assert entry["params_equal"] and entry["weights_copied"] and entry["max_output_diff"] == 0
    assert set(entry["modes"]) == {"train", "infer"}
    for mode in entry["modes"].values():
        assert len(mode["round_ratios"]) == 2 and mode["ratio"] > 0
    memory = entry["memory"]["peak_bytes"]
    assert memory["archspec+checkpointing"] < memory["archspec"]
    assert "resnet50" in table and "ratio" in table
    assert "convnext_tiny" in result["models"] or "convnext_tiny" in result["skipped"]
