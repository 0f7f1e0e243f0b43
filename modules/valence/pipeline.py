"""Session-level valence work shared by the CLI, the DISCOVER adapters and the module specs: a coded session ->
clips with targets, many sessions -> (optional CV) -> saved model + predictor ``.trainer``, a new session ->
continuous valence annotation. Options are checked once by :func:`check_train_options` / :func:`check_predict_options`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from nova_infant.core.errors import AnnotationError, OptionError, TrainerFileError
from nova_infant.core.grid import frame_grid
from nova_infant.core.nova_io import TrainerIO, TrainerSpec, write_trainer
from nova_infant.valence.clips import FACE_THRESHOLD, MIN_FACE_FRAMES, ClipPlan, detect_faces, plan_clips
from nova_infant.valence.training import ValenceConfig, ValenceSession

log = logging.getLogger("nova_infant")

#: the package scheme of the output (schemes/infant_valence.json): the paper's range and rate
SCHEME = {"name": "infant_valence", "type": "CONTINUOUS", "sr": 1.0, "min": -100.0, "max": 100.0}
MODELS_SUBDIR = "valence_models"
PREDICT_SCRIPT = "valence_predict.py"


def _float(value, name, lo=None, hi=None, lo_open=False):
    from nova_infant.core.validation import float_option

    v = float_option(value, name, lo, hi)
    if lo_open and lo is not None and v <= lo:
        raise OptionError(f"option {name}: must be > {lo:g}, got {value!r}")
    return v


def _bool(value, name):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise OptionError(f"option {name}: expected True or False, got {value!r}")


def check_clip_options(o: dict) -> dict:
    """Face/clip options (``face``, ``face_threshold``, ``min_face_frames``, ``clip_ms``, ``margin``) typed and
    range-checked; ``OptionError`` names the option."""
    from nova_infant.core.validation import choice_option, int_option
    from nova_infant.taggers.faces import FACE_CHOICES

    return {"face": choice_option(o.get("face", "largest"), "face", FACE_CHOICES),
            "face_threshold": _float(o.get("face_threshold", FACE_THRESHOLD), "face_threshold", 0.0, 1.0),
            "min_face_frames": int_option(o.get("min_face_frames", MIN_FACE_FRAMES), "min_face_frames", 1),
            "clip_ms": _float(o.get("clip_ms", 1000.0), "clip_ms", 0.0, None, lo_open=True),
            "margin": _float(o.get("margin", 0.1), "margin", 0.0, 1.0)}


def check_train_options(o: dict) -> dict:
    """Every training option typed once -> ``{"config": ValenceConfig, "clip": {...}, "cv_folds", "subjects",
    "model_name"}``. Raises ``OptionError`` naming the option."""
    from nova_infant.core.validation import check_folds, int_option, precision_option, device_option

    d = ValenceConfig()
    config = ValenceConfig(
        model=str(o.get("model") or d.model).strip(),
        stride=int_option(o.get("stride", d.stride), "stride", 1),
        clip_frames=int_option(o.get("clip_frames", d.clip_frames), "clip_frames", 1),
        epochs=int_option(o.get("epochs", d.epochs), "epochs", 1),
        batch_size=int_option(o.get("batch_size", d.batch_size), "batch_size", 1),
        lr=_float(o.get("lr", d.lr), "lr", 0.0, None, lo_open=True),
        weight_decay=_float(o.get("weight_decay", d.weight_decay), "weight_decay", 0.0),
        ema=_float(o.get("ema", d.ema), "ema", 0.0, 1.0),
        augment=_bool(o.get("augment", d.augment), "augment"),
        seed=int_option(o.get("seed", d.seed), "seed"),
        device=device_option(o.get("device", d.device)),
        precision=precision_option(o.get("precision", d.precision)))
    config.frames_per_sample  # stride divides clip_frames
    clip = check_clip_options(o)
    if clip["min_face_frames"] < config.clip_frames:
        raise OptionError(f"option min_face_frames: must be >= clip_frames={config.clip_frames} (SSTS draws that many "
                          f"distinct face frames per clip), got {clip['min_face_frames']}")
    folds = int(float(o.get("cv_folds", 0) or 0))
    return {"config": config, "clip": clip, "cv_folds": check_folds(folds, "cv_folds") if folds else 0,
            "subjects": str(o.get("subjects") or "").strip() or None,
            "model_name": str(o.get("model_name") or "").strip() or f"valence-s{config.stride}"}


def check_predict_options(o: dict) -> dict:
    """Predictor options typed once: ``model`` (saved-model folder), ``ensemble``, ``batch_size``, ``device``,
    ``precision``, ``seed`` and optional clip overrides (empty = the trained model's rules)."""
    from nova_infant.core.validation import device_option, int_option, precision_option

    out = {"model": str(o.get("model") or "").strip(), "ensemble": _bool(o.get("ensemble", True), "ensemble"),
           "batch_size": int_option(o.get("batch_size", 8), "batch_size", 1),
           "device": device_option(o.get("device", "auto")), "precision": precision_option(o.get("precision", "auto")),
           "seed": int_option(o.get("seed", 0), "seed")}
    if out["precision"] == "int8":
        raise OptionError("option precision: int8 is not offered for VideoMAE fine-tuned models; use fp32 or bf16")
    return out


def session_clips(video: str, step_ms: float, duration_ms: float | None, clip: dict, targets=None,
                  progress: bool = True) -> ClipPlan:
    """Detect faces in ``video`` and cut its clips on the grid of ``step_ms`` over ``duration_ms`` (default: the
    video's duration). ``targets`` (n,) float: the annotation's values (training)."""
    track = detect_faces(video, clip["face"], progress=progress)
    if duration_ms is None:
        duration_ms = float(track.frame_ms[-1] + 1000.0 / track.fps) if len(track.frame_ms) else 0.0
    grid = frame_grid(duration_ms, step_ms)
    return plan_clips(track, grid, clip["clip_ms"], clip["face_threshold"], clip["min_face_frames"], targets)


def annotation_targets(annotation, source: str) -> tuple[np.ndarray, float, dict]:
    """Values (float64 (n,), NaN = garbage), sample rate (Hz) and scheme dict of a continuous NOVA annotation.

    Raises
    ------
    AnnotationError
        Not continuous, no rate, or no finite value.
    """
    scheme = getattr(annotation, "annotation_scheme", None)
    rate = getattr(scheme, "sample_rate", None)
    data = getattr(annotation, "data", None)
    if rate is None or data is None or data.dtype.names is None or "score" not in data.dtype.names:
        raise AnnotationError(f"{source}: not a continuous annotation (valence training needs one)")
    if float(rate) <= 0:
        raise AnnotationError(f"{source}: continuous annotation has sample rate {rate}")
    values = np.asarray(data["score"], np.float64)
    values = np.where(values == getattr(annotation, "MISSING_DATA_LABEL_VALUE", np.nan), np.nan, values)
    if not np.isfinite(values).any():
        raise AnnotationError(f"{source}: every value is garbage (NaN): nothing to train on")
    lo, hi = float(getattr(scheme, "min_val", -100.0)), float(getattr(scheme, "max_val", 100.0))
    return values, float(rate), {"name": getattr(scheme, "name", SCHEME["name"]), "type": "CONTINUOUS",
                                 "sr": float(rate), "min": lo, "max": hi}


def training_session(name: str, subject: str, video: str, annotation, duration_ms: float | None, clip: dict,
                     progress: bool = True) -> tuple[ValenceSession, dict]:
    """One coded session -> (ValenceSession with its clips and targets, its scheme). The clip grid follows the
    annotation's sample rate. Skipped clips are logged with their reasons (one summary line)."""
    values, rate, scheme = annotation_targets(annotation, f"session {name}")
    plan = session_clips(video, 1000.0 / rate, duration_ms, clip, values, progress)
    log.info("session %s: %s", name, plan.skip_summary())
    return ValenceSession(name, subject, str(video), plan), scheme


def fit_and_save(sessions: list[ValenceSession], schemes: list[dict], checked: dict, out_dir, cml_dir=None,
                 progress: bool = True) -> tuple[Path, Path | None, dict | None]:
    """Cross-validate (``cv_folds`` >= 2), fit on every session, save the model folder and write the predictor
    ``.trainer`` (``<cml_dir>/valence_<name>.trainer`` when ``cml_dir`` holds ``valence_predict.py``, else
    ``<model>/predictor.trainer``).

    Raises
    ------
    AnnotationError
        Sessions coded with schemes of different ranges or rates.
    OptionError
        No usable clip; CV with fewer than 2 subjects.
    """
    from nova_infant.valence.training import cross_validate, fit, save_model

    keyed = {(s["min"], s["max"], s["sr"]) for s in schemes}
    if len(keyed) > 1:
        raise AnnotationError(f"valence training: sessions are coded in different ranges/rates {sorted(keyed)}")
    scheme = schemes[0]
    config = replace(checked["config"], scale=max(abs(scheme["min"]), abs(scheme["max"])) or 1.0)
    report = None
    if checked["cv_folds"] >= 2:
        report = cross_validate(sessions, config, checked["cv_folds"], progress)
        log.info("%s", report["summary"])
    fitted = fit(sessions, config, progress)
    training = {"sessions": [s.name for s in sessions], "subjects": {s.name: s.subject for s in sessions},
                "clips": {s.name: len(s.plan.clips) for s in sessions},
                "skipped": {s.name: s.plan.skip_summary() for s in sessions}}
    folder = save_model(out_dir, fitted, scheme, checked["clip"], training, report)
    trainer = write_predictor_trainer(folder, cml_dir)
    return folder, trainer, report


# ---------------------------------------------------------------- trainers

TRAIN_OPTIONS = [("model_name", "STRING", ""), ("model", "STRING", ValenceConfig.model),
                 ("stride", "LIST", "6,1,2,3,4,8,12"), ("clip_frames", "STRING", "24"), ("epochs", "STRING", "30"),
                 ("batch_size", "STRING", "64"), ("lr", "STRING", "0.0005"), ("weight_decay", "STRING", "0.05"),
                 ("ema", "STRING", "0.999"), ("augment", "BOOL", "True"), ("cv_folds", "STRING", "0"),
                 ("subjects", "STRING", ""), ("face", "LIST", "largest,central,left,right"),
                 ("face_threshold", "STRING", "0.8"), ("min_face_frames", "STRING", "24"),
                 ("clip_ms", "STRING", "1000"), ("margin", "STRING", "0.1"), ("seed", "STRING", "0"),
                 ("device", "LIST", "auto,cpu,cuda"), ("precision", "LIST", "auto,fp32,bf16")]
PREDICT_OPTIONS = [("model", "STRING", ""), ("ensemble", "BOOL", "True"), ("batch_size", "STRING", "8"),
                   ("seed", "STRING", "0"), ("device", "LIST", "auto,cpu,cuda"), ("precision", "LIST", "auto,fp32,bf16")]

TRAIN_TRAINER = TrainerSpec(
    script="valence_train.py", create="ValenceTrainer", category="Valence",
    description="Train infant facial valence (VideoMAE + SSTS, seed 004) on the selected sessions coded with a "
                "continuous valence annotation; writes a predictor trainer",
    io=[TrainerIO("input", "video", "stream:Video", "video"),
        TrainerIO("input", "labels", "annotation:Continuous", SCHEME["name"])],
    options=TRAIN_OPTIONS)

PREDICT_TRAINER = TrainerSpec(
    script=PREDICT_SCRIPT, create="ValencePredictor", category="Valence",
    description="Infant facial valence per second (VideoMAE + SSTS ensemble) with a trained model (option 'model')",
    io=[TrainerIO("input", "video", "stream:Video", "video"),
        TrainerIO("output", "valence", "annotation:Continuous", SCHEME["name"])],
    options=PREDICT_OPTIONS)


def write_predictor_trainer(model_dir, cml_dir=None) -> Path:
    """Predictor ``.trainer`` for a saved model: ``<cml_dir>/valence_<name>.trainer`` with ``path=`` relative to
    ``cml_dir`` (the folder holding ``valence_predict.py``), else ``<model>/predictor.trainer`` (``path="."``).

    Raises
    ------
    TrainerFileError
        ``cml_dir`` has no ``valence_predict.py``.
    """
    model_dir = Path(model_dir)
    spec = replace(PREDICT_TRAINER, description=f"Infant facial valence with model {model_dir.name} "
                                                f"(VideoMAE + SSTS, seed 004)")
    if cml_dir is not None:
        cml_dir = Path(cml_dir)
        if not (cml_dir / PREDICT_SCRIPT).is_file():
            raise TrainerFileError(f"{cml_dir}: no {PREDICT_SCRIPT} here; give the nova_infant trainers folder")
        rel = os.path.relpath(model_dir.resolve(), cml_dir.resolve()).replace(os.sep, "/")
        return write_trainer(cml_dir / f"valence_{model_dir.name}.trainer", replace(spec, weights_path=rel))
    return write_trainer(model_dir / "predictor.trainer", replace(spec, weights_path="."))


# ---------------------------------------------------------------- prediction


def predict_video(fitted, meta: dict, video: str, duration_ms: float | None, checked: dict,
                  progress: bool = True) -> dict:
    """Valence of one session with a loaded model -> ``{"values", "conf", "sample_rate_hz", "scheme", "plan",
    "notes"}``: values float32 (n,) in the scheme's unit, NaN where the clip was skipped (no face / too few face
    frames), conf float32 (n,) = the clip's face fraction (0 where skipped)."""
    from nova_infant.valence.training import predict_plan

    scheme = meta["scheme"]
    plan = session_clips(video, 1000.0 / float(scheme["sr"]), duration_ms, meta["clip_rules"], None, progress)
    values, conf = predict_plan(fitted, plan, video, checked["ensemble"], checked["batch_size"], checked["seed"])
    values = np.clip(values, scheme["min"], scheme["max"])  # NaN stays NaN
    notes = [plan.skip_summary()]
    if meta.get("backbone", {}).get("is_standin"):
        notes.append("model trained from an UNTRAINED stand-in backbone: values are not meaningful")
    return {"values": values.astype(np.float32), "conf": conf, "sample_rate_hz": float(scheme["sr"]),
            "scheme": scheme, "plan": plan, "notes": notes}


def continuous_annotation(pred: dict, role: str = "", annotator: str = "", session: str = "", dataset: str = "",
                          scheme=None):
    """discover-utils ``ContinuousAnnotation`` (score, conf) of a prediction; NaN scores are NOVA's garbage."""
    from discover_utils.data.annotation import ContinuousAnnotation, ContinuousAnnotationScheme
    from discover_utils.utils.type_definitions import LabelDType

    s = pred["scheme"]
    scheme = scheme or ContinuousAnnotationScheme(name=s["name"], sample_rate=float(s["sr"]), min_val=float(s["min"]),
                                                  max_val=float(s["max"]))
    data = np.zeros(len(pred["values"]), dtype=LabelDType.CONTINUOUS.value)
    data["score"], data["conf"] = pred["values"], pred["conf"]
    return ContinuousAnnotation(scheme=scheme, data=data, role=role, annotator=annotator, session=session,
                                dataset=dataset)
