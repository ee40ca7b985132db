"""Network-wide width and depth multipliers (`width_multiplier`, `depth_multiplier`).

One rule each, applied by the resolver before anything is planned:
- a width set by hand (each stage width, the stem's and the head conv's, the settings a model lists
  in `width_settings`) becomes make_divisible(width x multiplier, width_divisor), timm's channel
  rule (EfficientNet, MobileNet); block-internal widths follow from the stage widths;
- a stage's depth becomes ceil(depth x multiplier), EfficientNet's rule.
A multiplier of 1 leaves every value exactly as written. `scaling_scope` exempts parts: the stem
(`fixed`), the head conv (`fixed`, or `at_least_written`: max(written, scaled)) and the first and
last stages' depths (`fixed`), as timm's MobileNetV2 variants do; by default all are scaled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .primitives import make_divisible
from .steps import StepRule, register_step, toward


#: the parts `scaling_scope` names, with the value that leaves each scaled
SCOPE_DEFAULTS = {"stem": "scaled", "head": "scaled", "end_depths": "scaled"}


@dataclass(frozen=True)
class Scaling:
    width: float = 1.0
    depth: float = 1.0
    divisor: int = 8
    stem: str = "scaled"
    head: str = "scaled"
    end_depths: str = "scaled"

    @classmethod
    def of(cls, spec: Any) -> "Scaling":
        scope = spec.scaling_scope
        return cls(spec.width_multiplier, spec.depth_multiplier, spec.width_divisor,
                   scope.stem, scope.head, scope.end_depths)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Scaling":
        scope = {**SCOPE_DEFAULTS, **data.get("scaling_scope", {})}
        return cls(data["width_multiplier"], data["depth_multiplier"], data["width_divisor"],
                   **scope)

    @property
    def identity(self) -> bool:
        return self.width == 1 and self.depth == 1

    def channels(self, width: int) -> int:
        """A hand-set width, scaled and rounded (unchanged at multiplier 1)."""
        if self.width == 1:
            return width
        return make_divisible(width * self.width, self.divisor)

    def blocks(self, depth: int, stage: int = 1, stages: int = 3) -> int:
        """Stage `stage` (of `stages`)'s depth, scaled and rounded up (unchanged at multiplier 1,
        and in the first and last stage with `end_depths: fixed`)."""
        if self.depth == 1 or (self.end_depths == "fixed" and stage in (0, stages - 1)):
            return depth
        return math.ceil(depth * self.depth)

    def depths(self, depths: list[int]) -> list[int]:
        """Every stage's depth, scaled."""
        return [self.blocks(d, i, len(depths)) for i, d in enumerate(depths)]

    def model(self, model: Any, part: str = "stages") -> Any:
        """A copy of a spec model with its `width_settings` scaled; `part` ("stem" or "head")
        applies that part's `scaling_scope`."""
        rule = getattr(self, part, "scaled")
        if self.width == 1 or rule == "fixed" or model is None \
                or not getattr(model, "width_settings", ()):
            return model
        update = {}
        for name in model.width_settings:
            value = getattr(model, name)
            update[name] = [self._part(v, rule) for v in value] if isinstance(value, list) \
                else self._part(value, rule)
        return model.model_copy(update=update)

    def _part(self, width: int, rule: str) -> int:
        scaled = self.channels(width)
        return max(width, scaled) if rule == "at_least_written" else scaled

    def changes(self, spec: Any) -> str:
        """What the multipliers did to a spec's hand-set widths and depths, in words."""
        parts = []
        for part, model in (("stem", spec.stem), ("head conv", spec.head.conv)):
            scaled = self.model(model, part.split()[0])
            for name in getattr(model, "width_settings", ()):
                if getattr(model, name) != getattr(scaled, name):
                    parts.append(f"{part} {_text(getattr(model, name))} -> "
                                 f"{_text(getattr(scaled, name))}")
        return ", ".join(parts)

    def scope(self) -> dict[str, str]:
        """The parts whose rule is not the default."""
        return {k: getattr(self, k) for k, v in SCOPE_DEFAULTS.items() if getattr(self, k) != v}

    def rule(self) -> str:
        """The rules in words, for summaries and `explain`."""
        exempt = "".join(f", {k.replace('_', ' ')} {v.replace('_', ' ')}"
                         for k, v in self.scope().items())
        return (f"width x{self.width:g} (make_divisible by {self.divisor}), "
                f"depth x{self.depth:g} (ceil){exempt}")

    def as_dict(self) -> dict[str, Any]:
        return {"width_multiplier": self.width, "depth_multiplier": self.depth,
                "width_divisor": self.divisor, "scaling_scope": self.scope()}


def _text(value: Any) -> str:
    return "(" + ",".join(map(str, value)) + ")" if isinstance(value, list) else str(value)


def _feature(f: Any) -> tuple:
    """The multipliers a network was derived with (the diff's `compound scaling` step); at
    multipliers of 1 the divisor and the scope change nothing, so they are left out."""
    s = Scaling.from_dict(f.graph.attrs.get("scaling") or Scaling().as_dict())
    if s.identity:
        return 1.0, 1.0, None, ()
    return s.width, s.depth, s.divisor, tuple(sorted(s.scope().items()))


def _describe(fa: Any, fb: Any) -> str:
    (wa, da, *_), (wb, db, *_) = _feature(fa), _feature(fb)
    return f"width x{wa:g} -> x{wb:g}, depth x{da:g} -> x{db:g}"


# Changing the multipliers rescales every width and depth they reach: one step, not a width
# change and a new stage ratio.
register_step(StepRule(
    "compound_scaling", "compound scaling", "compound scaling", _feature,
    toward(lambda v: v[0] * v[1]),
    ("width_multiplier", "depth_multiplier", "width_divisor", "scaling_scope", "stages.widths",
     "stages.depths", "stem.out_channels", "stem.widths", "head.conv.out_channels"),
    _describe, subsumes=("width", "stage_ratio")))
