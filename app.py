"""Gradscape: watch multi-task gradient-aggregation methods run on analytic loss landscapes.

``streamlit run app.py``; the pages live in ``views/``. A teaching link (``teach=1``) is presentation mode: the
page navigation is hidden too, so nothing but the figure and its line of settings is on screen.
"""
import streamlit as st

st.set_page_config(page_title="Gradscape", page_icon="🧭", layout="wide")

presenting = st.query_params.get("teach", "").lower() in ("1", "true", "yes", "on")
pages = [st.Page("views/explore.py", title="Explore", icon="🗺️", default=True, url_path="explore"),
         st.Page("views/lessons.py", title="Lessons", icon=":material/school:", url_path="lessons"),
         st.Page("views/benchmark.py", title="Benchmark", icon=":material/leaderboard:", url_path="benchmark")]
st.navigation(pages, position="hidden" if presenting else "sidebar").run()
