"""Leak-free evaluation: group-wise K-fold (outer), a session-grouped inner K-fold on the training side to pick a
grid point, a separate early-stopping split, two baselines on the same folds, and agreement figures with their
spread across sessions. Metrics from scikit-learn (:mod:`nova_infant.core.metrics`).

- Groups: a session is its own group unless ``groups`` maps sessions to dyads/participants (:func:`parse_groups`);
  every split (outer folds, inner folds, early-stopping hold-out) keeps a group on one side.
- Model selection: each grid point is fitted and scored with its *own* configuration (window, stride,
  normalisation...) on the inner folds (pooled inner-validation macro-F1); the early-stopping sessions of each
  inner fit come from the inner-training side, so the sessions that choose the grid point never steer early
  stopping. With one grid point no inner loop runs.
- Every normaliser, class weight and the model are fitted in :func:`training.fit` on training sessions only; the
  label map is fixed by the scheme configuration before any data is seen. Per-session standardisation uses the
  session's own features only (no labels), the same at prediction time.
- Every test frame is scored exactly once (overlapping windows averaged); masked frames are not scored.
- Report (:mod:`nova_infant.icep.report`, statistics in :mod:`nova_infant.icep.agreement`): per session κ (None
  where the session's gold holds one class) and macro-F1; pooled κ with a 95 % bootstrap interval (Efron &
  Tibshirani 1993, percentile interval) that resamples groups (dyads) when groups are given, sessions otherwise; the
  model with and without ``min_dur_ms`` smoothing (the bundle records it; its predictor applies it by default); a
  majority-class and a per-frame logistic-regression baseline (scikit-learn) fitted on each fold's training
  sessions, compared by a paired bootstrap; the human reference of the role.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path

import numpy as np

from nova_infant.core.errors import OptionError
from nova_infant.icep.agreement import scores
from nova_infant.icep.dataset import SessionData
from nova_infant.icep.calibration import CalibrationCounts, pool
from nova_infant.icep.report import CVResult, FoldResult
from nova_infant.icep.training import TrainConfig, fit, normalised, predict_fitted

log = logging.getLogger("nova_infant.icep")

# ---------------------------------------------------------------- groups and splits


def parse_groups(spec: str | None, names: list[str]) -> dict[str, str]:
    """Group (dyad / participant) of each session.

    Parameters
    ----------
    spec : None | path of a CSV | regular expression
        None or "": every session is its own group. A CSV file (``.csv``) with a header row holding the columns
        ``session`` and ``group``. Otherwise a regular expression searched in the session name: the group is its
        named group ``group``, else its first capture group, else the whole match (``^P\\d+`` groups
        ``P011_ffsf1`` and ``P011_ffsf2`` as ``P011``).
    names : session names

    Returns
    -------
    dict session name -> group name

    Raises
    ------
    OptionError
        If the CSV cannot be read or lacks a session, the pattern is not a valid expression, or it does not match a
        session name (naming the file or pattern and the session).
    """
    if not spec:
        return {n: n for n in names}
    spec = str(spec)
    if spec.lower().endswith(".csv"):
        path = Path(spec)
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                rows = list(csv.DictReader(handle))
        except OSError as exc:
            raise OptionError(f"{path}: cannot read the groups file ({exc.strerror})") from None
        if not rows or not {"session", "group"} <= set(rows[0]):
            raise OptionError(f"{path}: a groups file needs a header with the columns 'session' and 'group'")
        table = {r["session"].strip(): r["group"].strip() for r in rows}
        missing = [n for n in names if n not in table]
        if missing:
            raise OptionError(f"{path}: session {missing[0]} has no group ({len(missing)} session(s) missing)")
        return {n: table[n] for n in names}
    try:
        pattern = re.compile(spec)
    except re.error as exc:
        raise OptionError(f"option groups: {spec!r} is neither a .csv file nor a valid regular expression ({exc})") from None
    out = {}
    for n in names:
        match = pattern.search(n)
        if match is None:
            raise OptionError(f"option groups: pattern {spec!r} does not match session {n}")
        out[n] = match.group("group") if "group" in pattern.groupindex else match.group(1) if pattern.groups else match.group(0)
    return out


def group_kfold(groups: list[str], n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shuffled group K-fold (scikit-learn ``GroupKFold(shuffle=True)``) over items with these groups; ``n_splits``
    is capped at the number of groups. Returns ``[(train indices, test indices), ...]``.

    Raises
    ------
    OptionError
        If there are fewer than 2 groups (a ``ValueError`` too).
    """
    from sklearn.model_selection import GroupKFold

    n_groups = len(set(groups))
    if n_groups < 2:
        raise OptionError(f"a grouped split needs sessions of at least 2 groups, got {n_groups} (see option groups)")
    kfold = GroupKFold(n_splits=min(n_splits, n_groups), shuffle=True, random_state=seed)
    return [(np.sort(a), np.sort(b)) for a, b in kfold.split(np.zeros(len(groups)), groups=groups)]


def split_validation(train_idx: np.ndarray, val_fraction: float, rng: np.random.Generator,
                     groups: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Early-stopping hold-out: ``max(1, round(val_fraction * n_groups))`` whole groups of the training side (none if
    it holds one group only), so no dyad sits on both sides.

    Parameters
    ----------
    train_idx : ndarray, int, shape (n_train,)
        Indices of the training sessions in the full session list.
    val_fraction : float
        Share of the training groups held out, 0..1.
    rng : numpy.random.Generator
        Draws the held-out groups.
    groups : list of str, optional
        Group of every session, indexed like the full session list (None: one group per session).

    Returns
    -------
    (fit_idx, val_idx) : ndarray, int
        Both sorted; together they are ``train_idx``.
    """
    train_idx = np.asarray(train_idx)
    keys = [groups[i] if groups is not None else str(i) for i in train_idx]
    unique = sorted(set(keys))
    n_val = 0 if len(unique) < 2 or val_fraction <= 0 else max(1, int(round(val_fraction * len(unique))))
    chosen = set(rng.permutation(unique)[:n_val].tolist())
    is_val = np.array([k in chosen for k in keys], bool)
    return np.sort(train_idx[~is_val]), np.sort(train_idx[is_val])


# ---------------------------------------------------------------- model selection


def select_config(sessions: list[SessionData], groups: list[str], class_names: list[str], config: TrainConfig,
                  grid: list[dict] | None, inner_folds: int = 3, val_fraction: float = 0.2,
                  seed: int = 0) -> tuple[dict, list[dict]]:
    """Choose a grid point by session-grouped inner K-fold on ``sessions`` (the outer-training side).

    Each point's configuration (``config.replace(**point)``) is fitted on the inner-training sessions (with its own
    early-stopping hold-out taken from them) and scored on the inner-validation sessions with that same
    configuration (its window, stride and normalisation); macro-F1 is pooled over the inner folds' frames.

    Returns
    -------
    (chosen point, table) : table = one dict per point: ``point``, ``f1_macro``, ``kappa``, ``scored_with``
        (window, stride, normalise actually used to score it), ``inner_folds``. With fewer than two points nothing
        is fitted and the table is empty.
    """
    points = list(grid or [{}])
    if len(points) == 1:
        return dict(points[0]), []
    if len(set(groups)) < 2:
        log.warning("only one group on the training side: no inner selection, first grid point used")
        return dict(points[0]), [{"point": dict(points[0]), "note": "only one group on the training side: not "
                                  "selected, the first grid point was used", "inner_folds": 0}]
    rng = np.random.default_rng(seed)
    splits = group_kfold(groups, inner_folds, seed)
    table = []
    for point in points:
        cfg = config.replace(**point)
        gold, pred = [], []
        for inner_train, inner_val in splits:
            fit_idx, es_idx = split_validation(inner_train, val_fraction, rng, groups)
            fitted = fit([sessions[i] for i in fit_idx], [sessions[i] for i in es_idx], len(class_names), cfg)
            for i in inner_val:
                gold.append(sessions[i].labels)
                pred.append(predict_fitted(fitted, sessions[i]).argmax(1))
        s = scores(np.concatenate(gold), np.concatenate(pred), class_names)
        table.append({"point": dict(point), "f1_macro": s["f1_macro"], "kappa": s["kappa"],
                      "scored_with": {"window": fitted.config.window, "stride": fitted.config.stride,
                                      "normalise": fitted.config.normalise}, "inner_folds": len(splits)})
        log.info("grid point %s: inner macro-F1 %.3f", point, s["f1_macro"])
    best = max(range(len(points)), key=lambda i: table[i]["f1_macro"])  # first of equals
    return dict(points[best]), table


# ---------------------------------------------------------------- baselines


def majority_baseline(train: list[SessionData]) -> int:
    """Baseline: the most frequent labelled class over the training sessions' frames (masked frames ignored).

    Parameters
    ----------
    train : list of SessionData
        Training sessions with ``labels`` (int64, -1 = masked).

    Returns
    -------
    int
        The class id predicted for every frame of a test session.
    """
    counts = np.bincount(np.concatenate([s.labels[s.labels >= 0] for s in train]))
    return int(np.argmax(counts))


def logistic_baseline(train: list[SessionData], normalise: str, max_frames: int = 20000, seed: int = 0):
    """Baseline: per-frame multinomial logistic regression (scikit-learn ``LogisticRegression``, class weight
    "balanced", after ``StandardScaler``), no temporal context.

    Parameters
    ----------
    train : list of SessionData
        Training sessions with labels; at most ``max_frames`` labelled frames are sampled evenly across them.
    normalise : str
        The model's normalisation mode (``session`` or ``fold``), so the baseline reads the same features.
    max_frames : int
        Cap on the frames fitted on.
    seed : int
        Seed of the frame sample.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Fitted on the training sessions only; ``predict`` takes float32 (n_frames, dim).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    per_session = max(1, max_frames // max(len(train), 1))
    xs, ys = [], []
    for s in normalised(train, normalise):
        frames = np.flatnonzero(s.labels >= 0)
        if len(frames) > per_session:
            frames = np.sort(rng.choice(frames, per_session, replace=False))
        if len(frames):
            block = s.features(int(frames[0]), int(frames[-1]) + 1)
            xs.append(block[frames - frames[0]])
            ys.append(s.labels[frames])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, class_weight="balanced"))
    return model.fit(np.concatenate(xs), np.concatenate(ys))


def _predict_frames(model, session: SessionData, normalise: str, chunk: int = 4096) -> np.ndarray:
    s = normalised([session], normalise)[0]
    return np.concatenate([model.predict(s.features(a, min(a + chunk, s.n_frames)))
                           for a in range(0, s.n_frames, chunk)]).astype(np.int64)


def cross_validate(sessions: list[SessionData], class_names: list[str], config: TrainConfig, folds: int = 5,
                   grid: list[dict] | None = None, val_fraction: float = 0.2, seed: int = 0, inner_folds: int = 3,
                   groups: dict[str, str] | None = None, min_dur_ms: float = 400.0, baselines: bool = True,
                   role: str = "", note: str = "") -> CVResult:
    """Nested group-wise cross-validation with baselines.

    Parameters
    ----------
    sessions : labelled sessions
    config : base hyper-parameters; ``grid`` = list of overrides (e.g. ``[{"window": 10}, {"window": 100}]``),
        chosen per outer fold by :func:`select_config` (inner K-fold, its own configuration for each point)
    folds : outer folds (at most the number of groups)
    val_fraction : share of training groups held out for early stopping (inside every fit)
    inner_folds : folds of the inner model-selection loop (only used with two or more grid points)
    groups : session -> dyad/participant (:func:`parse_groups`); None = one group per session
    min_dur_ms : smoothing evaluated beside the raw predictions (runs shorter than this join a neighbour, as the
        predictor's ``min_dur_ms``); 0 = none
    baselines : also fit and score the majority-class and per-frame logistic-regression baselines
    role : "infant" | "caregiver": selects the human reference stated in the report
    note : label-set decision printed with every score (e.g. the caregiver Cpvc merge)

    Returns
    -------
    CVResult (per-fold fitted models, scores, predictions; pooled scores over all test frames; ``summary``)

    Raises
    ------
    OptionError
        If there are fewer than 2 groups of sessions (a ``ValueError`` too).
    """
    plan = plan_folds(sessions, class_names, config, folds, grid, val_fraction, seed, inner_folds, groups,
                      min_dur_ms, baselines, role, note)
    return combine_folds(plan, [run_fold(sessions, plan, k) for k in range(len(plan["folds"]))])


# ---------------------------------------------------------------- the three steps: plan, one fold, combine


def _session_identity(session: SessionData) -> dict:
    """What a fold file's session must still be: frames, dims, step, a hash of its labels, and each stream's
    file (path, size, mtime in ns) or, for an in-memory stream, a hash of its values."""
    import hashlib

    streams = []
    for stream in session.streams:
        path = getattr(stream, "_data_path", None)
        if path is not None:
            st = os.stat(path)
            streams.append({"file": os.path.abspath(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns})
        else:
            streams.append({"name": stream.name, "sha256": hashlib.sha256(np.ascontiguousarray(stream.data)).hexdigest()})
    labels = np.ascontiguousarray(session.labels if session.labels is not None else np.zeros(0, np.int64))
    return {"n_frames": int(session.n_frames), "dim": int(session.dim), "step_ms": float(session.step_ms),
            "labels_sha256": hashlib.sha256(labels).hexdigest(), "streams": streams}


def plan_folds(sessions: list[SessionData], class_names: list[str], config: TrainConfig, folds: int = 5,
               grid: list[dict] | None = None, val_fraction: float = 0.2, seed: int = 0, inner_folds: int = 3,
               groups: dict[str, str] | None = None, min_dur_ms: float = 400.0, baselines: bool = True,
               role: str = "", note: str = "") -> dict:
    """The fold plan of a nested group-wise CV: step 1 of 3 (:func:`run_fold`, :func:`combine_folds`).

    Computed once, deterministic (same sessions, groups, ``folds`` and ``seed`` -> same plan): per outer fold the
    test sessions (shuffled ``GroupKFold``), and on its training side the fit sessions and the early-stopping
    sessions (whole groups, :func:`split_validation` drawn from one generator seeded with ``seed`` fold after
    fold), plus every setting a fold needs, so that one fold can run anywhere (another process, a Slurm array task)
    from the plan and the sessions alone. Parameters as :func:`cross_validate`.

    Returns
    -------
    dict (JSON-ready)
        ``folds`` (list of {``fold``, ``fit``, ``val``, ``test``}: session names), ``sessions`` (name ->
        frames, dims, step (ms), labels hash and stream files with size and mtime (ns)), ``groups``, ``masked``,
        the settings (``config``, ``grid``, ``val_fraction``, ``seed``, ``inner_folds``, ``min_dur_ms``,
        ``baselines``, ``class_names``, ``role``, ``note``) and ``sha256`` (of all the rest): a fold file matches
        the plan when it carries this hash.

    Raises
    ------
    OptionError
        If there are fewer than 2 groups of sessions (a ``ValueError`` too).
    """
    import hashlib
    import json

    names = [s.name for s in sessions]
    group_of = groups or {n: n for n in names}
    group_list = [group_of[n] for n in names]
    if len(set(group_list)) < 2:
        raise OptionError(f"cross-validation needs sessions of at least 2 groups, got {len(set(group_list))} "
                          f"({len(sessions)} sessions; see option groups)")
    rng = np.random.default_rng(seed)  # one generator, fold after fold: the early-stopping groups of every fold
    plan_of_folds = []
    for k, (train_idx, test_idx) in enumerate(group_kfold(group_list, folds, seed)):
        fit_idx, val_idx = split_validation(train_idx, val_fraction, rng, group_list)
        plan_of_folds.append({"fold": k, "fit": [names[i] for i in fit_idx], "val": [names[i] for i in val_idx],
                              "test": [names[i] for i in test_idx]})
    plan = {"folds": plan_of_folds, "sessions": {s.name: _session_identity(s) for s in sessions},
            "groups": {n: group_of[n] for n in names}, "masked": {s.name: s.masked for s in sessions},
            "config": config.to_dict(), "grid": list(grid or []), "val_fraction": float(val_fraction),
            "seed": int(seed), "inner_folds": int(inner_folds), "min_dur_ms": float(min_dur_ms),
            "baselines": bool(baselines), "class_names": list(class_names), "role": role, "note": note}
    plan = json.loads(json.dumps(plan))  # exactly what a saved plan reads back as
    plan["sha256"] = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()
    return plan


def run_fold(sessions: list[SessionData], plan: dict, k: int) -> FoldResult:
    """Fit and score outer fold ``k`` of ``plan``: step 2 of 3 (:func:`plan_folds`, :func:`combine_folds`).

    Picks the grid point by inner K-fold on the fold's training sessions (:func:`select_config`, seed
    ``plan seed + 1 + k``), fits it on the fit sessions with early stopping on the plan's validation sessions,
    fits the baselines on the training side, and predicts every test session (raw, smoothed by ``min_dur_ms``,
    both baselines).

    Parameters
    ----------
    sessions : labelled sessions (at least every session the plan names; found by name)
    plan : dict from :func:`plan_folds`
    k : fold index

    Returns
    -------
    FoldResult

    Raises
    ------
    OptionError
        If a session of the plan is missing or no longer what the plan recorded (frames, labels, stream files).
    """
    from nova_infant.icep.predict import smooth_min_duration

    by_name = {s.name: s for s in sessions}
    for name, identity in plan["sessions"].items():
        if name not in by_name:
            raise OptionError(f"fold plan: session {name} is not among the sessions given")
        if _session_identity(by_name[name]) != identity:
            raise OptionError(f"fold plan: session {name} changed since the plan was made (frames, labels or "
                              f"stream files); make a new plan")
    fold = plan["folds"][k]
    for name in fold["fit"] + fold["val"] + fold["test"]:
        if name not in plan["sessions"]:
            raise OptionError(f"fold plan: fold {k} names session {name}, which the plan does not list")
    class_names = list(plan["class_names"])
    group_of = plan["groups"]
    config = TrainConfig(**{**plan["config"], "mlp_hidden": tuple(plan["config"]["mlp_hidden"])})
    train_names = sorted(fold["fit"] + fold["val"], key=list(plan["sessions"]).index)
    train_sessions = [by_name[n] for n in train_names]
    chosen, table = select_config(train_sessions, [group_of[n] for n in train_names], class_names, config,
                                  plan["grid"] or None, plan["inner_folds"], plan["val_fraction"], plan["seed"] + 1 + k)
    cfg = config.replace(**chosen)
    best = fit([by_name[n] for n in fold["fit"]], [by_name[n] for n in fold["val"]], len(class_names), cfg)
    majority = majority_baseline(train_sessions) if plan["baselines"] else None
    logreg = logistic_baseline(train_sessions, cfg.normalise, seed=plan["seed"]) if plan["baselines"] else None
    preds, variants, calibration = {}, {}, []
    for name in fold["test"]:
        s = by_name[name]
        raw = predict_fitted(best, s, calibrated=False)
        calibration.append(CalibrationCounts.of(raw, s.labels, best.temperature))
        probs = predict_fitted(best, s)
        pred = probs.argmax(1)
        preds[name] = (s.labels, pred)
        variants[name] = {"model_smoothed": smooth_min_duration(pred, probs, int(round(plan["min_dur_ms"] / s.step_ms)))}
        if plan["baselines"]:
            variants[name]["majority"] = np.full(s.n_frames, majority, np.int64)
            variants[name]["logreg"] = _predict_frames(logreg, s, cfg.normalise)
    gold = np.concatenate([g for g, _ in preds.values()])
    pred = np.concatenate([p for _, p in preds.values()])
    fold_scores = scores(gold, pred, class_names)
    log.info("fold %d: macro-F1 %.3f, kappa %.3f", k, fold_scores["f1_macro"], fold_scores["kappa"])
    pooled = pool(calibration)
    return FoldResult(k, list(fold["fit"]), list(fold["val"]), list(fold["test"]), chosen, best, fold_scores, preds,
                      table, variants, best.config.to_dict(), best.best_epoch, pooled.to_json() if pooled else {})


def combine_folds(plan: dict, fold_results: list[FoldResult]) -> CVResult:
    """Pool the outer folds of ``plan`` into the report: step 3 of 3 (:func:`plan_folds`, :func:`run_fold`).

    Pooled scores over every test frame (folds in plan order), then per-session κ and macro-F1, session-bootstrap
    intervals, baselines and the summary line (:class:`CVResult`).

    Raises
    ------
    OptionError
        If a fold is missing or twice, or a fold's test sessions are not the plan's.
    """
    by_index = {f.index: f for f in fold_results}
    if sorted(by_index) != list(range(len(plan["folds"]))) or len(fold_results) != len(plan["folds"]):
        raise OptionError(f"fold plan has {len(plan['folds'])} folds, got results of folds {sorted(f.index for f in fold_results)}")
    ordered = [by_index[k] for k in range(len(plan["folds"]))]
    for f in ordered:
        if list(f.test) != list(plan["folds"][f.index]["test"]):
            raise OptionError(f"fold {f.index}: its test sessions are not the plan's")
    gold = np.concatenate([g for f in ordered for g, _ in f.predictions.values()])
    pred = np.concatenate([p for f in ordered for _, p in f.predictions.values()])
    pooled = scores(gold, pred, list(plan["class_names"]))
    return CVResult(ordered, pooled, list(plan["class_names"]), dict(plan["groups"]), dict(plan["masked"]),
                    float(plan["min_dur_ms"]), plan["role"], plan["note"], plan["inner_folds"], plan["seed"])


def fold_record(fold: FoldResult, plan: dict) -> dict:
    """JSON-ready record of one fold for its fold file; :func:`fold_from_record` reads it back.

    Parameters
    ----------
    fold : FoldResult
    plan : dict
        The CV plan; its ``sha256`` is stored so a fold file of another plan is refused.

    Returns
    -------
    dict
        The plan's ``sha256``, the fold's sessions, grid selection, chosen point, trained configuration, best epoch,
        scores and every test session's frame labels (gold, model and variants as int lists).
    """
    return {"plan_sha256": plan["sha256"], "fold": fold.index, "train": fold.train, "val": fold.val,
            "test": fold.test, "chosen": fold.chosen, "selection": fold.selection, "scores": fold.scores,
            "trained_config": fold.trained_config, "best_epoch": int(fold.best_epoch),
            "calibration": fold.calibration,
            "predictions": {n: {"gold": np.asarray(g).tolist(), "model": np.asarray(p).tolist(),
                                **{v: np.asarray(a).tolist() for v, a in fold.variants.get(n, {}).items()}}
                            for n, (g, p) in fold.predictions.items()}}


def fold_from_record(record: dict) -> FoldResult:
    """The :class:`FoldResult` of a :func:`fold_record` dict.

    Parameters
    ----------
    record : dict

    Returns
    -------
    FoldResult
        With ``fitted`` None (the model stays where the fold ran); labels as int64 arrays.
    """
    preds, variants = {}, {}
    for name, frames in record["predictions"].items():
        preds[name] = (np.asarray(frames["gold"], np.int64), np.asarray(frames["model"], np.int64))
        variants[name] = {v: np.asarray(a, np.int64) for v, a in frames.items() if v not in ("gold", "model")}
    return FoldResult(int(record["fold"]), list(record["train"]), list(record["val"]), list(record["test"]),
                      dict(record["chosen"]), None, record["scores"], preds, list(record["selection"]), variants,
                      dict(record["trained_config"]), int(record["best_epoch"]), dict(record.get("calibration") or {}))
