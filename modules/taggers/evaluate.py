"""Evaluation of the taggers against a human coder.

- Audio events: VIBA-Net's rule (seed 000, §5): a predicted event counts if its confidence >= 0.5, and it matches
  a reference event of the same class with temporal IoU >= 0.5; each reference event matches at most one
  prediction (maximum bipartite matching, ``scipy.optimize.linear_sum_assignment``). Event-based precision, recall
  and F1 per class and micro-averaged. (sed_eval / sed_scores_eval score onset/offset collars or PSDS, not IoU,
  so the rule is implemented here.)
- Emotion: per-class accuracy (recall) and overall accuracy, macro-F1 and Cohen's kappa over grid frames
  (scikit-learn), frames where either side has no label excluded.
"""

from __future__ import annotations

import numpy as np


def temporal_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of intervals a (n, 2) and b (m, 2) in ms -> (n, m) float64."""
    a, b = np.asarray(a, float).reshape(-1, 2), np.asarray(b, float).reshape(-1, 2)
    inter = np.clip(np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    union = (a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def event_scores(reference: dict, predicted: dict, iou: float = 0.5, min_conf: float = 0.5) -> dict:
    """Event-based precision/recall/F1.

    Parameters
    ----------
    reference : {class: array of (start_ms, end_ms)}
    predicted : {class: array of (start_ms, end_ms, conf)}

    Returns
    -------
    dict {class: {"tp", "fp", "fn", "precision", "recall", "f1"}, "micro": {...}}
    """
    from scipy.optimize import linear_sum_assignment

    out, tot = {}, np.zeros(3, int)
    for cls in sorted(set(reference) | set(predicted)):
        ref = np.asarray(reference.get(cls, []), float).reshape(-1, 2)
        pred = np.asarray(predicted.get(cls, []), float).reshape(-1, 3)
        pred = pred[pred[:, 2] >= min_conf][:, :2]
        tp = 0
        if len(ref) and len(pred):
            m = temporal_iou(pred, ref)
            rows, cols = linear_sum_assignment(-m)
            tp = int((m[rows, cols] >= iou).sum())
        counts = np.array([tp, len(pred) - tp, len(ref) - tp])
        tot += counts
        out[cls] = _prf(*counts)
    out["micro"] = _prf(*tot)
    return out


def _prf(tp, fp, fn) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"tp": int(tp), "fp": int(fp), "fn": int(fn), "precision": p, "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0}


def segments_to_frames(segments: list[tuple[float, float, str]], classes: list[str], grid) -> np.ndarray:
    """Class id per grid row by interval lookup at the row centre; -1 where no segment of ``classes`` covers it."""
    labels = np.full(grid.n_frames, -1, np.int64)
    centres = grid.centres_ms()
    index = {c: i for i, c in enumerate(classes)}
    for s, e, name in segments:
        if name in index:
            labels[(centres >= s) & (centres < e)] = index[name]
    return labels


def emotion_scores(reference: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict:
    """Per-class accuracy (recall), accuracy, macro-F1, Cohen's kappa (0.0 when undefined), confusion matrix over
    frames with labels on both sides (-1 = none), via :func:`nova_infant.metrics.frame_scores`. JSON-ready dict."""
    from ..metrics import frame_scores

    result = frame_scores(reference, predicted, classes)
    per = {c: (result["per_class"][c]["recall"] if result["per_class"][c]["support"] else None) for c in classes}
    return {"n_frames": result["n_frames"], "accuracy": result["accuracy"] if result["n_frames"] else 0.0,
            "per_class_accuracy": per, "macro_f1": result["f1_macro"] if result["n_frames"] else 0.0,
            "kappa": result["kappa"] or 0.0, "confusion": result["confusion_matrix"] if result["n_frames"] else []}
