"""`archspec sample BASE --vary PATH=RANGE ... -n N -o DIR`: draw specs around a base spec."""
from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> int:
    from ..sampling import (Sampler, parse_constraint, parse_vary, summary_text,
                            write_samples)
    vary = [parse_vary(v) for v in args.vary]
    constraints = [parse_constraint(c) for part in args.constraint for c in part.split()]
    sampler = Sampler(args.base, vary, constraints, args.batch_size, args.dtype)
    result = sampler.run(args.n, args.seed)
    write_samples(result, sampler, args.output, args.overwrite,
                  color=None if args.no_plot else (args.color or vary[0].name))
    print(summary_text(result, sampler, args.output))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample", help="draw specs from a design space around a base spec (pycls-style)",
        description="Draw N specs around BASE: each --vary PATH=RANGE sets a setting at random "
                    "(LOW..HIGH uniform, LOW..HIGH/Q rounded to multiples of Q, LOW..HIGH:log "
                    "log-uniform, A,B,C a choice; a PATH naming a per-stage list draws each "
                    "entry). Keeps the draws that resolve and meet every --constraint (params, "
                    "macs, flops, acts, mem: analytic counts, no torch) and writes them to DIR "
                    "with samples.csv, samples.json and a scatter plot. Invalid draws are "
                    "counted by reason. See docs/explore.md.")
    p.add_argument("base", metavar="BASE", help="the base spec (YAML)")
    p.add_argument("--vary", action="append", required=True, metavar="PATH=RANGE",
                   help="a setting to draw, e.g. stages.depths=1..8 or block.groups=1,2,4,8")
    p.add_argument("--constraint", action="append", default=[], metavar="EXPR",
                   help="keep only specs with, e.g., macs<=4.5G params<=30M acts<=12M mem<=3G "
                        "(K/M/G/T: powers of 1000; mem in bytes at --batch-size, --dtype)")
    p.add_argument("-n", type=int, default=100, help="number of draws (default 100)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write into")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="batch size of the training-memory estimate `mem` (default 32)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                   help="dtype of the training-memory estimate (default float32)")
    p.add_argument("--color", metavar="PATH", help="setting that colours the scatter plot "
                   "(default the first --vary)")
    p.add_argument("--no-plot", action="store_true", help="skip the scatter plot")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files already in DIR (only ever those this command wrote)")
    p.set_defaults(func=run)
