"""views/assets.py: the Plotly.js bundles the browser is served."""
from __future__ import annotations

import gzip
from pathlib import Path

from plotly.offline import get_plotlyjs_version

from views import assets


def _redirect(monkeypatch, tmp_path: Path, src_pattern: str):
    monkeypatch.setattr(assets, "PLOTLY_GZ", tmp_path / "vendor" / "plotly.min.js.gz")
    monkeypatch.setattr(assets, "CARTESIAN_GZ", tmp_path / "vendor" / "plotly-cartesian.min.js.gz")
    monkeypatch.setattr(assets, "CARTESIAN_SRC", Path(src_pattern))


def test_the_committed_cartesian_bundle_is_the_installed_plotly_js_version():
    # static/plotly/README.md says how to refresh it after a plotly upgrade
    committed = Path(str(assets.CARTESIAN_SRC).format(version=get_plotlyjs_version()))
    assert committed.exists()
    head = gzip.decompress(committed.read_bytes())[:200].decode()
    assert f"plotly.js (cartesian - minified) v{get_plotlyjs_version()}" in head


def test_the_cartesian_bundle_is_served_beside_the_full_one(monkeypatch, tmp_path):
    _redirect(monkeypatch, tmp_path, str(assets.CARTESIAN_SRC))
    full = assets.ensure_assets()
    text = gzip.decompress(full.read_bytes()).decode()
    assert text.startswith("/**") and f"plotly.js v{get_plotlyjs_version()}" in text[:200]
    committed = Path(str(assets.CARTESIAN_SRC).format(version=get_plotlyjs_version()))
    assert assets.CARTESIAN_GZ.read_bytes() == committed.read_bytes()


def test_another_plotly_js_serves_the_full_bundle_alone(monkeypatch, tmp_path):
    _redirect(monkeypatch, tmp_path, str(tmp_path / "none-{version}.js.gz"))      # no bundle of this version
    assets.CARTESIAN_GZ.parent.mkdir(parents=True)
    assets.CARTESIAN_GZ.write_bytes(b"an old copy")
    assets.ensure_assets()
    assert assets.PLOTLY_GZ.exists() and not assets.CARTESIAN_GZ.exists()
