"""Network-wide width and depth multipliers (`width_multiplier`, `depth_multiplier`).

One rule each, applied by the resolver before anything is planned:
- a width set by hand (each stage width, the stem's and the head conv's, the settings a model lists
  in `width_settings`) becomes make_divisible(width x multiplier, width_divisor), timm's channel
  rule (EfficientNet, MobileNet); block-internal widths follow from the stage widths;
- a stage's depth becomes ceil(depth x multiplier), EfficientNet's rule.
A multiplier of 1 leaves every value exactly as written.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .primitives import make_divisible


@dataclass(frozen=True)
class Scaling:
    width: float = 1.0
    depth: float = 1.0
    divisor: int = 8

    @classmethod
    def of(cls, spec: Any) -> "Scaling":
        return cls(spec.width_multiplier, spec.depth_multiplier, spec.width_divisor)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Scaling":
        return cls(data["width_multiplier"], data["depth_multiplier"], data["width_divisor"])

    @property
    def identity(self) -> bool:
        return self.width == 1 and self.depth == 1

    def channels(self, width: int) -> int:
        """A hand-set width, scaled and rounded (unchanged at multiplier 1)."""
        if self.width == 1:
            return width
        return make_divisible(width * self.width, self.divisor)

    def blocks(self, depth: int) -> int:
        """A stage's depth, scaled and rounded up (unchanged at multiplier 1)."""
        if self.depth == 1:
            return depth
        return math.ceil(depth * self.depth)

    def model(self, model: Any) -> Any:
        """A copy of a spec model with its `width_settings` scaled."""
        if self.width == 1 or model is None or not getattr(model, "width_settings", ()):
            return model
        update = {}
        for name in model.width_settings:
            value = getattr(model, name)
            update[name] = [self.channels(v) for v in value] if isinstance(value, list) \
                else self.channels(value)
        return model.model_copy(update=update)

    def rule(self) -> str:
        """The rules in words, for summaries and `explain`."""
        return (f"width x{self.width:g} (make_divisible by {self.divisor}), "
                f"depth x{self.depth:g} (ceil)")

    def as_dict(self) -> dict[str, Any]:
        return {"width_multiplier": self.width, "depth_multiplier": self.depth,
                "width_divisor": self.divisor}
