"""CLI subcommands, one module each. A module defines `register(subparsers)`, which adds its
parser and sets `func` (a function of the parsed args returning the exit code)."""
