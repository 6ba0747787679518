# The two commands the README promises, plus the pieces they are made of.
.PHONY: setup setup-test app test test-fast bench

setup:
	./scripts/setup.sh

setup-test:
	./scripts/setup.sh --with-browser

app: setup
	.venv/bin/streamlit run app.py

test: setup-test
	.venv/bin/python -m pytest -q

test-fast: setup
	.venv/bin/python -m pytest -q -m "not slow and not browser"

bench: setup
	.venv/bin/python -m trajectories bench --speed
