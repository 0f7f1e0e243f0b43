"""Agreement scores: frame-level (ICEP-R evaluation, review report, emotion tagger) and continuous (CCC, RMSE: valence).

All numbers come from scikit-learn (``accuracy_score``, ``precision_recall_fscore_support``, ``confusion_matrix``,
``cohen_kappa_score``: Cohen 1960 κ, the field's inter-rater statistic; human ICEP-R coders reach κ≈0.73–0.82).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def frame_scores(reference: np.ndarray, hypothesis: np.ndarray, class_names: Sequence[str]) -> dict:
    """Agreement of two per-frame label vectors; frames where either side is negative (gap, garbage) are ignored.

    Parameters
    ----------
    reference, hypothesis : int arrays of shape (n_frames,)
        Class ids 0..len(class_names)-1, or < 0 for "no label".
    class_names : sequence of str

    Returns
    -------
    dict
        ``n_frames`` (scored frames), ``accuracy``, ``kappa`` (Cohen's κ; None when undefined, e.g. a single class
        on both sides or no frame), ``precision_/recall_/f1_weighted`` and ``_macro`` (averaged over the classes
        present on either side, scikit-learn's default), ``per_class`` {name: precision, recall, f1, support},
        ``confusion_matrix`` (rows = reference, columns = hypothesis, all classes), ``class_names``.
    """
    from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

    ref, hyp = np.asarray(reference).reshape(-1), np.asarray(hypothesis).reshape(-1)
    keep = (ref >= 0) & (hyp >= 0)
    ref, hyp = ref[keep], hyp[keep]
    labels = list(range(len(class_names)))
    out = {"n_frames": int(len(ref)), "accuracy": float(accuracy_score(ref, hyp)) if len(ref) else float("nan")}
    present = sorted(set(ref.tolist()) | set(hyp.tolist()))
    for avg in ("weighted", "macro"):
        p, r, f, _ = precision_recall_fscore_support(ref, hyp, labels=present or labels, average=avg, zero_division=0)
        out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = float(p), float(r), float(f)
    p, r, f, s = precision_recall_fscore_support(ref, hyp, labels=labels, average=None, zero_division=0)
    out["per_class"] = {name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                               "support": int(s[i])} for i, name in enumerate(class_names)}
    out["confusion_matrix"] = confusion_matrix(ref, hyp, labels=labels).tolist()
    kappa = float("nan")
    if len(present) > 1:
        with np.errstate(all="ignore"):
            kappa = float(cohen_kappa_score(ref, hyp, labels=labels))
    out["kappa"] = None if math.isnan(kappa) else kappa
    out["class_names"] = list(class_names)
    return out


def ccc(reference, hypothesis) -> float:
    """Concordance correlation coefficient (Lin 1989): 2 cov(x, y) / (var x + var y + (mean x - mean y)^2).

    Population (1/n) moments, as in the ABAW challenges (seed 002 §3, eq. 4) and AVEC. Pairs where either side is
    NaN are ignored.

    Parameters
    ----------
    reference, hypothesis : float arrays of shape (n,)

    Returns
    -------
    float in [-1, 1]; NaN when fewer than 2 pairs remain or both sides are constant and equal in mean (0/0).
    """
    x = np.asarray(reference, np.float64).reshape(-1)
    y = np.asarray(hypothesis, np.float64).reshape(-1)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 2:
        return float("nan")
    mx, my = x.mean(), y.mean()
    cov = ((x - mx) * (y - my)).mean()
    denom = x.var() + y.var() + (mx - my) ** 2
    return float(2 * cov / denom) if denom > 0 else float("nan")


def rmse(reference: np.ndarray, prediction: np.ndarray) -> float:
    """Root-mean-square error over the finite pairs (scikit-learn ``mean_squared_error``), NaN if none remain."""
    from sklearn.metrics import mean_squared_error

    x, y = _finite_pairs(reference, prediction)
    return float(np.sqrt(mean_squared_error(x, y))) if len(x) else float("nan")


def _finite_pairs(reference, prediction) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(reference, dtype=np.float64).reshape(-1)
    y = np.asarray(prediction, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"ccc/rmse: reference has {len(x)} values, prediction {len(y)}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]
