"""End-to-end jobs shared by the command line and the DISCOVER adapters: load a batch of sessions (reporting and
skipping bad ones), cross-validate, train the final model, save the bundle and its predictor ``.trainer``."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nova_infant.core import batch
from nova_infant.core.atomic import atomic_file
from nova_infant.core.batch import SessionResult, format_table, slurm_resources
from nova_infant.core.errors import AnnotationError, NovaInfantError, OptionError, StreamError
from nova_infant.core.streams import open_ssi_stream
from nova_infant.core.validation import check_class_targets
from nova_infant.icep.calibration import plot_reliability, pool
from nova_infant.icep.bundle import feature_spec, save_bundle, write_predictor_trainer
from nova_infant.icep.dataset import (ArrayRows, FileRows, SessionData, SessionSpec, annotation_arrays, load_session,
                                      session_from_rows)
from nova_infant.icep.evaluation import (combine_folds, cross_validate, fold_from_record, fold_record, plan_folds,
                                         run_fold, select_config, split_validation)
from nova_infant.icep.report import CVResult
from nova_infant.icep.plots import write_cv_pictures
from nova_infant.icep.schemes import LabelMap
from nova_infant.icep.training import TrainConfig, fit, window_starts
from nova_infant.core.annotations import check_annotation

log = logging.getLogger("nova_infant.icep")


def load_sessions(session_dirs: list, spec: SessionSpec, lmap: LabelMap | None,
                  window: int | None = None) -> tuple[list[SessionData], list[tuple[str, str]]]:
    """Open every session of a job; a bad one (missing/NaN stream, misalignment, missing or invalid annotation, shorter
    than ``window`` frames) is reported and skipped, so a batch goes on with the rest.

    Parameters
    ----------
    session_dirs : list of path
        Session folders ``<root>/<dataset>/<session>``.
    spec : SessionSpec
        Which streams and which annotation make a session.
    lmap : LabelMap or None
        For training; None for prediction (no labels read).
    window : int, optional
        Model window in frames; a shorter session is skipped.

    Returns
    -------
    (sessions, failures) : (list of SessionData, list of (str, str))
        The loaded sessions, and ``(session dir, one-line error)`` per skipped one.
    """
    sessions, failures = [], []
    for path in session_dirs:
        try:
            s = load_session(path, spec, lmap)
            if window is not None:
                window_starts(s.n_frames, window, 1, s.name)
            sessions.append(s)
        except (NovaInfantError, OSError) as exc:  # OSError: an unreadable file skips this session only
            log.error("%s: skipped: %s", path, exc)
            failures.append((str(path), f"{type(exc).__name__}: {exc}"))
    return sessions, failures


def check_consistent(sessions: list[SessionData], names: list[str] | None = None) -> None:
    """All sessions must be distinct, share the fused dimension and frame step, their PCA feature streams one basis,
    and (when ``names`` is given) their labels hold two classes or more.

    Parameters
    ----------
    sessions : list of SessionData
    names : list of str, optional
        Target class names by id (:attr:`LabelMap.target`); given by training and cross-validation.

    Raises
    ------
    StreamError
        Naming the odd session: other dims or frame step; a stream made with a per-session or per-frame PCA; or a
        stream whose PCA basis differs from another session's (:func:`check_feature_bases`).
    OptionError
        A session given twice, or labels of one class only
        (:func:`nova_infant.core.validation.check_class_targets`).
    """
    seen = set()
    for s in sessions:
        if s.name in seen:
            raise OptionError(f"session {s.name} is given twice; give each session once")
        seen.add(s.name)
    ref = sessions[0]
    for s in sessions[1:]:
        if s.dim != ref.dim or abs(s.step_ms - ref.step_ms) > 1e-3:
            raise StreamError(f"session {s.name}: {s.dim} dims at {s.step_ms:.2f} ms, but session {ref.name} has "
                              f"{ref.dim} dims at {ref.step_ms:.2f} ms")
    check_feature_bases(sessions)
    warn_mixed_precision(sessions)
    if names is not None:
        labels = [s.labels for s in sessions if s.labels is not None]
        if labels:
            shown = ", ".join(s.name for s in sessions[:5]) + (" ..." if len(sessions) > 5 else "")
            check_class_targets(np.concatenate(labels), names, f"ICEP-R training on sessions {shown}")


def warn_mixed_precision(sessions: list[SessionData]) -> list[str]:
    """Warn (one log line per stream) when sessions' streams at the same position were computed in different precisions
    (header meta ``precision`` written by the DINOv2 and W2V-BERT extractors: fp32, bf16, int8): the features then
    differ slightly by session for reasons that have nothing to do with the infant (docs/benchmarks.md,
    "Precision"). Streams without the key (other features, older streams) are ignored.

    Parameters
    ----------
    sessions : list of SessionData

    Returns
    -------
    list of str
        The warning lines; empty when every session agrees.
    """
    lines = []
    for i in range(min(len(s.streams) for s in sessions)):
        by_precision: dict[str, list[str]] = {}
        for s in sessions:
            precision = str((getattr(s.streams[i], "meta", None) or {}).get("precision", "")).strip()
            if precision:
                by_precision.setdefault(precision, []).append(s.name)
        if len(by_precision) > 1:
            parts = "; ".join(f"{p}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''} ({len(names)} "
                              f"session{'s' if len(names) > 1 else ''})" for p, names in sorted(by_precision.items()))
            lines.append(f"stream {sessions[0].streams[i].name}: sessions were extracted in different precisions "
                         f"({parts}); re-extract them in one precision so features mean the same in every session")
            log.warning(lines[-1])
    return lines


def stream_basis(stream) -> tuple[str, str]:
    """The PCA basis a stream was projected on, from its header meta.

    Parameters
    ----------
    stream : FileRows or ArrayRows
        ``meta`` holds ``pca_mode``/``pca_basis`` (DINOv2-PCA extractor; streams written before them carry ``pca`` =
        "session"/"frame").

    Returns
    -------
    (mode, basis hash) : (str, str)
        ``("", "")`` for a stream without a PCA (e.g. W2V-BERT).
    """
    meta = getattr(stream, "meta", None) or {}
    mode = str(meta.get("pca_mode", "")).strip()
    if not mode and str(meta.get("pca", "")).strip() in ("session", "frame"):
        mode = str(meta["pca"]).strip()
    return mode, str(meta.get("pca_basis", "")).strip()


def pca_fit_sessions(sessions: list[SessionData], test_sessions: list[str] | None = None) -> list[dict]:
    """Which sessions each PCA feature stream's basis was fitted on, for the CV report.

    The stream header names its basis by hash (``pca_basis``); the basis folder (kind ``dinov2-pca-basis``) lists
    the videos it was fitted on (``sources``). It is looked for where the DINOv2-PCA extractor keeps it by default:
    ``<dataset folder>/dinov2_pca_basis/*/config.json`` beside the sessions of file-mode streams. A session is
    named by its video's folder. Fitting the basis is unsupervised (no labels), but test sessions among its fit
    sessions shaped the features the model sees; the report says which.

    Parameters
    ----------
    sessions : list of SessionData
    test_sessions : list of str, optional
        The CV's test sessions (all of them over the folds); default every session.

    Returns
    -------
    list of dict
        Per stream position with a PCA basis: ``stream``, ``pca_mode``, ``pca_basis`` (hash), ``basis_folder``
        (None when not found: then ``fitted_on`` is None too), ``fitted_on`` (session names), ``n_videos``,
        ``test_sessions_in_fit`` (CV test sessions among them).
    """
    import json as _json

    tests = set(test_sessions if test_sessions is not None else [s.name for s in sessions])
    out = []
    for i in range(min(len(s.streams) for s in sessions) if sessions else 0):
        bases = {}
        for s in sessions:
            mode, basis = stream_basis(s.streams[i])
            if mode:
                bases.setdefault((mode, basis), []).append(s)
        for (mode, basis), members in bases.items():
            entry = {"stream": members[0].streams[i].name, "pca_mode": mode, "pca_basis": basis, "basis_folder": None,
                     "fitted_on": None, "n_videos": None, "test_sessions_in_fit": None}
            roots = {Path(str(getattr(m.streams[i], "path", ""))).resolve().parent.parent
                     for m in members if getattr(m.streams[i], "path", None) is not None}
            for root in sorted(roots):
                for cfg in sorted((root / "dinov2_pca_basis").glob("*/config.json")) if basis else []:
                    try:
                        doc = _json.loads(cfg.read_text()).get("config", {})
                    except (OSError, ValueError):
                        continue
                    if doc.get("basis_hash") == basis:
                        fitted = [Path(v).parent.name for v in doc.get("sources", [])]
                        entry.update(basis_folder=str(cfg.parent), fitted_on=sorted(set(fitted)),
                                     n_videos=len(fitted), test_sessions_in_fit=sorted(tests & set(fitted)))
                        break
                if entry["basis_folder"]:
                    break
            out.append(entry)
    return out


def check_feature_bases(sessions: list[SessionData]) -> None:
    """Refuse PCA feature streams that are not comparable across sessions (docs/dinov2-pca.md, "One basis").

    Raises
    ------
    StreamError
        One line naming the stream and session and saying how to fix it: a per-session or per-frame PCA stream, or
        sessions whose streams at the same position carry different PCA bases.
    """
    for i in range(min(len(s.streams) for s in sessions)):
        first: dict[str, SessionData] = {}
        for s in sessions:
            stream = s.streams[i]
            mode, basis = stream_basis(stream)
            where = getattr(stream, "path", None) or f"session {s.name}: stream {stream.name}"
            if mode in ("session", "frame"):
                raise StreamError(f"{where}: made with a per-{mode} PCA (pca_mode={mode}), so its features mean "
                                  f"something else in every {mode}; re-extract every session with pca=dataset "
                                  f"(one basis per dataset, the default)")
            if basis:
                first.setdefault(basis, s)
        if len(first) > 1:
            (ha, a), (hb, b) = list(first.items())[:2]
            raise StreamError(f"stream {a.streams[i].name}: sessions {a.name} (PCA basis {ha}) and {b.name} (PCA "
                              f"basis {hb}) were extracted with different PCA bases; re-extract them with one basis "
                              f"file (option pca_basis) so every feature means the same in every session")


def evaluate(sessions: list[SessionData], lmap: LabelMap, config: TrainConfig, out_dir, folds: int = 5,
             grid: list[dict] | None = None, val_fraction: float = 0.2, seed: int = 0, inner_folds: int = 3,
             groups: dict | None = None, min_dur_ms: float = 400.0, baselines: bool = True,
             executor: str = "inline", workers: int = 1, resources: dict | None = None, retries: int = 1,
             progress: bool = False, threads: int = 1) -> CVResult:
    """Nested group-wise CV; writes ``<out_dir>/cv_report.json`` and PNGs (confusion matrix, per-session κ against
    the baselines, timelines).

    The same three steps on every executor: :func:`evaluation.plan_folds`, :func:`evaluation.run_fold` per outer
    fold, :func:`evaluation.combine_folds`. ``executor="inline"`` runs the folds one after the other in this
    process (:func:`evaluation.cross_validate`). ``"local"`` (a process pool of ``workers``) and ``"slurm"`` (one
    submitit job array, one task per fold, ``resources`` as ``nova-infant batch``) save the plan as
    ``<out_dir>/folds/plan.json``, run each fold in its own process and write its result atomically to
    ``<out_dir>/folds/fold_<k>.json``; a fold whose file exists and carries the plan's hash is not run again, so
    re-running after a failure runs only the missing folds. The report is the same on every executor.

    Raises
    ------
    FoldsFailed
        If a fold failed (after ``retries``): the folds that succeeded keep their files.
    OptionError
        Unknown executor; fewer than 2 groups.
    """
    if executor not in ("inline", "local", "slurm"):
        raise OptionError(f"option executor: expected inline, local or slurm, got {executor!r}")
    check_consistent(sessions, lmap.target.names)
    out = Path(out_dir)
    if executor == "inline":
        result = cross_validate(sessions, lmap.target.names, config, folds, grid, val_fraction, seed, inner_folds,
                                groups, min_dur_ms, baselines, lmap.target.role, lmap.note)
    else:
        plan = plan_folds(sessions, lmap.target.names, config, folds, grid, val_fraction, seed, inner_folds, groups,
                          min_dur_ms, baselines, lmap.target.role, lmap.note)
        fold_results = run_folds(sessions, plan, out / "folds", executor, workers, resources, retries, progress,
                                 threads)
        result = combine_folds(plan, fold_results)
    result.pca_basis = pca_fit_sessions(sessions, [n for f in result.folds for n in f.test])
    out.mkdir(parents=True, exist_ok=True)
    report = {"label_map": lmap.to_json(), "training_config": config.to_dict(), "grid": grid or [],
              **result.report()}
    with atomic_file(out / "cv_report.json", ".json") as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    write_cv_pictures(result, lmap, out, {s.name: s.step_ms for s in sessions})
    write_calibration_report(result, out)
    return result


def write_calibration_report(result: CVResult, out_dir) -> Path | None:
    """The reliability diagram ``<out_dir>/reliability.png`` of a cross-validation (test frames of every fold, before
    and after temperature scaling) and one log line with ECE before/after and the review efficiency at the
    threshold (:mod:`nova_infant.icep.calibration`).

    Returns
    -------
    pathlib.Path or None
        The PNG; None when no fold carries calibration counts (fold files of an older version).

    Raises
    ------
    OutputError
        If the PNG cannot be written.
    """
    cal = pool([f.calibration for f in result.folds])
    if cal is None:
        return None
    review = cal.review
    log.info("calibration: ECE %.3f before, %.3f after temperature scaling; %.0f %% of the time below %.2f holds "
             "%.0f %% of the errors (review efficiency %.2f)", cal.before.ece, cal.after.ece,
             100 * review.share_time_below, review.threshold, 100 * review.share_errors_below, review.efficiency)
    return plot_reliability(cal, Path(out_dir) / "reliability.png",
                            f"Reliability over {len(result.folds)} test folds")


# ---------------------------------------------------------------- CV folds as separate jobs (process pool, Slurm)


class FoldsFailed(NovaInfantError):
    """Some outer folds of a cross-validation failed; the others are saved in their fold files."""


@dataclass
class FoldJob:
    """What one fold job needs; picklable, as it travels to pool workers and Slurm array tasks.

    Attributes
    ----------
    sessions : list of SessionData
        File-mode sessions pickle as file names; in-memory streams travel whole.
    plan : dict
        The CV plan (folds, grid, seed; its ``sha256`` names it).
    folds_dir : str
        Folder of the fold files ``fold_<k>.json``.
    threads : int
        torch threads of the job.
    """

    sessions: list
    plan: dict
    folds_dir: str
    threads: int = 1

    @property
    def name(self) -> str:
        """``icep_cv``: the key of the fold's Slurm resources (:data:`nova_infant.core.batch.SLURM_RESOURCES`)."""
        return "icep_cv"

    @property
    def state_dir(self) -> str:
        """The folds folder (where the batch executors keep their state)."""
        return self.folds_dir


def fold_path(folds_dir, k: int) -> Path:
    """The fold file of fold ``k``.

    Parameters
    ----------
    folds_dir : path
    k : int

    Returns
    -------
    pathlib.Path
        ``<folds_dir>/fold_<k>.json``.
    """
    return Path(folds_dir) / f"fold_{k}.json"


def load_fold_file(folds_dir, plan: dict, k: int):
    """The saved result of fold ``k`` of ``plan``, if any.

    Parameters
    ----------
    folds_dir : path
    plan : dict
    k : int
        Fold index.

    Returns
    -------
    FoldResult or None
        None when there is no file, it cannot be read, or it belongs to another plan (other sessions, settings or
        seed).
    """
    path = fold_path(folds_dir, k)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        if record.get("plan_sha256") != plan["sha256"] or record.get("fold") != k:
            return None
        return fold_from_record(record)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # unreadable, cut short, not a fold record
        log.warning("%s: not a readable fold record; the fold runs again", path)
        return None


def run_fold_file(job: FoldJob, k: int):
    """Run fold ``k`` (:func:`evaluation.run_fold`) and write its record atomically to ``fold_<k>.json``.

    Parameters
    ----------
    job : FoldJob
    k : int
        Fold index.

    Returns
    -------
    nova_infant.core.batch.SessionResult
        ``done``, or ``failed`` with a one-line reason: the fold's own failure never raises (the traceback goes to
        the log).
    """
    import time
    import traceback

    started = time.time()
    try:
        if job.threads > 0:  # a Slurm array task does not pass through the pool's initializer
            import torch

            torch.set_num_threads(job.threads)
        fold = run_fold(job.sessions, job.plan, k)
        with atomic_file(fold_path(job.folds_dir, k), ".json") as tmp:
            tmp.write_text(json.dumps(fold_record(fold, job.plan)))
    except Exception as exc:  # the other folds go on
        if not isinstance(exc, NovaInfantError):
            traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        return SessionResult(f"fold {k}", "failed", time.time() - started, f"{type(exc).__name__}: {first}"[:300])
    return SessionResult(f"fold {k}", "done", time.time() - started)


def run_folds(sessions: list[SessionData], plan: dict, folds_dir, executor: str = "local", workers: int = 1,
              resources: dict | None = None, retries: int = 1, progress: bool = False, threads: int = 1) -> list:
    """Run the folds of ``plan`` that have no matching fold file, as separate jobs, and read every fold back.

    Parameters
    ----------
    sessions : the plan's sessions
    plan : :func:`evaluation.plan_folds`; saved atomically as ``<folds_dir>/plan.json``
    folds_dir : folder of ``plan.json``, ``fold_<k>.json`` and (Slurm) ``slurm/`` logs
    executor : "local" (``concurrent.futures`` process pool of ``workers``) or "slurm" (one submitit job array;
        ``resources`` as :func:`nova_infant.core.batch.slurm_resources` of ``icep_cv``)
    retries : extra attempts of a failed fold
    threads : torch threads per fold job

    Returns
    -------
    list of FoldResult, in fold order (``fitted`` None: read from the fold files)

    Raises
    ------
    FoldsFailed
        Naming how many folds failed, the first reason and its log; re-running the same command runs only those.
    """
    from tqdm import tqdm

    folds_dir = Path(folds_dir).resolve()  # array tasks may start elsewhere
    with atomic_file(folds_dir / "plan.json", ".json") as tmp:
        tmp.write_text(json.dumps(plan, indent=1))
    n = len(plan["folds"])
    todo = [k for k in range(n) if load_fold_file(folds_dir, plan, k) is None]
    if len(todo) < n:
        log.warning("%s: %d of %d folds already done for this plan; running folds %s", folds_dir, n - len(todo), n,
                    todo)
    job = FoldJob(list(sessions), plan, str(folds_dir), threads)
    results = {}
    with tqdm(total=n, initial=n - len(todo), desc=f"ICEP-R CV folds ({executor})", unit="fold",
              disable=not progress) as bar:
        if todo and executor == "local":
            results = batch._run_local(job, todo, max(1, workers), retries, bar, task=run_fold_file)
        elif todo:
            results = batch._run_slurm(job, todo, retries, slurm_resources("icep_cv", resources), bar,
                                       task=run_fold_file, folder=folds_dir / "slurm")
    failed = [r for r in results.values() if r.status == "failed"]
    if failed:
        log.error("\n%s", format_table([results[k] for k in todo]))
        first = failed[0]
        raise FoldsFailed(f"{folds_dir}: {len(failed)} of {n} folds failed ({first.session}: {first.reason}"
                          f"{'; log ' + first.log if first.log else ''}); re-run the same command to run only those")
    out = [load_fold_file(folds_dir, plan, k) for k in range(n)]
    missing = [k for k, f in enumerate(out) if f is None]
    if missing:
        raise FoldsFailed(f"{fold_path(folds_dir, missing[0])}: fold file missing or not of this plan after the run")
    return out


def train_bundle(sessions: list[SessionData], lmap: LabelMap, config: TrainConfig, out_dir,
                 cml_dir=None, cv_folds: int = 0, val_fraction: float = 0.2, grid: list[dict] | None = None,
                 training_info: dict | None = None, inner_folds: int = 3, groups: dict | None = None,
                 min_dur_ms: float = 400.0, *, predictor_options: list[tuple[str, str, str]]
                 ) -> tuple[Path, Path, dict | None]:
    """Optionally cross-validate, choose the grid point by the same inner K-fold over all sessions, fit the final
    model with that configuration on all sessions (whole groups split off for early stopping) and save the bundle
    plus its predictor ``.trainer`` (with ``predictor_options``, see :func:`nova_infant.icep.bundle.predictor_spec`).
    The bundle's config.json and metrics.json say which configuration was chosen and how.

    Returns ``(bundle dir, .trainer path, cross-validation report or None)``.
    """
    check_consistent(sessions, lmap.target.names)
    report = None
    out_dir = Path(out_dir)
    names = [s.name for s in sessions]
    group_of = groups or {n: n for n in names}
    group_list = [group_of[n] for n in names]
    if cv_folds > 1 and len(set(group_list)) >= 2:
        cv_dir = out_dir.parent / f".{out_dir.name}.evaluation"
        report = evaluate(sessions, lmap, config, cv_dir, cv_folds, grid, val_fraction, config.seed, inner_folds,
                          group_of, min_dur_ms).report()
    chosen, table = select_config(sessions, group_list, lmap.target.names, config, grid, inner_folds, val_fraction,
                                  config.seed)
    final = config.replace(**chosen)
    rng = np.random.default_rng(config.seed)
    fit_idx, val_idx = split_validation(np.arange(len(sessions)), val_fraction, rng, group_list)
    fitted = fit([sessions[i] for i in fit_idx], [sessions[i] for i in val_idx], lmap.n_classes, final)
    how = ("the only configuration given" if not table else table[0]["note"] if "note" in table[0] else
           f"the grid point of best pooled macro-F1 in a {table[0]['inner_folds']}-fold group-wise inner CV over all "
           f"{len(sessions)} sessions, each point fitted and scored with its own configuration")
    selection = {"chosen": chosen, "selected_by": how, "grid": grid or [], "table": table}
    info = {"sessions": names, "val_sessions": [names[i] for i in val_idx], "groups": group_of,
            "masked": {s.name: s.masked for s in sessions}, "selection": selection, **(training_info or {})}
    if report is not None:
        report["bundle_model"] = {**selection, "training_config": final.to_dict(),
                                  "note": "the scores above estimate the whole procedure (selection + fit) by nested "
                                          "CV; the bundle is the model this procedure gives on all sessions",
                                  "min_dur_ms": float(min_dur_ms),
                                  "smoothing": f"the bundle's predictor applies min_dur_ms {min_dur_ms:g} ms by "
                                               f"default (model_smoothed above)"}
    bundle = save_bundle(out_dir, fitted, lmap, feature_spec(sessions[0]), report, info, min_dur_ms)
    if report is not None:
        os.replace(out_dir.parent / f".{out_dir.name}.evaluation", bundle / "evaluation")
    trainer = write_predictor_trainer(bundle, cml_dir, options=predictor_options)
    return bundle, trainer, report


# ---------------------------------------------------------------- DISCOVER sessions (file or database mode)


def feature_ids(session_io) -> list[str]:
    """Ids of the active feature inputs of a du-process request.

    Parameters
    ----------
    session_io : discover-utils session manager wrapper
        Its ``manager.data_description`` lists the request's inputs and outputs.

    Returns
    -------
    list of str
        Inputs named ``feature_<n>``, active, in the order of ``n``.
    """
    ids = [d["id"] for d in session_io.manager.data_description or []
           if d.get("type") == "input" and str(d.get("id", "")).startswith("feature_")
           and str(d.get("active", True)).lower() not in ("false", "0")]
    return sorted(ids, key=lambda i: int(i.split("_", 1)[1]) if i.split("_", 1)[1].isdigit() else 10**9)


def _header_meta(session_io, io_id: str, data) -> dict:
    """``<meta>`` attributes of a database-mode stream: discover-utils' loader keeps only the media type, so the
    header in NOVA's data folder is read when it is there (it names the PCA basis: :func:`check_feature_bases`)."""
    meta = dict(getattr(data.meta_data, "custom_meta", None) or {})
    try:
        path = session_io.path(io_id)
        if Path(path).is_file():
            meta.update(open_ssi_stream(path).meta)
    except Exception:  # no data_dir, unreadable header: the check then has only what du-process loaded
        pass
    return meta


def session_from_discover(session_io, lmap: LabelMap | None = None, label_id: str | None = None) -> SessionData:
    """:class:`SessionData` of one du-process session: file-mode streams are read lazily from their files,
    database-mode streams from what du-process loaded; labels from the discrete annotation input ``label_id``.

    Raises
    ------
    StreamError, AlignmentError, AnnotationError
        As :func:`dataset.session_from_rows`; AnnotationError if the label input is missing or empty.
    """
    ids = feature_ids(session_io)
    if not ids:
        raise StreamError(f"session {session_io.name}: the request has no input 'feature_0' (a feature stream)")
    streams = []
    for io_id in ids:
        desc = session_io.description(io_id)
        if desc.get("src", "").lower().startswith("file"):
            streams.append(FileRows(session_io.path(io_id)))
        else:
            data = session_io.manager.input_data.get(io_id)
            if data is None or data.data is None:
                raise StreamError(f"session {session_io.name}: input {io_id} ({desc.get('name')}) was not loaded")
            streams.append(ArrayRows(data.data, data.meta_data.sample_rate, f"{desc.get('role')}.{desc.get('name')}",
                                     getattr(data.meta_data, "media_type", "") or "", _header_meta(session_io, io_id, data)))
    label_source = None
    if label_id is not None:
        anno = session_io.manager.input_data.get(label_id)
        where = f"session {session_io.name}: input {label_id}"
        if session_io.has(label_id) and session_io.description(label_id).get("src", "").startswith("file"):
            where = str(session_io.path(label_id))
        if anno is None or anno.data is None:
            raise AnnotationError(f"{where}: the label annotation is missing")
        check_annotation(anno, where)  # loaded by discover-utils (file or NOVA database): the one reader's checks
        segments, names = annotation_arrays(anno, where)
        label_source = (segments, names, where)
    return session_from_rows(session_io.name, streams, label_source, lmap)
