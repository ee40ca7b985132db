"""Loading, validating, resolving and counting never import torch (a fresh interpreter shows it)."""
from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

CODE = """
import sys, archspec, cli
graph = archspec.resolve("specs/resnet152.yaml")
assert graph.params == 60_192_808, graph.params  # ARCHITECTURES.md: resnet152
archspec.to_networkx(graph)
assert cli.main(["validate", "specs/resnet50.yaml"]) == 0
heavy = sorted(m for m in ("torch", "networkx") if m in sys.modules)
print(",".join(heavy))
"""


def test_resolve_and_validate_do_not_import_torch():
    out = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "networkx"  # to_networkx needs it; torch never


def test_validate_does_not_import_networkx_either():
    """Keeping `validate` light is what keeps it fast."""
    code = ("import sys, cli; cli.main(['validate', 'specs/resnet50.yaml']); "
            "print('torch' in sys.modules, 'networkx' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "False False"
