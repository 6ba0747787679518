"""Static files from memory: an ASGI middleware in front of Streamlit's own file serving (app.py mounts it).

A fresh browser fetches ~70 files (5 MB: Streamlit's frontend, fonts, Plotly.js, the live map's code) before it
can draw anything. Streamlit serves them with Starlette's ``StaticFiles``, which stats, opens and reads each file
in 64 KiB chunks on worker threads: measured with ``tools/lecture_hall.py``, about 0.15 s of server CPU per new
browser, half of what a session cost. Here each file is read once, kept in memory with a gzip copy made once
(for text types), and answered in one message; a file that changed on disk (same path, new size or mtime) is read
again, so nothing served is ever stale.

What it answers, and with the same headers Streamlit gives them:

* ``/static/...`` — Streamlit's hashed frontend bundles (``public, immutable`` caching), not its HTML;
* ``/app/static/...`` — this app's ``static/`` folder (``.streamlit/config.toml`` turns static serving on), with
  ``ETag`` / ``If-None-Match`` revalidation as Streamlit does.

A file kept gzipped on disk (``name.js.gz`` with no ``name.js`` beside it: the Plotly.js bundles, views/assets.py)
is also served under its plain name, as ``Content-Encoding: gzip`` — so the browser loads it with a plain
``<script>`` tag, compiling it off the main thread while it arrives — and inflated for a client that takes no gzip.

Everything else — the page itself, the websocket, a missing file, a ``Range`` request, a path that leaves its
folder — goes on to Streamlit unchanged.
"""
from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path

import streamlit

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_BYTES = 16 * 2 ** 20          # bigger files are left to Streamlit
MAX_CACHE_BYTES = 96 * 2 ** 20         # all cached bodies together (Streamlit's frontend is 26 MB on disk)
COMPRESSIBLE = {".js", ".mjs", ".css", ".html", ".json", ".map", ".svg", ".txt", ".wasm"}
IMMUTABLE = b"public, immutable, max-age=31536000"
mimetypes.add_type("application/javascript", ".js")
mimetypes.add_type("application/javascript", ".mjs")
mimetypes.add_type("font/woff2", ".woff2")


@dataclass(frozen=True)
class _File:
    stamp: tuple            # (size, mtime_ns): the version on disk this entry holds
    body: bytes
    gz: bytes | None        # the gzip copy, when it is smaller
    etag: bytes
    content_type: bytes


def _content_type(path: Path) -> bytes:
    if path.suffix == ".gz":             # the committed Plotly.js bundle: the browser unpacks it itself
        return b"application/gzip"
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind == "application/javascript":
        kind += "; charset=utf-8" if kind.startswith("text/") else ""
    return kind.encode()


def _inside(root: Path, rel: str) -> Path | None:
    """``root / rel`` when it is a regular file inside ``root`` (no ``..``, no absolute paths, no links out)."""
    if not rel or "\x00" in rel or rel.startswith("/") or "\\" in rel:
        return None
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    path = (root / rel).resolve()
    try:
        path.relative_to(root)
    except ValueError:
        return None
    return path if path.is_file() else None


class StaticCache:
    """ASGI middleware: ``Middleware(StaticCache)`` in ``st.App(..., middleware=[...])``."""

    def __init__(self, app, *, roots: dict | None = None):
        self.app = app
        base = streamlit.config.get_option("server.baseUrlPath").strip("/")
        prefix = f"/{base}" if base else ""
        streamlit_static = Path(streamlit.__file__).resolve().parent / "static"
        # (URL prefix, folder, immutable?): the hashed bundles may be cached forever, this app's files revalidate
        self.roots = roots if roots is not None else {
            f"{prefix}/static/": (streamlit_static / "static", True),
            f"{prefix}/app/static/": ((ROOT / "static").resolve(), False),
        }
        self.files: dict[tuple, _File] = {}     # (path, packed) -> entry
        self.cached_bytes = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        found = None if b"range" in headers else self._lookup(scope["path"])
        if found is None:
            return await self.app(scope, receive, send)
        entry, immutable = found
        out = [(b"content-type", entry.content_type), (b"etag", entry.etag), (b"accept-ranges", b"bytes")]
        out.append((b"cache-control", IMMUTABLE) if immutable else (b"access-control-allow-origin", b"*"))
        if not immutable:
            out.append((b"x-content-type-options", b"nosniff"))
        if headers.get(b"if-none-match", b"").strip() == entry.etag:
            await send({"type": "http.response.start", "status": 304, "headers": out})
            return await send({"type": "http.response.body", "body": b""})
        body = entry.body
        if entry.gz is not None:
            out.append((b"vary", b"Accept-Encoding"))
            if b"gzip" in headers.get(b"accept-encoding", b""):
                body = entry.gz
                out.append((b"content-encoding", b"gzip"))
        out.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    def _lookup(self, url_path: str):
        for prefix, (root, immutable) in self.roots.items():
            if url_path.startswith(prefix):
                rel = url_path[len(prefix):]
                path = _inside(root, rel)
                packed = _inside(root, rel + ".gz") if path is None and rel and not rel.endswith(".gz") else None
                if (path or packed) is None or (path or packed).suffix == ".html":
                    return None
                entry = self._entry(path) if path is not None else self._entry(packed, packed=True)
                return None if entry is None else (entry, immutable)
        return None

    def _entry(self, path: Path, packed: bool = False) -> _File | None:
        """The cached entry of ``path`` (``packed``: a ``.gz`` file served as what it holds)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        entry = self.files.get((path, packed))
        if entry is not None and entry.stamp == stamp:
            return entry
        if st.st_size > MAX_FILE_BYTES:
            return None
        try:
            body = path.read_bytes()
        except OSError:
            return None
        if len(body) != st.st_size:          # written to while read: let Streamlit answer this time
            return None
        if packed:
            try:
                body, gz = gzip.decompress(body), body
            except (OSError, EOFError):          # not gzip after all: not ours to answer
                return None
            kind = _content_type(path.with_suffix(""))
        else:
            gz = gzip.compress(body, compresslevel=6, mtime=0) if path.suffix in COMPRESSIBLE else None
            kind = _content_type(path)
        entry = _File(stamp, body, gz if gz is not None and len(gz) < len(body) else None,
                      b'"' + hashlib.md5(body, usedforsecurity=False).hexdigest().encode() + b'"', kind)
        size = len(body) + len(entry.gz or b"")
        old = self.files.pop((path, packed), None)
        if old is not None:
            self.cached_bytes -= len(old.body) + len(old.gz or b"")
        if self.cached_bytes + size > MAX_CACHE_BYTES:
            return entry                      # served, not kept
        self.files[(path, packed)] = entry
        self.cached_bytes += size
        return entry
