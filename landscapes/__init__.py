"""Analytic multi-task loss landscapes over two parameters.

``landscapes.get("one_optimum")``, ``landscapes.names()``, ``landscapes.register(landscape)``.
"""
from __future__ import annotations

from .base import Landscape, Preset  # noqa: F401
from .three_tasks import three_bowls
from .toys import one_optimum, two_optima

_REGISTRY: dict[str, Landscape] = {}


def register(landscape: Landscape) -> Landscape:
    _REGISTRY[landscape.key] = landscape
    return landscape


for _make in (one_optimum, two_optima, three_bowls):
    register(_make())


def names() -> list[str]:
    return list(_REGISTRY)


def get(key: str) -> Landscape:
    if key not in _REGISTRY:
        raise ValueError(f"landscape: unknown landscape {key!r} (known: {', '.join(_REGISTRY)})")
    return _REGISTRY[key]
