#!/usr/bin/env bash
# Installs for the review helpers (nova-infant review …) and their tests:
# - pympi-ling (PyPI, pure Python, MIT): ELAN .eaf reading/writing
# - mongomock (PyPI): in-process MongoDB for the NOVA database-mode tests (tests/test_nova_db.py)
# - Debian chromium: headless browser the HTML-timeline test renders the page with
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PY="${PYTHON:-python3}"

"$PY" -m pip install -q "pympi-ling>=1.70" "mongomock>=4.1"

if command -v apt-get >/dev/null 2>&1 && ! command -v chromium >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium >/dev/null
fi
echo "review helpers: pympi-ling, mongomock, chromium installed"
