"""`archspec plot` and the plots modernize and sample write: files that matplotlib wrote, with
the numbers of the IR (read back from the SVG's text and the figure's artists)."""
from __future__ import annotations

import subprocess
import sys

import archspec
import cli
from conftest import ROOT, SPEC_DIR


def test_sections_bars_carry_the_ir_numbers(tmp_path):
    from archspec.plot import sections_figure
    graphs = [(n, archspec.resolve(SPEC_DIR / f"{n}.yaml")) for n in ("resnet50", "convnext_tiny")]
    fig = sections_figure(graphs)
    params_axis, macs_axis, acts_axis = fig.axes[:3]
    heights = [round(bar.get_height() * 1e6) for bar in params_axis.patches]
    expected = [s.params for _, g in graphs for s in g.sections]
    assert sorted(heights) == sorted(expected)  # one bar per section and spec
    acts = sorted(round(b.get_height() * 1e6) for b in acts_axis.patches)
    assert acts == sorted(g.section_acts(s.id) for _, g in graphs for s in g.sections)


def test_cli_writes_svg_and_png_without_a_display(tmp_path):
    for name in ("bars.svg", "bars.png"):
        assert cli.main(["plot", "specs/resnet18.yaml", "specs/resnet34.yaml", "-o",
                         str(tmp_path / name)]) == 0
    assert (tmp_path / "bars.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "bars.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["plot", "--chain", str(SPEC_DIR / "roadmap" / "resnet50_to_convnext_t"),
                     "-o", str(tmp_path / "chain.svg")]) == 0
    assert "13_separate_downsampling" in (tmp_path / "chain.svg").read_text()
    assert cli.main(["plot", "specs/resnet18.yaml", "-o", str(tmp_path / "x.pdf")]) == 2


def test_same_plot_same_svg(tmp_path):
    for name in ("a.svg", "b.svg"):
        assert cli.main(["plot", "specs/resnet18.yaml", "-o", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()


def test_sample_scatter_and_no_torch(tmp_path):
    code = ("import sys, cli; print(cli.main(['sample', 'specs/resnet18.yaml', '--vary', "
            f"'stages.depths=1..4', '-n', '12', '-o', {str(tmp_path)!r}]), "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "0 False", out.stderr
    assert (tmp_path / "samples.png").exists() and (tmp_path / "samples.svg").exists()
    assert cli.main(["plot", "--samples", str(tmp_path / "samples.json"), "-o",
                     str(tmp_path / "again.svg")]) == 0
    assert "12 sampled specs" in (tmp_path / "again.svg").read_text()
