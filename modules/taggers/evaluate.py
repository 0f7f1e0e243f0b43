"""Evaluation of the taggers against a human coder.

- Audio events: VIBA-Net's rule (Ong et al., WACV-W'25, §5): a predicted event counts if its confidence >= 0.5, and it matches
  a reference event of the same class with temporal IoU >= 0.5; each reference event matches at most one
  prediction. The matching maximises the number of IoU >= 0.5 pairs, then their total IoU (a maximum-weight
  bipartite matching, ``scipy.optimize.linear_sum_assignment``, with weight ``K + IoU`` on eligible pairs, K larger
  than any total IoU). Event-based precision, recall and F1 per class and micro-averaged; frame-level precision
  and recall per class on the session grid. (sed_eval / sed_scores_eval score onset/offset collars or PSDS, not IoU,
  so the rule is implemented here.)
- Emotion: per-class accuracy (recall) and overall accuracy, macro-F1 and Cohen's kappa over grid frames
  (scikit-learn), frames where either side has no label excluded.
"""

from __future__ import annotations

import numpy as np

from nova_infant.core.atomic import save_figure
from nova_infant.core.metrics import frame_scores


def temporal_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Temporal intersection over union of every pair of intervals.

    Parameters
    ----------
    a : ndarray, float, shape (n, 2)
        (start, end) in ms.
    b : ndarray, float, shape (m, 2)
        (start, end) in ms.

    Returns
    -------
    ndarray, float64, shape (n, m)
        0 where a pair does not overlap (or both are empty).
    """
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
    out, tot = {}, np.zeros(3, int)
    for cls in sorted(set(reference) | set(predicted)):
        ref = np.asarray(reference.get(cls, []), float).reshape(-1, 2)
        pred = np.asarray(predicted.get(cls, []), float).reshape(-1, 3)
        pred = pred[pred[:, 2] >= min_conf][:, :2]
        tp = len(match_events(pred, ref, iou))
        counts = np.array([tp, len(pred) - tp, len(ref) - tp])
        tot += counts
        out[cls] = _prf(*counts)
    out["micro"] = _prf(*tot)
    return out


def match_events(pred: np.ndarray, ref: np.ndarray, iou: float = 0.5) -> list[tuple[int, int, float]]:
    """One-to-one matching of predicted and reference intervals (ms) with IoU >= ``iou`` that has the most pairs
    and, among those, the largest total IoU.

    Parameters
    ----------
    pred, ref : float arrays of shape (n, 2) and (m, 2), (start_ms, end_ms)

    Returns
    -------
    list of (pred index, ref index, IoU), sorted by pred index

    Notes
    -----
    Maximising the IoU sum alone can trade two IoU >= 0.5 matches for one near-perfect pair plus one below 0.5.
    Weights ``K + IoU`` (K = min(n, m) + 1 > any IoU sum) on eligible pairs and 0 elsewhere make every extra
    eligible match worth more than all IoU together (``scipy.optimize.linear_sum_assignment``, maximise).
    """
    from scipy.optimize import linear_sum_assignment

    pred, ref = np.asarray(pred, float).reshape(-1, 2), np.asarray(ref, float).reshape(-1, 2)
    if not len(pred) or not len(ref):
        return []
    m = temporal_iou(pred, ref)
    eligible = m >= iou
    weight = np.where(eligible, min(len(pred), len(ref)) + 1.0 + m, 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    return [(int(r), int(c), float(m[r, c])) for r, c in zip(rows, cols) if eligible[r, c]]


def frame_scores_by_class(reference: dict, predicted: dict, grid, min_conf: float = 0.5) -> dict:
    """Frame-level precision / recall / F1 per class on a session grid (a row is on when its centre lies inside an
    interval; predictions below ``min_conf`` ignored).

    Parameters
    ----------
    reference, predicted : dict
        As for :func:`event_scores`: ``{class: [(start_ms, end_ms[, conf]), ...]}``.
    grid : FrameGrid
        The session's grid.
    min_conf : float
        Confidence a predicted interval needs, 0..1.

    Returns
    -------
    dict
        JSON-ready ``{class: {"tp", "fp", "fn", "precision", "recall", "f1"}}`` (counts in frames).
    """
    centres = grid.centres_ms()

    def on(intervals):
        mask = np.zeros(len(centres), bool)
        for s, e in intervals:
            mask |= (centres >= s) & (centres < e)
        return mask

    out = {}
    for cls in sorted(set(reference) | set(predicted)):
        ref = on(np.asarray(reference.get(cls, []), float).reshape(-1, 2))
        pred = np.asarray(predicted.get(cls, []), float).reshape(-1, 3)
        pred = on(pred[pred[:, 2] >= min_conf][:, :2])
        out[cls] = _prf(int((ref & pred).sum()), int((~ref & pred).sum()), int((ref & ~pred).sum()))
    return out


def plot_timeline(reference: dict, predicted: dict, out_png: str, scores=None, thresholds: dict | None = None,
                  title: str = "") -> str:
    """Per-class timeline a coder can read at a glance: the reference events as shaded spans, the tagger's events
    as bars, and (when ``scores`` is given) its score curve with the threshold. One row per class; time in s.

    Parameters
    ----------
    reference : {class: [(start_ms, end_ms), ...]}
    predicted : {class: [(start_ms, end_ms, conf), ...]}
    scores : optional (times_ms (n,), {class: (n,) float}) -- e.g. the tagger's ``.audio_events.stream``
    thresholds : {class: probability} drawn as dashed lines

    Returns
    -------
    str, the written PNG path (written atomically)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = sorted(set(reference) | set(predicted))
    fig, axes = plt.subplots(len(classes) or 1, 1, figsize=(12, 1.4 * max(len(classes), 1) + 0.6), sharex=True,
                             squeeze=False)
    for ax, cls in zip(axes[:, 0], classes):
        for s, e in reference.get(cls, []):
            ax.axvspan(s / 1000, e / 1000, color="tab:green", alpha=0.25, lw=0)
        for s, e, c in predicted.get(cls, []):
            ax.plot([s / 1000, e / 1000], [1.08, 1.08], color="tab:blue", lw=5, solid_capstyle="butt")
        if scores is not None and cls in scores[1]:
            ax.plot(np.asarray(scores[0]) / 1000, scores[1][cls], color="tab:blue", lw=1)
        if thresholds and cls in thresholds:
            ax.axhline(thresholds[cls], color="grey", ls="--", lw=0.8)
        ax.set_ylim(-0.05, 1.2)
        ax.set_ylabel(cls, rotation=0, ha="right", va="center")
        ax.set_yticks([0, 0.5, 1])
    axes[0, 0].set_title(title or "reference (green spans) vs tagger events (blue bars) and scores (blue line)")
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()

    return str(save_figure(fig, out_png, dpi=100))


def _prf(tp, fp, fn) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"tp": int(tp), "fp": int(fp), "fn": int(fn), "precision": p, "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0}


def segments_to_frames(segments: list[tuple[float, float, str]], classes: list[str], grid) -> np.ndarray:
    """Class id per grid row by interval lookup at the row centre (the alignment rule of docs/alignment.md).

    Parameters
    ----------
    segments : list of (start_ms, end_ms, class name)
    classes : list of str
        Class names; their position is the id.
    grid : FrameGrid

    Returns
    -------
    ndarray, int64, shape (grid.n_frames,)
        -1 where no segment of ``classes`` covers the row centre.
    """
    labels = np.full(grid.n_frames, -1, np.int64)
    centres = grid.centres_ms()
    index = {c: i for i, c in enumerate(classes)}
    for s, e, name in segments:
        if name in index:
            labels[(centres >= s) & (centres < e)] = index[name]
    return labels


def emotion_scores(reference: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict:
    """Frame scores of the emotion tagger against a coder, over frames labelled on both sides
    (:func:`nova_infant.core.metrics.frame_scores`, scikit-learn).

    Parameters
    ----------
    reference, predicted : ndarray, int64, shape (n_frames,)
        Class ids on one grid; -1 = no label (left out).
    classes : list of str
        Names of the ids.

    Returns
    -------
    dict
        JSON-ready: per-class accuracy (recall), accuracy, macro-F1, Cohen's kappa (0.0 when undefined) and the
        confusion matrix.
    """
    result = frame_scores(reference, predicted, classes)
    per = {c: (result["per_class"][c]["recall"] if result["per_class"][c]["support"] else None) for c in classes}
    return {"n_frames": result["n_frames"], "accuracy": result["accuracy"] if result["n_frames"] else 0.0,
            "per_class_accuracy": per, "macro_f1": result["f1_macro"] if result["n_frames"] else 0.0,
            "kappa": result["kappa"] or 0.0, "confusion": result["confusion_matrix"] if result["n_frames"] else []}
