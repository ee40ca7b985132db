"""The public API for block families written outside archspec (docs/extending.md).

A family is one module that imports from here only: its spec model (`BlockSpecBase` with a
`type` tag, decorated `@register_block`), its `plan(ctx)` recording layers through `ctx` (the
`BlockContext`: `conv_norm_act`, `norm_layer`, `act_layer`, `builder`), its `check(ctx)`
returning `Problem`s, any new node or group kind with its torch lowering, and its named diff
step. Importing the module (or declaring it as an `archspec.blocks` entry point) is enough for
validate, build, render, diff, list and the schema to know it, even after archspec was imported.

Names here are kept stable; everything else in the package may change between releases.
"""
from .blocks import ENTRY_POINT_GROUP
from .blocks.attachments import plan_attention
from .blocks.base import BlockContext, BlockSpecBase, register_block
from .blocks.downsample import Shortcut, plan_shortcut
from .blocks.resnet import ResidualSpec, finish_residual
from .blocks.se import SqueezeExciteSpec
from .blocks.settings import Activation, Model, NormSpec
from .errors import Problem, format_path
from .kinds import register_group_kind, register_kind
from .lower.registry import torch_container, torch_layer
from .primitives import Builder, Tensor, make_divisible, nearest_divisor
from .steps import StepRule, flag, presence_step, register_step, toward

__all__ = [
    "ENTRY_POINT_GROUP", "Activation", "BlockContext", "BlockSpecBase", "Builder", "Model",
    "NormSpec", "Problem", "ResidualSpec", "Shortcut", "SqueezeExciteSpec", "StepRule", "Tensor",
    "finish_residual", "flag", "format_path", "make_divisible", "nearest_divisor",
    "plan_attention", "plan_shortcut", "presence_step", "register_block",
    "register_group_kind", "register_kind", "register_step", "torch_container", "torch_layer",
    "toward",
]
