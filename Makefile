# The two commands the README promises, plus the pieces they are made of.
.PHONY: setup setup-test app test test-fast bench

setup:
	./scripts/setup.sh

setup-test:
	./scripts/setup.sh --with-browser

app: setup
	.venv/bin/streamlit run app.py

# test files run side by side on WORKERS processes (pytest-xdist; one file stays in one process)
WORKERS ?= 2
test: setup-test
	.venv/bin/python -m pytest -q -n $(WORKERS) --dist loadfile

test-fast: setup
	.venv/bin/python -m pytest -q -m "not slow and not browser"

bench: setup
	.venv/bin/python -m trajectories bench --speed
