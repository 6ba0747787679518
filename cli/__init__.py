"""The command line, a face beside the pages: ``python -m trajectories run|bench|figure`` (or ``python -m cli``).

``main`` parses and dispatches (``run`` is the engine's), ``bench`` runs benchmark jobs headless. The CLI may
import every package to its left (``landscapes``, ``optimizers``, ``trajectories``, ``jobs``, ``figures``) and
never ``views``; no package imports it (``trajectories/__main__.py`` and ``cli/__main__.py`` are entry points).
"""
