"""Reference parity beyond counts, where timm is installed (it is not an archspec dependency, so
this suite is skipped otherwise): for every zoo spec whose name is a timm model, timm's
state_dict loads strictly into archspec's module through the names derived from the IR
(`archspec.load_weights`, docs/weights.md), and with those weights both compute the same
outputs. This is what "published checkpoints load" means: only the module names differ
(archspec's `stages.i.blocks.j.norm1` for timm's `layerI.j.bn1`), never the layout. (A mapping
by position would fail for ConvNeXt, whose blocks register their `gamma` first.)
"""
from __future__ import annotations

import pytest

timm = pytest.importorskip("timm")
torch = pytest.importorskip("torch")

import archspec  # noqa: E402
from conftest import SPEC_DIR  # noqa: E402

NAMES = sorted(p.stem for p in SPEC_DIR.glob("*.yaml") if timm.is_model(p.stem))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_timm_weights_load_and_outputs_match(name):
    torch.manual_seed(0)
    reference = timm.create_model(name).eval()
    with torch.no_grad():  # non-trivial norms, so every layer shows in the output
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    ours = archspec.build(SPEC_DIR / f"{name}.yaml").eval()
    report = archspec.load_weights(ours, reference.state_dict(), source="timm")  # strict
    assert report.layout == "timm" and report.complete
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
