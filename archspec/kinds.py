"""The vocabulary of the IR: every node kind and group kind, declared once, each with its role.

Kinds are open names (a family may add one with `register_kind`); roles are a small closed set.
Views (the diagram, the diff, the torch lowering) switch on the role and read the display name
here, so a new kind needs no edit in any of them. torch.fx works the same way: six opcodes,
unlimited targets. No torch import: `validate` and `render` read this table too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

#: What a node does, whatever its kind is called.
Role = Literal["input", "conv", "linear", "norm", "activation", "pool", "merge", "scale",
               "reshape", "slice", "reduce", "attention", "regularization"]
#: What a group is, whatever its kind is called: a plain chain, a residual block's container,
#: the network's fixed layout, or a composite op whose forward is not a chain (an attention).
GroupRole = Literal["chain", "residual", "layout", "attention"]

ROLES: tuple[str, ...] = get_args(Role)
#: Roles whose kinds are `quiet` unless declared otherwise.
QUIET_ROLES = frozenset({"input", "norm", "activation", "merge", "reshape"})
GROUP_ROLES: tuple[str, ...] = get_args(GroupRole)


@dataclass(frozen=True)
class Kind:
    """One node kind: its role, whether it is a module (else a functional op in `forward`),
    its name in labels, and the symbol a merge is drawn with."""

    name: str
    role: str
    module: bool = True
    display: str = ""
    symbol: str | None = None
    torch: str | None = None
    """Activations: the `torch.nn` class, built without arguments (`inplace=True` when
    `inplace`)."""
    inplace: bool = False
    broadcast: bool = False
    """Merges: whether inputs after the first may broadcast ((C, 1, 1) x (C, H, W): a gate)."""
    quiet: bool = False
    """Left out of a block's one-line layer sequence in diagrams: it changes no shape and
    carries none of the block's key settings (norms, activations, merges, reshapes)."""
    short: str | None = None
    """How block diagrams abbreviate it, as the papers do ("3x3, 64 -> BN -> ReLU"): norms
    and activations."""
    counts_acts: bool = False
    """Its output counts towards pycls's `acts` (convs, linear layers, spatial pools)."""
    modernity: int = 0
    """Norms and activations: the direction the modernization papers went (ReLU -> GELU,
    batch norm -> layer norm); the diff names a swap toward a higher value a step forward."""


@dataclass(frozen=True)
class GroupKind:
    """One group kind: its role and its name in labels."""

    name: str
    role: str
    display: str = ""
    token: str | None = None
    """The compact name block diagrams draw a composite op with (`SE`, `SplAt`)."""
    label: tuple[str, ...] = ()
    """The token's arguments: format strings over the group's settings (`attrs`) and its
    layers: `{kernel}` ('3x3/2') and `{conv_out}` (output channels) of its first conv or linear
    layer, `{in_channels}` (its input's): `("{kernel}", "r{radix}")`."""
    attachment: bool = False
    """An add-on that any family's block may carry (SE), named after the family in listings
    ("ResNet bottleneck + SE"), rather than the core of one family."""


#: node kind -> Kind. In registration order (the activations' order is the spec's `Literal`'s).
KINDS: dict[str, Kind] = {}
#: group kind -> GroupKind.
GROUP_KINDS: dict[str, GroupKind] = {}


def register_kind(name: str, role: str, *, module: bool = True, display: str | None = None,
                  symbol: str | None = None, torch: str | None = None,
                  inplace: bool = False, broadcast: bool = False,
                  quiet: bool | None = None, short: str | None = None,
                  counts_acts: bool = False, modernity: int = 0) -> Kind:
    """Declare a node kind (the fields are `Kind`'s). Its display name defaults to the name
    with spaces; it is `quiet` by default when its role is one of `QUIET_ROLES`."""
    if role not in ROLES:
        raise ValueError(f"node kind '{name}': role '{role}' is not one of {', '.join(ROLES)}")
    if name in KINDS:
        raise RuntimeError(f"node kind '{name}' declared twice")
    kind = Kind(name, role, module, display or name.replace("_", " "), symbol, torch, inplace,
                broadcast, role in QUIET_ROLES if quiet is None else quiet, short, counts_acts,
                modernity)
    KINDS[name] = kind
    return kind


def register_group_kind(name: str, role: str, display: str | None = None, *,
                        token: str | None = None, label: tuple[str, ...] = (),
                        attachment: bool = False) -> GroupKind:
    """Declare a group kind (a family's composite op: `register_group_kind("se", "attention",
    "squeeze-excite", token="SE")`; the fields are `GroupKind`'s). Its torch container is
    registered with the torch lowering."""
    if role not in GROUP_ROLES:
        raise ValueError(f"group kind '{name}': role '{role}' is not one of "
                         f"{', '.join(GROUP_ROLES)}")
    if name in GROUP_KINDS:
        raise RuntimeError(f"group kind '{name}' declared twice")
    kind = GroupKind(name, role, display or name.replace("_", " "), token, tuple(label),
                     attachment)
    GROUP_KINDS[name] = kind
    return kind


def kind(name: str) -> Kind:
    """The declared node kind; an undeclared one is an internal error (a family forgot
    `register_kind`)."""
    try:
        return KINDS[name]
    except KeyError:
        from .errors import InternalError
        raise InternalError(f"node kind '{name}' is not declared (archspec.kinds.register_kind)")\
            from None


def group_kind(name: str) -> GroupKind:
    try:
        return GROUP_KINDS[name]
    except KeyError:
        from .errors import InternalError
        raise InternalError(f"group kind '{name}' is not declared "
                            f"(archspec.kinds.register_group_kind)") from None


def display_name(name: str) -> str:
    """How a node or group kind reads in labels (an unknown name: with spaces)."""
    known = KINDS.get(name) or GROUP_KINDS.get(name)
    return known.display if known else name.replace("_", " ")


def activation_names() -> tuple[str, ...]:
    """The activation kinds, in declaration order: what `activation:` accepts (with `none`)."""
    return tuple(k.name for k in KINDS.values() if k.role == "activation")


register_kind("input", "input", module=False)
register_kind("conv2d", "conv", display="conv", counts_acts=True)
register_kind("linear", "linear", counts_acts=True)
register_kind("batch_norm", "norm", short="BN", modernity=1)
register_kind("layer_norm", "norm", short="LN", modernity=2)
# the activations `activation:` accepts, in the order the spec reference lists them
register_kind("relu", "activation", torch="ReLU", inplace=True, short="ReLU", modernity=1)
register_kind("relu6", "activation", torch="ReLU6", inplace=True, short="ReLU6", modernity=2)
register_kind("gelu", "activation", torch="GELU", short="GELU", modernity=5)
register_kind("silu", "activation", torch="SiLU", inplace=True, short="SiLU", modernity=4)
register_kind("sigmoid", "activation", torch="Sigmoid", short="sigmoid", modernity=0)
register_kind("hard_swish", "activation", torch="Hardswish", inplace=True, short="h-swish",
              modernity=3)
register_kind("max_pool", "pool", counts_acts=True)
register_kind("avg_pool", "pool", counts_acts=True)
register_kind("global_pool", "pool")
register_kind("dropout", "regularization", quiet=True)
register_kind("drop_path", "regularization")
register_kind("add", "merge", module=False, symbol="+")
register_kind("mul", "merge", module=False, symbol="\u00d7", broadcast=True)
register_kind("layer_scale", "scale")
register_kind("permute", "reshape")
# ResNeSt: C channels viewed as `radix` splits and summed (C -> C / radix)
register_kind("split_sum", "reduce", module=False)
register_kind("radix_softmax", "attention", short="r-softmax")

register_group_kind("network", "layout")
register_group_kind("stages", "layout")
register_group_kind("stage", "chain")
register_group_kind("sequential", "chain")
register_group_kind("residual", "residual")
