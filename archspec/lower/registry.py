"""Which torch constructor builds each group kind and each node kind. No torch import here.

A family's file registers the container of its composite op next to its plan, without importing
torch when it is imported (`validate` imports every family and must stay torch-free): it
decorates a loader, a function that imports torch and returns the constructor; the loader runs
once, the first time a module of that kind is built.

    @torch_container("se")
    def _squeeze_excite():
        from torch import nn
        from archspec.lower.torch import add_children
        class SqueezeExcite(nn.Module): ...
        return SqueezeExcite

A container is called `(group, graph)`, a layer `(node)`.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

Loader = Callable[[], Callable[..., Any]]

#: group kind -> loader of its container constructor(group, graph)
CONTAINERS: dict[str, Loader] = {}
#: node kind -> loader of its layer constructor(node)
LAYERS: dict[str, Loader] = {}


def _register(table: dict[str, Loader], what: str, kinds: tuple[str, ...]):
    def deco(loader: Loader) -> Loader:
        cached = functools.cache(loader)
        for kind in kinds:
            if kind in table:
                raise RuntimeError(f"torch {what} for kind '{kind}' registered twice")
            table[kind] = cached
        return loader
    return deco


def torch_container(kind: str):
    """Decorate a loader returning the torch container of group kind `kind`."""
    return _register(CONTAINERS, "container", (kind,))


def torch_layer(*kinds: str):
    """Decorate a loader returning the torch layer constructor of the node kinds `kinds`."""
    return _register(LAYERS, "layer", kinds)


def register_container(kind: str):
    """Class or function decorator for code that imports torch anyway (the lowering itself):
    register `factory(group, graph)` for group kind `kind` directly."""
    def deco(factory):
        torch_container(kind)(lambda: factory)
        return factory
    return deco


def register_layer(*kinds: str):
    """Register `factory(node)` for node kinds `kinds` directly (code that imports torch)."""
    def deco(factory):
        torch_layer(*kinds)(lambda: factory)
        return factory
    return deco


def container(kind: str) -> Callable[..., Any]:
    """The container constructor of a group kind."""
    return CONTAINERS[kind]()


def layer(kind: str) -> Callable[..., Any]:
    """The layer constructor of a node kind."""
    return LAYERS[kind]()
