"""views/static_cache.py: static files answered from memory, everything else handed on to Streamlit unchanged."""
from __future__ import annotations

import asyncio
import gzip
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from views.static_cache import StaticCache


class Downstream:
    """Stands in for Streamlit: records what reached it and answers 418."""

    def __init__(self):
        self.paths = []

    async def __call__(self, scope, receive, send):
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b"downstream"})


def request(mw, path, method="GET", **headers):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(msg):
        sent.append(msg)

    scope = {"type": "http", "method": method, "path": path,
             "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]}
    # on an event loop of its own, in a thread of its own: in a process that ran the browser tests first (xdist
    # hands a worker whole files in any order), Playwright's loop is running in this thread and asyncio.run refuses
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, mw(scope, receive, send)).result()
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start.get("headers", [])}, body


@pytest.fixture
def site(tmp_path):
    hashed, mine = tmp_path / "bundles", tmp_path / "app"
    (hashed / "js").mkdir(parents=True)
    mine.mkdir()
    (hashed / "js" / "index.abc123.js").write_text("console.log('streamlit');\n" * 500)
    (hashed / "index.html").write_text("<html></html>")
    (mine / "map.js").write_text("export default function () {}\n" * 200)
    (mine / "bundle.min.js.gz").write_bytes(gzip.compress(b"var Plotly = {};" * 100))
    (tmp_path / "secret.txt").write_text("not served")
    down = Downstream()
    mw = StaticCache(down, roots={"/static/": (hashed.resolve(), True), "/app/static/": (mine.resolve(), False)})
    return mw, down, hashed, mine


def test_a_hashed_bundle_comes_from_memory_gzipped_and_cacheable_forever(site):
    mw, down, hashed, _ = site
    status, headers, body = request(mw, "/static/js/index.abc123.js", accept_encoding="gzip, deflate, br")
    assert status == 200 and down.paths == []
    assert headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == (hashed / "js" / "index.abc123.js").read_bytes()
    assert int(headers["content-length"]) == len(body)
    assert "immutable" in headers["cache-control"] and headers["content-type"] == "application/javascript"


def test_a_browser_that_takes_no_gzip_gets_the_plain_file(site):
    mw, _, hashed, _ = site
    status, headers, body = request(mw, "/static/js/index.abc123.js")
    assert status == 200 and "content-encoding" not in headers
    assert body == (hashed / "js" / "index.abc123.js").read_bytes()


def test_the_apps_own_files_revalidate_with_their_etag(site):
    mw, _, _, mine = site
    status, headers, body = request(mw, "/app/static/map.js", accept_encoding="gzip")
    assert status == 200 and "cache-control" not in headers and headers["x-content-type-options"] == "nosniff"
    assert gzip.decompress(body) == (mine / "map.js").read_bytes()
    status, again, body = request(mw, "/app/static/map.js", if_none_match=headers["etag"])
    assert status == 304 and body == b"" and again["etag"] == headers["etag"]


def test_a_gzip_file_is_sent_as_it_is_for_the_browser_to_unpack(site):
    mw, _, _, mine = site
    status, headers, body = request(mw, "/app/static/bundle.min.js.gz", accept_encoding="gzip")
    assert status == 200 and "content-encoding" not in headers
    assert headers["content-type"] == "application/gzip" and body == (mine / "bundle.min.js.gz").read_bytes()


def test_a_file_changed_on_disk_is_served_new(site):
    mw, _, _, mine = site
    assert request(mw, "/app/static/map.js")[2] == (mine / "map.js").read_bytes()
    (mine / "map.js").write_text("export default 2;\n")
    st = os.stat(mine / "map.js")
    os.utime(mine / "map.js", ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    assert request(mw, "/app/static/map.js")[2] == b"export default 2;\n"


def test_head_sends_the_headers_without_the_body(site):
    mw, _, hashed, _ = site
    status, headers, body = request(mw, "/static/js/index.abc123.js", method="HEAD")
    assert status == 200 and body == b""
    assert int(headers["content-length"]) == (hashed / "js" / "index.abc123.js").stat().st_size


@pytest.mark.parametrize("path", [
    "/static/js/missing.js",                 # not there: Streamlit's 404
    "/static/../secret.txt",                 # leaves its folder
    "/static/js/../../secret.txt",
    "/static//etc/passwd",
    "/static/index.html",                    # pages are Streamlit's (it may rewrite them)
    "/",                                     # the app itself
    "/_stcore/health",
    "/app/static/",                          # a folder
])
def test_anything_else_goes_on_to_streamlit(site, path):
    mw, down, _, _ = site
    status, _, body = request(mw, path)
    assert (status, body) == (418, b"downstream") and down.paths == [path]


def test_range_requests_and_posts_go_on_to_streamlit(site):
    mw, down, _, _ = site
    assert request(mw, "/static/js/index.abc123.js", range="bytes=0-9")[0] == 418
    assert request(mw, "/static/js/index.abc123.js", method="POST")[0] == 418
    assert len(down.paths) == 2


def test_a_link_out_of_the_folder_is_not_followed(site, tmp_path):
    mw, down, hashed, _ = site
    (hashed / "js" / "out.js").symlink_to(tmp_path / "secret.txt")
    assert request(mw, "/static/js/out.js")[0] == 418 and down.paths == ["/static/js/out.js"]


def test_the_default_roots_are_streamlits_bundles_and_this_apps_static_folder():
    import streamlit
    mw = StaticCache(Downstream())
    (bundles, forever), (mine, revalidate) = mw.roots["/static/"], mw.roots["/app/static/"]
    assert forever and not revalidate
    assert bundles == Path(streamlit.__file__).resolve().parent / "static" / "static"
    assert mine == Path(__file__).resolve().parents[1] / "static"
    assert any(bundles.glob("js/index.*.js"))     # the folder Streamlit's page loads its code from


def test_streamlit_run_app_py_serves_the_frontend_through_the_cache():
    """The whole chain: ``streamlit run app.py`` finds ``app`` (st.App) and the middleware answers the page's own
    script, gzipped (Streamlit alone sends its bundles uncompressed), with the bytes of Streamlit's file; and
    SIGUSR1 makes the server print its threads' stacks without stopping (what a failing browser test reports)."""
    import re
    import urllib.request

    import streamlit

    from tools.serve import streamlit_app
    with streamlit_app() as server:
        with urllib.request.urlopen(server.url + "/") as r:
            html = r.read().decode()
        src = re.search(r'src="\./(static/js/index\.[\w-]+\.js)"', html).group(1)
        req = urllib.request.Request(f"{server.url}/{src}", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(req) as r:
            encoding, body = r.headers.get("Content-Encoding"), r.read()
        health = urllib.request.urlopen(server.url + "/_stcore/health").read()
        before = server.log_tail()
        dump = server.thread_dump()[len(before):]       # SIGUSR1: app.py's faulthandler prints every stack
        alive = server.proc.poll() is None
    assert encoding == "gzip" and health == b"ok"
    assert alive and "Thread 0x" in dump and "(most recent call first)" in dump
    assert gzip.decompress(body) == (Path(streamlit.__file__).parent / "static" / src).read_bytes()


def test_a_gzipped_file_is_also_served_under_its_plain_name_as_gzip_encoding(site):
    mw, down, _, mine = site
    packed = (mine / "bundle.min.js.gz").read_bytes()
    status, headers, body = request(mw, "/app/static/bundle.min.js", accept_encoding="gzip")
    assert status == 200 and down.paths == []
    assert headers["content-encoding"] == "gzip" and headers["content-type"] == "application/javascript"
    assert body == packed                                   # the file on disk, sent as it is
    status, headers, body = request(mw, "/app/static/bundle.min.js")        # a client that takes no gzip
    assert status == 200 and "content-encoding" not in headers and body == gzip.decompress(packed)
    assert request(mw, "/app/static/bundle.min.js.gz")[1]["content-type"] == "application/gzip"   # still there


def test_a_plain_file_is_preferred_to_a_gzipped_one_of_the_same_name(site):
    mw, _, _, mine = site
    (mine / "map.js.gz").write_bytes(gzip.compress(b"stale"))
    assert request(mw, "/app/static/map.js")[2] == (mine / "map.js").read_bytes()


def test_a_gz_file_that_is_not_gzip_goes_on_to_streamlit(site):
    mw, down, _, mine = site
    (mine / "broken.js.gz").write_bytes(b"not gzip at all")
    assert request(mw, "/app/static/broken.js")[0] == 418 and down.paths == ["/app/static/broken.js"]
