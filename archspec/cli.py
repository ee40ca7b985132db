"""Command line: `archspec build | validate` (also `python cli.py ...`). Parses, calls the API, prints.

Exit codes: 0 success, 2 a mistake in a spec or the command line, 1 an internal error.
"""
from __future__ import annotations

import argparse
import json
import sys
import traceback
from typing import Callable, Sequence

from .errors import InternalError, SpecError

EXIT_SPEC = 2
EXIT_INTERNAL = 1


def _add_spec_args(p: argparse.ArgumentParser, many: bool = False) -> None:
    if many:
        p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (YAML)")
    else:
        p.add_argument("spec", metavar="SPEC", help="spec file (YAML)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                   help="override a setting, e.g. --set stages.depths=[3,3,9,3] "
                        "--set block.groups=32 (repeatable; VALUE is YAML)")


def cmd_validate(args: argparse.Namespace) -> int:
    """Check specs without importing torch; print a one-line summary of each."""
    from . import resolve
    from .summary import human
    status = 0
    for path in args.specs:
        try:
            graph = resolve(path, args.overrides)
        except SpecError as exc:
            print(exc, file=sys.stderr)
            status = EXIT_SPEC
            continue
        print(f"ok  {path}: {graph.name}, {graph.params:,} params, {human(graph.macs)} MACs")
        for note in graph.notes:
            print(f"note: {note}")
    return status


def cmd_build(args: argparse.Namespace) -> int:
    """Validate, resolve, build the torch module, run one forward pass, print the summary."""
    from . import resolve
    from .summary import format_table, summarize
    graph = resolve(args.spec, args.overrides)
    summary = summarize(graph)
    from .lower.torch import check_forward, to_module
    model = to_module(graph)
    summary["params"] = check_forward(model, graph)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_table(summary))
        print("built: torch module checked (parameters counted on the module, one forward pass "
              "at batch 1 matched every stage shape)")
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "build": (cmd_build, "validate, resolve and build a spec; print its summary"),
    "validate": (cmd_validate, "check spec files quickly, without torch"),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="archspec", description="Declarative CNN architectures: YAML spec -> IR -> "
                                     "torch module, diagrams and diffs.",
        epilog="Spec language: docs/spec.md. Example: archspec build specs/resnet50.yaml")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    b = sub.add_parser("build", help=COMMANDS["build"][1], description=cmd_build.__doc__)
    _add_spec_args(b)
    b.add_argument("--json", action="store_true",
                   help="print one JSON object (name, params, macs, flops, shapes, stages)")
    v = sub.add_parser("validate", help=COMMANDS["validate"][1], description=cmd_validate.__doc__)
    _add_spec_args(v, many=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    func = COMMANDS[args.command][0]
    try:
        return func(args)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return EXIT_SPEC
    except InternalError as exc:
        print(exc, file=sys.stderr)
        return EXIT_INTERNAL
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug: show it whole, with a clear label
        print("internal error (a bug in archspec; please report it with this trace):",
              file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
