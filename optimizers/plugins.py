"""Methods from outside ``optimizers/methods/``: a Python file of your own, or an installed package.

A method file is an ordinary Python module that defines ``METHODS = (Method(...), ...)`` exactly as the built-in
modules do (the same ``init`` / ``step`` contract, hyperparameter specs and pipelines; README, "Bring your own
method"). It is code, and it runs with your rights, so it is taken from three places only:

* ``python -m trajectories run|bench --method-file PATH`` (repeatable): :func:`load_file`;
* ``GRADSCAPE_METHODS=path[:path...]`` (``os.pathsep``-separated) in the environment of a server, or a
  benchmark worker, that someone runs on their own machine: read by :func:`sync` whenever it changes (relative
  paths are made absolute in the environment, so the worker processes a server starts find the same files);
* installed packages' entry points of group ``gradscape.methods``, each naming a module that defines
  ``METHODS``, a ``Method`` or a tuple of them: read once per process by :func:`sync`;

never from a URL parameter, an upload or a shared link (the pages only ever look methods up by key).

Loading a file imports it under a module name of its own (``gradscape_plugin_<stem>_<hash of the path>``, so two
files called ``mine.py`` never collide), reads ``METHODS``, checks every method against the contract
(``optimizers/contract.py``: small CPU batches, well under a second each), gives it its ``origin`` and a
``colour`` (its own, or one of :data:`COLOURS` picked by its key, so it keeps it in every process), and
registers it after the built-ins. A key may not take a built-in's or another file's. Every failure is a
``ValueError`` that names the file and the broken rule: the CLI prints it and exits with status 2; for
``GRADSCAPE_METHODS`` and entry points it is kept in :func:`errors` for the pages to show, and the other methods
keep working.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import threading
import zlib
from dataclasses import replace
from pathlib import Path

from .base import Method
from .builtin import built_in

ENV = "GRADSCAPE_METHODS"
GROUP = "gradscape.methods"
# Paul Tol's "vibrant" scheme (colour-blind-safe); none of these is a built-in method's colour.
COLOURS = ("#EE7733", "#0077BB", "#33BBEE", "#EE3377", "#CC3311", "#009988", "#BBBBBB")

_FILES: dict[Path, tuple[Method, ...]] = {}     # every file imported by this process, checked (imported once)
_ACTIVE: dict[str, Method] = {}                  # the registered plugins, in load order
_FROM_ENV: set = set()                           # keys registered because GRADSCAPE_METHODS named their file
_STATE = {"env": None, "env_errors": [], "entry_points": None, "ep_errors": [], "generation": 0}
_LOCK = threading.RLock()      # a server's sessions are threads: one of them loads, the others wait for it


def generation() -> int:
    """A counter that changes whenever the set of registered plugins does (the registry caches on it)."""
    return _STATE["generation"]


def registered() -> dict[str, Method]:
    return dict(_ACTIVE)


def errors() -> list[str]:
    return list(_STATE["ep_errors"]) + list(_STATE["env_errors"])


def load_file(path) -> tuple[Method, ...]:
    """Import, check and register the methods of one file (the CLI's ``--method-file``); ``ValueError`` naming the
    file and the broken rule otherwise. Loading the same file again returns the same methods."""
    with _LOCK:
        methods = _import_file(path)
        register(methods)
    return methods


def load_files(paths) -> list[str]:
    """The CLI's ``--method-file`` flags: :func:`load_file` each path (the first failure raises), then return
    the problems with the methods ``GRADSCAPE_METHODS`` or an entry point names, for the CLI to warn about."""
    for path in paths:
        load_file(path)
    sync()
    return errors()


def register(methods) -> None:
    """Add checked methods to the registry; a key may not take a built-in's or another origin's."""
    builtin = built_in()
    with _LOCK:
        _register(methods, builtin)


def _register(methods, builtin) -> None:
    for m in methods:
        if m.key in builtin:
            raise ValueError(f"method {m.key!r} from {m.origin}: spec: key {m.key!r} is taken by the built-in "
                             f"{builtin[m.key].name}; pick another key")
        other = _ACTIVE.get(m.key)
        if other is not None and other.origin != m.origin:
            raise ValueError(f"method {m.key!r} from {m.origin}: spec: key {m.key!r} is taken by the plugin "
                             f"from {other.origin}; pick another key")
    for m in methods:
        _ACTIVE[m.key] = m
    _STATE["generation"] += 1


def unregister(*keys: str) -> None:
    """Drop plugins from the registry (their modules stay imported)."""
    with _LOCK:
        for k in keys:
            _ACTIVE.pop(k, None)
            _FROM_ENV.discard(k)
        _STATE["generation"] += 1


def sync() -> None:
    """Bring the registry up to date with the entry points (once per process) and ``GRADSCAPE_METHODS``."""
    if _STATE["entry_points"] is not None and os.environ.get(ENV, "") == _STATE["env"]:
        return                          # the common case, on every registry call: nothing changed
    with _LOCK:
        _sync()


def _sync() -> None:
    if _STATE["entry_points"] is None:
        _STATE["entry_points"] = True
        _STATE["ep_errors"] = _load_entry_points()
        _STATE["generation"] += 1
    env = os.environ.get(ENV, "")
    if env != _STATE["env"]:
        items = [p.strip() for p in env.split(os.pathsep) if p.strip()]
        # absolute paths, so that a benchmark worker (started in the repository, with this environment) finds them
        absolute = os.pathsep.join(str(Path(p).expanduser().absolute()) for p in items)
        if absolute != env:
            os.environ[ENV] = env = absolute
        _STATE["env"] = env
        unregister(*_FROM_ENV)
        problems = []
        for item in items:
            try:
                methods = _import_file(item)
                fresh = [m for m in methods if m.key not in _ACTIVE]
                register(methods)
                _FROM_ENV.update(m.key for m in fresh)
            except ValueError as e:
                problems.append(f"{ENV}: {e}")
        _STATE["env_errors"] = problems


def _load_entry_points() -> list[str]:
    from importlib.metadata import entry_points

    problems = []
    for ep in entry_points(group=GROUP):
        origin = f"entry point {ep.name} ({ep.value})"
        try:
            obj = ep.load()
        except Exception as e:    # noqa: BLE001 - a broken package must not take the registry down
            problems.append(f"{origin}: importing it failed: {type(e).__name__}: {_first_line(e)}")
            continue
        try:
            found = getattr(obj, "METHODS", obj)
            found = (found,) if isinstance(found, Method) else found
            register(_checked(found, origin))
        except ValueError as e:
            problems.append(str(e))
    return problems


def _module_name(path: Path) -> str:
    stem = re.sub(r"\W", "_", path.stem)[:40]
    return f"gradscape_plugin_{stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:10]}"


def _import_file(path) -> tuple[Method, ...]:
    text = str(path)
    p = Path(text).expanduser()
    if p.suffix != ".py":
        raise ValueError(f"method file {text}: expected a Python file ending in .py")
    if not p.is_file():
        raise ValueError(f"method file {text}: no such file")
    p = p.resolve()
    if p in _FILES:
        return _FILES[p]
    name = _module_name(p)
    spec = importlib.util.spec_from_file_location(name, p)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module          # dataclasses, pickling and the kernel cache look modules up by name
    try:
        spec.loader.exec_module(module)
    except Exception as e:             # noqa: BLE001 - a plugin may raise anything on import
        sys.modules.pop(name, None)
        raise ValueError(f"method file {p}: importing it failed: {type(e).__name__}: {_first_line(e)}") from None
    methods = _checked(getattr(module, "METHODS", None), str(p))
    _FILES[p] = methods
    return methods


def _checked(found, origin: str) -> tuple[Method, ...]:
    """The methods of one origin, each checked against the contract, with origin and colour filled in."""
    from . import contract

    if not isinstance(found, (tuple, list)) or not found or not all(isinstance(m, Method) for m in found):
        raise ValueError(f"{origin}: expected METHODS = (optimizers.Method(...), ...), got "
                         f"{type(found).__name__ if found is not None else 'no METHODS'}")
    keys = [m.key for m in found]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{origin}: spec: two methods share a key ({', '.join(keys)})")
    out = []
    for m in found:
        try:
            contract.require(m)
        except ValueError as e:
            raise ValueError(f"{e} (from {origin})") from None
        colour = m.colour or COLOURS[zlib.crc32(m.key.encode()) % len(COLOURS)]
        out.append(replace(m, origin=origin, colour=colour))
    return tuple(out)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__
