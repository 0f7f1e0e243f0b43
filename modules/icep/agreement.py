"""Agreement of ICEP-R predictions with the coder, with its spread: frame scores, Cohen's κ and macro-F1 from
confusion matrices, and the bootstrap (interval and paired test) over the right resampling unit.

Resampling unit (Efron & Tibshirani 1993, ch. 6; the cluster bootstrap of Field & Welsh 2007): test frames of one
session are not independent, and sessions of one dyad (repeated FFSF episodes of the same infant and caregiver)
are not either. So the bootstrap resamples **groups** (dyads/participants, the unit the CV splits kept together)
when ``groups`` are given, **sessions** otherwise; a drawn group brings all its sessions. The report names the unit.
Duplicating a session within its group then leaves the interval unchanged (κ of summed confusions is
scale-invariant), while a session bootstrap would treat the copy as new evidence and narrow the interval.

Per-session κ is undefined (``None``, excluded from the mean, counted) for a session whose gold labels hold fewer
than two classes: κ compares agreement with chance agreement, and with one coded class every prediction is at or
below chance (κ <= 0) whatever its quality.
"""

from __future__ import annotations

import numpy as np

from nova_infant.core.metrics import frame_scores

BOOTSTRAP_ROUNDS = 2000


def scores(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """Frame scores of one prediction against the coder's labels (:func:`nova_infant.core.metrics.frame_scores`,
    scikit-learn metrics).

    Parameters
    ----------
    y_true, y_pred : ndarray, int64, shape (n_frames,)
        Class ids per frame; frames with ``y_true < 0`` (masked: gap, garbage, excluded class) are ignored.
    class_names : list of str
        Names of the class ids 0..K-1.

    Returns
    -------
    dict
        Accuracy, weighted and macro precision/recall/F1, per-class scores, the confusion matrix (rows = coder) and
        Cohen's ``kappa``; an undefined κ (one class only) is reported as 0.0, chance agreement.
    """
    out = frame_scores(y_true, y_pred, class_names)
    out["kappa"] = 0.0 if out["kappa"] is None else out["kappa"]
    return out


def confusion(gold: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """Frame counts (coder x model) over frames where both sides have a class.

    Parameters
    ----------
    gold, pred : ndarray, int64, shape (n_frames,)
        Class ids 0..n-1; negative = masked.
    n : int
        Number of classes.

    Returns
    -------
    ndarray, float64, shape (n, n)
    """
    keep = (gold >= 0) & (pred >= 0)
    return np.bincount(gold[keep] * n + pred[keep], minlength=n * n).reshape(n, n).astype(np.float64)


def kappa_from_confusion(cm: np.ndarray) -> float:
    """Cohen's κ (Cohen 1960) of a confusion matrix: ``(p_o - p_e) / (1 - p_e)``.

    Parameters
    ----------
    cm : ndarray, shape (K, K)
        Frame counts, rows = coder, columns = model.

    Returns
    -------
    float
        κ in [-1, 1]; 0.0 when undefined (no frames, or chance agreement ``p_e = 1``).
    """
    total = cm.sum()
    if total <= 0:
        return 0.0
    po = np.trace(cm) / total
    pe = float((cm.sum(0) * cm.sum(1)).sum()) / total ** 2
    return 0.0 if pe >= 1 else float((po - pe) / (1 - pe))


def session_kappa(cm: np.ndarray) -> float | None:
    """Cohen's κ of one session, or None where it is undefined: the coder's labels hold fewer than two classes
    (module docstring), or no frame is scored.

    Parameters
    ----------
    cm : ndarray, shape (K, K)
        The session's frame counts (coder x model).

    Returns
    -------
    float or None
    """
    if int((cm.sum(1) > 0).sum()) < 2:
        return None
    return kappa_from_confusion(cm)


def macro_f1_from_confusion(cm: np.ndarray) -> float:
    """Macro-F1 over the classes present on either side of a confusion matrix.

    Parameters
    ----------
    cm : ndarray, shape (K, K)
        Frame counts (coder x model), as for :func:`kappa_from_confusion`.

    Returns
    -------
    float
        Unweighted mean of the per-class F1 ``2 TP / (row + column)``; 0.0 when no class is present.
    """
    tp, row, col = np.diag(cm), cm.sum(1), cm.sum(0)
    present = (row + col) > 0
    f1 = np.where(present, 2 * tp / np.maximum(row + col, 1e-12), 0.0)
    return float(f1[present].mean()) if present.any() else 0.0


# ---------------------------------------------------------------- the bootstrap and its unit


def bootstrap_units(names: list[str], groups: dict[str, str] | None = None) -> tuple[str, list[str], list[np.ndarray]]:
    """The units the bootstrap resamples: groups when ``groups`` puts two sessions in one group, else sessions.

    Parameters
    ----------
    names : list of str
        Test sessions, in the order of the confusion matrices.
    groups : dict, optional
        session -> dyad/participant (:func:`nova_infant.icep.evaluation.parse_groups`); None or one group per
        session = sessions are the unit.

    Returns
    -------
    (unit, unit_names, members) : (str, list of str, list of ndarray of int)
        ``unit`` is ``"group"`` or ``"session"``; ``members[u]`` indexes ``names`` (sessions of unit ``u``, in
        order of first appearance).
    """
    group_of = {n: (groups or {}).get(n, n) for n in names}
    unit_names = list(dict.fromkeys(group_of[n] for n in names))
    if len(unit_names) == len(names):
        return "session", list(names), [np.array([i]) for i in range(len(names))]
    members = [np.array([i for i, n in enumerate(names) if group_of[n] == u]) for u in unit_names]
    return "group", unit_names, members


def bootstrap_draws(n_units: int, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> np.ndarray:
    """Bootstrap draws (Efron & Tibshirani 1993): ``n_units`` units resampled with replacement, ``rounds`` times.

    Parameters
    ----------
    n_units : int
        Number of groups (or sessions) from :func:`bootstrap_units`.
    rounds : int
        Number of bootstrap rounds.
    seed : int
        Seed of the draws (same seed and ``n_units`` -> same draws).

    Returns
    -------
    ndarray, int64, shape (rounds, n_units)
        Unit indices.
    """
    return np.random.default_rng(seed).integers(0, n_units, size=(rounds, n_units))


def agreement(confusions: dict[str, np.ndarray], draws: np.ndarray, members: list[np.ndarray] | None = None) -> dict:
    """Pooled κ and macro-F1 with 95 % percentile intervals over the bootstrap ``draws`` of units, and the spread of
    the per-session values.

    Parameters
    ----------
    confusions : dict
        session -> confusion matrix (K, K) of that session's test frames.
    draws : ndarray, int, shape (rounds, n_units)
        From :func:`bootstrap_draws`.
    members : list of ndarray, optional
        Sessions (indices into ``confusions``) of each unit (:func:`bootstrap_units`); None = one unit per session.

    Returns
    -------
    dict
        ``kappa``, ``kappa_ci95``, ``f1_macro``, ``f1_macro_ci95`` (pooled over sessions); ``kappa_per_session``:
        mean, SD, min, max over the sessions with a defined κ, ``n_sessions`` and ``n_undefined`` (gold with one
        class: :func:`session_kappa`); ``_boot_kappas`` (for paired tests; dropped from reports).
    """
    stack = np.stack(list(confusions.values()))
    if members is None:
        members = [np.array([i]) for i in range(len(stack))]
    units = np.stack([stack[m].sum(0) for m in members])
    boot = units[draws].sum(1)
    kappas = np.array([kappa_from_confusion(c) for c in boot])
    f1s = np.array([macro_f1_from_confusion(c) for c in boot])
    per_k = [session_kappa(c) for c in stack]
    defined = np.array([k for k in per_k if k is not None], np.float64)
    spread = {"mean": None, "sd": None, "min": None, "max": None}
    if len(defined):
        spread = {"mean": float(defined.mean()), "sd": float(defined.std(ddof=1)) if len(defined) > 1 else 0.0,
                  "min": float(defined.min()), "max": float(defined.max())}
    return {"kappa": kappa_from_confusion(stack.sum(0)), "kappa_ci95": np.percentile(kappas, [2.5, 97.5]).tolist(),
            "f1_macro": macro_f1_from_confusion(stack.sum(0)), "f1_macro_ci95": np.percentile(f1s, [2.5, 97.5]).tolist(),
            "kappa_per_session": {**spread, "n_sessions": len(per_k), "n_undefined": len(per_k) - len(defined)},
            "_boot_kappas": kappas}


def paired_difference(model: dict, baseline: dict) -> dict:
    """Paired bootstrap test of the pooled κ difference model - baseline (the same draws for both).

    Parameters
    ----------
    model, baseline : dict
        :func:`agreement` results computed with the same ``draws``.

    Returns
    -------
    dict
        ``kappa_difference`` (pooled), ``ci95`` (percentile interval of the difference over the draws) and
        ``beats`` (True when the interval lies above 0).
    """
    diff = model["_boot_kappas"] - baseline["_boot_kappas"]
    lo, hi = np.percentile(diff, [2.5, 97.5]).tolist()
    return {"kappa_difference": model["kappa"] - baseline["kappa"], "ci95": [lo, hi], "beats": bool(lo > 0)}
