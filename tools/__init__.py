"""Developer tools: the Streamlit launcher and the browser helpers shared by the browser tests and the page
benchmarks (tools/explore_bench.py, tools/lecture_hall.py). Not part of the app."""
