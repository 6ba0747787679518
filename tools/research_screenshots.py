"""The README's pictures of Explore's research views, taken in Debian's Chromium: ``docs/explore-ghosts.png`` (the
published paths under the runs), ``docs/explore-playground.png`` (the aggregator playground) and
``docs/explore-fragility.png`` (one run's cloud). Each is the page's main area, cropped, and kept under 300 KB.

    .venv/bin/python -m tools.research_screenshots
"""
from __future__ import annotations

import io

from PIL import Image

from tools.serve import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_app

DOCS = ROOT / "docs"
MAX_BYTES = 300_000
SHOTS = {
    # name: (address, an element of the view, pixels kept above it, height)
    "explore-ghosts.png": ("methods=samgs,alignedmtl,mgda&ghosts=1", ".gs-live", 110, 1010),
    "explore-playground.png": ("view=playground&methods=samgs,nashmtl,cagrad,pcgrad,mgda,imtlg,alignedmtl,ls",
                               ".gs-playground", 250, 820),
    "explore-fragility.png": ("view=fragility&methods=samgs&fstart=1", ".js-plotly-plot", 110, 960),
}


def _settle(page):
    page.wait_for_timeout(1500)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=300_000)
    page.wait_for_timeout(2500)


def _save(png: bytes, path):
    """PNG under MAX_BYTES: as taken, else with a 256-colour palette (flat UI colours survive it)."""
    if len(png) > MAX_BYTES:
        img = Image.open(io.BytesIO(png)).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
        buf = io.BytesIO()
        img.save(buf, "PNG", optimize=True)
        png = buf.getvalue()
    path.write_bytes(png)
    return len(png)


def main():
    from playwright.sync_api import sync_playwright
    DOCS.mkdir(exist_ok=True)
    with streamlit_app() as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1360, "height": 1500}, device_scale_factor=1)
        for name, (query, anchor, above, height) in SHOTS.items():
            page.goto(f"{srv.url}/?{query}")
            page.wait_for_selector(anchor, timeout=300_000)
            _settle(page)
            main_area = page.locator('[data-testid="stMainBlockContainer"]')
            box = main_area.bounding_box()
            top = page.locator(anchor).first.bounding_box()["y"] - above
            bottom = min(box["y"] + box["height"], top + height)
            png = page.screenshot(clip=dict(x=box["x"], y=top, width=box["width"], height=bottom - top))
            print(f"docs/{name}: {_save(png, DOCS / name) / 1024:.0f} KiB")
        browser.close()


if __name__ == "__main__":
    main()
