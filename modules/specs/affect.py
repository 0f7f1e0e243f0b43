"""Specs of the facial-affect pair (seed 002: MobileNetV4 + TAM; :mod:`nova_infant.affect`; docs/affect.md).

``affect_train`` (trains): per session, face crops of ``video`` on the session grid and the coded targets --
``valence`` and ``arousal`` continuous annotations (declared: NOVA sends them), ``expression`` (discrete) and one
annotation per AU ``au_AU1`` ... ``au_AU26`` (optional and not declared in the ``.trainer`` because NOVA sends every
declared input: give them on the CLI or in a hand-written ``--data``). After the last session: optional
subject-grouped CV, the final model, saved under ``<trainer folder>/affect_models/<model_name>/`` with a
``trained="true"`` predictor ``affect_<model_name>.trainer`` beside the training one.

``affect_predict``: per-frame ``valence``/``arousal`` continuous annotations, the ``expression`` track (``no_face``
where no face was found), ``au`` stream (AU probabilities + face column) and ``va_stream`` (valence, arousal,
face: the feature stream the ICEP-R trainer can fuse).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from nova_infant.affect.bundle import load_affect_model, save_affect_model
from nova_infant.affect.evaluation import cross_validate, plot_cv
from nova_infant.affect.model import AU_NAMES, EXPR_CLASSES, TASKS, AffectConfig
from nova_infant.affect.sessions import au_targets, continuous_on_grid, expression_targets, extract_crops
from nova_infant.affect.training import AffectSession, TrainOptions, check_targets, fit, predict_frames
from nova_infant.core.annotations import frames_to_segments
from nova_infant.core.atomic import safe_name
from nova_infant.core.backbones import pick_device, resolve_precision
from nova_infant.core.errors import AnnotationError, OptionError, TrainerFileError
from nova_infant.core.media import media_duration_ms
from nova_infant.core.trainer_files import write_trainer
from nova_infant.specs import options as shared
from nova_infant.specs.module_spec import ModuleSpec, TrainResult
from nova_infant.specs.options import Option
from nova_infant.specs.ports import ContinuousData, DiscreteData, Port, Result, StreamData

CITATION = ("Nguyen, Nguyen & Huynh 2025, Lightweight Models for Emotional Analysis in Video (ABAW8, arXiv "
            "2503.10530); MobileNetV4: Qin et al. 2024; MLP-Mixer: Tolstikhin et al. 2021")
LICENCE = "method: paper; code: MIT (own implementation); no pretrained weights shipped"


def _tasks(value, name):
    tasks = tuple(t.strip().lower() for t in str(value).split(",") if t.strip())
    bad = [t for t in tasks if t not in TASKS]
    if not tasks or bad:
        raise OptionError(f"option {name}: expected a comma list of {', '.join(TASKS)}, got {value!r}")
    return tasks


def _groups(value, name):
    if value in (None, "", "None"):
        return {}
    try:
        doc = json.loads(str(value).replace("'", '"'))
    except ValueError:
        raise OptionError(f"option {name}: expected JSON {{session: subject}}, got {value!r}") from None
    if not isinstance(doc, dict):
        raise OptionError(f"option {name}: expected JSON {{session: subject}}, got {value!r}")
    return {str(k): str(v) for k, v in doc.items()}


def _check_train(o: dict) -> dict:
    if o["precision"] == "int8":
        raise OptionError("option precision: int8 is for inference only; use auto, fp32 or bf16 to train")
    return o


def _tmp_store(session) -> str:
    """A folder for this session's memory-mapped crops, removed when the job ends."""
    holder = session.cached("affect_tmp", lambda: tempfile.TemporaryDirectory(prefix="nova-infant-affect-"))
    return tempfile.mkdtemp(dir=holder.name)


def _session_grid(session, o):
    return session.grid(o["frame_step"], media_duration_ms(str(session.path("video"))), o["duration_ms"])


def train_run(session, o: dict):
    """One coded session -> :class:`~nova_infant.affect.training.AffectSession` (crops memory-mapped).

    Raises
    ------
    VideoDecodeError, AnnotationError
        Unreadable video or annotation; a session without any coded frame of the asked tasks.
    """
    grid = _session_grid(session, o)
    va = expr = au = None
    if "va" in o["tasks"]:
        va = np.column_stack([continuous_on_grid(session.read_annotation(k), grid, str(session.path(k)))
                              for k in ("valence", "arousal")]).astype(np.float32)
    if "expr" in o["tasks"] and session.has("expression"):
        expr = expression_targets(session.read_annotation("expression"), grid, EXPR_CLASSES,
                                  str(session.path("expression")))
    if "au" in o["tasks"]:
        cols = [au_targets(session.read_annotation(f"au_{n}"), grid, str(session.path(f"au_{n}")))
                if session.has(f"au_{n}") else np.full(grid.n_frames, np.nan, np.float32) for n in AU_NAMES]
        au = np.column_stack(cols).astype(np.float32) if any(session.has(f"au_{n}") for n in AU_NAMES) else None
    coded = [x is not None and (np.isfinite(x).any() if x.dtype.kind == "f" else (x >= 0).any())
             for x in (va, expr, au)]
    if not any(coded):
        raise AnnotationError(f"session {session.name}: no coded frame for tasks {', '.join(o['tasks'])}")
    crops, has, _ = extract_crops(str(session.path("video")), grid, int(o["image_size"]), o["face"], _tmp_store(session),
                                  progress=session.job.get("progress", False))
    if not has.any():
        raise AnnotationError(f"session {session.name}: no face found in {session.path('video')}: nothing to learn")
    # a session the groups mapping misses gets subject None: train_fit refuses the job (no silent own group)
    subject = o["groups"].get(session.name) if o["groups"] else session.name
    return AffectSession(session.name, subject, crops, has, va, expr, au, grid.step_ms)


def _config(o: dict):
    return AffectConfig(image_size=int(o["image_size"]), seq_len=o["seq_len"], dim=o["dim"], depth=o["depth"],
                        out_dim=o["dim"], tasks=o["tasks"], backbone_width=o["backbone_width"])


def _train_options(o: dict):
    return TrainOptions(epochs=o["epochs"], batch_size=o["batch_size"], lr=o["lr"], va_loss=o["va_loss"],
                        backbone=o["backbone"], device=o["device"], precision=o["precision"], seed=o["seed"])


#: the predictor outputs each head of a model feeds (a trained predictor's ``.trainer`` declares exactly these)
HEAD_OUTPUTS = {"va": ("valence", "arousal", "va_stream"), "expr": ("expression",), "au": ("au",)}


def check_heads(items: list, tasks) -> None:
    """Refuse a head no session can teach: ``expr`` without any coded expression, ``au`` without any AU code
    (inputs ``au_<AU>``); otherwise the model would carry an untrained head and its predictor declare its output.

    Parameters
    ----------
    items : list of AffectSession
        The usable training sessions.
    tasks : sequence of str
        Option ``tasks`` (``va``, ``expr``, ``au``).

    Raises
    ------
    OptionError
        Naming the head and the inputs that would teach it.
    """
    inputs = {"va": "valence and arousal", "expr": "expression", "au": ", ".join(f"au_{n}" for n in AU_NAMES)}
    for task in tasks:
        if not any(getattr(it, task) is not None for it in items):
            raise OptionError(f"option tasks: {task!r} asked, but none of the {len(items)} sessions has "
                              f"{'AU codes' if task == 'au' else 'codes'} for it (inputs {inputs[task]}); "
                              f"drop {task!r} from tasks or code it")


def predictor_trainer_spec(name: str, tasks, rel: str, step_ms: float):
    """The ``.trainer`` of a trained affect predictor: the ``affect_predict`` spec's, pointing at the model folder
    ``rel``, with exactly the outputs of the model's heads (:data:`HEAD_OUTPUTS`): NOVA requests every declared
    output by default, and an output without a head would be an empty stream du-process cannot save.

    Parameters
    ----------
    name : str
        Model name (shown in NOVA's description).
    tasks : sequence of str
        The heads the model has (its ``AffectConfig.tasks``).
    rel : str
        Model folder relative to the trainer folder.
    step_ms : float
        Grid step the model was trained on (ms).

    Returns
    -------
    nova_infant.core.trainer_files.TrainerSpec
    """
    spec = PREDICT_SPEC.trainer_spec()
    keep = {p for t in tasks for p in HEAD_OUTPUTS[t]}
    spec.io = [io for io in spec.io if io.type == "input" or io.id in keep]
    spec.options = [(n, t, rel if n == "model" else d) for n, t, d in spec.options]
    spec.description = f"Facial affect predictor '{name}' ({', '.join(tasks)}; seed 002 MobileNetV4 + TAM)"
    spec.frame_step_ms, spec.weights_path, spec.trained = step_ms, rel, True
    return spec


def train_fit(items: list, o: dict, ctx) -> TrainResult:
    """Subject-grouped CV (``cv_folds`` >= 2), final model on every session, saved model + predictor ``.trainer``.

    Raises
    ------
    OptionError
        No usable session, a session missing from option ``groups``, fewer subjects than folds, or a head (``expr``, ``au``) asked without any code for it
        (:func:`check_heads`).
    """
    import os

    if not items:
        raise OptionError("affect_train: no usable session: nothing trained")
    missing = [it.name for it in items if it.subject is None]
    if missing:
        raise OptionError(f"option groups: {len(missing)} session(s) are not in the groups mapping "
                          f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}): give every session a "
                          f"subject; nothing trained")
    subjects_from = ("option groups" if o["groups"] else "each session its own subject (option groups empty)")
    check_heads(items, o["tasks"])
    cfg, topts = _config(o), _train_options(o)
    check_targets(items, cfg.tasks)
    report = cross_validate(items, cfg, topts, o["cv_folds"]) if o["cv_folds"] >= 2 else {}
    if report:
        report["subjects_from"] = subjects_from
    model, info = fit(items, cfg, topts, o["backbone_weights"] or None, progress=True)
    info.update({"sessions": [s.name for s in items], "subjects": sorted({s.subject for s in items}),
                 "subject_of": {s.name: s.subject for s in items}, "subjects_from": subjects_from,
                 "step_ms": items[0].step_ms, "cv": report, "face": o["face"]})
    name = safe_name(o["model_name"] or "affect", "option model_name")
    figure = (lambda folder: plot_cv(report, folder / "cv_scores.png")) if report else None
    out = save_affect_model(Path(ctx.trainer_dir) / "affect_models" / name, model, info, figure)
    rel = os.path.relpath(out.resolve(), Path(ctx.trainer_dir).resolve()).replace(os.sep, "/")
    spec = predictor_trainer_spec(name, cfg.tasks, rel, items[0].step_ms)
    trainer = write_trainer(Path(ctx.trainer_dir) / f"affect_{name}.trainer", spec)
    return TrainResult(out, "affect_predict", {"model": rel}, trainer, report)


def predict_run(session, o: dict) -> Result:
    """Per-frame affect tracks of one session's ``video`` (model loaded once per job).

    Raises
    ------
    TrainerFileError
        No or an unreadable model folder.
    VideoDecodeError
    """
    if not o["model"]:
        raise TrainerFileError("affect_predict: no model (set option 'model' to an affect_train model folder)")
    path = Path(o["model"])
    if not path.is_absolute():
        path = Path(getattr(session, "trainer_dir", None) or ".") / path
    model, info = session.cached("affect_model", lambda: load_affect_model(path))
    if o["frame_step"] is None:
        o = dict(o, frame_step=float(info.get("step_ms", 40.0)))
    grid = _session_grid(session, o)
    device = pick_device(o["device"])
    precision = resolve_precision(o["precision"], device)
    if precision == "int8":
        precision = "fp32"
    with tempfile.TemporaryDirectory(prefix="nova-infant-affect-") as tmp:
        crops, has, _ = extract_crops(str(session.path("video")), grid, model.cfg.image_size,
                                      o["face"] or info.get("face", "largest"), tmp,
                                      progress=session.job.get("progress", False))
        pred = predict_frames(model, crops, has, o["batch_size"], str(device), precision)
        del crops
    return predictions_result(pred, has, grid, model.cfg, notes=[
        f"{grid.n_frames} rows at {grid.sample_rate_hz:g} Hz, face in {has.mean() if len(has) else 0:.0%} of them"])


def predictions_result(pred: dict, has_face: np.ndarray, grid, cfg, notes=()) -> Result:
    """:class:`Result` of one session's predictions (:func:`nova_infant.affect.training.predict_frames`):
    ``valence``/``arousal`` continuous ([-1, 1]; score NaN and conf 0 on rows without a face, conf 1 on face rows:
    the regression gives no probability), ``expression`` discrete (model classes + ``no_face``; segment conf =
    mean top-class probability), ``au`` stream (n_rows, n_au + 1): AU probabilities and ``face`` (1/0; AU columns 0
    without a face so the stream stays finite), ``va_stream`` (n_rows, 3): valence, arousal, face (0 without one)."""
    face = np.asarray(has_face, bool)
    r = Result(notes=list(notes))
    for task, ports in (("va", "valence, arousal, va_stream"), ("expr", "expression"), ("au", "au")):
        if task not in pred:
            r.notes.append(f"the model has no {task} head (trained with tasks {','.join(cfg.tasks)}): no {ports} output")
    if "va" in pred:
        for k, name in enumerate(("valence", "arousal")):
            score = np.where(face, pred["va"][:, k], np.nan).astype(np.float32)
            r.annotations[name] = ContinuousData(score, face.astype(np.float32), grid.sample_rate_hz, name, -1, 1,
                                                 annotator="affect_predict")
        va = np.column_stack([np.nan_to_num(pred["va"]), face]).astype(np.float32)
        r.streams["va_stream"] = StreamData(va, grid.sample_rate_hz, ["valence", "arousal", "face"],
                                            "feature;video;affect_va", {"model": "seed002-mnv4-tam"})
    if "expr" in pred:
        probs = np.nan_to_num(pred["expr"])
        ids = np.where(face, probs.argmax(1) if len(probs) else 0, len(cfg.expr_classes)).astype(np.int64)
        conf = np.where(face, probs.max(1) if len(probs) else 0, 1.0).astype(np.float32)
        r.annotations["expression"] = DiscreteData(frames_to_segments(ids, grid.step_ms, conf=conf),
                                                   list(cfg.expr_classes) + ["no_face"], "expression",
                                                   annotator="affect_predict")
    if "au" in pred:
        au = np.column_stack([np.nan_to_num(pred["au"]), face]).astype(np.float32)
        r.streams["au"] = StreamData(au, grid.sample_rate_hz, list(cfg.au_names) + ["face"], "feature;video;affect_au",
                                     {"model": "seed002-mnv4-tam"})
    return r


def _common_options():
    return (shared.duration_ms(),
            Option("face", "choice", "largest", "which detected face to follow (BlazeFace)",
                   choices=("largest", "central", "left", "right")),
            shared.device())


TRAIN_SPEC = ModuleSpec(
    name="affect_train", create="AffectTrainer", category="Affect",
    description="Train the seed-002 facial affect model (MobileNetV4 + 3-level MLP-Mixer TAM) on coded valence/"
                "arousal (+ expression, AUs); writes a predictor trainer",
    inputs=(Port("video", "stream:Video", "video", "session video (faces found by BlazeFace)"),
            Port("valence", "annotation:Continuous", "valence", "coded valence in [-1, 1]", optional=True),
            Port("arousal", "annotation:Continuous", "arousal", "coded arousal in [-1, 1]", optional=True),
            Port("expression", "annotation:Discrete", "expression", "coded expression (class names as the 8 "
                 "ABAW classes)", optional=True, declared=False))
    + tuple(Port(f"au_{n}", "annotation:Discrete", n, f"{n} occurrence (discrete present/absent or continuous "
                 f"0..1)", optional=True, declared=False) for n in AU_NAMES),
    outputs=(),
    options=(
        Option("model_name", "str", "", "folder name under affect_models/ (default: affect)"),
        Option("tasks", "str", "va", "heads to train: comma list of va, expr, au", check=_tasks),
        shared.frame_step("40ms"),
        Option("seq_len", "int", 32, "frames per TAM sequence T (paper code: 32)", minimum=2, maximum=256, grid=True),
        Option("image_size", "choice", "112", "face crop side, px (112: maps 28/14/7 from features 1-3)",
               choices=("112", "224")),
        Option("dim", "int", 256, "mixer width (authors' code: 256)", minimum=4, maximum=4096, grid=True),
        Option("depth", "int", 1, "Mixer blocks per level", minimum=1, maximum=12),
        Option("epochs", "int", 10, "passes over the training windows", minimum=1, maximum=10000, grid=True),
        Option("batch_size", "int", 4, "sequences per step", minimum=1, maximum=1024),
        Option("lr", "float", 2e-4, "AdamW learning rate (authors' code: 2e-4)", minimum=0, min_open=True,
               maximum=1, grid=True),
        Option("va_loss", "choice", "ccc", "VA loss: ccc (1 - mean CCC) or mse", choices=("ccc", "mse")),
        Option("backbone", "choice", "last", "trainable backbone part: last stage (paper), frozen, all",
               choices=("last", "frozen", "all")),
        Option("backbone_weights", "str", "", "timm mobilenetv4_conv_small features_only weights: a .safetensors/.pt "
               "file, a folder with model.safetensors, or timm:<name> (HF cache, else hub; needs timm); empty = random"),
        Option("cv_folds", "int", 0, "subject-grouped CV folds before the final fit (0 = none)", minimum=0,
               maximum=100),
        Option("groups", "str", "", "JSON {session: subject} for the CV groups (default: each session alone)",
               check=_groups),
        Option("seed", "int", 0, "random seed", minimum=0),
        Option("backbone_width", "float", 1.0, "channel multiplier of the backbone (< 1: test stand-ins only)",
               minimum=0.05, maximum=1.0, hidden=True),
        shared.precision()) + _common_options(),
    run=train_run, fit=train_fit, trains=True, check=_check_train, frame_step_ms=40, doc="docs/affect.md",
    citation=CITATION, licence=LICENCE)


PREDICT_SPEC = ModuleSpec(
    name="affect_predict", create="AffectPredictor", category="Affect",
    description="Per-frame valence/arousal, expression and action units with a trained seed-002 affect model",
    inputs=(Port("video", "stream:Video", "video", "session video"),),
    outputs=(Port("valence", "annotation:Continuous", "valence", "valence in [-1, 1]; NaN score without a face"),
             Port("arousal", "annotation:Continuous", "arousal", "arousal in [-1, 1]; NaN score without a face"),
             Port("expression", "annotation:Discrete", "expression", "8 expressions + no_face, conf = probability"),
             Port("au", "stream:SSIStream:affect_au", "affect_au", "12 AU probabilities + face column"),
             Port("va_stream", "stream:SSIStream:affect_va", "affect_va",
                  "valence, arousal, face: feature stream for the ICEP-R trainer")),
    options=(
        Option("model", "str", "", "affect_train model folder (relative to the trainer folder)"),
        Option("frame_step", "str", "", "grid step (40ms, 25fps, ms); empty = the model's training step",
               check=lambda v, n: None if v in ("", None) else shared._step(v, n)),
        Option("batch_size", "int", 4, "sequences per forward call", minimum=1, maximum=1024),
        shared.precision()) + _common_options(),
    run=predict_run, frame_step_ms=40, doc="docs/affect.md", citation=CITATION, licence=LICENCE)
