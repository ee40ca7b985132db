"""User-facing errors: every spec mistake carries its location, YAML path, expectation and a hint."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Sequence

PathElem = str | int
Path = tuple[PathElem, ...]


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a spec file (1-based line and column), or a command-line override."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


def format_path(path: Sequence[PathElem]) -> str:
    """('stages', 'depths', 2) -> 'stages.depths[2]'."""
    out = ""
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
        else:
            out += f".{elem}" if out else str(elem)
    return out or "<spec>"


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a spec."""

    location: Location | None
    path: str
    message: str
    hint: str | None = None

    def format(self) -> str:
        where = f"{self.location}: " if self.location else ""
        text = f"{where}{self.path}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def sort_key(self) -> tuple:
        loc = self.location
        return (loc.file, loc.line, loc.col) if loc else ("~", 0, 0)


class SpecError(Exception):
    """One or more mistakes in a spec; `str()` lists them all, sorted by position."""

    def __init__(self, problems: Iterable[Problem]):
        unique = {(p.location, p.path, p.message): p for p in problems}
        self.problems = sorted(unique.values(), key=Problem.sort_key)
        super().__init__("\n".join(p.format() for p in self.problems))


class InternalError(Exception):
    """A bug in archspec (for example an IR lint failure), never the user's mistake."""

    def __init__(self, message: str):
        super().__init__(f"internal error: {message}")


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """A hint naming the closest known names, then all of them."""
    known = sorted(known)
    close = difflib.get_close_matches(str(word), known, n=1, cutoff=0.6)
    listing = ", ".join(known)
    if close:
        return f"did you mean '{close[0]}'? known: {listing}"
    return f"known: {listing}"
