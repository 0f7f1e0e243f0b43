"""Specs of infant facial valence (seed 004; docs/valence.md): the trainer ``valence_train`` and the predictor
``valence_predict``, like the ICEP-R pair.

``valence_train`` (``trains=True``): per session, ``run`` detects the face in every frame of ``video``, cuts 1-s clips
on the grid of the continuous ``labels`` annotation (its sample rate) by the paper's rules and returns them with
their valence (:func:`nova_infant.valence.pipeline.training_session`); after the job's last session ``fit``
optionally cross-validates by subject, fine-tunes VideoMAE on every clip and saves one model folder under
``<trainer folder>/valence_models/<model_name>/`` plus a ``trained="true"`` predictor ``valence_<model_name>.trainer``
beside the training trainer.

``valence_predict``: ``video`` -> continuous annotation ``valence`` in the model's scheme (default
``infant_valence``, [-100, 100] at 1 Hz), ``conf`` = the clip's face fraction; rows without a usable face clip are NaN
(NOVA's garbage value) with conf 0.
"""

from __future__ import annotations

from pathlib import Path

from nova_infant.core.atomic import check_replaceable, safe_name
from nova_infant.core.backbones import DEFAULT_VIDEOMAE
from nova_infant.core.errors import OptionError
from nova_infant.specs import options as shared
from nova_infant.specs.module_spec import ModuleSpec, TrainResult
from nova_infant.specs.options import Option
from nova_infant.specs.ports import ContinuousData, Port, Result
from nova_infant.taggers.faces import FACE_CHOICES
from nova_infant.valence.pipeline import MODELS_SUBDIR, fit_and_save, predict_video, training_session
from nova_infant.valence.ssts import check_stride
from nova_infant.valence.training import ValenceConfig, load_model
from nova_infant.core.annotations import check_annotation

CITATION = ("Ning, Onal Ertugrul, Messinger, Cohn, Salah: Automated Emotional Valence Estimation in Infants with "
            "Stochastic and Strided Temporal Sampling (seed 004); VideoMAE: Tong et al. 2022")
LICENCE = "method: paper; weights MCG-NJU/videomae-small-finetuned-ssv2: CC-BY-NC 4.0 (check before commercial use)"


def _clip_options(o: dict) -> dict:
    return {k: o[k] for k in ("face", "face_threshold", "min_face_frames", "clip_ms", "margin")}


def _config(o: dict):
    return ValenceConfig(model=o["model"], stride=o["stride"], clip_frames=o["clip_frames"], epochs=o["epochs"],
                         batch_size=o["batch_size"], lr=o["lr"], weight_decay=o["weight_decay"], ema=o["ema"],
                         augment=o["augment"], seed=o["seed"], device=o["device"], precision=o["precision"])


def _check_train(o: dict) -> dict:
    check_stride(o["stride"], o["clip_frames"])
    if o["min_face_frames"] < o["clip_frames"]:
        raise OptionError(f"option min_face_frames: must be >= clip_frames={o['clip_frames']} (SSTS draws that many "
                          f"distinct face frames per clip), got {o['min_face_frames']}")
    if o["cv_folds"] == 1:
        raise OptionError("option cv_folds: 0 (no cross-validation) or >= 2, got 1")
    if o["precision"] == "int8":
        raise OptionError("option precision: int8 is not offered for training; use auto, fp32 or bf16")
    o["model_name"] = safe_name(o["model_name"] or f"valence-s{o['stride']}", "option model_name")
    return o


def run_train(session, o: dict):
    """One coded session -> ``(ValenceSession, scheme dict)``: its face clips with their valence.

    Raises
    ------
    VideoDecodeError, AnnotationError, OptionError
        One line naming the file (the session is skipped; training goes on with the others).
    """
    from nova_infant.icep.evaluation import parse_groups  # loads torch: imported on use

    try:
        subject = parse_groups(o["subjects"] or None, [session.name])[session.name]
    except OptionError:  # a session the subjects file/pattern misses: the whole job is refused in fit_train
        subject = None
    io = getattr(session, "io", None)  # under du-process: the annotation it loaded (file or NOVA database)
    annotation = io.manager.input_data.get("labels") if io is not None else None
    if annotation is None:
        annotation = session.read_annotation("labels")
    else:  # loaded by du-process (file or NOVA database): the one reader's checks
        check_annotation(annotation, f"session {session.name}: input labels")
    return training_session(session.name, subject, str(session.path("video")), annotation,
                            session.reference_duration_ms(), _clip_options(o),
                            progress=session.job.get("progress", False))


def fit_train(items: list, o: dict, ctx) -> TrainResult:
    """Cross-validate (``cv_folds`` >= 2), fit on every session, save the model folder, write the predictor trainer.

    Returns
    -------
    TrainResult
        ``model_dir``, ``predictor`` = ``valence_predict``, the predictor ``.trainer`` and the CV report.

    Raises
    ------
    OptionError, AnnotationError, WeightsUnavailableError, PathError
        OptionError also when option ``subjects`` (CSV or pattern) misses a session.
    """
    import logging

    missing = [i[0].name for i in items if i[0].subject is None]
    if missing:
        raise OptionError(f"option subjects: {len(missing)} session(s) have no subject ({', '.join(missing[:5])}"
                          f"{' ...' if len(missing) > 5 else ''}): {o['subjects']!r} must name every session; "
                          f"nothing trained")
    out = Path(ctx.trainer_dir) / MODELS_SUBDIR / o["model_name"]
    check_replaceable(out)
    checked = {"config": _config(o), "clip": _clip_options(o), "cv_folds": o["cv_folds"]}
    sessions, schemes = [i[0] for i in items], [i[1] for i in items]
    checked["subjects_from"] = (f"option subjects ({o['subjects']})" if o["subjects"]
                                else "each session its own subject (option subjects empty)")
    folder, trainer, report = fit_and_save(sessions, schemes, checked, out, ctx.trainer_dir,
                                           progress=bool(getattr(ctx, "progress", False)),
                                           predictor=PREDICT_SPEC.trainer_spec())
    logging.getLogger("nova_infant").info("valence model %s, predictor %s", folder, trainer)
    return TrainResult(folder, "valence_predict", {"model": str(folder)}, trainer, report or {})


def run_predict(session, o: dict) -> Result:
    """Valence of one session's ``video`` with the saved model (loaded once per job).

    Raises
    ------
    WeightsUnavailableError, VideoDecodeError, OptionError
    """
    given = str(o["model"]).strip()
    if not given:
        raise OptionError("option model: no valence model folder given (train one with valence_train)")
    path = Path(given)
    if not path.is_absolute():
        base = getattr(session, "trainer_dir", None)
        path = (Path(base) / path) if base is not None else path
    fitted, meta = session.cached(f"valence:{path}", lambda: load_model(path, o["device"], o["precision"]))
    pred = predict_video(fitted, meta, str(session.path("video")), session.reference_duration_ms(),
                         {"ensemble": o["ensemble"], "batch_size": o["batch_size"], "seed": o["seed"]},
                         progress=session.job.get("progress", False))
    s = pred["scheme"]
    return Result(annotations={"valence": ContinuousData(
        pred["values"], pred["conf"], pred["sample_rate_hz"], s["name"], s["min"], s["max"], annotator="valence",
        description="VideoMAE + SSTS valence (seed 004); NaN = no usable face clip")}, notes=pred["notes"])


TRAIN_SPEC = ModuleSpec(
    name="valence_train", create="ValenceTrainer", category="Affect",
    description="Train infant facial valence (VideoMAE + SSTS, seed 004) on sessions coded with a continuous "
                "valence annotation; writes a predictor trainer",
    inputs=(Port("video", "stream:Video", "video", "the infant's face video"),
            Port("labels", "annotation:Continuous", "infant_valence",
                 "coded valence (continuous; its sample rate sets the clip grid, NaN = garbage)")),
    outputs=(),
    options=(
        Option("model_name", "str", "", "folder name of the trained model under valence_models/ (default "
               "valence-s<stride>)"),
        Option("model", "str", DEFAULT_VIDEOMAE, "VideoMAE hub id or local folder (nova-infant export-weights)"),
        Option("stride", "int", 6, "SSTS stride s; divides clip_frames; clip_frames/s frames per sample (paper "
               "best: 6)", minimum=1, maximum=64),
        Option("clip_frames", "int", 24, "SSTS: face frames drawn per 1-s clip (paper: 24)", minimum=1, maximum=256),
        Option("epochs", "int", 30, "passes over the training clips (paper: until convergence, <= 100)", minimum=1,
               maximum=1000),
        Option("batch_size", "int", 64, "clips per step (paper: 64)", minimum=1, maximum=4096),
        Option("lr", "float", 5e-4, "AdamW learning rate (paper: 5e-4)", minimum=0, min_open=True, maximum=1),
        Option("weight_decay", "float", 0.05, "AdamW weight decay (paper: 0.05)", minimum=0, maximum=1),
        Option("ema", "float", 0.999, "weight EMA decay (paper: 0.999); 0 = off", minimum=0, maximum=1,
               max_open=True),
        Option("augment", "bool", True, "RandAugment (kornia) on every frame: colour, contrast, brightness, "
               "rotation, shear (paper)"),
        Option("cv_folds", "int", 0, "subject-grouped cross-validation folds before the final fit; 0 = none",
               minimum=0, maximum=100),
        Option("subjects", "str", "", "subject of each session: CSV (session,group) or regex on the session name; "
               "empty = one subject per session"),
        Option("face", "choice", "largest", "which face to track", choices=FACE_CHOICES),
        Option("face_threshold", "float", 0.8, "minimum face probability of a valid frame (paper: 0.8)", minimum=0,
               maximum=1),
        Option("min_face_frames", "int", 24, "minimum valid face frames per clip (paper: 24)", minimum=1,
               maximum=10000),
        Option("clip_ms", "float", 1000.0, "clip length, ms (paper: 1000)", minimum=0, min_open=True,
               maximum=60000),
        Option("margin", "float", 0.1, "face box enlarged by this fraction per side before the crop", minimum=0,
               maximum=1),
        Option("seed", "int", 0, "random seed (SSTS, augmentation, initial head)", minimum=0),
        shared.device(),
        Option("precision", "choice", "auto", "auto (bf16 where supported) | fp32 | bf16 (autocast)",
               choices=("auto", "fp32", "bf16"))),
    run=run_train, fit=fit_train, trains=True, check=_check_train, doc="docs/valence.md", citation=CITATION,
    licence=LICENCE)

PREDICT_SPEC = ModuleSpec(
    name="valence_predict", create="ValencePredictor", category="Affect",
    description="Infant facial valence per second (VideoMAE + SSTS ensemble, seed 004) with a trained model",
    inputs=(Port("video", "stream:Video", "video", "the infant's face video"),),
    outputs=(Port("valence", "annotation:Continuous", "infant_valence",
                  "valence in the model's scheme range at its rate; conf = face fraction; NaN = no face clip",
                  scheme="infant_valence"),),
    options=(
        Option("model", "path", "", "trained valence model folder (relative: to the .trainer's folder)"),
        Option("ensemble", "bool", True, "average the s strided samplings of each clip (paper §IV-B)"),
        Option("batch_size", "int", 8, "clips per forward pass", minimum=1, maximum=4096),
        Option("seed", "int", 0, "which sampling 'single' inference (ensemble off) takes", minimum=0),
        shared.device(),
        Option("precision", "choice", "auto", "auto (bf16 where supported) | fp32 | bf16 (autocast)",
               choices=("auto", "fp32", "bf16"))),
    run=run_predict, doc="docs/valence.md", citation=CITATION, licence=LICENCE)
