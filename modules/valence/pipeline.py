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

from nova_infant.core.errors import AnnotationError
from nova_infant.core.grid import frame_grid
from nova_infant.core.trainer_files import TrainerSpec, write_trainer
from nova_infant.valence.clips import ClipPlan, detect_faces, plan_clips
from nova_infant.valence.training import ValenceSession, cross_validate, fit, predict_plan, save_model
from nova_infant.core.validation import check_continuous_range, check_continuous_targets

log = logging.getLogger("nova_infant")

#: the package scheme of the output (schemes/infant_valence.json): the paper's range and rate
SCHEME = {"name": "infant_valence", "type": "CONTINUOUS", "sr": 1.0, "min": -100.0, "max": 100.0}
MODELS_SUBDIR = "valence_models"


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
        Not continuous, no rate, no finite value, or a value outside the scheme's ``[min, max]``.
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
    check_continuous_range(values, lo, hi, source)
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
                 progress: bool = True, *, predictor: TrainerSpec) -> tuple[Path, Path | None, dict | None]:
    """Cross-validate (``cv_folds`` >= 2), fit on every session, save the model folder and write the predictor
    ``.trainer`` from the template ``predictor`` (see :func:`write_predictor_trainer`) into ``cml_dir`` (default:
    the folder holding the model folder).

    Raises
    ------
    AnnotationError
        Sessions coded with schemes of different ranges or rates.
    OptionError
        No usable clip; CV with fewer than 2 subjects.
    """
    keyed = {(s["min"], s["max"], s["sr"]) for s in schemes}
    if len(keyed) > 1:
        raise AnnotationError(f"valence training: sessions are coded in different ranges/rates {sorted(keyed)}")
    scheme = schemes[0]
    check_continuous_targets([c.target for s in sessions for c in s.plan.clips],
                             "valence training on sessions " + ", ".join(s.name for s in sessions[:5]))
    config = replace(checked["config"], scale=max(abs(scheme["min"]), abs(scheme["max"])) or 1.0)
    report = None
    subjects_from = checked.get("subjects_from", "each session its own subject")
    if checked["cv_folds"] >= 2:
        report = cross_validate(sessions, config, checked["cv_folds"], progress)
        report["subjects_from"] = subjects_from
        report["summary"] = f"{report['summary']} (subjects: {subjects_from})"
        log.info("%s", report["summary"])
    fitted = fit(sessions, config, progress)
    training = {"sessions": [s.name for s in sessions], "subjects": {s.name: s.subject for s in sessions},
                "subjects_from": subjects_from,
                "clips": {s.name: len(s.plan.clips) for s in sessions},
                "skipped": {s.name: s.plan.skip_summary() for s in sessions}}
    folder = save_model(out_dir, fitted, scheme, checked["clip"], training, report)
    trainer = write_predictor_trainer(folder, predictor, cml_dir)
    return folder, trainer, report


# ---------------------------------------------------------------- predictor trainer


def write_predictor_trainer(model_dir, predictor: TrainerSpec, cml_dir=None) -> Path:
    """Predictor ``.trainer`` (``trained="true"``) for a saved model: ``<cml_dir>/valence_<name>.trainer`` (the
    training trainer's folder; default: the folder holding the model folder), never inside the checksummed model
    folder. Its ``model`` option and ``<model path>`` are the model folder relative to the ``.trainer``'s folder.

    Parameters
    ----------
    model_dir : path
        The saved model folder.
    predictor : TrainerSpec
        Template: the ``valence_predict`` spec's ``.trainer``
        (``nova_infant.specs.valence.PREDICT_SPEC.trainer_spec()``), passed in because the specs sit above this
        package.
    cml_dir : path, optional

    Returns
    -------
    Path
        The ``.trainer`` written (atomically).
    """
    model_dir = Path(model_dir)

    def spec_for(rel: str):
        base = predictor
        options = [(n, t, rel if n == "model" else d) for n, t, d in base.options]
        return replace(base, options=options, weights_path=rel,
                       description=f"Infant facial valence with model {model_dir.name} (VideoMAE + SSTS, seed 004)")

    folder = Path(cml_dir) if cml_dir is not None else model_dir.parent
    rel = os.path.relpath(model_dir.resolve(), folder.resolve()).replace(os.sep, "/")
    return write_trainer(folder / f"valence_{model_dir.name}.trainer", spec_for(rel))


# ---------------------------------------------------------------- prediction


def predict_video(fitted, meta: dict, video: str, duration_ms: float | None, checked: dict,
                  progress: bool = True) -> dict:
    """Valence of one session with a loaded model -> ``{"values", "conf", "sample_rate_hz", "scheme", "plan",
    "notes"}``: values float32 (n,) in the scheme's unit, NaN where the clip was skipped (no face / too few face
    frames), conf float32 (n,) = the clip's face fraction (0 where skipped)."""
    scheme = meta["scheme"]
    plan = session_clips(video, 1000.0 / float(scheme["sr"]), duration_ms, meta["clip_rules"], None, progress)
    values, conf = predict_plan(fitted, plan, video, checked["ensemble"], checked["batch_size"], checked["seed"])
    values = np.clip(values, scheme["min"], scheme["max"])  # NaN stays NaN
    notes = [plan.skip_summary()]
    if meta.get("backbone", {}).get("is_standin"):
        notes.append("model trained from an UNTRAINED stand-in backbone: values are not meaningful")
    return {"values": values.astype(np.float32), "conf": conf, "sample_rate_hz": float(scheme["sr"]),
            "scheme": scheme, "plan": plan, "notes": notes}
