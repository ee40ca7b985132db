"""The model zoo: one row per spec in a folder (top level only), computed from the resolved IR.

`python cli.py list` prints it as a table and `scripts/gen_zoo.py` writes docs/zoo.md from the
same rows, so the two never disagree. No torch: resolving is enough.
"""
from __future__ import annotations

import fnmatch
import os
import pathlib
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

from .errors import SpecError
from .ir import ArchGraph
from .summary import human



@dataclass(frozen=True)
class ZooEntry:
    name: str
    file: str
    family: str
    params: int
    macs: int
    acts: int
    """pycls's activations: output elements of conv, linear and pooling layers at batch 1."""
    train_memory: int
    """Training activation memory estimate in bytes (summary.MEMORY_BATCH, MEMORY_DTYPE)."""
    input_size: str
    description: str

    def as_dict(self) -> dict:
        return asdict(self)


def family_of(graph: ArchGraph) -> str:
    """The block families of the stages in order (each once), then `+ SE` (each attachment
    kind any block carries: `GroupKind.attachment`)."""
    from .kinds import group_kind
    families = list(dict.fromkeys(str(s.family or s.kind) for s in graph.stages))
    attached = dict.fromkeys(k.token or k.display for k in map(group_kind, (
        g.kind for g in graph.groups.values())) if k.attachment)
    return " / ".join(families) + "".join(f" + {name}" for name in attached)


def entry(path: str | os.PathLike, zoo_name: str | None = None) -> ZooEntry:
    """One row; a zoo spec's row is named by its zoo name (what `build` takes), with its file
    relative to the zoo folder. Read from the summary cache when the spec is unchanged
    (archspec.summary_cache)."""
    from .summary_cache import summary
    row = summary(path)
    return ZooEntry(name=zoo_name or row["name"],
                    file=f"{zoo_name}.yaml" if zoo_name else pathlib.Path(path).name,
                    family=row["family"], params=row["params"], macs=row["macs"],
                    acts=row["acts"], train_memory=row["train_memory"],
                    input_size=row["input_size"], description=row["description"])


def list_models(pattern: "str | Sequence[str] | None" = None, *, roadmap: bool = False
                ) -> list[str]:
    """Names of the zoo's specs, sorted, that match `pattern` (an fnmatch pattern or several,
    as timm's `list_models`: `"resnet*"`, `["resnet*", "convnext_*"]`); all of them when None.
    Roadmap specs (`roadmap/...`) are listed with `roadmap=True` or when a pattern names a
    subfolder (`"roadmap/*"`). No match gives an empty list, as in timm."""
    from .catalog import zoo_names
    patterns = [pattern] if isinstance(pattern, str) else list(pattern or ["*"])
    deep = roadmap or any("/" in p for p in patterns)
    return [n for n in zoo_names(roadmap=deep) if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def entries(folder: str | os.PathLike | None = None, names: Iterable[str] | None = None
            ) -> tuple[list[ZooEntry], list[SpecError]]:
    """Rows for the specs `names` of the zoo (default: all of its top level) or for every
    `*.yaml` directly in `folder` (subfolders are not listed), sorted by name, and the errors of
    the specs that do not resolve."""
    from .catalog import zoo_path
    if folder is not None:
        paths = [(p, None) for p in sorted(pathlib.Path(folder).glob("*.yaml"))]
    else:
        paths = [(zoo_path(n) or n, n) for n in (list_models() if names is None else names)]
    rows, errors = [], []
    for path, zoo_name in paths:
        try:
            rows.append(entry(path, zoo_name))
        except SpecError as exc:
            errors.append(exc)
    return sorted(rows, key=lambda r: r.name), errors


#: `archspec list --sort` keys: name ascending, the counts largest first.
SORT_KEYS = {"name": (lambda r: r.name, False), "params": (lambda r: r.params, True),
             "macs": (lambda r: r.macs, True)}


def sort_rows(rows: list[ZooEntry], by: str = "name") -> list[ZooEntry]:
    key, descending = SORT_KEYS[by]
    return sorted(rows, key=key, reverse=descending)


HEADER = ("name", "family", "params", "MACs", "input", "description")


def _cells(row: ZooEntry) -> tuple[str, ...]:
    return (row.name, row.family, f"{row.params:,}", human(row.macs), row.input_size,
            row.description)


def to_table(rows: list[ZooEntry]) -> str:
    """Plain-text table, columns aligned (numbers to the right)."""
    cells = [HEADER] + [_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    right = {2, 3}

    def line(c: tuple[str, ...]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w)
                         for i, (v, w) in enumerate(zip(c, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(HEADER), rule] + [line(c) for c in cells[1:]])


MARKDOWN_INTRO = """\
# Model zoo

Every spec in `specs/` (top level), resolved by archspec: parameters counted from the resolved IR
(trainable tensors, classifier included), MACs = multiply-accumulates of conv and linear layers at
the input size shown (FLOPs = 2 x MACs, as `torch.utils.flop_counter.FlopCounterMode` counts).
The same rows are printed by `python cli.py list`.

<!-- Generated by scripts/gen_zoo.py from specs/*.yaml; do not edit by hand.
     Regenerate with: python scripts/gen_zoo.py -->
"""


def to_markdown(rows: list[ZooEntry], spec_link_prefix: str = "../specs/") -> str:
    lines = [MARKDOWN_INTRO, "| " + " | ".join(HEADER) + " |",
             "|---|---|---:|---:|---|---|"]
    for row in rows:
        name, family, params, macs, size, description = _cells(row)
        link = f"[{name}]({spec_link_prefix}{row.file})"
        description = description.replace("|", "\\|")
        lines.append(f"| {link} | {family} | {params} | {macs} | {size} | {description} |")
    return "\n".join(lines) + "\n"
