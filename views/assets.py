"""Static files the browser needs besides Streamlit's own: Plotly.js for the live map, and the loader of our
custom components' frontends (static/gradscape/).

Two Plotly.js bundles are served from ``static/vendor/``: the full one, and the cartesian one (contour, scatter,
heatmap, ...: a third of the size) that draws every figure without WebGL or 3-D — the default map, the
playground, a first visit — while the full one is fetched only for a figure that needs it
(static/gradscape/plotly.js). The cartesian bundle is committed (``static/plotly/``, from npm) and served only
while its plotly.js version is the installed package's; otherwise it is removed and the page takes the full one.

Plotly.js comes from the installed plotly package (the version the Python figures are built for) and is gzipped
once into ``static/vendor/plotly.min.js.gz`` (not committed; set-up runs ``python -m views.assets``, and the live
map runs :func:`ensure_assets` again in case a plotly upgrade changed it). The app's server
(views/static_cache.py) sends each ``.gz`` file under its plain name (``plotly.min.js``) as it is, with
``Content-Encoding: gzip``, so a plain ``<script>`` tag loads it (static/gradscape/plotly.js) and nothing is
compressed per browser.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path

import plotly
from plotly.offline import get_plotlyjs_version

STATIC = Path(__file__).resolve().parents[1] / "static"
PLOTLY_GZ = STATIC / "vendor" / "plotly.min.js.gz"
CARTESIAN_GZ = STATIC / "vendor" / "plotly-cartesian.min.js.gz"
CARTESIAN_SRC = STATIC / "plotly" / "plotly-cartesian-{version}.min.js.gz"
FRONTEND = STATIC / "gradscape"


def component_js(module: str) -> str:
    """The inline script of a custom component (v2) whose frontend is ``static/gradscape/<module>``: it imports
    the module and calls its ``render(args)``. The module's URL carries a hash of the frontend's files, so a
    browser never runs a stale copy. A module that cannot load says so in the component's place and sends one
    "drawn" event, as a drawn map does: a page waiting for the map's first drawing (views/explore.py) goes on."""
    version = hashlib.sha1(b"".join(p.read_bytes() for p in sorted(FRONTEND.glob("*.js")))).hexdigest()[:12]
    return ("export default function (args) {\n"
            f"  const url = new URL('app/static/gradscape/{module}?v={version}', document.baseURI).href;\n"
            "  let cleanup = null, gone = false;\n"
            "  import(url).then((m) => { if (!gone) cleanup = m.render(args); })\n"
            "    .catch((e) => { const el = args.parentElement; el.dataset.error = String(e); console.error(e);\n"
            "      el.textContent = 'This figure could not load its code (' + e + '). Reload the page to try again.';\n"
            "      el.setAttribute('role', 'alert');\n"
            "      if (!el.__gsTold && args.setTriggerValue) {\n"
            "        el.__gsTold = true; args.setTriggerValue('drawn', {at: Date.now()}); } });\n"
            "  return () => { gone = true; if (cleanup) cleanup(); };\n"
            "}\n")


def ensure_assets() -> Path:
    """Gzip Plotly.js next to our frontend and put the matching cartesian bundle beside it, once per install or
    upgrade or new cartesian bundle (a stamp records the sources' sizes and times). Returns the full archive's
    path."""
    src = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    cartesian = Path(str(CARTESIAN_SRC).format(version=get_plotlyjs_version()))
    stamp = " ".join(f"{p.stat().st_size}-{int(p.stat().st_mtime)}" for p in (src, cartesian) if p.exists())
    mark = PLOTLY_GZ.with_suffix(".stamp")
    fresh = PLOTLY_GZ.exists() and mark.exists() and mark.read_text() == stamp
    if fresh and CARTESIAN_GZ.exists() == cartesian.exists():
        return PLOTLY_GZ
    PLOTLY_GZ.parent.mkdir(parents=True, exist_ok=True)
    tmp = PLOTLY_GZ.with_name(f"{PLOTLY_GZ.name}.{os.getpid()}.tmp")
    with open(src, "rb") as f_in, gzip.GzipFile(tmp, "wb", compresslevel=9, mtime=0) as f_out:
        shutil.copyfileobj(f_in, f_out)
    tmp.replace(PLOTLY_GZ)       # atomic: two servers starting at once never serve half a file
    if cartesian.exists():
        tmp = CARTESIAN_GZ.with_name(f"{CARTESIAN_GZ.name}.{os.getpid()}.tmp")
        shutil.copyfile(cartesian, tmp)
        tmp.replace(CARTESIAN_GZ)
    else:                        # another plotly.js: the page falls back to the full bundle
        CARTESIAN_GZ.unlink(missing_ok=True)
    mark.write_text(stamp)
    return PLOTLY_GZ


if __name__ == "__main__":
    print(ensure_assets())
