"""Block families register themselves on import; `BLOCKS` maps each `type` tag to its spec."""
from . import resnet  # noqa: F401  (registers basic, bottleneck)
from . import splat  # noqa: F401  (registers splat)
from .base import BLOCKS, BlockContext, BlockSpecBase, NormSpec, register_block
from .stems import STEMS

__all__ = ["BLOCKS", "STEMS", "BlockContext", "BlockSpecBase", "NormSpec", "register_block"]
