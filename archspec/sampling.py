"""Design-space sampling around a base spec (pycls's samplers; Radosavovic et al. 2019, 2020).

`archspec sample BASE --vary PATH=RANGE ... --constraint macs<=4.5G -n N -o DIR`: each draw
sets the varied settings, validates and resolves the result (analytic counts, no torch), and
keeps it when every constraint holds. Every draw is accounted for: kept, invalid (counted by
the setting the spec error names) or over a constraint (counted by the first one it breaks).

Ranges (PATH is dotted as in `--set`; a PATH naming a list, e.g. `stages.depths`, draws each
entry on its own):
    LOW..HIGH          uniform, integers when both ends are integers
    LOW..HIGH/Q        uniform, rounded to a multiple of Q
    LOW..HIGH:log      log-uniform (LOW > 0), optionally with /Q
    A,B,C              one of the listed values (YAML scalars)
As in pycls (`rand_uniform`, `log_uniform`): draw in [LOW, HIGH] (in log space for `log`),
then round to the nearest multiple of Q.
"""
from __future__ import annotations

import copy
import math
import operator
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from .errors import Location, Path, Problem, SpecError
from .ir import ArchGraph
from .loader import SourceMap, load_file, parse_override, safe_load
from .spec import Spec, validate

_RANGE = re.compile(r"^\s*(?P<low>[-+0-9.eE]+)\s*\.\.\s*(?P<high>[-+0-9.eE]+)\s*"
                    r"(?:/\s*(?P<q>[0-9.eE+]+))?\s*(?P<log>:\s*log)?\s*$")
_SUFFIX = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_OPS: Mapping[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


@dataclass(frozen=True)
class Vary:
    """One `--vary PATH=RANGE`: where, and how to draw."""

    text: str
    path: Path
    choices: tuple = ()
    low: float = 0
    high: float = 0
    q: float = 1
    log: bool = False
    integer: bool = True

    @property
    def name(self) -> str:
        return ".".join(str(p) for p in self.path)

    def draw_one(self, rng: random.Random) -> Any:
        if self.choices:
            return self.choices[rng.randrange(len(self.choices))]
        if self.log:
            x = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            x = rng.uniform(self.low, self.high)
        if self.q:  # pycls: round to a multiple of q, kept inside the range
            x = round(x / self.q) * self.q
            x = x + self.q if x < self.low else x - self.q if x > self.high else x
        return int(round(x)) if self.integer else x


def parse_vary(text: str) -> Vary:
    """'stages.depths=1..8' -> Vary; a malformed range is a located SpecError."""
    where = Location(f"--vary {text}")
    if "=" not in text:
        raise SpecError([Problem(where, "<vary>", "expected PATH=RANGE",
                                 "for example --vary stages.depths=1..8 or --vary "
                                 "block.groups=1,2,4")])
    path, _ = parse_override(text.split("=", 1)[0] + "=0")
    raw = text.split("=", 1)[1]
    m = _RANGE.match(raw)
    if m is None:
        choices = tuple(safe_load(c) for c in raw.split(",") if c.strip())
        if not choices or (".." in raw):
            raise SpecError([Problem(where, text.split("=", 1)[0], f"expected LOW..HIGH[/Q]"
                                     f"[:log] or A,B,C, got '{raw}'", "for example 1..8, "
                                     "64..512/16:log or bottleneck,basic")])
        return Vary(text, path, choices=choices)
    low, high = float(m["low"]), float(m["high"])
    integer = all(re.fullmatch(r"[-+]?\d+", s) for s in (m["low"], m["high"])) and \
        (m["q"] is None or float(m["q"]).is_integer())
    q = float(m["q"]) if m["q"] else 1.0
    problem = ("expected LOW <= HIGH" if low > high else
               "expected LOW > 0 for a log-uniform range" if m["log"] and low <= 0 else
               "expected Q > 0" if q <= 0 else None)
    if problem:
        raise SpecError([Problem(where, text.split("=", 1)[0], f"{problem}, got '{raw}'",
                                 "for example 1..8 or 16..256/8:log")])
    return Vary(text, path, low=low, high=high, q=q if m["q"] else (1 if integer else 0),
                log=bool(m["log"]), integer=integer)


@dataclass(frozen=True)
class Constraint:
    text: str
    metric: str
    op: str
    bound: float

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.bound)


METRICS = ("params", "macs", "flops", "acts", "mem")


def parse_constraint(text: str) -> Constraint:
    """'macs<=4.5G' -> Constraint (suffixes K, M, G, T are powers of 1000)."""
    m = re.fullmatch(r"\s*([a-z_]+)\s*(<=|>=|<|>)\s*([0-9.eE+-]+)\s*([KMGT]?)B?\s*", text)
    if m is None or m[1] not in METRICS:
        raise SpecError([Problem(Location(f"--constraint {text}"), "<constraint>",
                                 f"expected METRIC<=VALUE with METRIC one of "
                                 f"{', '.join(METRICS)}, got '{text}'",
                                 "for example macs<=4.5G params<=30M acts<=12M mem<=3G")])
    return Constraint(text, m[1], m[2], float(m[3]) * _SUFFIX[m[4]])


# ---- drawing and keeping -------------------------------------------------------------------

@dataclass
class Candidate:
    """A kept draw: its settings (path -> value), spec and counts."""

    index: int
    settings: dict[str, Any]
    spec: Spec
    graph: ArchGraph
    metrics: dict[str, float]
    file: str | None = None


@dataclass
class SampleResult:
    draws: int
    kept: list[Candidate]
    invalid: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> one full message

    def summary(self) -> dict[str, Any]:
        return {"draws": self.draws, "kept": len(self.kept),
                "invalid": dict(sorted(self.invalid.items(), key=lambda kv: -kv[1])),
                "over_constraint": dict(sorted(self.rejected.items(), key=lambda kv: -kv[1])),
                "examples": self.examples}


class Sampler:
    """Draws around one base spec, loaded once; each draw costs a copy, a validation and a
    resolve (the analytic counts), never a torch module."""

    def __init__(self, base: str, vary: list[Vary], constraints: list[Constraint] = (),
                 batch_size: int = 1, dtype: str = "float32"):
        self.base = str(base)
        self.data, _ = load_file(self.base)
        self.vary, self.constraints = list(vary), list(constraints)
        self.batch_size, self.dtype = batch_size, dtype
        self._lengths = {v.name: self._list_length(v) for v in self.vary}
        self.with_memory = True
        for v in self.vary:  # a path that cannot be set is the user's mistake, found once
            try:
                _set(copy.deepcopy(self.data), v.path, 0)
            except (KeyError, IndexError, TypeError):
                raise SpecError([Problem(Location(f"--vary {v.text}"), v.name,
                                         f"cannot set '{v.name}' in {self.base}",
                                         "use a dotted path as in --set, e.g. "
                                         "stages.depths.2 or block.groups")]) from None

    def _list_length(self, vary: Vary) -> int | None:
        """A path naming a list of numbers (per-stage depths, widths) draws each entry."""
        node: Any = self.data
        for part in vary.path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return None
        return len(node) if isinstance(node, list) else None

    def draw(self, rng: random.Random) -> dict[str, Any]:
        out = {}
        for v in self.vary:
            n = self._lengths[v.name]
            out[v.name] = [v.draw_one(rng) for _ in range(n)] if n else v.draw_one(rng)
        return out

    def candidate(self, index: int, settings: dict[str, Any]) -> "Candidate | tuple[str, str]":
        """A kept Candidate, or (reason, message) for a draw that is invalid or over a bound."""
        from .resolver import resolve
        data = copy.deepcopy(self.data)
        data["name"] = f"{data.get('name', 'sample')}_s{index:04d}"
        try:
            for v in self.vary:
                _set(data, v.path, settings[v.name])
            spec = validate(data, SourceMap())
            graph = resolve(spec)
        except SpecError as exc:
            first = exc.problems[0]
            return f"invalid {first.path}", first.format()
        metrics = self.metrics(graph)
        for c in self.constraints:
            if not c.holds(metrics[c.metric]):
                from .summary import human
                return f"{c.metric} {_negate(c.op)} {c.text.split(c.op, 1)[1].strip()}", \
                    f"{c.metric} = {human(metrics[c.metric])}"
        return Candidate(index, settings, spec, graph, metrics)

    def metrics(self, graph: ArchGraph) -> dict[str, float]:
        out = {"params": graph.params, "macs": graph.macs, "flops": graph.flops,
               "acts": graph.acts}
        if self.with_memory:
            from .activations import training_memory
            out["mem"] = training_memory(graph, self.batch_size, self.dtype).total
        return out

    def run(self, n: int, seed: int = 0) -> SampleResult:
        rng = random.Random(seed)
        result = SampleResult(n, [])
        for i in range(n):
            got = self.candidate(i, self.draw(rng))
            if isinstance(got, Candidate):
                result.kept.append(got)
                continue
            reason, message = got
            table = result.invalid if reason.startswith("invalid") else result.rejected
            table[reason] = table.get(reason, 0) + 1
            result.examples.setdefault(reason, message)
        return result


def _negate(op: str) -> str:
    return {"<=": ">", ">=": "<", "<": ">=", ">": "<="}[op]


def _set(data: dict, path: Path, value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        if isinstance(node, dict) and (part not in node or node[part] is None):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


# ---- writing -------------------------------------------------------------------------------

HEADER = "# written by `archspec sample`"
COLUMNS = ("name", "file", "params", "macs", "acts", "mem")


def rows(result: SampleResult) -> list[dict[str, Any]]:
    return [{"name": c.spec.name, "file": c.file, **c.settings,
             **{k: c.metrics[k] for k in ("params", "macs", "acts", "mem") if k in c.metrics}}
            for c in result.kept]


def write_samples(result: SampleResult, sampler: Sampler, out_dir: str, overwrite: bool = False,
                  color: str | None = None) -> list[str]:
    """One YAML per kept draw (`base:` the base spec, then the drawn settings), samples.csv,
    samples.json (rows and the summary) and, with `color`, samples.svg/png."""
    import csv
    import json
    import os

    import yaml
    from .modernizing import check_writable
    names = [f"{c.spec.name}.yaml" for c in result.kept]
    check_writable(out_dir, names + ["samples.csv", "samples.json"], overwrite, HEADER)
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.relpath(os.path.abspath(sampler.base), os.path.abspath(out_dir))
    for c, name in zip(result.kept, names):
        c.file = os.path.join(out_dir, name)
        body: dict[str, Any] = {"name": c.spec.name, "base": base}
        for v in sampler.vary:
            _set(body, v.path, c.settings[v.name])
        with open(c.file, "w", encoding="utf-8") as f:
            f.write(HEADER + "\n" + yaml.safe_dump(body, sort_keys=False,
                                                    default_flow_style=None))
    table = rows(result)
    keys = list(dict.fromkeys(k for r in table for k in r)) or list(COLUMNS)
    with open(os.path.join(out_dir, "samples.csv"), "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()}
                         for r in table)
    with open(os.path.join(out_dir, "samples.json"), "w", encoding="utf-8") as f:
        json.dump({"base": sampler.base, "vary": [v.text for v in sampler.vary],
                   "constraints": [c.text for c in sampler.constraints],
                   "batch_size": sampler.batch_size, "dtype": sampler.dtype,
                   **result.summary(), "samples": table}, f, indent=2)
    if color and table:
        from .plot import save, scatter_figure
        save(scatter_figure(table, color), os.path.join(out_dir, "samples"), ("svg", "png"))
    return [c.file for c in result.kept]


def summary_text(result: SampleResult, sampler: Sampler, out_dir: str) -> str:
    lines = [f"{result.draws} draws around {sampler.base}: {len(result.kept)} kept, "
             f"{sum(result.invalid.values())} invalid, "
             f"{sum(result.rejected.values())} over a constraint"]
    for reason, count in sorted({**result.invalid, **result.rejected}.items(),
                                key=lambda kv: -kv[1]):
        lines.append(f"  {count:6d}  {reason}   e.g. {result.examples[reason].splitlines()[0]}")
    lines.append(f"wrote {len(result.kept)} specs, samples.csv and samples.json to {out_dir}")
    return "\n".join(lines)
