"""Gradscape: watch multi-task gradient-aggregation methods run on analytic loss landscapes.

``streamlit run app.py``; the pages live in ``views/``.
"""
import streamlit as st

st.set_page_config(page_title="Gradscape", page_icon="🧭", layout="wide")

pages = [st.Page("views/explore.py", title="Explore", icon="🗺️", default=True, url_path="explore"),
         st.Page("views/benchmark.py", title="Benchmark", icon=":material/leaderboard:", url_path="benchmark")]
st.navigation(pages).run()
