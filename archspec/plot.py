"""Plots of the counts the IR holds (matplotlib, headless: the Agg and SVG backends).

sections_figure: params / MACs / activations per section (stem, stages, head), one or several
specs side by side. chain_figure: params and MACs per step of a chain, named. scatter_figure:
sampled specs, MACs against params, coloured by a setting. Numbers come from the IR; nothing
here computes one. No torch import.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # no display needed; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402

from .ir import ArchGraph  # noqa: E402

plt.rcParams["svg.hashsalt"] = "archspec"  # stable ids: the same plot gives the same SVG

#: metric -> (axis label, divisor, read from a section group or a graph)
METRICS = {"params": ("parameters (M)", 1e6), "macs": ("MACs (G)", 1e9),
           "acts": ("activations (M)", 1e6)}


def _value(obj: Any, graph: ArchGraph, metric: str) -> float:
    if metric == "acts":
        return graph.section_acts(obj.id) if obj is not graph else graph.acts
    return getattr(obj, metric)


def sections_figure(graphs: Sequence[tuple[str, ArchGraph]],
                    metrics: Sequence[str] = ("params", "macs", "acts")):
    """One panel per metric; in each, a bar per (section, spec)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    names = list(dict.fromkeys(s.id for _, g in graphs for s in g.sections))
    width = 0.8 / max(len(graphs), 1)
    for ax, metric in zip(axes[0], metrics):
        label, scale = METRICS[metric]
        for k, (name, graph) in enumerate(graphs):
            by_id = {s.id: s for s in graph.sections}
            values = [_value(by_id[n], graph, metric) / scale if n in by_id else 0 for n in names]
            ax.bar([i + (k - (len(graphs) - 1) / 2) * width for i in range(len(names))], values,
                   width, label=name)
        ax.set_xticks(range(len(names)), [n.replace("stages.", "stage ") for n in names],
                      rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    if len(graphs) > 1:
        axes[0][0].legend(fontsize=8)
    fig.suptitle("per section: " + ", ".join(n for n, _ in graphs), fontsize=10)
    fig.tight_layout()
    return fig


def chain_figure(steps: Sequence[tuple[str, ArchGraph]]):
    """MACs (bars) and parameters (line) per step, steps named on the x axis."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(steps) + 2), 4.2))
    xs = range(len(steps))
    ax.bar(xs, [g.macs / 1e9 for _, g in steps], color="tab:blue", alpha=0.75, label="GMACs")
    ax.set_ylabel("MACs (G)", color="tab:blue")
    twin = ax.twinx()
    twin.plot(xs, [g.params / 1e6 for _, g in steps], "o-", color="tab:orange",
              label="params (M)")
    twin.set_ylabel("parameters (M)", color="tab:orange")
    twin.set_ylim(bottom=0)
    ax.set_xticks(xs, [f"{i} {name}" for i, (name, _) in enumerate(steps)], rotation=40,
                  ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.suptitle("per step", fontsize=10)
    fig.tight_layout()
    return fig


def scatter_figure(rows: Sequence[dict[str, Any]], color: str | None = None,
                   x: str = "macs", y: str = "params"):
    """One point per row (`macs`, `params` and the settings as keys), coloured by `color`:
    a colour bar for numbers, a legend for names."""
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    xs = [r[x] / METRICS[x][1] for r in rows]
    ys = [r[y] / METRICS[y][1] for r in rows]
    values = [_scalar(r.get(color)) for r in rows] if color else None
    numeric = values and all(isinstance(v, (int, float)) for v in values)
    if numeric and len(set(values)) > 8:  # a range: a colour bar; a few choices: a legend
        points = ax.scatter(xs, ys, c=values, cmap="viridis", s=18)
        summed = any(isinstance(r.get(color), list) for r in rows)
        fig.colorbar(points, ax=ax, label=f"{color} (sum)" if summed else color)
    elif values:
        values = values if numeric else [str(v) for v in values]
        for value in sorted(set(values)):
            pick = [i for i, v in enumerate(values) if v == value]
            ax.scatter([xs[i] for i in pick], [ys[i] for i in pick], s=18, label=value)
        ax.legend(title=color, fontsize=8)
    else:
        ax.scatter(xs, ys, s=18)
    ax.set_xlabel(METRICS[x][0])
    ax.set_ylabel(METRICS[y][0])
    ax.grid(alpha=0.3)
    fig.suptitle(f"{len(rows)} sampled specs", fontsize=10)
    fig.tight_layout()
    return fig


def _scalar(value: Any) -> Any:
    """A per-stage list is shown by its sum (total depth, total width)."""
    return sum(value) if isinstance(value, list) and all(
        isinstance(v, (int, float)) for v in value) else value


def save(fig, path: str, formats: Sequence[str] = ()) -> list[str]:
    """Write `path` (its extension picks the format), or `path.FMT` for each of `formats`."""
    targets = [f"{path}.{f}" for f in formats] if formats else [path]
    for target in targets:
        os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
        fig.savefig(target, dpi=110, metadata={"Date": None} if target.endswith(".svg")
                    else None)
    plt.close(fig)
    return targets
