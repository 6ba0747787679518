"""Gradient-aggregation methods and outer optimisers (see ``optimizers/base.py`` for the contract).

``optimizers.get("samgs")``, ``optimizers.names()``, ``optimizers.by_family()``. Every module of this
package that defines ``METHODS`` (a tuple of :class:`~optimizers.base.Method`) is registered.
"""
from __future__ import annotations

import importlib
import pkgutil

from .base import FAMILIES, PIPELINES, Context, HParam, Method, Post  # noqa: F401

# Display order: the order, which groups the families.
ORDER = ("ls scaleinvls rlw dwa uw famo gradnorm mgda pcgrad graddrop gradvac cagrad imtlg nashmtl "
         "alignedmtl upgrad dualproj config msi pomsi pomsi_static samgs").split()
_NOT_METHODS = {"base", "rng", "outer", "solvers", "linalg"}

_REGISTRY: dict[str, Method] = {}


def _load() -> dict[str, Method]:
    if not _REGISTRY:
        found = {}
        for info in pkgutil.iter_modules(__path__):
            if info.name in _NOT_METHODS or info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{__name__}.{info.name}")
            for m in getattr(module, "METHODS", ()):
                found[m.key] = m
        rank = {k: i for i, k in enumerate(ORDER)}
        for key in sorted(found, key=lambda k: (rank.get(k, len(ORDER)), k)):
            _REGISTRY[key] = found[key]
    return _REGISTRY


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
