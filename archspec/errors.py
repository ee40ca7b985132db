"""User-facing errors: every spec mistake carries its location, YAML path, expectation and a hint."""
from __future__ import annotations

import difflib
import unicodedata
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


#: Letters that look like ASCII ones (Cyrillic, Greek, and typographic look-alikes), mapped to
#: the ASCII letter they pass for. NFKC already folds full-width and compatibility forms.
_LOOK_ALIKES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j",
    "ѕ": "s", "ԁ": "d", "ɡ": "g", "һ": "h", "ӏ": "l", "ո": "n", "ս": "u", "ν": "v", "ο": "o",
    "α": "a", "ι": "i", "κ": "k", "τ": "t", "υ": "u", "ρ": "p", "ϲ": "c", "ԝ": "w",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K",
    "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "−": "-", "＿": "_",
    "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "", "\u00ad": "",
})


def _skeleton(word: str) -> str:
    """What a name looks like: compatibility forms folded (NFKC), look-alike letters made
    ASCII, invisible characters and surrounding whitespace dropped."""
    return unicodedata.normalize("NFKC", word).translate(_LOOK_ALIKES).strip()


def _unlike(word: str) -> str:
    """What makes `word` differ from `name` when the two look the same."""
    if word.strip() != word:
        return "it has spaces around it"
    odd = next((ch for ch in word if ord(ch) > 127 or not ch.isprintable()), None)
    if odd is None:
        return "they differ in invisible ways"
    label = unicodedata.name(odd, "an unnamed character")
    return f"it has U+{ord(odd):04X} {label}, not an ASCII letter"


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """A hint naming the closest known names, then all of them. A name that only looks like a
    known one (a Cyrillic 'о' for 'o', a trailing space) is named with what differs."""
    known = sorted(known)
    listing = ", ".join(known)
    word = str(word)
    skeleton = _skeleton(word)
    same = [k for k in known if k == skeleton]
    if same and same[0] != word:
        return f"did you mean '{same[0]}'? '{word}' only looks like it: {_unlike(word)}"
    close = difflib.get_close_matches(skeleton, known, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'? known: {listing}"
    return f"known: {listing}"
