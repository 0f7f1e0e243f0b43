"""The ICEP-R cross-validation report: folds (:class:`FoldResult`), their pooled summary (:class:`CVResult`: per
session κ and macro-F1, bootstrap intervals over the resampling unit, paired tests against the baselines, the
smoothing the predictor applies, the PCA basis's fit sessions) and the one line people read (:func:`summary_line`).

Statistics: :mod:`nova_infant.icep.agreement`; the CV protocol that fills these: :mod:`nova_infant.icep.evaluation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nova_infant.icep.calibration import pool
from nova_infant.icep.agreement import (BOOTSTRAP_ROUNDS, agreement, bootstrap_draws, bootstrap_units, confusion,
                                        macro_f1_from_confusion, paired_difference, session_kappa)

# ICMI'24 ICEP-R paper, section 3: two certified coders, Noldus Observer, Cohen's κ on the full (unmerged) ICEP-R
# engagement-phase codes of each role.
HUMAN_REFERENCE = {
    "infant": {"kappa_range": [0.73, 0.82], "codes": "full ICEP-R infant engagement codes",
               "source": "ICMI'24 ICEP-R paper, section 3 (two certified coders)"},
    "caregiver": {"kappa_range": [0.72, 0.73], "codes": "full ICEP-R caregiver (maternal) engagement codes",
                  "source": "ICMI'24 ICEP-R paper, section 3 (two certified coders)"},
}
VARIANTS = ("model", "model_smoothed", "majority", "logreg")


@dataclass
class FoldResult:
    """One outer fold of a nested cross-validation.

    Attributes
    ----------
    index : int
    train, val, test : list of str
        Sessions the model was fitted on, early-stopped on and tested on (whole groups each).
    chosen : dict
        The grid point chosen on the inner folds.
    fitted : FitResult or None
        None for a fold read back from its fold file (:func:`nova_infant.icep.evaluation.fold_from_record`).
    scores : dict
        Test scores of the model and the baselines.
    predictions : dict
        session -> (gold, model), int64 (n_frames,) each.
    selection : list of dict
        Inner-fold score of every grid point.
    variants : dict
        session -> {"model_smoothed", "majority", "logreg"}, int64 (n_frames,) each.
    trained_config : dict
        The configuration trained (kept when ``fitted`` is None).
    best_epoch : int
    calibration : dict
        Reliability bins before/after temperature scaling and review counts over the fold's test sessions
        (:class:`nova_infant.icep.calibration.CalibrationCounts` as JSON; additive over folds).
    """

    index: int
    train: list[str]
    val: list[str]
    test: list[str]
    chosen: dict
    fitted: object | None
    scores: dict
    predictions: dict = field(default_factory=dict)  # session -> (gold int64 (n,), pred int64 (n,))
    selection: list = field(default_factory=list)
    variants: dict = field(default_factory=dict)
    trained_config: dict = field(default_factory=dict)
    best_epoch: int = 0
    calibration: dict = field(default_factory=dict)


@dataclass
class CVResult:
    """Result of a nested cross-validation (:func:`nova_infant.icep.evaluation.cross_validate`): every outer fold and
    the pooled scores.

    Attributes
    ----------
    folds : list of FoldResult
        The outer folds in order.
    pooled : dict
        Scores over every test frame of every fold (:func:`nova_infant.icep.agreement.scores`).
    class_names : list of str
        Target classes by id.
    groups : dict
        session -> group (dyad/subject) the splits kept together; also the bootstrap's resampling unit when a
        group holds two sessions or more (:func:`nova_infant.icep.agreement.bootstrap_units`).
    masked : dict
        session -> share of frames masked (gap, garbage, excluded class).
    min_dur_ms : float
        Minimum segment length (ms) of the smoothed variant; the bundle records it and its predictor applies it by
        default.
    role, note : str
        ICEP-R role and the label-set decision a reader must know (:attr:`LabelMap.note`).
    inner_folds, seed : int
        Inner folds of the grid search and the random seed (also of the bootstrap draws).
    summary : dict
        Filled from the folds: ``per_session`` scores (κ None where undefined), ``agreement`` (with the
        ``bootstrap`` unit) and ``versus_baselines`` (paired bootstrap against the majority and
        logistic-regression baselines on the same folds).
    pca_basis : list of dict
        Per PCA feature stream: the basis hash, its folder and the sessions it was fitted on, and which CV test
        sessions were among them (filled by :func:`nova_infant.icep.pipeline.evaluate`).
    """

    folds: list[FoldResult]
    pooled: dict
    class_names: list = field(default_factory=list)
    groups: dict = field(default_factory=dict)
    masked: dict = field(default_factory=dict)
    min_dur_ms: float = 0.0
    role: str = ""
    note: str = ""
    inner_folds: int = 0
    seed: int = 0
    summary: dict = field(default_factory=dict)
    pca_basis: list = field(default_factory=list)

    def __post_init__(self):
        if self.folds and self.class_names:
            self.summary = self._summarise()

    def _summarise(self) -> dict:
        n = len(self.class_names)
        conf = {v: {} for v in VARIANTS}
        per_session = {}
        for fold in self.folds:
            for name, (gold, pred) in fold.predictions.items():
                preds = {"model": pred, **fold.variants.get(name, {})}
                row = {"fold": fold.index, "group": self.groups.get(name, name), "frames_scored": int((gold >= 0).sum()),
                       "masked": self.masked.get(name, {})}
                for v in VARIANTS:
                    if v in preds:
                        conf[v][name] = confusion(gold, preds[v], n)
                        row[v] = {"kappa": session_kappa(conf[v][name]),
                                  "f1_macro": macro_f1_from_confusion(conf[v][name])}
                per_session[name] = row
        names = list(conf["model"])
        unit, unit_names, members = bootstrap_units(names, self.groups)
        draws = bootstrap_draws(len(unit_names), BOOTSTRAP_ROUNDS, self.seed)
        agree = {v: agreement({k: conf[v][k] for k in names}, draws, members) for v in VARIANTS
                 if len(conf[v]) == len(names)}
        beats = {b: paired_difference(agree["model"], agree[b]) for b in ("majority", "logreg") if b in agree}
        for a in agree.values():
            a.pop("_boot_kappas")
        human = HUMAN_REFERENCE.get(self.role)
        bootstrap = {"unit": unit, "n_units": len(unit_names), "rounds": BOOTSTRAP_ROUNDS, "seed": self.seed,
                     "how": (f"percentile intervals; {len(unit_names)} {unit}s resampled with replacement"
                             + (" (each drawn group brings all its sessions)" if unit == "group" else "")
                             + "; the paired test uses the same draws for model and baseline")}
        smoothing = {"min_dur_ms": self.min_dur_ms,
                     "predictor_default": ("the bundle records this min_dur_ms and its predictor applies it by "
                                           "default (model_smoothed above); option min_dur_ms overrides it")}
        undefined = agree["model"]["kappa_per_session"]["n_undefined"] if "model" in agree else 0
        return {"per_session": per_session, "agreement": agree, "versus_baselines": beats,
                "human_reference": human, "min_dur_ms": self.min_dur_ms, "smoothing": smoothing,
                "bootstrap_rounds": BOOTSTRAP_ROUNDS, "bootstrap": bootstrap,
                "line": summary_line(agree, beats, human, self.min_dur_ms, self.note, unit, len(unit_names),
                                     undefined)}

    def report(self) -> dict:
        """JSON-ready report: per fold (sessions, grid selection, chosen point, best epoch, scores), pooled scores,
        per-session scores, agreement with bootstrap intervals (and their unit), baselines, the smoothing the
        predictor applies, the PCA basis's fit sessions, the human reference and the summary line."""
        pooled_calibration = pool([f.calibration for f in self.folds])
        return {**({"calibration": pooled_calibration.to_json()} if pooled_calibration else {}),
                "folds": [{"fold": f.index, "train_sessions": f.train, "val_sessions": f.val,
                           "test_sessions": f.test, "chosen": f.chosen, "selection": f.selection,
                           "trained_config": f.trained_config, "best_epoch": f.best_epoch,
                           "scores": f.scores, **({"calibration": {k: f.calibration[k] for k in
                                                   ("ece_before", "ece_after", "temperatures", "review")}}
                                                 if f.calibration else {})} for f in self.folds],
                "groups": self.groups, "inner_folds": self.inner_folds,
                "pooled": self.pooled, **{k: v for k, v in self.summary.items() if k != "line"},
                "pca_basis": self.pca_basis,
                "summary": self.summary.get("line", ""), **({"label_set_note": self.note} if self.note else {})}


def summary_line(agree: dict, beats: dict, human: dict | None, min_dur_ms: float, note: str = "",
                 unit: str = "session", n_units: int = 0, undefined: int = 0) -> str:
    """One line for people: pooled κ [95 % CI] of the model (and smoothed, the predictor's default), of both
    baselines, whether the model beats them (bootstrap interval of the κ difference above 0), the resampling unit,
    sessions with undefined κ, the human reference and the label-set note.

    Parameters
    ----------
    agree : dict
        variant -> :func:`nova_infant.icep.agreement.agreement` result (``model``, ``model_smoothed``, ``logreg``,
        ``majority``).
    beats : dict
        baseline -> ``{"beats": bool, ...}``.
    human : dict or None
        Inter-coder agreement, when known.
    min_dur_ms : float
        Minimum segment length (ms) of the smoothed variant (0: no smoothed variant shown).
    note : str
        Label-set decision to state (:attr:`nova_infant.icep.schemes.LabelMap.note`).
    unit : str
        ``"group"`` or ``"session"``: what the bootstrap resampled.
    n_units : int
        How many of them.
    undefined : int
        Test sessions whose gold holds one class (κ undefined, left out of the per-session mean).

    Returns
    -------
    str
    """
    def k(v):
        a = agree[v]
        return f"{a['kappa']:.3f} [{a['kappa_ci95'][0]:.3f}, {a['kappa_ci95'][1]:.3f}]"

    parts = [f"model kappa {k('model')}"]
    if "model_smoothed" in agree and min_dur_ms > 0:
        parts[0] += f" (smoothed {min_dur_ms:g} ms, the predictor's default: {k('model_smoothed')})"
    names = {"logreg": "per-frame logistic regression", "majority": "majority class"}
    parts += [f"{names[b]} {k(b)}" for b in ("logreg", "majority") if b in agree]
    verdict = [f"{'beats' if beats[b]['beats'] else 'does NOT clearly beat'} {names[b]}" for b in ("logreg", "majority")
               if b in beats]
    line = "; ".join(parts) + (" -> " + ", ".join(verdict) if verdict else "")
    if n_units:
        line += f"; 95 % intervals from a bootstrap over {n_units} {unit}s"
    if undefined:
        line += f"; {undefined} test session{'s' if undefined > 1 else ''} with one coded class (kappa undefined, " \
                f"left out of the per-session mean)"
    if human:
        lo, hi = human["kappa_range"]
        line += f"; human coders kappa {lo:.2f}-{hi:.2f} ({human['codes']})"
    return line + (f"; {note}" if note else "")

