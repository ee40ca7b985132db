"""Block families register themselves on import; `BLOCKS` maps each `type` tag to its spec.

Every module of this package is imported (a new family is one new file here), then every module
declared as an `archspec.blocks` entry point by an installed distribution (third-party families,
docs/extending.md)."""
import importlib
import pkgutil

from . import resnet  # noqa: F401  (registers basic, bottleneck: first, as the docs list them)
from . import inverted_bottleneck  # noqa: F401  (registers inverted_bottleneck, convnext)
from . import splat  # noqa: F401  (registers splat)
from ..plugins import ENTRY_POINT_GROUP, family_entry_points
from .base import BLOCKS, BlockContext, BlockSpecBase, NormSpec, register_block
from .stage_downsample import DOWNSAMPLES
from .stems import STEMS

__all__ = ["BLOCKS", "DOWNSAMPLES", "ENTRY_POINT_GROUP", "STEMS", "BlockContext",
           "BlockSpecBase", "NormSpec", "register_block"]


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    for point in family_entry_points():
        point.load()


_discover()
