"""The server's settings that the page's speed rests on (README "Performance": what each one saved, measured)."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_streamlit_does_not_collect_garbage_after_every_script_run():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["runner"]["postScriptGC"] is False
    assert cfg["server"]["enableStaticServing"] is True        # the live map's code and Plotly.js


def test_the_imported_heap_is_frozen_once_per_process():
    code = ("import gc; from views import common; assert gc.get_freeze_count() == 0\n"
            "common.freeze_imported_heap(); n = gc.get_freeze_count(); junk = [[i] for i in range(1000)]\n"
            "common.freeze_imported_heap(); assert gc.get_freeze_count() == n, 'frozen twice'\n"
            "print(n)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 10_000           # streamlit, numpy, torch (through trajectories.specs) ...


def test_app_py_imported_is_streamlits_server_with_the_static_cache_in_front():
    code = ("import app, streamlit as st; from views.static_cache import StaticCache\n"
            "assert isinstance(app.app, st.App)\n"
            "assert [m.cls for m in app.app._user_middleware] == [StaticCache]")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
