"""`archspec diff A B` and `archspec diff --chain S0 S1 ...`: what changed, in the field's words."""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from typing import Any, Sequence

from ..summary import human, shape_text


def _signed(n: int, fmt=lambda v: f"{v:,}") -> str:
    return ("+" if n > 0 else "-" if n < 0 else "±") + fmt(abs(n))


def format_diff(d, blocks: list[dict[str, Any]] | None = None, verbose: bool = True,
                overrides: tuple[Sequence[str], Sequence[str]] = ((), ())) -> str:
    """The text report. blocks: what changed in each block (`block_changes`), runs of
    identical changes collapsed; with verbose (or without blocks) every layer's change.
    overrides: the `--set-a` / `--set` settings, named in the header."""
    from ..summary import display_name
    a, b = (display_name({"name": n, "overrides": o}) for n, o in zip((d.a_name, d.b_name),
                                                                       overrides))
    lines = [f"diff {a} -> {b}: "
             + ("architectural change" if d.architectural else "no architectural change")]
    lines += [f"override ({side}): {o}" for side, given in zip("AB", overrides) for o in given]
    lines += ["", "settings"]
    lines += [f"  {c.text()}" + (f"  [{c.new_source}]" if c.new_source else "")
              for c in d.settings] or ["  (none)"]
    lines += ["", "named steps"]
    for s in d.steps:
        lines.append(f"  {s.symbol} {s.name}" + (f": {s.detail}" if s.detail
                                                                  else ""))
    for c in d.unrecognised:
        lines.append(f"  ? unrecognised change: {c.text()}")
    if not d.steps and not d.unrecognised:
        lines.append("  (none)")
    lines += ["", "effect"]
    rows = [("", "params", "", "MACs", "", "output")]
    for r in d.effect["sections"] + [{"name": "total", **d.effect["total"]}]:
        pa, pb = r["params"]
        ma, mb = r["macs"]
        sa, sb = r["output_shape"]
        rows.append((r["name"], f"{pa:,} -> {pb:,}", _signed(r["params_delta"]),
                     f"{human(ma)} -> {human(mb)}", _signed(r["macs_delta"], human),
                     f"{shape_text(sa) if sa else '-'} -> {shape_text(sb) if sb else '-'}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  " + "  ".join(c.rjust(w) if i in (1, 2, 3, 4) else c.ljust(w)
                                      for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    lines += _structure_lines(d, blocks, verbose)
    return "\n".join(lines)


def _structure_lines(d, blocks: list[dict[str, Any]] | None, verbose: bool) -> list[str]:
    if not d.structure:
        return ["", "structure", "  (no layer added, removed or changed)"]
    lines = []
    if blocks is not None:
        lines += ["", "structure (what changed in each block" +
                  ("" if verbose else "; --verbose lists every layer") + ")"]
        for row in blocks:
            count = f" (x{row['count']})" if row["count"] > 1 else ""
            lines.append(f"  {row['range']}: {row['change']}{count}")
        if not verbose:
            return lines
    kinds_a, kinds_b = d.kinds
    lines += ["", "structure (every layer)" if blocks is not None else "structure"]
    for owner, s in d.structure.items():
        parts = []
        if s["added"]:
            parts.append(f"+{len(s['added'])} added ({_layers(owner, s['added'], kinds_b)})")
        if s["removed"]:
            parts.append(f"-{len(s['removed'])} removed ({_layers(owner, s['removed'], kinds_a)})")
        if s["changed"]:
            changed = [f"{_short(owner, i)}: " + ", ".join(
                f"{_FIELD.get(k, k)} {_v(v[0])}->{_v(v[1])}" for k, v in ch.items()
                if k != "param_shapes")
                for i, ch in s["changed"].items()]
            parts.append(f"~{len(s['changed'])} changed ({'; '.join(changed)})")
        lines.append(f"  {owner}: " + "  ".join(parts))
    return lines


# ---- what changed in each block ----------------------------------------------------------

def side_marks(d) -> tuple[dict[str, str], dict[str, str]]:
    """Marks for A's and B's diagrams from the structure diff: a block (or section) only B has
    is `added` in B, one only A has `removed` in A, one with layers added, removed or changed
    is `changed` in both."""
    from ..diffing import _owner
    owners_a = {_owner(i) for i in d.kinds[0]}
    owners_b = {_owner(i) for i in d.kinds[1]}
    marks_a: dict[str, str] = {}
    marks_b: dict[str, str] = {}
    for owner in d.structure:
        in_a, in_b = owner in owners_a, owner in owners_b
        if in_a:
            marks_a[owner] = "changed" if in_b else "removed"
        if in_b:
            marks_b[owner] = "changed" if in_a else "added"
    return marks_a, marks_b


def block_changes(d, graph_a, graph_b) -> list[dict[str, Any]]:
    """What changed in each block or section: the named steps that changed a block (the
    catalog evaluated on that block alone), then the change in the block diagram's notation
    ('grouped convolution (ResNeXt): 3×3, 64 ⇒ 3×3, 128, g32'), with runs of consecutive blocks
    of one stage that changed identically collapsed into one row ('stages.2.blocks.1-5',
    count 5)."""
    from ..diffing import StepsByOwner
    from ..lower.graphviz import sequence_change, sequences
    seq_a, seq_b = sequences(graph_a), sequences(graph_b)
    steps_of = StepsByOwner(d.steps, graph_a, graph_b)
    rows: list[dict[str, Any]] = []
    for owner, entry in d.structure.items():
        steps: list[str] = []
        if owner not in seq_a or owner not in seq_b:
            change = "added: " if owner not in seq_a else "removed: "
            change += " \u2192 ".join(seq_b.get(owner) or seq_a.get(owner) or ["(layers)"])
        else:
            change = sequence_change(seq_a[owner], seq_b[owner]) or _settings_only(owner, entry)
            steps = steps_of(owner)
            change = f"{', '.join(steps)}: {change}" if steps else change
        stage, _, index = owner.partition(".blocks.")
        last = rows[-1] if rows else None
        if last and index.isdigit() and last["change"] == change and last["stage"] == stage \
                and last["last"] == int(index) - 1:
            last["owners"].append(owner)
            last["last"] = int(index)
            last["count"] += 1
            last["range"] = f"{last['owners'][0]}-{index}"
        else:
            rows.append({"range": owner, "owners": [owner], "change": change, "count": 1,
                         "steps": steps, "stage": stage,
                         "last": int(index) if index.isdigit() else None})
    return [{k: v for k, v in r.items() if k not in ("stage", "last")} for r in rows]


def _settings_only(owner: str, entry: dict[str, Any]) -> str:
    """A change the notation does not show (a norm's eps, an init flag): the layers' fields."""
    parts = [f"{_short(owner, i)} " + ", ".join(f"{_FIELD.get(k, k)} {_v(v[0])}->{_v(v[1])}"
                                                 for k, v in ch.items() if k != "param_shapes")
             for i, ch in entry["changed"].items()]
    return "; ".join(parts) or "layers added or removed"


_FIELD = {"in_shape": "in", "out_shape": "out", "kernel_size": "kernel"}


def _layers(owner: str, ids: list[str], kinds: dict[str, str]) -> str:
    return ", ".join(f"{_short(owner, i)} {kinds[i]}" for i in ids)


def _short(owner: str, node_id: str) -> str:
    return node_id[len(owner) + 1:] if node_id.startswith(owner + ".") else node_id


def _v(value: Any) -> str:
    if isinstance(value, tuple) and all(isinstance(x, int) for x in value):
        return "x".join(map(str, value))
    if isinstance(value, tuple):
        return "(" + ",".join(_v(x) for x in value) + ")"
    return str(value)


# ---- chains -------------------------------------------------------------------------------

def chain_paths(args_paths: list[str]) -> list[str]:
    """One folder (a path, or a zoo folder such as `roadmap/resnet50_to_convnext_t`): its
    specs in file-name order; else the specs as given."""
    from ..catalog import zoo_dir
    folder = None
    if len(args_paths) == 1:
        folder = args_paths[0] if os.path.isdir(args_paths[0]) else zoo_dir(args_paths[0])
    if folder:
        return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".yaml"))
    return list(args_paths)


def chain_rows(paths: list[str]) -> list[dict[str, Any]]:
    from ..diffing import diff_resolved
    from ..resolver import resolve
    from ..spec import load
    rows: list[dict[str, Any]] = []
    prev = None
    for path in paths:
        spec = load(path)
        graph = resolve(spec)
        row: dict[str, Any] = {"spec": path, "name": spec.name, "params": graph.params,
                               "macs": graph.macs, "gmacs": round(graph.macs / 1e9, 2),
                               "steps": [], "changes": [], "params_delta": None,
                               "macs_delta": None}
        if prev is not None:
            d = diff_resolved(prev[0], prev[1], spec, graph)
            row["steps"] = [s.name for s in d.steps]
            row["changes"] = [c.text() for c in d.settings]
            row["unrecognised"] = [c.text() for c in d.unrecognised]
            row["params_delta"] = graph.params - prev[1].params
            row["macs_delta"] = graph.macs - prev[1].macs
            row["architectural_change"] = d.architectural
        rows.append(row)
        prev = (spec, graph)
    return rows


def format_chain(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2)
    header = ["#", "spec", "steps", "changes", "params", "Δparams", "GMACs", "ΔGMACs"]
    table = []
    for i, r in enumerate(rows):
        table.append([str(i), r["name"], "; ".join(r["steps"]) or ("(start)" if i == 0 else "-"),
                      "; ".join(r["changes"]) or "-", f"{r['params']:,}",
                      "" if r["params_delta"] is None else _signed(r["params_delta"]),
                      f"{r['macs'] / 1e9:.2f}",
                      "" if r["macs_delta"] is None else
                      _signed(r["macs_delta"], lambda v: f"{v / 1e9:.2f}")])
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(table)
        return buf.getvalue().rstrip("\n")
    if fmt == "markdown":
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in table]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in table + [header]) for i in range(len(header))]
    widths[3] = min(widths[3], 60)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    for r in table:
        cells = [r[0].rjust(widths[0])] + [c.ljust(w) if i not in (4, 5, 6, 7) else c.rjust(w)
                                           for i, (c, w) in enumerate(zip(r[1:], widths[1:]),
                                                                      start=1)]
        cells[3] = r[3] if len(r[3]) <= widths[3] else r[3][: widths[3] - 1] + "…"
        cells[3] = cells[3].ljust(widths[3])
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def diff_marks(d) -> tuple[dict[str, str], list[str]]:
    """Block-level marks for B's diagram from the structure diff: a block (or section) that
    exists only in B is `added`, one with layers added, removed or changed is `changed`; blocks
    that exist only in A are listed as removed."""
    from ..diffing import _owner
    marks: dict[str, str] = {}
    removed: list[str] = []
    owners_a = {_owner(i) for i in d.kinds[0]}
    owners_b = {_owner(i) for i in d.kinds[1]}
    for owner in d.structure:
        in_a, in_b = owner in owners_a, owner in owners_b
        if in_b and not in_a:
            marks[owner] = "added"
        elif in_a and not in_b:
            removed.append(owner)
        else:
            marks[owner] = "changed"
    return marks, removed


def diff_figure(d, graph_a, graph_b, blocks: list[dict[str, Any]], **options: Any):
    """A and B side by side at block level (a graphviz.Digraph), the diff marked, the named
    steps under the title; options as `to_dot_diff` (html_labels, dpi, ...)."""
    from ..lower.graphviz import to_dot_diff
    marks_a, marks_b = side_marks(d)
    changes = {owner: row["change"] for row in blocks for owner in row["owners"]}
    heading = [f"{s.symbol} {s.name}" + (f": {s.detail}" if s.detail else "") for s in d.steps]
    heading += [f"? {c.text()}" for c in d.unrecognised]
    return to_dot_diff(graph_a, graph_b, marks_a, marks_b, changes,
                       heading=heading or ["(no named step)"], **options)


def render_diff(d, graph_a, graph_b, output: str, blocks: list[dict[str, Any]]) -> int:
    """Draw A and B side by side at block level with the diff marked; write FILE whole or not
    at all."""
    from ..lower.graphviz import RenderError, find_renderer
    from ..outputs import OutputError, check_output, write_atomic
    from .render import EXTENSIONS
    fmt = EXTENSIONS.get(os.path.splitext(output)[1].lower())
    if fmt not in ("svg", "png", "pdf", "dot"):
        print(f"archspec diff --render: expected a .svg, .png, .pdf or .dot file, got "
              f"'{output}'", file=sys.stderr)
        return 2
    try:
        check_output(output, option="--render")
    except OutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    marks_a, marks_b = side_marks(d)
    try:
        renderer = find_renderer(fmt) if fmt != "dot" else None
        source = diff_figure(d, graph_a, graph_b, blocks,
                             html_labels=renderer.html_labels if renderer else True).source
        data = renderer.draw(source, fmt) if renderer else source.encode()
    except RenderError as exc:
        print(exc, file=sys.stderr)
        return 1
    write_atomic(output, data)
    print(f"wrote {output} ({graph_a.name} and {graph_b.name} side by side at block level: "
          f"{sum(m == 'added' for m in marks_b.values())} added, "
          f"{sum(m == 'removed' for m in marks_a.values())} removed, "
          f"{sum(m == 'changed' for m in marks_b.values())} changed)", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.chain:
        paths = chain_paths(args.specs)
        if len(paths) < 2:
            print("archspec diff --chain: expected at least two specs (or a folder holding "
                  "them), got " + str(len(paths)), file=sys.stderr)
            return 2
        fmt = "json" if args.json else args.format
        print(format_chain(chain_rows(paths), fmt))
        return 0
    specs = list(args.specs)
    if len(specs) == 1 and (args.overrides or args.overrides_a):
        specs *= 2  # one spec and --set: what the overrides change
    if len(specs) != 2:
        print(f"archspec diff: expected two specs A B (or one with --set, or --chain S0 S1 "
              f"...), got {len(args.specs)}", file=sys.stderr)
        return 2
    from ..diffing import _load, diff_resolved
    overrides = (list(args.overrides_a), list(args.overrides))
    spec_a, graph_a = _load(specs[0], overrides[0])
    spec_b, graph_b = _load(specs[1], overrides[1])
    d = diff_resolved(spec_a, graph_a, spec_b, graph_b)
    blocks = block_changes(d, graph_a, graph_b)
    if args.render:
        code = render_diff(d, graph_a, graph_b, args.render, blocks)
        if code:
            return code
    if args.json:
        print(json.dumps({**d.as_dict(), "blocks": blocks,
                          "overrides": {"a": overrides[0], "b": overrides[1]}}, indent=2))
    else:
        print(format_diff(d, blocks, verbose=args.verbose, overrides=overrides))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diff", help="what changed between two specs, in named modernization steps",
        description="Compare two resolved specs (after base:, overrides and defaults): changed "
                    "settings, the known modernization steps they amount to, the effect on "
                    "params/MACs/shapes per stage, and the layers added, removed and changed. "
                    "With --chain, one row per consecutive pair. Never imports torch.")
    p.add_argument("specs", nargs="+", metavar="SPEC",
                   help="two specs A B (files or zoo names); with --chain, the specs in order "
                        "or one folder of them (taken in name order)")
    p.add_argument("--chain", action="store_true", help="print the roadmap table of a chain")
    p.add_argument("--format", choices=("table", "markdown", "csv", "json"), default="table",
                   help="chain output format (default: a text table)")
    p.add_argument("--json", action="store_true", help="emit one JSON object (or the chain rows)")
    p.add_argument("--render", metavar="FILE",
                   help="also draw A and B side by side at block level (svg, png, pdf or dot) "
                        "with added, removed and changed blocks marked")
    p.add_argument("--verbose", action="store_true",
                   help="list every layer added, removed or changed, not only what changed in "
                        "each block")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="PATH=VALUE",
                   help="override a setting of B (repeatable; VALUE is YAML); with one spec, "
                        "diff it against itself with the overrides: what they change")
    p.add_argument("--set-a", dest="overrides_a", action="append", default=[],
                   metavar="PATH=VALUE", help="override a setting of A (repeatable)")
    p.set_defaults(func=run)
