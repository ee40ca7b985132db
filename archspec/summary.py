"""Summaries of a resolved IR: the rows `cli.py build` prints, as data and as a table."""
from __future__ import annotations

from typing import Any

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


def summarize(graph: ArchGraph) -> dict[str, Any]:
    """Everything `build --json` reports, from the IR."""
    from .activations import training_memory
    memory = training_memory(graph, MEMORY_BATCH, MEMORY_DTYPE)
    sections = [_section(graph, g, memory) for g in graph.sections]
    return {
        "name": graph.name,
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


def format_table(summary: dict[str, Any]) -> str:
    header = ("section", "blocks", "family", "output", "params", "MACs", "acts")
    rows = []
    for s in [summary["stem"], *summary["stages"], summary["head"]]:
        rows.append((s["name"], str(s.get("depth", "-")), s["family"],
                     shape_text(s["output_shape"]), f"{s['params']:,}", human(s["macs"]),
                     human(s["acts"])))
    rows.append(("total", str(sum(s["depth"] for s in summary["stages"])), "", "",
                 f"{summary['params']:,}", human(summary["macs"]), human(summary["acts"])))
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    right = {1, 4, 5, 6}

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [f"{summary['name']}: {summary['description']}".rstrip(": "),
           f"input {shape_text(summary['input_shape'])} -> output "
           f"{shape_text(summary['output_shape'])}"]
    scaling = Scaling.from_dict(summary["scaling"])
    if not scaling.identity:
        out.append(f"scaled: {scaling.rule()}")
    out += ["", line(header), rule]
    out += [line(r) for r in rows[:-1]] + [rule, line(rows[-1]), ""]
    out.append(f"params {summary['params']:,}   MACs {summary['macs']:,} ({human(summary['macs'])})"
               f"   FLOPs {human(summary['flops'])} (2 x MACs)")
    mem = summary["train_memory"]
    out.append(f"acts {summary['acts']:,} (conv/linear/pool outputs)   training activation "
               f"memory ~{human(mem['bytes'], 'B')} at batch {mem['batch_size']}, {mem['dtype']}")
    for note in summary["notes"]:
        out.append(f"note: {note}")
    return "\n".join(out)
