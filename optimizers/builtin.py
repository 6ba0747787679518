"""The built-in methods: every module of ``optimizers/methods/``, in display order (``optimizers.built_in()``).

Beside the registry (``optimizers/__init__.py``) and the plugin loader (``plugins.py``), which both need the
built-in keys; neither imports the other for them.
"""
from __future__ import annotations

import importlib
import pkgutil

from .base import Method

# Display order: the order, which groups the families (a module not listed here sorts after them).
ORDER = ("ls scaleinvls rlw dwa uw famo gradnorm mgda pcgrad graddrop gradvac cagrad imtlg nashmtl "
         "alignedmtl upgrad dualproj config msi pomsi pomsi_static samgs").split()

_BUILT_IN: dict[str, Method] = {}


def built_in() -> dict[str, Method]:
    """The methods of ``optimizers/methods/``, in display order (plugins excluded)."""
    if not _BUILT_IN:
        package = importlib.import_module("optimizers.methods")
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
