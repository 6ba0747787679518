"""Gradient-aggregation methods and outer optimisers (see ``optimizers/base.py`` for the contract).

``optimizers.get("samgs")``, ``optimizers.names()``, ``optimizers.by_family()``.

The layout answers "is this module a method?": ``optimizers/methods/`` holds one module per method (each defines
``METHODS``, a tuple of :class:`~optimizers.base.Method`), and every module there is registered. The modules
beside it are what methods are built from: ``base`` (the contract and one-line helpers), ``shared`` (pieces
several methods use), ``linalg`` and ``solvers`` (traceable small solvers), ``rng`` (counter-based random
numbers), ``outer`` (Adam / SGD), ``contract`` (the contract's checks) and ``plugins`` (methods from elsewhere).

Plugins join the registry too: files named by ``python -m trajectories run|bench --method-file PATH`` or by
``GRADSCAPE_METHODS``, and installed packages' entry points of group ``gradscape.methods``
(``optimizers/plugins.py``). They follow the built-ins in every listing and carry ``origin`` and ``colour``.
"""
from __future__ import annotations

from . import plugins
from .base import FAMILIES, PIPELINES, Context, HParam, Method, Post  # noqa: F401
from .builtin import ORDER, built_in  # noqa: F401  (the registry's public names)

_MERGED: tuple = (None, {})          # (plugins.generation(), built-ins followed by plugins)


def _load() -> dict[str, Method]:
    global _MERGED
    plugins.sync()                    # entry points once per process; GRADSCAPE_METHODS whenever it changes
    gen = plugins.generation()
    if _MERGED[0] != gen:
        _MERGED = (gen, {**built_in(), **plugins.registered()})
    return _MERGED[1]


def names() -> list[str]:
    return list(_load())


def get(key: str) -> Method:
    reg = _load()
    if key not in reg:
        raise ValueError(f"methods: unknown method {key!r} (known: {', '.join(reg)})")
    return reg[key]


def by_family() -> dict[str, list[str]]:
    out = {f: [] for f in FAMILIES}
    for k, m in _load().items():
        out[m.family].append(k)
    return out


def load_errors() -> list[str]:
    """Why a method named by ``GRADSCAPE_METHODS`` or an entry point could not be loaded (one line each); the
    pages show these, and every other method keeps working."""
    plugins.sync()
    return plugins.errors()
