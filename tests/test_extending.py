"""A block family from outside the package (docs/extending.md's example,
docs/examples/extending/archspec_preact.py), found two ways: as an `archspec.blocks` entry point
of an installed distribution (every command, in a fresh process), and imported by the user
after archspec itself (the Python API)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT

EXAMPLE = ROOT / "docs" / "examples" / "extending"
SPEC = EXAMPLE / "preact_resnet18.yaml"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder on PYTHONPATH holding the family module and a distribution's metadata with its
    entry point: what `pip install docs/examples/extending` leaves in site-packages."""
    root = tmp_path_factory.mktemp("site")
    shutil.copy(EXAMPLE / "archspec_preact.py", root)
    info = root / "archspec_preact-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: archspec-preact\n"
                                   "Version: 0.1.0\n")
    (info / "entry_points.txt").write_text("[archspec.blocks]\npreact = archspec_preact\n")
    return root


def archspec(*args: str, site=None, cwd=EXAMPLE) -> subprocess.CompletedProcess:
    paths = ([str(site)] if site else []) + [str(ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_without_the_family_the_type_is_a_located_error():
    proc = archspec("validate", str(SPEC))
    assert proc.returncode == 2
    assert "preact_resnet18.yaml:9:9" in proc.stderr and "preact_basic" in proc.stderr


def test_every_command_knows_an_entry_point_family(site, tmp_path):
    assert archspec("validate", str(SPEC), site=site).returncode == 0
    build = archspec("build", str(SPEC), "--json", site=site)
    assert build.returncode == 0, build.stderr
    summary = json.loads(build.stdout)
    # He et al. 2016's pre-activation ResNet-18 on ImageNet: ResNet-18's convs and fc
    # (11,689,512 in ../shared/ARCHITECTURES.md), with each block's two norms moved in front
    # of its convs: the first norm of a stage's first block sees the previous, narrower width.
    narrower = 2 * (128 - 64) + 2 * (256 - 128) + 2 * (512 - 256)  # weight and bias
    assert summary["params"] == 11_689_512 - narrower
    out = tmp_path / "preact.svg"
    render = archspec("render", str(SPEC), "-o", str(out), "--level", "layer", site=site)
    assert render.returncode == 0, render.stderr
    assert "norm1" in out.read_text() or "BN" in out.read_text()
    diff = archspec("diff", str(ROOT / "specs" / "resnet18.yaml"), str(SPEC), site=site)
    assert diff.returncode == 0, diff.stderr
    assert "+ pre-activation" in diff.stdout
    listing = archspec("list", str(EXAMPLE), site=site)
    assert listing.returncode == 0 and "preact_resnet18" in listing.stdout
    assert "pre-activation basic" in listing.stdout
    schema = archspec("schema", site=site)
    assert schema.returncode == 0 and '"preact_basic"' in schema.stdout


def test_the_family_check_is_a_located_spec_error(site, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.read_text() + "  kernel_size: 4\n")
    proc = archspec("validate", str(bad), site=site)
    assert proc.returncode == 2
    assert "bad.yaml:10:16" in proc.stderr
    assert "expected an odd kernel size, got 4" in proc.stderr
    assert "kernel_size: 5" in proc.stderr


def test_a_family_imported_after_archspec_joins_the_python_api():
    code = textwrap.dedent(f"""
        import sys
        import archspec, torch
        sys.path.insert(0, {str(EXAMPLE)!r})
        import archspec_preact  # after archspec: the spec union is rebuilt
        model = archspec.build({str(SPEC)!r}, num_classes=10)
        model(torch.randn(2, 3, 64, 64)).sum().backward()
        assert all(p.grad is not None for p in model.parameters())
        assert [s.key for s in archspec.diff("resnet18", {str(SPEC)!r}).steps] == \\
            ["pre_activation"]
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
