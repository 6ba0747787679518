"""Where built kernels live, and the keys that find them again.

Two levels: a built object (a C shared object, a Triton module) is stored under a hash of its own source,
so identical programs share it; an *index* entry maps a caller's key (everything the traced code depends
on) plus a fingerprint of the Python sources it was traced from to that object, so a fresh process skips
tracing altogether. The caller names those sources (:func:`code_fingerprint`); this package adds its own
files, since a change to the generator changes every kernel. Writes are atomic (a temporary file, then
``os.replace``): concurrent builders never see half a file.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import torch

_HERE = Path(__file__).resolve().parent
_FP_CACHE: dict = {}


def cache_dir(sub: str = "kernels") -> Path:
    root = os.environ.get("GRADSCAPE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gradscape")
    path = Path(root) / sub
    path.mkdir(parents=True, exist_ok=True)
    return path


def _module_files(names) -> set:
    """The files of the named modules, and of the modules of their own top-level package that they use
    (a method module's helpers, say), so editing a helper invalidates what was built from it."""
    files = set()
    for name in names:
        mod = sys.modules.get(name)
        if mod is None or not getattr(mod, "__file__", None):
            continue
        files.add(Path(mod.__file__).resolve())
        top = name.split(".")[0] + "."
        for v in vars(mod).values():
            home = getattr(v, "__module__", None) or (getattr(v, "__name__", "") if hasattr(v, "__file__") else "")
            if isinstance(home, str) and home.startswith(top) and getattr(sys.modules.get(home), "__file__", None):
                files.add(Path(sys.modules[home].__file__).resolve())
    return files


def code_fingerprint(modules=(), salt: str = "") -> str:
    """A hash of the given modules' sources (see :func:`_module_files`), this package's own files, torch's
    version and ``salt`` (compiler flags, say)."""
    files = _module_files(modules) | set(_HERE.glob("*.py"))
    key = (tuple(sorted(str(f) for f in files)), salt)
    if key not in _FP_CACHE:
        h = hashlib.sha256(torch.__version__.encode() + salt.encode())
        # what the files say, not where they are: the same code in another place (a Ray worker's copy of the
        # checkout, unpacked under a new folder for every Ray session) finds the kernels it already built
        for name, digest in sorted((Path(f).name, hashlib.sha256(Path(f).read_bytes()).hexdigest()) for f in key[0]):
            h.update(f"{name}:{digest};".encode())
        _FP_CACHE[key] = h.hexdigest()[:24]
    return _FP_CACHE[key]


def index_path(kind: str, key, modules=(), salt: str = "") -> Path:
    d = cache_dir() / "index"
    d.mkdir(exist_ok=True)
    h = hashlib.sha256((kind + repr(key) + code_fingerprint(modules, salt)).encode()).hexdigest()[:32]
    return d / f"{kind}-{h}.txt"


def write_atomic(path: Path, text: str):
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
