"""Confidence NOVA can act on: temperature scaling of ICEP-R class probabilities, expected calibration error,
reliability diagrams, segments split where confidence crosses NOVA's review threshold, and review efficiency.

Method
------
- **Temperature scaling** (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017): one scalar ``T`` that
  minimises the negative log-likelihood of held-out frames. Our predictors average softmax outputs over overlapping
  windows, so the scaling is applied to the log of the averaged probabilities: ``p_cal = softmax(log(p) / T)``
  (for a single window this is exactly Guo et al.'s logit scaling, as ``log softmax(z) = z - const``). ``T`` is
  fitted inside training on frames the weights were not fitted on (the validation sessions split off as whole groups
  for early stopping; :func:`nova_infant.icep.training.fit`), never on a session being predicted.
- **Expected calibration error** (Naeini et al., AAAI 2015; Guo et al. 2017): top-label confidence in 15 equal-width
  bins, ``ECE = sum_b n_b / n * |acc_b - conf_b|``.
- **Review efficiency**: NOVA draws a discrete segment cross-hatched when its ``conf`` is below the coder's
  "correction certainty level" (default 0.7). Efficiency = (share of wrongly predicted frames inside segments below
  the threshold) / (share of frames inside them); reviewing at random scores 1.

Everything here is NumPy/SciPy on arrays; plots use matplotlib (Agg).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nova_infant.core.annotations import frames_to_segments
from nova_infant.core.atomic import save_figure

#: NOVA's default "correction certainty level" (Settings.UncertaintyLevel): segments below it are hatched.
REVIEW_THRESHOLD = 0.7
#: Equal-width confidence bins of the ECE and the reliability diagram.
N_BINS = 15
_EPS = 1e-7


def scale_probs(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature-scaled probabilities ``softmax(log(p) / T)``.

    Parameters
    ----------
    probs : ndarray, float, shape (n_frames, n_classes)
        Class probabilities per frame (rows sum to 1).
    temperature : float
        ``T > 0``; 1 leaves ``probs`` unchanged, ``T > 1`` softens, ``T < 1`` sharpens.

    Returns
    -------
    ndarray, float32, shape (n_frames, n_classes)

    Raises
    ------
    ValueError
        If ``temperature`` is not a finite positive number.
    """
    t = float(temperature)
    if not np.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    probs = np.asarray(probs, np.float64)
    if t == 1.0:
        return probs.astype(np.float32)
    logit = np.log(np.clip(probs, _EPS, 1.0)) / t
    logit -= logit.max(axis=1, keepdims=True)
    out = np.exp(logit)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def _nll(probs: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    p = scale_probs(probs, temperature).astype(np.float64)
    return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, 1.0)).mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature of lowest negative log-likelihood on held-out frames (bounded scalar search over ``log T``).

    Parameters
    ----------
    probs : ndarray, float, shape (n_frames, n_classes)
        Held-out class probabilities.
    labels : ndarray, int, shape (n_frames,)
        Gold class per frame; frames < 0 (masked) are left out.
    bounds : (float, float)
        Search range of ``T``.

    Returns
    -------
    float
        ``T``; 1.0 when no frame is labelled.
    """
    labels = np.asarray(labels, np.int64)
    keep = labels >= 0
    if not keep.any():
        return 1.0
    from scipy.optimize import minimize_scalar

    p, y = np.asarray(probs)[keep], labels[keep]
    if len(y) > 200000:  # a fixed subsample: the optimum of one scalar needs no more
        idx = np.random.default_rng(0).choice(len(y), 200000, replace=False)
        p, y = p[idx], y[idx]
    res = minimize_scalar(lambda lt: _nll(p, y, float(np.exp(lt))), bounds=np.log(bounds), method="bounded",
                          options={"xatol": 1e-3})
    return float(np.exp(res.x))


@dataclass
class BinCounts:
    """Additive reliability statistics (per confidence bin), so folds pool by summing.

    Attributes
    ----------
    count : ndarray, float64, shape (n_bins,)
        Frames whose top-label confidence falls in the bin.
    conf_sum, correct_sum : ndarray, float64, shape (n_bins,)
        Sum of their confidences and number of them predicted correctly.
    """

    count: np.ndarray
    conf_sum: np.ndarray
    correct_sum: np.ndarray

    @classmethod
    def of(cls, conf: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> "BinCounts":
        """Bin the frames' top-label confidence ``conf`` (float, (n,)) and correctness ``correct`` (bool, (n,))."""
        conf = np.asarray(conf, np.float64)
        idx = np.clip((conf * n_bins).astype(np.int64), 0, n_bins - 1)
        return cls(np.bincount(idx, minlength=n_bins).astype(np.float64),
                   np.bincount(idx, conf, minlength=n_bins), np.bincount(idx, np.asarray(correct, np.float64),
                                                                         minlength=n_bins))

    def __add__(self, other: "BinCounts") -> "BinCounts":
        return BinCounts(self.count + other.count, self.conf_sum + other.conf_sum, self.correct_sum + other.correct_sum)

    @property
    def ece(self) -> float:
        """Expected calibration error over the bins (0 = calibrated; NaN without frames)."""
        n = self.count.sum()
        if n == 0:
            return float("nan")
        gap = np.abs(self.correct_sum - self.conf_sum)  # n_b * |acc_b - conf_b|
        return float(gap.sum() / n)

    def to_json(self) -> dict:
        """``{"count", "conf_sum", "correct_sum"}`` as lists."""
        return {"count": self.count.tolist(), "conf_sum": self.conf_sum.tolist(),
                "correct_sum": self.correct_sum.tolist()}

    @classmethod
    def from_json(cls, doc: dict) -> "BinCounts":
        """Inverse of :meth:`to_json`."""
        return cls(*(np.asarray(doc[k], np.float64) for k in ("count", "conf_sum", "correct_sum")))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> float:
    """Top-label ECE of ``probs`` (float (n, C)) against ``labels`` (int (n,), < 0 masked) in ``n_bins`` bins."""
    labels = np.asarray(labels)
    keep = labels >= 0
    probs = np.asarray(probs)[keep]
    return BinCounts.of(probs.max(1), probs.argmax(1) == labels[keep], n_bins).ece


def review_flags(labels: np.ndarray, conf: np.ndarray, threshold: float = REVIEW_THRESHOLD,
                 min_frames: int = 0) -> np.ndarray:
    """Which frames sit in a stretch to review: ``conf < threshold``, with stretches (below or above) shorter than
    ``min_frames`` inside a run of one predicted class joined to their neighbours, so a split never makes a segment
    shorter than the smoothing's shortest one.

    Parameters
    ----------
    labels : ndarray, int, shape (n_frames,)
    conf : ndarray, float, shape (n_frames,)
    threshold : float
        0 flags nothing.
    min_frames : int
        Shortest stretch kept (0 or 1: none joined).

    Returns
    -------
    ndarray, bool, shape (n_frames,)
    """
    labels, conf = np.asarray(labels, np.int64), np.asarray(conf, np.float64)
    below = conf < threshold if threshold > 0 else np.zeros(len(labels), bool)
    if min_frames <= 1 or not below.any():
        return below
    below = below.copy()
    change = np.flatnonzero(np.diff(labels)) + 1
    for s, e in zip(np.concatenate([[0], change]), np.concatenate([change, [len(labels)]])):
        if below[s:e].min() != below[s:e].max():
            below[s:e] = _join_short_runs(below[s:e], min_frames)
    return below


def _join_short_runs(flags: np.ndarray, min_frames: int) -> np.ndarray:
    """Flip the shortest run of a boolean sequence shorter than ``min_frames`` (joining it to its neighbours) until
    none is left or one run remains."""
    flags = flags.copy()
    while True:
        change = np.flatnonzero(np.diff(flags.astype(np.int8))) + 1
        if len(change) == 0:
            return flags
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(flags)]])
        i = int(np.argmin(ends - starts))
        if ends[i] - starts[i] >= min_frames:
            return flags
        flags[starts[i]:ends[i]] = ~flags[starts[i]]


def confidence_segments(labels: np.ndarray, conf: np.ndarray, step_ms: float, threshold: float = REVIEW_THRESHOLD,
                        offset_ms: float = 0.0, min_frames: int = 0) -> np.ndarray:
    """Segments of equal predicted class, split where the per-frame confidence crosses ``threshold``
    (:func:`review_flags`), each with the mean confidence of its frames: NOVA then hatches the uncertain stretch, not
    a whole averaged segment.

    Parameters
    ----------
    labels : ndarray, int, shape (n_frames,)
        Predicted class per frame (frame k covers ``[offset + k*step, offset + (k+1)*step)`` ms).
    conf : ndarray, float, shape (n_frames,)
        Calibrated probability of the predicted class.
    step_ms : float
    threshold : float
        Review threshold in 0..1; 0 splits nothing (plain runs of equal labels).
    offset_ms : float
    min_frames : int
        Shortest stretch a split may make (:func:`review_flags`).

    Returns
    -------
    ndarray
        discover-utils ``LabelDType.DISCRETE`` (``from``, ``to`` ms, ``id``, ``conf``).
    """
    labels = np.asarray(labels, np.int64)
    below = review_flags(labels, conf, threshold, min_frames).astype(np.int64)
    segs = frames_to_segments(labels * 2 + below, step_ms, conf, offset_ms=offset_ms)
    segs["id"] = segs["id"] // 2
    if threshold <= 0 or len(segs) < 2:
        return segs
    # a joined stretch can leave two neighbours of one class on the same side of the threshold: merge them
    # (frame-weighted mean), so a class is split only where NOVA's hatching changes
    hatched = segs["conf"] < threshold
    start = np.concatenate([[True], (segs["id"][1:] != segs["id"][:-1]) | (hatched[1:] != hatched[:-1])])
    if start.all():
        return segs
    group = np.cumsum(start) - 1
    length = (segs["to"] - segs["from"]).astype(np.float64)
    out = segs[start].copy()
    out["to"] = segs["to"][np.r_[np.flatnonzero(start)[1:] - 1, len(segs) - 1]]
    weight = np.bincount(group, length)
    out["conf"] = (np.bincount(group, length * segs["conf"]) / np.maximum(weight, 1e-9)).astype(np.float32)
    return out


def segment_confidence_per_frame(labels: np.ndarray, conf: np.ndarray, threshold: float = REVIEW_THRESHOLD) -> np.ndarray:
    """The confidence NOVA shows for each frame: the mean of its :func:`confidence_segments` segment.

    Returns
    -------
    ndarray, float32, shape (n_frames,)
    """
    labels, conf = np.asarray(labels, np.int64), np.asarray(conf, np.float64)
    if len(labels) == 0:
        return np.zeros(0, np.float32)
    key = labels * 2 + (conf < threshold)
    change = np.flatnonzero(np.diff(key)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(key)]])
    csum = np.concatenate([[0.0], np.cumsum(conf)])
    means = (csum[ends] - csum[starts]) / (ends - starts)
    return np.repeat(means, ends - starts).astype(np.float32)


@dataclass
class ReviewCounts:
    """Additive review statistics at one threshold: frames and errors in total and inside segments below it."""

    threshold: float = REVIEW_THRESHOLD
    frames: float = 0.0
    errors: float = 0.0
    frames_below: float = 0.0
    errors_below: float = 0.0

    @classmethod
    def of(cls, pred: np.ndarray, gold: np.ndarray, conf: np.ndarray, threshold: float = REVIEW_THRESHOLD) -> "ReviewCounts":
        """Counts of one session: ``pred``/``gold`` int (n,) (gold < 0 masked, left out after segmenting),
        ``conf`` the calibrated per-frame confidence of ``pred``."""
        seg_conf = segment_confidence_per_frame(pred, conf, threshold)
        keep = np.asarray(gold) >= 0
        wrong = (np.asarray(pred) != np.asarray(gold)) & keep
        below = (seg_conf < threshold) & keep
        return cls(threshold, float(keep.sum()), float(wrong.sum()), float(below.sum()), float((wrong & below).sum()))

    def __add__(self, other: "ReviewCounts") -> "ReviewCounts":
        return ReviewCounts(self.threshold, self.frames + other.frames, self.errors + other.errors,
                            self.frames_below + other.frames_below, self.errors_below + other.errors_below)

    @property
    def share_time_below(self) -> float:
        """Share of scored frames inside segments below the threshold."""
        return self.frames_below / self.frames if self.frames else float("nan")

    @property
    def share_errors_below(self) -> float:
        """Share of the wrongly predicted frames that lie inside segments below the threshold."""
        return self.errors_below / self.errors if self.errors else float("nan")

    @property
    def efficiency(self) -> float:
        """Errors caught per reviewed minute against reviewing at random (1 = no better than random)."""
        t = self.share_time_below
        return self.share_errors_below / t if t and np.isfinite(t) and self.errors else float("nan")

    def to_json(self) -> dict:
        """JSON-ready counts and the derived shares."""
        return {"threshold": self.threshold, "frames": self.frames, "errors": self.errors,
                "frames_below": self.frames_below, "errors_below": self.errors_below,
                "share_time_below": self.share_time_below, "share_errors_below": self.share_errors_below,
                "efficiency": self.efficiency}

    @classmethod
    def from_json(cls, doc: dict) -> "ReviewCounts":
        """Inverse of :meth:`to_json` (the derived shares are recomputed)."""
        return cls(float(doc["threshold"]), float(doc["frames"]), float(doc["errors"]), float(doc["frames_below"]),
                   float(doc["errors_below"]))


@dataclass
class CalibrationCounts:
    """Reliability bins before and after temperature scaling plus review counts; one per fold, added over folds."""

    before: BinCounts
    after: BinCounts
    review: ReviewCounts
    temperatures: list = field(default_factory=list)

    @classmethod
    def of(cls, probs: np.ndarray, gold: np.ndarray, temperature: float,
           threshold: float = REVIEW_THRESHOLD) -> "CalibrationCounts":
        """Counts of one test session: raw ``probs`` float (n, C), ``gold`` int (n,) (< 0 masked)."""
        gold = np.asarray(gold)
        keep = gold >= 0
        cal = scale_probs(probs, temperature)
        raw = np.asarray(probs)
        pred = cal.argmax(1)
        conf = cal[np.arange(len(pred)), pred]
        return cls(BinCounts.of(raw.max(1)[keep], raw.argmax(1)[keep] == gold[keep]),
                   BinCounts.of(conf[keep], pred[keep] == gold[keep]),
                   ReviewCounts.of(pred, gold, conf, threshold), [float(temperature)])

    def __add__(self, other: "CalibrationCounts") -> "CalibrationCounts":
        return CalibrationCounts(self.before + other.before, self.after + other.after, self.review + other.review,
                                 self.temperatures + other.temperatures)

    def to_json(self) -> dict:
        """JSON-ready record: ``ece_before``, ``ece_after``, ``review`` (with its efficiency), the bins."""
        return {"ece_before": self.before.ece, "ece_after": self.after.ece, "temperatures": self.temperatures,
                "review": self.review.to_json(), "bins_before": self.before.to_json(),
                "bins_after": self.after.to_json(), "n_bins": int(len(self.before.count)),
                "method": "temperature scaling of log-probabilities fitted on the held-out validation groups of each "
                          "fit (Guo et al. 2017); top-label ECE in equal-width bins"}

    @classmethod
    def from_json(cls, doc: dict) -> "CalibrationCounts":
        """Inverse of :meth:`to_json`."""
        return cls(BinCounts.from_json(doc["bins_before"]), BinCounts.from_json(doc["bins_after"]),
                   ReviewCounts.from_json(doc["review"]), list(doc.get("temperatures", [])))


def pool(records: list) -> CalibrationCounts | None:
    """Sum :class:`CalibrationCounts` (or their JSON) over folds; None when there is none."""
    items = [r if isinstance(r, CalibrationCounts) else CalibrationCounts.from_json(r) for r in records if r]
    if not items:
        return None
    total = items[0]
    for item in items[1:]:
        total = total + item
    return total


def plot_reliability(counts: CalibrationCounts, path: str | os.PathLike, title: str = "") -> Path:
    """Reliability diagram (accuracy against confidence per bin, before and after scaling, with the frame share per
    bin below) written atomically as a PNG.

    Parameters
    ----------
    counts : CalibrationCounts
    path : path
    title : str

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OutputError
        If the file cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_bins = len(counts.before.count)
    centres = (np.arange(n_bins) + 0.5) / n_bins
    fig, (ax, axh) = plt.subplots(2, 1, figsize=(5, 6), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
    for bins, name, colour in ((counts.before, "before", "#d62728"), (counts.after, "after", "#1f77b4")):
        ok = bins.count > 0
        acc = np.divide(bins.correct_sum, bins.count, out=np.zeros(n_bins), where=ok)
        conf = np.divide(bins.conf_sum, bins.count, out=np.zeros(n_bins), where=ok)
        ax.plot(conf[ok], acc[ok], marker="o", color=colour, label=f"{name} (ECE {bins.ece:.3f})")
        axh.bar(centres + (-0.25 if name == "before" else 0.25) / n_bins, bins.count / max(bins.count.sum(), 1),
                width=0.5 / n_bins, color=colour, alpha=0.7)
    ax.axvline(counts.review.threshold, color="k", lw=0.8, ls=":")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or "Reliability of the top-label confidence")
    axh.set_xlabel(f"confidence (dotted: review threshold {counts.review.threshold:g})")
    axh.set_ylabel("share")
    fig.tight_layout()
    out = save_figure(fig, path)
    plt.close(fig)
    return out
