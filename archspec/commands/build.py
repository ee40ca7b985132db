"""`archspec build SPEC`: validate, resolve, build the torch module, check it, print the summary."""
from __future__ import annotations

import argparse
import json
import sys

from .common import add_spec_args, add_weights_args, load_and_report


def run(args: argparse.Namespace) -> int:
    from .. import resolve
    from ..lower.torch import check_forward, to_module
    from ..summary import format_table, summarize
    graph = resolve(args.spec, args.overrides)
    summary = summarize(graph, args.overrides)
    model = to_module(graph)
    if args.weights:  # the report on stderr when stdout is one JSON object
        load_and_report(model, args.weights, args, sys.stderr if args.json else None)
    summary["params"] = check_forward(model, graph)
    if args.explain:
        from ..provenance import settings_of
        summary["settings"] = [s.as_dict() for s in settings_of(graph).values()]
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_table(summary))
        print("built: torch module checked (parameters counted on the module; one forward pass "
              "at batch 1 matched every section's shape)")
        if args.explain:
            from ..provenance import settings_of
            from .explain import format_settings
            print()
            print(format_settings(settings_of(graph)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build", help="validate, resolve and build a spec; print its summary",
        description="Validate a spec, resolve it, build the torch module, run one forward pass "
                    "on a dummy input to confirm the shapes, and print a summary table (stem, "
                    "each stage, head: blocks, output shape, params, MACs; totals).")
    add_spec_args(p)
    p.add_argument("--json", action="store_true",
                   help="print exactly one JSON object: name, params (counted on the module), "
                        "macs, flops, input_shape, output_shape, stages, ...")
    p.add_argument("--explain", action="store_true",
                   help="also print every resolved setting with where it came from (as "
                        "`archspec explain`; with --json, a `settings` list)")
    add_weights_args(p)
    p.set_defaults(func=run)
