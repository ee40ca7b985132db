"""Block families register themselves on import; `BLOCKS` maps each `type` tag to its spec."""
from . import resnet  # noqa: F401  (registers basic, bottleneck)
from . import inverted_bottleneck  # noqa: F401  (registers inverted_bottleneck, convnext)
from . import splat  # noqa: F401  (registers splat)
from .base import BLOCKS, BlockContext, BlockSpecBase, NormSpec, register_block
from .stage_downsample import DOWNSAMPLES
from .stems import STEMS

__all__ = ["BLOCKS", "DOWNSAMPLES", "STEMS", "BlockContext", "BlockSpecBase", "NormSpec",
           "register_block"]
