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

import importlib
import pkgutil

from .base import FAMILIES, PIPELINES, Context, HParam, Method, Post  # noqa: F401

# Display order: the order, which groups the families (a module not listed here sorts after them).
ORDER = ("ls scaleinvls rlw dwa uw famo gradnorm mgda pcgrad graddrop gradvac cagrad imtlg nashmtl "
         "alignedmtl upgrad dualproj config msi pomsi pomsi_static samgs").split()

_BUILT_IN: dict[str, Method] = {}
_MERGED: tuple = (None, {})          # (plugins.generation(), built-ins followed by plugins)


def built_in() -> dict[str, Method]:
    """The methods of ``optimizers/methods/``, in display order (plugins excluded)."""
    if not _BUILT_IN:
        package = importlib.import_module(f"{__name__}.methods")
        found = {}
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            if not getattr(module, "METHODS", None):
                raise ImportError(f"optimizers/methods/{info.name}.py defines no METHODS: every module in "
                                  f"optimizers/methods/ is a method module (helpers live in optimizers/)")
            for m in module.METHODS:
                found[m.key] = m
        rank = {k: i for i, k in enumerate(ORDER)}
        for key in sorted(found, key=lambda k: (rank.get(k, len(ORDER)), k)):
            _BUILT_IN[key] = found[key]
    return _BUILT_IN


def _load() -> dict[str, Method]:
    global _MERGED
    from . import plugins
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
    from . import plugins
    plugins.sync()
    return plugins.errors()
