#!/usr/bin/env bash
# Run by .ci/run from an empty folder outside the checkout, with the installed wheel's venv first
# on PATH: the commands a new user types first must work and print the zoo's numbers.
set -euo pipefail
fail() { echo "wheel check FAILED: $*" >&2; exit 1; }
[ ! -e specs ] || fail "run from an empty folder"

echo "+ archspec --help"
archspec --help >/dev/null

echo "+ archspec list"
archspec list > list.txt || fail "archspec list exited $?"
grep -Eq '^resnet50 .* 25,557,032 ' list.txt || fail "no resnet50 row in: $(cat list.txt)"
rows=$(grep -c 'x224' list.txt)
[ "$rows" -ge 20 ] || fail "expected the whole zoo, got $rows rows"

echo "+ archspec build resnet50 --json"
archspec build resnet50 --json > build.json || fail "archspec build exited $?"
python - <<'PY'
import json
summary = json.load(open("build.json"))
assert summary["name"] == "resnet50", summary["name"]
assert summary["params"] == 25_557_032, summary["params"]  # torchvision's ResNet-50
assert summary["output_shape"] == [1000], summary["output_shape"]
PY

echo "+ python snippet"
python - <<'PY'
import os
import torch
import archspec

assert not os.path.exists("specs")
graph = archspec.resolve("resnext50_32x4d")  # a zoo name, from the installed package data
assert graph.params == 25_028_904, graph.params  # torchvision's ResNeXt-50 32x4d
model = archspec.build("resnet18", head__num_classes=10).eval()
with torch.no_grad():
    out = model(torch.randn(2, 3, 64, 64))
assert tuple(out.shape) == (2, 10), out.shape
print("snippet ok:", archspec.__file__)
PY
echo "wheel check passed"
