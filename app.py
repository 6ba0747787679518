"""Gradscape: watch multi-task gradient-aggregation methods run on analytic loss landscapes.

``streamlit run app.py``. This file is read twice, in two roles:

* imported by ``streamlit run`` (``__name__ == "app"``): it defines ``app``, the server — Streamlit's own, with
  views/static_cache.py in front so that the ~70 files a new browser fetches come from memory;
* run by that server for every session (``__name__ == "__main__"``): the pages, which live in ``views/``. A
  teaching link (``teach=1``) is presentation mode: the page navigation is hidden too, so nothing but the figure
  and its line of settings is on screen.

The server prints every thread's Python stack to its log on ``kill -USR1 <pid>`` (:mod:`faulthandler`): what a
stuck page is waiting for, read without stopping anything (the browser tests do this when one fails).
"""
import streamlit as st

if __name__ == "__main__":
    st.set_page_config(page_title="Gradscape", page_icon="🧭", layout="wide")
    presenting = st.query_params.get("teach", "").lower() in ("1", "true", "yes", "on")
    pages = [st.Page("views/explore.py", title="Explore", icon="🗺️", default=True, url_path="explore"),
             st.Page("views/lessons.py", title="Lessons", icon=":material/school:", url_path="lessons"),
             st.Page("views/benchmark.py", title="Benchmark", icon=":material/leaderboard:", url_path="benchmark")]
    st.navigation(pages, position="hidden" if presenting else "sidebar").run()
else:
    import faulthandler
    import signal

    from starlette.middleware import Middleware

    from views.static_cache import StaticCache

    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    app = st.App(__file__, middleware=[Middleware(StaticCache)])
