"""Specs of the cry-reason pair (seed 003, Cha & Bae; docs/cry-reason.md): ``cry_reason_train`` learns a lab's
cry reasons from coded sessions and writes a predictor ``.trainer``; ``cry_reason_predict`` labels each segment of
a crying track with a reason and a confidence.

Core work: :mod:`nova_infant.cry.session` (windows, training, saved model, prediction).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from nova_infant.core.atomic import check_replaceable, safe_name
from nova_infant.core.errors import AnnotationError, OptionError
from nova_infant.core.trainer_files import write_trainer
from nova_infant.cry.models import load_resnet50
from nova_infant.cry.session import (discrete_segments, load_cry_model, predict_reasons, save_cry_model, train_model,
                                     training_item)
from nova_infant.cry.trainer_cv import recorder_cv
from nova_infant.specs import options as shared
from nova_infant.specs.module_spec import ModuleSpec, TrainResult
from nova_infant.specs.options import Option
from nova_infant.specs.ports import DiscreteData, Port, Result

CITATION = "Cha & Bae, deep-learning infant cry analysis (MFCC/STFT, autoencoder + DNN, concatenate model)"
LICENCE = ("method: paper; code: MIT; a model trained on the Donate-a-cry corpus is a Produced Work under ODbL 1.0 "
           "/ DbCL 1.0 (name the corpus and licence where it is shipped)")
MODELS_SUBDIR = "cry_reason_models"


# NOVA sends every declared input, and most labs have no usable face video: the video is accepted from the CLI
# (--video) and a hand-written --data entry, not declared in the .trainer.
AUDIO = Port("audio", "stream:Audio", "audio", "session audio (any rate; analysed at 8 kHz)")
VIDEO = Port("video", "stream:Video", "video", "face video of the infant (optional face branch: frozen ResNet-50 + "
             "pooling/dense head, used when option face_model is set)", optional=True, declared=False)
FACE_MODEL = Option("face_model", "str", "", "ResNet-50 weights of the face branch: hub id (microsoft/resnet-50), "
                    "local folder or HF cache; '' = audio only")
DEVICE = dataclasses.replace(shared.device(), help="where the face ResNet runs: auto (cuda when present), cpu, cuda, "
                             "cuda:<n> (the audio nets are tiny and run on the CPU)")


# ---------------------------------------------------------------- trainer


def train_run(session, o: dict):
    """One coded session -> :class:`nova_infant.cry.session.TrainingItem` (windows of every reason segment).

    Parameters
    ----------
    session : nova_infant.specs.sessions.Session
        Inputs ``audio``, ``reasons`` and optionally ``video``.
    o : dict
        Parsed options of :data:`TRAIN_SPEC`.

    Returns
    -------
    TrainingItem
        With ``scheme`` set to the reason annotation's scheme name.

    Raises
    ------
    AnnotationError, AudioDecodeError
        No usable segment, unreadable annotation or audio (the session is skipped with one line).
    """
    segments, classes, scheme = discrete_segments(session.path("reasons"), with_scheme=True)
    video, backbone = None, None
    if o["face_model"] and session.has("video"):
        video = session.path("video")
        backbone = session.cached(f"resnet:{o['face_model']}",
                                  lambda: load_resnet50(o["face_model"], o["device"])[0])
    item = training_item(session.name, session.path("audio"), segments, classes, video, backbone)
    item.scheme = scheme or "cry_reason"
    return item


def train_fit(items: list, o: dict, ctx) -> TrainResult:
    """Cross-validate by recorder (option ``cv_folds``, default 5; 0 skips: :mod:`nova_infant.cry.trainer_cv`) and
    print its one line, then train once on every collected session; save the model (with the CV figures in its
    config's ``evaluation``) under ``<trainer folder>/cry_reason_models/<name>`` and write the ``trained="true"``
    predictor ``cry_reason_<name>.trainer`` beside the training one, whose description (shown in NOVA) says whether
    the model beats chance.

    Parameters
    ----------
    items : list of TrainingItem
    o : dict
        Parsed options.
    ctx : nova_infant.specs.module_spec.TrainContext

    Returns
    -------
    TrainResult
        Model folder, predictor name and options, predictor ``.trainer`` path, classes, window counts and the
        CV ``evaluation``.

    Raises
    ------
    OptionError
        No usable session, sessions of different schemes, fewer than two reasons, a session option ``groups``
        misses.
    PathError
        The model folder exists and was not made by this package.
    """
    name = safe_name(o["model_name"], "option model_name")
    out = Path(ctx.trainer_dir) / MODELS_SUBDIR / name
    check_replaceable(out)
    schemes = {getattr(it, "scheme", "cry_reason") for it in items}
    if len(schemes) > 1:
        raise OptionError(f"cry_reason_train: sessions use different schemes {sorted(schemes)}: train on one")
    evaluation = _evaluate(items, o)
    model = train_model(items, o["epochs_ae"], o["epochs"], o["epochs_fusion"], o["seed"],
                        meta={"scheme": schemes.pop() if schemes else "cry_reason", "dataset": ctx.dataset,
                              "skipped_sessions": [s for s, _ in ctx.skipped], "evaluation": evaluation},
                        epochs_face=o["epochs_face"], face_backbone=o["face_model"] or None)
    save_cry_model(model, out, o["data_note"])
    rel = f"{MODELS_SUBDIR}/{name}"
    predictor = PREDICT_SPEC
    spec = predictor.trainer_spec()
    options = [(n, t, rel if n == "model" else d) for n, t, d in spec.options]
    spec = dataclasses.replace(spec, options=options, description=f"{predictor.description} (model {name}: "
                                                                  f"{', '.join(model.classes)}; "
                                                                  f"{worth_line(evaluation)})")
    trainer = write_trainer(Path(ctx.trainer_dir) / f"cry_reason_{name}.trainer", spec)
    return TrainResult(out, predictor.name, {"model": rel}, trainer,
                       {"classes": model.classes, "training_windows": model.config["training_windows"],
                        "evaluation": evaluation})


def _evaluate(items: list, o: dict) -> dict:
    """The recorder-grouped CV of :func:`nova_infant.cry.trainer_cv.recorder_cv` (option ``cv_folds``; 0 skips it),
    its one line printed; ``{"skipped": reason}`` when skipped or impossible (one recorder, one reason)."""
    from nova_infant.icep.evaluation import parse_groups  # loads torch: imported on use

    if o["cv_folds"] == 0:
        line = "cross-validation skipped (option cv_folds 0): the model's worth is unknown"
        print(line, flush=True)
        return {"skipped": line}
    groups = parse_groups(o["groups"] or None, [it.session for it in items])
    try:
        evaluation = recorder_cv(items, groups, o["cv_folds"], o["epochs_ae"], o["epochs"], o["epochs_fusion"],
                                 o["seed"], o["epochs_face"])
    except OptionError as exc:
        line = f"cross-validation not possible ({exc}): the model's worth is unknown"
        print(line, flush=True)
        return {"skipped": line}
    evaluation["recorders_from"] = (f"option groups ({o['groups']})" if o["groups"]
                                    else "each session its own recorder (option groups empty)")
    print(evaluation["line"], flush=True)
    return evaluation


def worth_line(evaluation: dict) -> str:
    """The part of a trained predictor's description (shown in NOVA) that says what the model is worth: CV
    balanced accuracy against chance, or that no CV ran.

    Parameters
    ----------
    evaluation : dict
        From :func:`nova_infant.cry.trainer_cv.recorder_cv`, or ``{"skipped": reason}``.

    Returns
    -------
    str
    """
    if "skipped" in evaluation:
        return "not cross-validated: worth unknown"
    ba, chance = evaluation["model"]["balanced_accuracy"], evaluation["chance"]
    lo, hi = evaluation["model"]["balanced_accuracy_ci95"]
    verdict = "beats chance" if evaluation["beats_chance"] else "does NOT beat chance"
    return f"recorder-grouped CV balanced accuracy {ba:.2f} [{lo:.2f}, {hi:.2f}] vs chance {chance:.2f}: {verdict}"


TRAIN_SPEC = ModuleSpec(
    name="cry_reason_train", create="CryReasonTrainer", category="Tagger",
    description="Learn why the infant cries from coded sessions (MFCC/STFT autoencoder + DNN, fused; seed 003); "
                "writes a cry-reason predictor trainer",
    inputs=(AUDIO,
            Port("reasons", "annotation:Discrete", "cry_reason",
                 "the coder's cry-reason track: one segment per crying episode labelled with the lab's reason"),
            VIDEO),
    outputs=(),
    options=(
        Option("model_name", "str", "cry-reason", "folder name of the model under cry_reason_models/ and of the "
               "predictor trainer cry_reason_<name>.trainer"),
        Option("epochs_ae", "int", 40, "denoising autoencoder pre-training epochs (paper: audio ~40)", minimum=0,
               maximum=10000),
        Option("epochs", "int", 40, "DNN epochs from the bottleneck, RMSProp (paper: ~40)", minimum=1,
               maximum=10000),
        Option("epochs_fusion", "int", 100, "concatenate (fusion) model epochs (paper: ~100)", minimum=1,
               maximum=10000),
        Option("epochs_face", "int", 10, "face head epochs on frozen ResNet features (paper: ~10)", minimum=1,
               maximum=10000),
        FACE_MODEL, DEVICE,
        Option("seed", "int", 0, "random seed of weights and batches", minimum=0),
        Option("cv_folds", "int", 5, "recorder-grouped cross-validation folds before the final fit (balanced "
               "accuracy and macro-F1 against a majority baseline, stored in the model); 0 = skip", minimum=0,
               maximum=100),
        Option("groups", "str", "", "recorder (infant or device) of each session: CSV (session,group) or a regular "
               "expression on the session name; '' = each session its own recorder"),
        Option("data_note", "str", "", "training data and its licence, written into the model's NOTICE.md")),
    run=train_run, trains=True, fit=train_fit, citation=CITATION, licence=LICENCE, doc="docs/cry-reason.md")


# ---------------------------------------------------------------- predictor


def _model_path(session, given: str) -> Path:
    if not given:
        raise OptionError("cry_reason_predict: option model: no cry-reason model folder given (train one with "
                          "cry_reason_train, or use its cry_reason_<name>.trainer)")
    path = Path(given).expanduser()
    if not path.is_absolute() and getattr(session, "trainer_dir", None) is not None:
        path = Path(session.trainer_dir) / path
    return path


def predict_run(session, o: dict) -> Result:
    """Reason segments of one session: each segment of the ``crying`` track (of class ``crying_label`` if given)
    gets the model's reason and confidence; no crying segment -> an empty track and a note.

    Parameters
    ----------
    session : nova_infant.specs.sessions.Session
        Inputs ``audio``, ``crying`` and (for a model with a face branch) ``video``.
    o : dict
        Parsed options of :data:`PREDICT_SPEC`.

    Returns
    -------
    Result
        ``annotations["reasons"]``: discrete segments in the model's scheme (``conf`` = mean smoothed probability).

    Raises
    ------
    TrainerFileError, AnnotationError, AudioDecodeError
        Model folder, crying track or audio unreadable (one line naming the file).
    """
    path = _model_path(session, o["model"])
    model = session.cached(f"cry_reason:{path}", lambda: load_cry_model(path))
    segments, classes = discrete_segments(session.path("crying"))
    label = o["crying_label"]
    if label and label not in classes:
        raise AnnotationError(f"{session.path('crying')}: scheme has no class {label!r} (classes: "
                              f"{', '.join(classes)}); set option crying_label")
    crying = [(a, b) for a, b, n in segments if not label or n == label]
    video, backbone = None, None
    if model.uses_face:
        if not session.has("video"):
            raise OptionError(f"session {session.name}: model {path} was trained with the face video: give input "
                              f"video")
        name = o["face_model"] or model.config["face"]["backbone"]
        video = session.path("video")
        backbone = session.cached(f"resnet:{name}", lambda: load_resnet50(name, o["device"])[0])
    rows, notes = predict_reasons(model, session.path("audio"), crying, o["smooth_windows"], o["min_segment_ms"],
                                  video, backbone)
    description = "; ".join(notes)
    scheme = model.config.get("scheme", "cry_reason")
    return Result(annotations={"reasons": DiscreteData(rows, list(model.classes), scheme, "cry_reason",
                                                       description)},
                  notes=notes + [f"{len(rows)} reason segment(s) on {len(crying)} crying segment(s)"])


PREDICT_SPEC = ModuleSpec(
    name="cry_reason_predict", create="CryReasonPredictor", category="Tagger",
    description="Why is the infant crying: a reason and a confidence for each crying segment (trained cry-reason "
                "model, option 'model')",
    inputs=(AUDIO,
            Port("crying", "annotation:Discrete", "audio_event_baby_crying",
                 "crying segments, e.g. the audio tagger's baby_crying track or a coder's"),
            VIDEO),
    outputs=(Port("reasons", "annotation:Discrete", "cry_reason",
                  "one segment per crying segment (or per run of one reason), class = reason, conf = mean "
                  "smoothed probability", scheme="cry_reason"),),
    options=(
        Option("model", "path", "", "cry-reason model folder (cry_reason_train output; relative to the trainer "
               "folder under DISCOVER)"),
        Option("crying_label", "str", "", "only segments of this class of the crying track ('' = every segment)"),
        Option("smooth_windows", "int", 0, "rolling prediction average over this many 1 s windows (hop 500 ms); "
               "0 = whole segment, one label per segment (seed 003 §3.5)", minimum=0, maximum=100000),
        Option("min_segment_ms", "float", 250.0, "crying segments shorter than this are left unlabelled, ms",
               minimum=0, maximum=3600000),
        dataclasses.replace(FACE_MODEL, help="ResNet-50 weights of a model with a face branch; '' = those it was "
                            "trained with"),
        DEVICE),
    run=predict_run, citation=CITATION, licence=LICENCE, doc="docs/cry-reason.md")
