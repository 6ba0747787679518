#!/usr/bin/env bash
# Set up Gradscape on a fresh machine: a virtual environment with the requirements at their tested versions
# (constraints.txt), and (for the browser tests) Debian's chromium. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt -c constraints.txt
if [ "${1:-}" = "--with-browser" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium poppler-utils >/dev/null
fi
# The live map's Plotly.js, gzipped from the installed plotly package into static/vendor/ (views/assets.py).
.venv/bin/python -m views.assets >/dev/null
