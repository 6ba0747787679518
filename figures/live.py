"""Live figures: a Plotly figure whose big arrays travel once, as compact binary pieces, to a browser that keeps them.

A :class:`LiveFigure` is an ordinary Plotly figure (``{"data": [...], "layout": {...}}``) in which every large
array is replaced by a reference ``{"$p": id}`` to a *piece*: a contiguous float32 (or uint8) array whose id is
a digest of its bytes. The same content always has the same id, so a path that did not change between two
page runs (another method's γ moved) is the same piece, and the contour of a (landscape, weights, contour)
is one piece however many panels draw it. ``encode(live, known)`` frames the figure for the browser:

    b"GSP1" | uint32 header length | header JSON | padding to 8 | the pieces not in ``known``, back to back

The header holds the figure with references, the playback description, the toolbar config and, per piece
sent, ``[id, dtype, count, offset]``. ``known`` is the set of pieces this browser already holds (the page
keeps it per session); encoding adds what it sends. ``resolve(live)`` swaps the arrays back in and gives a
plain ``plotly.graph_objects.Figure`` (tests, static exports).

Playback is not Plotly animation frames: ``live.playback`` names the path traces whose runs move and the
recorded step of each drawn point; the browser draws the moving markers on a canvas over the plot
(``static/gradscape/live_map.js``), so the contour and the rest of the figure are never redrawn.
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

MAGIC = b"GSP1"
INLINE_MAX = 64           # arrays up to this many values stay inline in the header as JSON lists
DTYPES = {"f4": np.float32, "u1": np.uint8}


@dataclass
class LiveFigure:
    figure: dict                                   # {"data": [...], "layout": {...}} with piece references
    pieces: dict = field(default_factory=dict)     # id -> contiguous numpy array
    playback: dict | None = None                   # {"steps": ref, "P": points per path, "rows": [...], ...}
    config: dict = field(default_factory=dict)     # Plotly's config (toolbar, image format)
    meta: dict = field(default_factory=dict)       # what the page may tell the browser (clickable, ...)

    # -- building -----------------------------------------------------------------------------------
    def ref(self, values, dtype: str = "f4"):
        """A reference to ``values`` as a piece (a small array stays an inline list of rounded numbers)."""
        a = np.ascontiguousarray(np.asarray(values), dtype=DTYPES[dtype]).ravel()
        if a.size <= INLINE_MAX and dtype == "f4":
            return [None if not np.isfinite(v) else round(float(v), 5) for v in a.tolist()]
        digest = hashlib.blake2b(a.tobytes(), digest_size=10, person=dtype.encode()).hexdigest()
        self.pieces[digest] = a
        return {"$p": digest}

    def grid(self, Z) -> dict:
        """A reference to a 2-D array (a contour's z): one piece and its row count."""
        Z = np.asarray(Z)
        a = np.ascontiguousarray(Z, dtype=np.float32).ravel()
        digest = hashlib.blake2b(a.tobytes(), digest_size=10, person=b"f4").hexdigest()
        self.pieces[digest] = a
        return {"$p": digest, "rows": int(Z.shape[0])}

    # -- questions ----------------------------------------------------------------------------------
    def used(self) -> list[str]:
        """The piece ids the figure and its playback refer to."""
        out: list[str] = []
        _walk(self.figure, out)
        _walk(self.playback, out)
        return list(dict.fromkeys(out))

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.pieces.values())

    def uses_webgl(self) -> bool:
        """Whether a trace asks for WebGL (a browser with a GPU then loads the full Plotly.js bundle; where WebGL is
        emulated on the CPU the line traces are drawn as SVG instead: static/gradscape/webgl.js)."""
        return any(str(t.get("type", "")).endswith("gl") for t in self.figure.get("data", []))


def _walk(obj, out):
    if isinstance(obj, dict):
        if "$p" in obj:
            out.append(obj["$p"])
            return
        for v in obj.values():
            _walk(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _walk(v, out)


def _jsonable(obj):
    """numpy scalars and small arrays in a layout as plain JSON."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def encode(live: LiveFigure, known: set | None = None, meta: dict | None = None) -> bytes:
    """The browser's frame: the header and every used piece not in ``known`` (which this call extends); ``meta``
    adds to the figure's own for this frame only (the figure may be shared by sessions: it is not changed)."""
    known = set() if known is None else known
    used = live.used()
    send = [i for i in used if i not in known]
    table, blobs, offset = [], [], 0
    for pid in send:
        a = live.pieces[pid]
        dtype = "u1" if a.dtype == np.uint8 else "f4"
        table.append([pid, dtype, int(a.size), offset])
        blobs.append(a.tobytes())
        offset += a.nbytes
        pad = -offset % 8
        if pad:
            blobs.append(b"\0" * pad)
            offset += pad
    header = json.dumps({"figure": live.figure, "playback": live.playback, "config": live.config,
                         "meta": {**live.meta, **(meta or {})}, "pieces": table, "uses": used},
                        separators=(",", ":"), default=_jsonable, allow_nan=False).encode()
    start = 8 + len(header)
    pad = -start % 8
    known.update(send)
    return MAGIC + struct.pack("<I", len(header)) + header + b"\0" * pad + b"".join(blobs)


def decode(frame: bytes, store: dict | None = None) -> dict:
    """The header of a frame, with its pieces added to ``store`` (what the browser does; for tests)."""
    if frame[:4] != MAGIC:
        raise ValueError("not a Gradscape live-figure frame")
    (n,) = struct.unpack("<I", frame[4:8])
    header = json.loads(frame[8:8 + n])
    base = 8 + n + (-(8 + n) % 8)
    store = {} if store is None else store
    for pid, dtype, count, off in header["pieces"]:
        dt = DTYPES[dtype]
        store[pid] = np.frombuffer(frame, dtype=dt, count=count, offset=base + off)
    return header


def _substitute(obj, pieces):
    if isinstance(obj, dict):
        if "$p" in obj:
            a = pieces[obj["$p"]]
            return a.reshape(obj["rows"], -1) if "rows" in obj else a
        return {k: _substitute(v, pieces) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_substitute(v, pieces) for v in obj]
    return obj


def resolve(live: LiveFigure, pieces: dict | None = None) -> go.Figure:
    """The plain Plotly figure: every reference replaced by its array."""
    fig = _substitute(live.figure, pieces if pieces is not None else live.pieces)
    return go.Figure(data=fig["data"], layout=fig.get("layout"), _validate=False)
