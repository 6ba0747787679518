"""Write a matplotlib figure as PDF, SVG, PNG or PGF, each carrying the figure spec that rebuilds it.

Where the spec goes (``METADATA_KEY`` = ``GradscapeFigure``, the JSON of ``figures.spec.FigureSpec``):

* every file: a sidecar ``<file>.json`` beside it (``fig2.pdf`` -> ``fig2.pdf.json``);
* PDF: the document info dictionary (``/GradscapeFigure``; ``/Title`` and ``/Subject`` say what it shows);
* PNG: a ``tEXt`` chunk ``GradscapeFigure``; SVG: ``<dc:description>``; PGF: a ``%% GradscapeFigure:`` comment line.

Fonts: PDF embeds TrueType (Type 42) fonts and SVG keeps text as ``<text>`` (rcParams from ``figures/style.py``,
re-applied here because matplotlib reads them when the file is written). Files are reproducible: no creation
dates, fixed SVG ids.
"""
from __future__ import annotations

import io
import json
import shutil
import warnings
from pathlib import Path

import matplotlib as mpl

from . import style as st

METADATA_KEY = "GradscapeFigure"
FIGURE_FORMATS = ("pdf", "svg", "png", "pgf")
ANIMATION_FORMATS = ("gif", "mp4")
FORMATS = FIGURE_FORMATS + ANIMATION_FORMATS
MIN_DPI, MAX_DPI = 30, 1200


def format_of(path, fmt=None) -> str:
    """The output format: ``fmt`` when given, else the file's suffix; refused when neither is known."""
    f = (fmt or Path(path).suffix.lstrip(".")).lower()
    if f not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)} (from --format or the file name), "
                         f"got {f or Path(path).name!r}")
    return f


def check_dpi(dpi) -> int:
    try:
        d = int(dpi)
    except (TypeError, ValueError):
        raise ValueError(f"dpi: expected a whole number, got {dpi!r}") from None
    if d != float(dpi) or not MIN_DPI <= d <= MAX_DPI:
        raise ValueError(f"dpi: must be a whole number between {MIN_DPI} and {MAX_DPI}, got {dpi!r}")
    return d


def latex_system() -> str | None:
    """The LaTeX engine matplotlib's PGF backend would use, when it is installed."""
    for tex in (mpl.rcParams["pgf.texsystem"], "xelatex", "lualatex", "pdflatex"):
        if shutil.which(tex):
            return tex
    return None


def _rc(fig, fmt) -> dict:
    rc = dict(getattr(fig, "gradscape_rc", None) or st.mpl_rc(8.0))
    rc["svg.hashsalt"] = "gradscape"
    if fmt == "pgf":
        rc["pgf.texsystem"] = latex_system()
    return rc


def _metadata(fmt, spec_json, title):
    if fmt == "pdf":
        return {"Title": title, "Subject": "Gradscape figure; its spec is in /GradscapeFigure",
                "Creator": "Gradscape", METADATA_KEY: spec_json, "CreationDate": None}
    if fmt == "png":
        return {"Title": title, "Software": "Gradscape", METADATA_KEY: spec_json}
    if fmt == "svg":
        return {"Title": title, "Description": spec_json, "Date": None, "Creator": "Gradscape"}
    return None


def _latex_labels(fig):
    """PGF text goes through LaTeX: \\mathscr needs mathrsfs, so script L becomes \\mathcal L there."""
    for t in fig.findobj(mpl.text.Text):
        s = t.get_text()
        if "\\mathscr" in s:
            t.set_text(s.replace("\\mathscr", "\\mathcal"))


def _write(fig, target, fmt, dpi, spec_json, title):
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"format: {fmt} is an animation format; a still figure is one of {', '.join(FIGURE_FORMATS)}")
    if fmt == "pgf" and latex_system() is None:
        raise ValueError("format: PGF needs LaTeX (xelatex, lualatex or pdflatex), and none is installed; "
                         "export PDF or SVG instead")
    dpi = check_dpi(dpi)
    with mpl.rc_context(_rc(fig, fmt)), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Unknown infodict keyword")
        if fmt == "pgf":
            _latex_labels(fig)
        fig.savefig(target, format=fmt, dpi=dpi, metadata=_metadata(fmt, spec_json, title))


def _spec_json(spec) -> str:
    if spec is None:
        return ""
    d = spec.to_dict() if hasattr(spec, "to_dict") else spec
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def figure_bytes(fig, fmt, dpi=300, spec=None, title="Gradscape figure") -> bytes:
    """The file's bytes (for a download button), with the spec embedded where the format allows."""
    spec_json = _spec_json(spec)
    buf = io.BytesIO()
    _write(fig, buf, fmt, dpi, spec_json, title)
    data = buf.getvalue()
    if fmt == "pgf" and spec_json:
        data = f"%% {METADATA_KEY}: {spec_json}\n".encode() + data
    return data


def save_figure(fig, path, fmt=None, dpi=300, spec=None, title="Gradscape figure", sidecar=True) -> list[Path]:
    """Write ``fig`` to ``path`` (format from ``fmt`` or the suffix) and its sidecar JSON; returns the paths."""
    path = Path(path)
    fmt = format_of(path, fmt)
    data = figure_bytes(fig, fmt, dpi, spec, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    out = [path]
    if sidecar and spec is not None:
        out.append(write_sidecar(path, spec))
    return out


def sidecar_path(path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def write_sidecar(path, spec) -> Path:
    d = spec.to_dict() if hasattr(spec, "to_dict") else spec
    p = sidecar_path(path)
    p.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
    return p


def read_spec(path) -> dict:
    """The figure spec (a dict) stored with ``path``: a spec JSON file, a file's sidecar, or the metadata
    embedded in a PDF, PNG, SVG, PGF or GIF. Raises ValueError when there is none."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"from-config: {path} does not exist")
    if path.suffix == ".json":
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"from-config: {path} is not valid JSON ({e})") from None
    side = sidecar_path(path)
    if side.exists():
        return read_spec(side)
    text = _embedded(path)
    if not text:
        raise ValueError(f"from-config: {path} carries no Gradscape figure spec (and has no {side.name})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"from-config: the spec embedded in {path} is not valid JSON ({e})") from None


def _embedded(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        try:
            import pypdf
        except ImportError:
            raise ValueError("from-config: reading a PDF's metadata needs pypdf (pip install pypdf), "
                             "or pass the sidecar .json") from None
        info = pypdf.PdfReader(str(path)).metadata or {}
        return info.get("/" + METADATA_KEY)
    if suffix in (".png", ".gif"):
        from PIL import Image
        with Image.open(path) as im:
            if suffix == ".png":
                return im.info.get(METADATA_KEY) or (getattr(im, "text", None) or {}).get(METADATA_KEY)
            c = im.info.get("comment")
            return c.decode() if isinstance(c, bytes) else c
    if suffix == ".svg":
        import re
        from html import unescape
        m = re.search(r"<dc:description>(.*?)</dc:description>", path.read_text(errors="replace"), re.S)
        return unescape(m.group(1)) if m else None
    if suffix == ".pgf":
        with open(path, errors="replace") as f:
            first = f.readline()
        prefix = f"%% {METADATA_KEY}: "
        return first[len(prefix):].strip() if first.startswith(prefix) else None
    return None
