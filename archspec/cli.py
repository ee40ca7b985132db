"""Command line: `archspec COMMAND` (also `python cli.py COMMAND`). Parses, calls the API, prints.

Exit codes: 0 success, 2 a mistake in a spec or on the command line, 1 an internal error.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from typing import Sequence

from . import __version__
from .errors import InternalError, SpecError

#: Subcommand modules under archspec/commands, in the order `--help` lists them.
COMMANDS = ("build", "validate", "explain", "list", "render", "diff", "modernize", "sample",
            "plot", "train", "bench", "convert", "schema")

EXIT_SPEC = 2
EXIT_INTERNAL = 1


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line. `only`: register just that subcommand (what `main` does when the
    command is named: the others' modules, and what they import, are not loaded)."""
    p = argparse.ArgumentParser(
        prog="archspec",
        description="Declarative CNN architectures: YAML spec -> resolved IR -> torch module, "
                    "diagrams and diffs.",
        epilog="Spec language: docs/spec.md. Examples: archspec list 'resnet*' ; archspec build "
               "resnet50 ; archspec build my_net.yaml --set head.num_classes=10")
    p.add_argument("--version", action="version", version=f"archspec {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        if only is None or name == only:
            importlib.import_module(f"archspec.commands.{name}").register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only = argv[0] if argv and argv[0] in COMMANDS else None
    try:
        args = parser(only).parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        return args.func(args)
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
