"""Specs of ICEP-R: the predictor (``icep_predict``) and the four training modules
``icep_train_<role>_<features>`` (one parametrised builder, :func:`train_spec`); docs/icep.md.

DISCOVER's ``/train`` is broken upstream, so training runs as a ``/process`` job: ``run`` loads one coded session
(feature streams ``feature_0``, ``feature_1``, ... early-fused in that order, and the coder's discrete ``labels``);
after the job's last session ``fit`` trains once and writes the model bundle into
``<trainer folder>/icep_models/<model_name>/`` plus a ``trained="true"`` predictor ``icep_<model_name>.trainer``
beside the training one. One training module per role and feature set because NOVA sends every declared input.

The training options are declared once here (:data:`TRAIN_OPTIONS`) and serve the DISCOVER modules and
``nova-infant icep cv|train`` alike; :func:`train_config` builds the ``TrainConfig`` from parsed options, the one
place that does.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nova_infant.core.atomic import check_replaceable, safe_name
from nova_infant.core.backbones import pick_device
from nova_infant.core.errors import AnnotationError, OptionError, StreamError, TrainerFileError
from nova_infant.core.nova_db import IMPORT_HINT
from nova_infant.core.validation import folds_for, usable_training_sessions
from nova_infant.icep.dataset import FileRows, annotation_arrays, session_from_rows
from nova_infant.icep.schemes import label_map
from nova_infant.specs import options as shared
from nova_infant.specs.module_spec import ModuleSpec, TrainResult
from nova_infant.specs.options import Option
from nova_infant.specs.ports import Port, Result

log = logging.getLogger("nova_infant")

ROLES = ("infant", "caregiver")
#: NOVA sends every declared input, so each feature combination is its own training module.
FEATURE_SETS = {"dinov2": ["dinov2"], "dinov2_w2vbert": ["dinov2", "w2vbert"],
                "dinov2_people": ["dinov2", "people", "skeleton", "hands"]}
#: stream name NOVA preselects for a feature type, where it differs from the type (the people module's outputs:
#: types feature;body;people|skeleton|hands;..., streams people, pose, hands; docs/people.md)
DEFAULT_STREAMS = {"skeleton": "pose"}
CITATION = ("ICMI'24 ICEP-R paper (DINOv2-PCA + W2V-BERT features, bi-LSTM over 50-frame windows); ICEP-R coding "
            "scheme (Weinberg & Tronick, Infant and Caregiver Engagement Phases, revised)")
LICENCE = "code and trained bundles: MIT; the coded sessions stay the lab's"


def _folds(value: int, name: str) -> int:
    if value == 1:
        raise OptionError(f"option {name}: 1 fold has no test sessions; use 0 (no cross-validation) or >= 2")
    return value


#: Every ICEP-R training option (NOVA module, ``icep cv``/``icep train``); ``grid=True``: may be a grid key.
TRAIN_OPTIONS: tuple[Option, ...] = (
    Option("model_name", "str", "", "name of the model folder and predictor (default icep-<role>-<model>)"),
    Option("model", "choice", "bilstm", "bilstm (paper) or mlp (one window flattened)", choices=("bilstm", "mlp"),
           grid=True),
    Option("role", "choice", "infant", "coded role (ICEP-R-<role> scheme)", choices=ROLES),
    Option("label_set", "str", "merged", "merged | merged-no-cpvc (caregiver: Cpvc masked instead of joining Cneu) "
           "| full | JSON file with a map and an exclude list"),
    Option("window", "int", 50, "frames per window", minimum=1, maximum=100000, grid=True),
    Option("stride", "int", 25, "frames between window starts (<= window)", minimum=1, maximum=100000, grid=True),
    Option("hidden", "int", 128, "LSTM hidden units per direction", minimum=1, maximum=65536, grid=True),
    Option("layers", "int", 2, "LSTM layers", minimum=1, maximum=64, grid=True),
    Option("dropout", "float", 0.25, "dropout between layers", minimum=0, maximum=1, max_open=True, grid=True),
    Option("optimizer", "choice", "adam", "adam or sgd (paper: sgd, lr 1e-3, momentum 0.9)",
           choices=("adam", "sgd"), grid=True),
    Option("lr", "float", 0.001, "learning rate", minimum=0, maximum=10, min_open=True, grid=True),
    Option("batch_size", "int", 64, "windows per training step", minimum=1, maximum=1 << 20, grid=True),
    Option("epochs", "int", 100, "maximum epochs (early stopping on the held-out groups)", minimum=1,
           maximum=1000000, grid=True),
    Option("patience", "int", 5, "epochs without improvement before stopping", minimum=1, maximum=1000000,
           grid=True),
    Option("seed", "int", 0, "random seed (splits, initialisation)", minimum=0, maximum=2 ** 32 - 1),
    shared.device(),
    Option("val_fraction", "float", 0.2, "share of training groups held out for early stopping (inside every fit)",
           minimum=0, maximum=1, max_open=True),
    Option("cv_folds", "int", 0, "outer session-grouped cross-validation folds before the final fit (0 = none, "
           "else >= 2)", minimum=0, maximum=1000, check=_folds, cli_flags=("--folds",)),
    Option("normalise", "choice", "session", "session: standardise each session with its own statistics, then "
           "fold-level (chosen by nested CV, docs/icep.md); fold: fold-level only", choices=("session", "fold"),
           grid=True),
    Option("grid", "json", "", "JSON list of overrides, e.g. [{\"window\": 25}, {\"window\": 100}]; each point is "
           "chosen by the inner K-fold with its own configuration"),
    Option("inner_folds", "int", 3, "folds of the group-wise inner model-selection CV (two or more grid points)",
           minimum=2, maximum=1000),
    Option("groups", "str", "", "CSV with columns session,group, or a regular expression on the session name "
           "(named group 'group' or first capture group); every split keeps a group together"),
    Option("min_dur_ms", "float", 400.0, "smoothing evaluated in CV beside the raw predictions (shortest segment "
           "kept, ms); the bundle records it and its predictor applies it by default", minimum=0),
    Option("weight_decay", "float", 0.0, "L2 weight decay of the optimiser", minimum=0, maximum=1, grid=True,
           nova=False),
)

#: grid keys that are TrainConfig field names rather than option names
_GRID_ALIASES = {"max_epochs": "epochs"}


def train_config(o: dict):
    """THE ``TrainConfig`` of parsed training options (``epochs`` -> ``max_epochs``).

    Parameters
    ----------
    o : dict
        Options parsed by a spec holding :data:`TRAIN_OPTIONS` (or a grid point merged into them).

    Returns
    -------
    nova_infant.icep.training.TrainConfig
    """
    from nova_infant.icep.training import TrainConfig  # loads torch: imported on use

    return TrainConfig(model=o["model"], window=o["window"], stride=o["stride"], hidden=o["hidden"],
                       layers=o["layers"], dropout=o["dropout"], optimizer=o["optimizer"], lr=o["lr"],
                       weight_decay=o.get("weight_decay", 0.0), batch_size=o["batch_size"], max_epochs=o["epochs"],
                       patience=o["patience"], seed=o["seed"], device=o["device"], normalise=o["normalise"])


def _stride_within_window(values: dict, where: str = "option stride") -> None:
    if values["stride"] > values["window"]:
        raise OptionError(f"{where}: must be <= window ({values['window']} frames), got {values['stride']}: "
                          f"frames between windows would never be seen")


def parse_grid(points: Any, base: dict) -> list[dict] | None:
    """Check a hyper-parameter grid: a non-empty list of objects whose keys are grid options (``grid=True``;
    ``max_epochs`` = ``epochs``), each value checked like the option and each point with the base options.

    Parameters
    ----------
    points : list of dict or None
        The parsed ``grid`` option.
    base : dict
        The other parsed options.

    Returns
    -------
    list of dict or None
        Points with ``TrainConfig`` keys (``epochs`` -> ``max_epochs``); None for no grid.

    Raises
    ------
    OptionError
        ``option grid: ...`` naming the bad point, key or value.
    """
    if points is None:
        return None
    if not isinstance(points, list) or not points or not all(isinstance(p, dict) for p in points):
        raise OptionError(f"option grid: expected a non-empty JSON list of objects, e.g. [{{\"lr\": 0.001}}], "
                          f"got {points!r}"[:200])
    options = {o.name: o for o in TRAIN_OPTIONS if o.grid}
    out = []
    for point in points:
        keys = {key: _GRID_ALIASES.get(key, key) for key in point}
        unknown = sorted(k for k, name in keys.items() if name not in options)
        if unknown:
            raise OptionError(f"option grid: unknown key(s) {', '.join(unknown)} (known: {', '.join(options)})")
        values = {name: options[name].parse(point[key]) for key, name in keys.items()}
        _stride_within_window({**base, **values}, "option grid: stride")
        out.append({("max_epochs" if name == "epochs" else name): value for name, value in values.items()})
    return out


def check_training(o: dict) -> dict:
    """Cross-option check of training: stride <= window, the label set exists for the role, the grid.

    Returns
    -------
    dict
        ``o`` with ``grid`` parsed (:func:`parse_grid`).

    Raises
    ------
    OptionError, SchemeError
    """
    _stride_within_window(o)
    label_map(str(o["label_set"]), o["role"])
    o["grid"] = parse_grid(o["grid"], o)
    return o


# ---------------------------------------------------------------- session data


def _feature_ids(ids) -> list[str]:
    ids = [i for i in ids if str(i).startswith("feature_")]
    return sorted(ids, key=lambda i: int(i.split("_", 1)[1]) if i.split("_", 1)[1].isdigit() else 10 ** 9)


def session_data(session, lmap=None, label_id: str | None = None):
    """ICEP-R ``SessionData`` of one session: feature streams ``feature_<n>`` fused in order, labels from the
    discrete annotation input ``label_id`` (DISCOVER: :func:`nova_infant.icep.pipeline.session_from_discover`;
    command line: the files given).

    Parameters
    ----------
    session : nova_infant.specs.sessions.Session
    lmap : nova_infant.icep.schemes.LabelMap or None
        Label set (None: no labels read).
    label_id : str or None
        Input id of the label annotation.

    Returns
    -------
    nova_infant.icep.dataset.SessionData
        Fused float32 features ``[n_frames, dim]`` on the first stream's grid, labels ``[n_frames]`` (-1 masked).

    Raises
    ------
    StreamError, AlignmentError, AnnotationError
    """
    io = getattr(session, "io", None)
    if io is not None:
        from nova_infant.icep.pipeline import session_from_discover  # loads torch: imported on use

        return session_from_discover(io, lmap, label_id)

    ids = _feature_ids(session.inputs)
    if not ids:
        raise StreamError(f"session {session.name}: no feature stream given (--feature-0)")
    label_source = None
    if label_id is not None:
        where = str(session.path(label_id))
        segments, names = annotation_arrays(session.read_annotation(label_id), where)
        label_source = (segments, names, where)
    return session_from_rows(session.name, [FileRows(session.path(i)) for i in ids], label_source, lmap)


# ---------------------------------------------------------------- prediction


def load_bundle_of(session, o: dict):
    """The job's model bundle (loaded once): option ``bundle``, else the ``<model path>`` of the trained
    predictor ``.trainer`` (relative to its folder).

    Parameters
    ----------
    session : nova_infant.specs.sessions.Session
    o : dict
        Parsed options (``bundle``, ``device``).

    Returns
    -------
    nova_infant.icep.bundle.Bundle

    Raises
    ------
    TrainerFileError, BundleError
    """
    from nova_infant.icep.bundle import load_bundle  # loads torch: imported on use

    def make():
        given = o["bundle"] or session.job.get("trainer_model_path", "")
        if not given:
            raise TrainerFileError("icep_predict: no model bundle (set option 'bundle' or <model path=...>)")
        folder = getattr(session, "trainer_dir", None) or Path(".")
        path = Path(given) if Path(given).is_absolute() else Path(folder) / given
        return load_bundle(path, str(pick_device(o["device"])))

    return session.cached("bundle", make)


def predict_run(session, o: dict) -> Result:
    """ICEP-R prediction of one session.

    Returns
    -------
    Result
        ``extra["bundle"]``, ``extra["prediction"]`` (frame probabilities and smoothed segments), written by
        :func:`predict_write`.

    Raises
    ------
    StreamError, AlignmentError, BundleError, TrainerFileError
    """
    from nova_infant.icep.predict import predict_session  # loads torch: imported on use

    bundle = load_bundle_of(session, o)
    pred = predict_session(bundle, session_data(session), o["min_dur_ms"], o["batch_size"], o["review_threshold"])
    return Result(extra={"bundle": bundle, "prediction": pred}, notes=[f"{len(pred.segments())} segments"])


def predict_write(result: Result, session) -> dict:
    """The predictor's one writer: ``annotation`` (discrete, the model's scheme or NOVA's matching DB scheme,
    segments with mean-probability ``conf``) and ``prob_<class>`` continuous tracks (0..1 at the grid rate) for the
    requested ones.

    Parameters
    ----------
    result : Result
        What :func:`predict_run` returned.
    session : nova_infant.specs.sessions.Session

    Returns
    -------
    dict
        ``{port id: Annotation}``.

    Raises
    ------
    AnnotationError
        Database mode: the output scheme's classes differ from the model's.
    """
    from nova_infant.icep.predict import discrete_annotation, probability_annotations  # loads torch: imported on use

    bundle, pred = result.extra["bundle"], result.extra["prediction"]
    scheme = session.output_scheme("annotation")
    names = [v.get("name") for _, v in sorted(getattr(scheme, "classes", {}).items())] if scheme else []
    db_mode = getattr(session, "io", None) is not None and session.io.in_database("annotation")
    if db_mode and names != bundle.label_map.target.names:
        raise AnnotationError(f"session {session.name}: output scheme {getattr(scheme, 'name', '?')} has classes "
                              f"{names}, the model predicts {bundle.label_map.target.names} "
                              f"(scheme {bundle.label_map.target.name}: {IMPORT_HINT})")
    names_of = session.output_names("annotation")
    kw = dict(role=names_of.get("role"), annotator=names_of.get("annotator"), session=session.name,
              dataset=session.dataset)
    out = {}
    if session.is_active_output("annotation"):
        out["annotation"] = discrete_annotation(bundle, pred, scheme=scheme if db_mode else None, **kw)
    requested = session.requested_outputs()
    for name, anno in probability_annotations(bundle, pred, **kw).items():
        port = f"prob_{name}"
        session.check_scheme(port, anno.annotation_scheme.name, "CONTINUOUS")
        if requested is not None and port in requested:
            out[port] = anno
    return out


#: NOVA hatches a discrete segment whose conf is below the coder's "correction certainty level" (default 0.7)
REVIEW_THRESHOLD_OPTION = Option(
    "review_threshold", "float", 0.7, "split segments where the calibrated confidence crosses this value (NOVA's "
    "correction certainty level, default 0.7), so NOVA hatches the uncertain stretch; 0 = no split",
    minimum=0, maximum=1)

PREDICT = ModuleSpec(
    name="icep_predict", create="ICEPPredictor", category="ICEP-R",
    description="Predict ICEP-R engagement phases with a trained model bundle (option 'bundle')",
    inputs=(Port("feature_0", "stream:SSIStream:dinov2", "dinov2", "first feature stream, as at training time"),)
    + tuple(Port(f"feature_{i}", "stream:SSIStream", "w2vbert" if i == 1 else f"feature{i}",
                 "further feature stream, as at training time", optional=True, declared=False) for i in (1, 2, 3)),
    outputs=(Port("annotation", "annotation:Discrete", "ICEP-R-infant-merged",
                  "ICEP-R segments (ms) with mean-probability conf; a trained predictor adds prob_<class> "
                  "continuous tracks (off by default)"),),
    options=(
        Option("bundle", "path", "", "model bundle folder (icep_models/<name>); a trained predictor's .trainer "
               "points at its own"),
        Option("min_dur_ms", "float", -1.0, "smoothing: shortest segment kept, ms; -1 = the bundle's (the "
               "smoothing its cross-validation evaluated), 0 = none", minimum=-1),
        shared.device(),
        Option("batch_size", "int", 64, "windows per forward pass", minimum=1, maximum=1 << 20),
        REVIEW_THRESHOLD_OPTION),
    run=predict_run, write=predict_write, doc="docs/icep.md", citation=CITATION, licence=LICENCE,
    example_options={"bundle": "icep_models/icep-infant-bilstm"})


# ---------------------------------------------------------------- training


def bundle_dir(trainer_dir: Path, o: dict) -> Path:
    """Where training writes its model bundle.

    Parameters
    ----------
    trainer_dir : Path
        Folder of the training ``.trainer`` (CLI: ``--out``).
    o : dict
        Parsed options (``model_name``, ``role``, ``model``).

    Returns
    -------
    Path
        ``<trainer folder>/icep_models/<model_name or icep-<role>-<model>>``.

    Raises
    ------
    PathError
        A model name that is not a plain name, or a folder there this package did not create.
    """
    name = safe_name(o["model_name"] or f"icep-{o['role']}-{o['model']}", "option model_name")
    out = Path(trainer_dir) / "icep_models" / name
    check_replaceable(out)
    return out


def train_run(session, o: dict):
    """Load one coded session for training (a bad model name fails every session before any work).

    Returns
    -------
    nova_infant.icep.dataset.SessionData

    Raises
    ------
    AnnotationError, StreamError, AlignmentError, SessionTooShortError, PathError
        The session is skipped with one line.
    """
    from nova_infant.icep.training import window_starts  # loads torch: imported on use

    bundle_dir(getattr(session, "trainer_dir", None) or Path("."), o)
    lmap = session.cached("label_map", lambda: label_map(o["label_set"], o["role"]))
    data = session_data(session, lmap, "labels")
    window_starts(data.n_frames, o["window"], 1, data.name)
    if not (data.labels >= 0).any():
        raise AnnotationError(f"session {session.name}: the label annotation has no labelled frame (every "
                              f"segment is garbage or outside the label set): not trained on")
    return data


def predictor_options() -> list[tuple[str, str, str]]:
    """The options of a trained predictor's ``.trainer``: :data:`PREDICT`'s, less ``bundle`` (the ``.trainer`` names
    its bundle in ``<model path>``).

    Returns
    -------
    list of (str, str, str)
        ``(name, TYPE, default)`` entries (:meth:`~nova_infant.specs.options.Option.nova_entry`).
    """
    return [o.nova_entry() for o in PREDICT.options if o.name != "bundle" and o.nova and not o.hidden]


def train_fit(items: list, o: dict, ctx) -> TrainResult:
    """Fit once on every loaded session: optional cross-validation, inner-CV grid choice, the final model, its
    bundle and the predictor ``.trainer`` (:func:`nova_infant.icep.pipeline.train_bundle`).

    Returns
    -------
    TrainResult

    Raises
    ------
    OptionError
        No usable session, or cross-validation asked for with fewer than 2.
    """
    from nova_infant.icep.evaluation import parse_groups  # loads torch: imported on use
    from nova_infant.icep.pipeline import train_bundle  # loads torch: imported on use

    sessions, _ = usable_training_sessions(items, "icep_train")
    if not sessions:
        raise OptionError(f"icep_train: none of the {len(items)} loaded sessions is usable: nothing trained")
    out = bundle_dir(ctx.trainer_dir, o)
    folds = folds_for(o["cv_folds"], len(sessions), "icep_train", "cv_folds")
    lmap = label_map(o["label_set"], o["role"])
    cml = ctx.trainer_dir if (Path(ctx.trainer_dir) / "icep_predict.py").is_file() else None
    bundle, trainer, report = train_bundle(
        sessions, lmap, train_config(o), out, cml, folds, o["val_fraction"], o["grid"],
        {"dataset": ctx.dataset, "label_set": o["label_set"]}, o["inner_folds"],
        parse_groups(o["groups"] or None, [s.name for s in sessions]), o["min_dur_ms"],
        predictor_options=predictor_options())
    log.info("trained on %d sessions: bundle %s, predictor %s", len(sessions), bundle, trainer)
    if report:
        log.info("cross-validation: %s", report["summary"])
    elif lmap.note:
        log.info("%s", lmap.note)
    return TrainResult(Path(bundle), "icep_predict", {}, Path(trainer) if trainer else None, report or {})


def train_spec(role: str, key: str) -> ModuleSpec:
    """The training module for one coded role and one feature set of :data:`FEATURE_SETS` (stream types fused in
    that order as ``feature_0``, ``feature_1``, ...); its ``role`` option offers that role only.

    Parameters
    ----------
    role : str
        ``infant`` or ``caregiver``.
    key : str
        ``dinov2``, ``dinov2_w2vbert`` or ``dinov2_people`` (DINOv2 + the people module's people, pose and hands
        streams).

    Returns
    -------
    ModuleSpec
    """
    features = FEATURE_SETS[key]
    options = tuple(Option("role", "choice", role, o.help, choices=(role,)) if o.name == "role" else o
                    for o in TRAIN_OPTIONS)
    return ModuleSpec(
        name=f"icep_train_{role}_{key}", create="ICEPTrainer", category="ICEP-R",
        description=f"Train an ICEP-R {role} model (bi-LSTM or MLP) on {' + '.join(features)} features of the "
                    "selected coded sessions; writes a predictor trainer",
        inputs=tuple(Port(f"feature_{i}", f"stream:SSIStream:{f}", DEFAULT_STREAMS.get(f, f),
                          f"{f} feature stream (fused in this order)") for i, f in enumerate(features))
        + (Port("labels", "annotation:Discrete", f"ICEP-R-{role}", "the coder's ICEP-R annotation",
                scheme=f"ICEP-R-{role}"),),
        outputs=(), options=options, run=train_run, fit=train_fit, trains=True, check=check_training,
        doc="docs/icep.md", citation=CITATION, licence=LICENCE, example_options={"model_name": f"{role}-model"})


TRAIN_SPECS = {spec.name: spec for spec in (train_spec(role, key) for role in ROLES for key in FEATURE_SETS)}
