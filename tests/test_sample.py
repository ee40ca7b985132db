"""`archspec sample`: design-space draws around a base spec, kept by constraints.

Expected values come from outside the sampler: each written spec re-resolved on its own
(`archspec.resolve` of the file), the drawn settings read back from the files, and the
distribution of draws (uniform / log-uniform: the share below the geometric middle).
"""
from __future__ import annotations

import csv
import json
import random
import subprocess
import sys

import pytest
import yaml

import archspec
import cli
from archspec.sampling import Sampler, parse_constraint, parse_vary
from conftest import ROOT


def test_kept_specs_resolve_to_the_table_and_meet_the_constraints(tmp_path):
    assert cli.main(["sample", "specs/resnet50.yaml", "--vary", "stages.depths=1..8",
                     "--vary", "block.groups=1,2,4,8", "--constraint", "macs<=4.5G params<=30M",
                     "-n", "60", "-o", str(tmp_path), "--seed", "3", "--no-plot"]) == 0
    data = json.loads((tmp_path / "samples.json").read_text())
    assert data["draws"] == 60
    assert data["kept"] + sum(data["invalid"].values()) + sum(
        data["over_constraint"].values()) == 60  # every draw accounted for
    assert data["kept"] == len(data["samples"]) > 0
    with open(tmp_path / "samples.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == data["kept"]
    for row in data["samples"]:
        graph = archspec.resolve(row["file"])  # the written file, resolved on its own
        assert (graph.params, graph.macs, graph.acts) == (row["params"], row["macs"],
                                                          row["acts"])
        assert graph.macs <= 4.5e9 and graph.params <= 30e6
        written = yaml.safe_load(open(row["file"]).read())
        assert written["stages"]["depths"] == row["stages.depths"]
        assert [s.depth for s in graph.stages] == row["stages.depths"]
        assert written["block"]["groups"] == row["block.groups"] in (1, 2, 4, 8)


def test_invalid_draws_are_counted_by_reason(tmp_path, capsys):
    # groups that do not divide the 3x3 width (64 x 4 / 64 = ... per stage) are spec errors
    assert cli.main(["sample", "specs/resnet50.yaml", "--vary", "block.groups=1,3,5,7",
                     "-n", "40", "-o", str(tmp_path), "--no-plot"]) == 0
    data = json.loads((tmp_path / "samples.json").read_text())
    assert set(data["invalid"]) == {"invalid stages[0].block.groups"} or \
        all(k.startswith("invalid") and "groups" in k for k in data["invalid"])
    assert sum(data["invalid"].values()) + data["kept"] == 40 and data["kept"] > 0
    assert "invalid" in capsys.readouterr().out


def test_same_seed_same_draws_and_distributions():
    vary = [parse_vary("stages.widths=64..4096:log"), parse_vary("block.bottleneck_ratio=0.1..0.5")]
    sampler = Sampler(str(ROOT / "specs/resnet50.yaml"), vary)
    a = [sampler.draw(random.Random(7)) for _ in range(3)]
    assert a == [sampler.draw(random.Random(7)) for _ in range(3)]
    rng = random.Random(0)
    widths = [w for _ in range(500) for w in sampler.draw(rng)["stages.widths"]]
    assert all(64 <= w <= 4096 and isinstance(w, int) for w in widths)
    below = sum(w < 512 for w in widths) / len(widths)  # 512 = sqrt(64 x 4096)
    assert 0.45 < below < 0.55  # log-uniform: half below the geometric middle
    q = parse_vary("stages.widths=64..512/32")
    assert {v % 32 for v in (q.draw_one(rng) for _ in range(200))} == {0}
    ratios = [sampler.draw(rng)["block.bottleneck_ratio"] for _ in range(500)]
    assert 0.4 < sum(r < 0.3 for r in ratios) / 500 < 0.6  # uniform: half below the middle


@pytest.mark.parametrize("text,message", [
    ("stages.depths=8..1", "expected LOW <= HIGH"),
    ("stages.depths", "expected PATH=RANGE"),
    ("block.groups=0..4:log", "expected LOW > 0"),
])
def test_bad_ranges_are_located_errors(tmp_path, capsys, text, message):
    assert cli.main(["sample", "specs/resnet50.yaml", "--vary", text, "-n", "2", "-o",
                     str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and f"--vary {text}" in err and "Traceback" not in err


def test_bad_constraint_and_path(tmp_path, capsys):
    assert cli.main(["sample", "specs/resnet50.yaml", "--vary", "stages.depths=1..3",
                     "--constraint", "latency<=3", "-n", "2", "-o", str(tmp_path)]) == 2
    assert "METRIC one of params, macs, flops, acts, mem" in capsys.readouterr().err
    assert cli.main(["sample", "specs/resnet50.yaml", "--vary", "stages.depths.7=1..3",
                     "-n", "2", "-o", str(tmp_path)]) == 2
    assert "cannot set 'stages.depths.7'" in capsys.readouterr().err


def test_acts_and_memory_constraints():
    sampler = Sampler(str(ROOT / "specs/resnet50.yaml"), [parse_vary("stages.depths=1..6")],
                      [parse_constraint("acts<=9M"), parse_constraint("mem<=3G")], batch_size=32)
    result = sampler.run(30, seed=1)
    assert result.kept and all(c.graph.acts <= 9e6 and c.metrics["mem"] <= 3e9
                               for c in result.kept)
    assert sum(result.rejected.values()) + len(result.kept) == 30


def test_never_overwrites_and_does_not_import_torch(tmp_path):
    args = ["sample", "specs/resnet18.yaml", "--vary", "stages.depths=1..3", "-n", "5", "-o",
            str(tmp_path), "--no-plot"]
    code = f"import sys, cli; print(cli.main({args!r}), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "0 False", out.stderr
    assert cli.main(args) == 2  # samples.csv exists
    assert cli.main(args + ["--overwrite"]) == 0
