"""`archspec explain SPEC [PATH...]`: every resolved setting, its value and where it came from."""
from __future__ import annotations

import argparse
import json
import re

from .common import add_spec_args, add_strict

_STAGE = re.compile(r"^stages\[\d+\]\.")


def selected(settings: dict, paths: list[str]) -> dict:
    """The settings under any of `paths` (dotted prefixes; `block.X` also finds each stage's)."""
    if not paths:
        return dict(settings)

    def under(key: str, path: str) -> bool:
        return any(k == path or k.startswith(path + ".") or k.startswith(path + "[")
                   for k in (key, _STAGE.sub("", key)))
    return {k: v for k, v in settings.items() if any(under(k, p) for p in paths)}


def collapse(settings: dict) -> list[tuple[str, object, str]]:
    """Rows (path, value, source text); a stage block setting with the same value and source in
    every stage is one `block.X` row."""
    per_key: dict[str, list] = {}
    rows: list[tuple[str, object, str]] = []
    for key, s in settings.items():
        if _STAGE.match(key):
            per_key.setdefault(_STAGE.sub("", key), []).append(s)
    stages = max((len(v) for v in per_key.values()), default=0)
    done: set[str] = set()
    for key, s in settings.items():
        short = _STAGE.sub("", key)
        same = _STAGE.match(key) and len(per_key[short]) == stages and len(
            {(repr(x.value), x.source.text()) for x in per_key[short]}) == 1
        if same:
            if short not in done:
                done.add(short)
                rows.append((short, s.value, s.source.text()))
            continue
        rows.append((key, s.value, s.source.text()))
    return rows


def format_settings(settings: dict) -> str:
    """The table: setting, value, source (a setting the same in every stage is one row)."""
    from ..diffing import _show
    rows = [(p, _show(v), s) for p, v, s in collapse(settings)]
    head = ("setting", "value", "source")
    widths = [min(max(len(r[i]) for r in rows + [head]), 40) for i in range(2)]
    return "\n".join(f"{r[0].ljust(widths[0])}  {r[1].ljust(widths[1])}  {r[2]}".rstrip()
                     for r in [head] + rows)


def format_explain(graph, settings: dict) -> str:
    from ..scaling import Scaling
    from ..summary import human
    lines = [f"{graph.name}: {graph.params:,} params, {human(graph.macs)} MACs"
             f" ({graph.attrs.get('source') or 'no file'})",
             f"scaling: {Scaling.from_dict(graph.attrs['scaling']).rule()}", "",
             format_settings(settings)]
    lines += [f"note: {note}" for note in graph.notes]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from .. import resolve
    from ..provenance import settings_of
    graph = resolve(args.spec, args.overrides, strict=args.strict)
    chosen = selected(settings_of(graph), args.paths)
    if args.paths and not chosen:
        from ..errors import Location, Problem, SpecError
        raise SpecError([Problem(Location(args.spec), ", ".join(args.paths),
                                 "no resolved setting under this path",
                                 "paths are dotted, e.g. block.groups, stem, stages.widths")])
    if args.json:
        print(json.dumps({"name": graph.name, "source": graph.attrs.get("source"),
                          "settings": [s.as_dict() for s in chosen.values()],
                          "notes": list(graph.notes)}, indent=2))
    else:
        print(format_explain(graph, chosen))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain", help="every resolved setting with where its value came from",
        description="Resolve a spec (no torch) and print each setting with its value and its "
                    "source: the file:line that wrote it (the spec or one of its bases), a "
                    "--set argument, the network-wide norm/activation, a default, or how it "
                    "was derived (ratio x unit, the width and depth multipliers).")
    add_spec_args(p)
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="only the settings under these dotted paths (e.g. stem block.groups)")
    p.add_argument("--json", action="store_true", help="the same as one JSON object")
    add_strict(p)
    p.set_defaults(func=run)
