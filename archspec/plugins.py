"""Third-party block families: the modules installed distributions declare under the
`archspec.blocks` entry-point group (docs/extending.md). Found once per process: scanning the
installed distributions' metadata takes about 10 ms. Stdlib only (the summary cache reads it
without importing the spec models)."""
from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points

#: The entry-point group third-party families declare their module under.
ENTRY_POINT_GROUP = "archspec.blocks"


@functools.cache
def family_entry_points() -> tuple[EntryPoint, ...]:
    """The installed `archspec.blocks` entry points, sorted by name."""
    return tuple(sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: (p.name, p.value)))
