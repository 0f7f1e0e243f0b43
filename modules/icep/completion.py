"""Complete a partly coded session (NOVA's cooperative loop, docs/nova-guide.md "Complete this session"): train on
the part a coder has coded, predict the rest, carry the coded rows over unchanged.

Procedure
---------
1. Split point: ``auto`` = the end of the last coded segment (garbage included), or a time the coder typed.
2. Labels: the coder's own scheme ids sampled at frame centres (gaps and garbage masked as in ICEP-R training);
   frames after the split are never used.
3. Training: the coded frames before the split, over the classes the coder used there and, with a base bundle,
   the coder's classes the base knows (a class nobody has shown the model is never predicted), the last ``val_fraction`` of them held out as one contiguous block
   (a group in time) for early stopping and temperature scaling (:mod:`nova_infant.icep.calibration`); the frames
   being predicted are never used for either. Optionally the weights (and fold-level normaliser and window) of a
   bundle trained on other sessions are the starting point (fine-tuning); its output layer is kept only when its
   classes are the coder's.
4. Output: the coder's rows that start before the split, unchanged (ids, times, confidence; a row straddling the
   split is clipped to end there), then the predicted segments from the split to the end, split where the calibrated
   confidence crosses the review threshold so NOVA hatches the uncertain stretches.
5. Confidence: the temperature-scaled probabilities of the model above; with a base bundle, averaged with the base
   bundle's own (its temperature was fitted on other sessions). Nothing is fitted on a frame after the split
   (figures, and the targets still missed from scratch: docs/icep.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from nova_infant.core.errors import AnnotationError, OptionError
from nova_infant.icep.calibration import confidence_segments, scale_probs
from nova_infant.icep.dataset import MASK, SessionData, sample_labels_masked
from nova_infant.icep.training import FitResult, TrainConfig, fit, predict_fitted


#: fewer held-out coded frames than this: no temperature is fitted (the base bundle's, else 1, is kept)
MIN_CALIBRATION_FRAMES = 250


def _base_probs(base, session: SessionData, names: list[str]) -> np.ndarray:
    """The base bundle's calibrated probabilities of ``names`` (its temperature, renormalised over those of its
    classes; a class it does not know gets 0), shape (n_frames, len(names))."""
    from nova_infant.icep.training import predict_proba

    cfg = base.config
    p = scale_probs(predict_proba(base.model, base.normaliser, session, cfg.window, cfg.stride, cfg.batch_size,
                                  normalise=cfg.normalise), float(base.temperature))
    known = list(base.label_map.target.names)
    out = np.zeros((p.shape[0], len(names)), np.float32)
    for j, n in enumerate(names):
        if n in known:
            out[:, j] = p[:, known.index(n)]
    total = out.sum(1, keepdims=True)
    return np.where(total > 0, out / np.maximum(total, 1e-12), 1.0 / len(names)).astype(np.float32)


def parse_split(value) -> float | None:
    """The split option: ``auto`` (None) or a time in seconds (``95.2``, ``1:35.2``, ``01:01:35``).

    Raises
    ------
    OptionError
        Anything else, or a negative time.
    """
    text = str(value).strip().lower()
    if text in ("", "auto"):
        return None
    if not re.fullmatch(r"(\d+:){0,2}\d+(\.\d*)?", text):
        raise OptionError(f"option split: expected 'auto' or a time in seconds (95.2) or m:ss (1:35.2), got {value!r}")
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds * 1000.0


def split_point_ms(segments: np.ndarray, split_ms: float | None, source: str = "") -> float:
    """The split time in ms: ``split_ms`` when given, else the end of the last coded segment.

    Raises
    ------
    AnnotationError
        ``auto`` on an annotation without a segment.
    """
    if split_ms is not None:
        return float(split_ms)
    if len(segments) == 0:
        raise AnnotationError(f"{source}: the coder's annotation has no segment yet: code the first part of the "
                              f"session, save (Ctrl+S), then run the completion")
    return float(np.max(np.asarray(segments["to"], np.float64)))


def coded_rows(segments: np.ndarray, split_ms: float) -> np.ndarray:
    """The coder's rows carried over: those starting before ``split_ms``, in their order, a straddling one clipped.

    Parameters
    ----------
    segments : structured ndarray (``from``, ``to`` ms, ``id``, ``conf``)
    split_ms : float

    Returns
    -------
    structured ndarray of the same dtype (a copy)
    """
    rows = np.asarray(segments)[np.asarray(segments["from"], np.float64) < split_ms].copy()
    over = np.asarray(rows["to"], np.float64) > split_ms
    rows["to"][over] = split_ms
    return rows


@dataclass
class Completion:
    """A completed session.

    Attributes
    ----------
    segments : structured ndarray (``from``, ``to`` ms, ``id``, ``conf``)
        The coder's rows before the split (unchanged; a straddling one clipped), then the predicted segments.
    n_coded : int
        How many leading rows are the coder's.
    split_ms : float
    split_frame : int
        First predicted frame (frames whose centre lies at or after the split).
    probs : ndarray, float32, shape (n_frames, n_classes)
        Calibrated class probabilities of every frame (the coder's scheme ids; 0 for classes the coder did not use
        before the split: the model only predicts classes it has seen coded).
    labels : ndarray, int64, shape (n_frames,)
        Predicted class per frame (smoothed from ``split_frame`` on).
    fitted : FitResult
    coded_frames : int
        Labelled frames trained and calibrated on.
    raw_probs : ndarray, float32, shape (n_frames, n_classes)
        The fine-tuned (or from-scratch) model's own probabilities before the temperature and the base mix
        (the "before" of calibration reports).
    """

    segments: np.ndarray
    n_coded: int
    split_ms: float
    split_frame: int
    probs: np.ndarray
    labels: np.ndarray
    fitted: FitResult
    coded_frames: int
    raw_probs: np.ndarray | None = None


def coded_labels(session: SessionData, segments: np.ndarray, n_classes: int, split_frame: int,
                 source: str = "") -> np.ndarray:
    """Labels of the coded part: the coder's ids at frame centres (gaps and garbage -1), -1 from ``split_frame`` on.

    Raises
    ------
    AnnotationError
        An id outside the scheme.
    """
    labels, _ = sample_labels_masked(segments, session.n_frames, session.step_ms, np.arange(n_classes), source)
    labels[split_frame:] = MASK
    return labels


def complete_session(session: SessionData, segments: np.ndarray, class_names: list[str], config: TrainConfig,
                     split_ms: float | None = None, base=None, val_fraction: float = 0.2, threshold: float = 0.7,
                     min_dur_ms: float = 0.0, source: str = "", base_mix: float = 0.5) -> Completion:
    """Train on the coded part of ``session`` and predict the rest (module docstring).

    Parameters
    ----------
    session : SessionData
        Features of the whole session (``labels`` ignored).
    segments : structured ndarray
        The coder's rows (``from``/``to`` ms, ``id`` in ``class_names``, -1 garbage, ``conf``).
    class_names : list of str
        The coder's scheme, by id.
    config : TrainConfig
        Model and training settings (ignored for window/architecture when ``base`` is given).
    split_ms : float or None
        None = ``auto``.
    base : nova_infant.icep.bundle.Bundle, optional
        A bundle trained on other sessions to fine-tune.
    val_fraction : float
        Share of the coded span held out (its end) for early stopping and calibration.
    threshold : float
        Review threshold of the predicted segments (NOVA's 0.7).
    min_dur_ms : float
        Shortest predicted segment (smoothing), ms.
    source : str
        Name for messages (the annotation file).
    base_mix : float
        With ``base``: the weight of the base bundle's own calibrated probabilities (its temperature, fitted on other
        sessions) averaged with the fine-tuned model's, in [0, 1]; 0 = the fine-tuned model alone.

    Returns
    -------
    Completion

    Raises
    ------
    AnnotationError
        No coded frame before the split, or nothing left to predict.
    OptionError
        ``base_mix`` outside [0, 1].
    SessionTooShortError
        The coded part is shorter than one model window.
    """
    from nova_infant.icep.predict import smooth_min_duration

    if not 0.0 <= float(base_mix) <= 1.0:
        raise OptionError(f"{source}: base_mix must be in [0, 1], got {base_mix}")
    split = split_point_ms(segments, split_ms, source)
    step = session.step_ms
    split_frame = int(min(max(math.ceil(split / step - 0.5), 0), session.n_frames))
    if split_frame >= session.n_frames:
        raise AnnotationError(f"{source}: the split at {split / 1000:.2f} s is at or after the end of the session "
                              f"({session.n_frames * step / 1000:.2f} s): nothing left to complete")
    n_classes = len(class_names)
    labels = coded_labels(session, segments, n_classes, split_frame, source)
    coded = np.flatnonzero(labels >= 0)
    if len(coded) == 0:
        raise AnnotationError(f"{source}: no coded frame before {split / 1000:.2f} s (only gaps or garbage): nothing "
                              f"to learn from")
    # the model predicts the classes the coder used before the split and, with a base bundle, the coder's classes the
    # base knows (ids compacted to 0..K-1); a class nobody has shown it cannot be learnt
    present = np.unique(labels[coded])
    if base is not None:
        known = [class_names.index(n) for n in base.label_map.target.names if n in class_names]
        present = np.union1d(present, np.asarray(known, np.int64))
    compact = np.full(n_classes, MASK, np.int64)
    compact[present] = np.arange(len(present))
    labels = np.where(labels >= 0, compact[np.clip(labels, 0, None)], MASK)
    init_state, normaliser = None, None
    if base is not None:
        from nova_infant.icep.bundle import check_session

        check_session(base.features, session, str(base.path))
        config = base.config.replace(lr=config.lr, max_epochs=config.max_epochs, patience=config.patience,
                                     seed=config.seed, device=config.device, batch_size=config.batch_size)
        init_state = {k: v.detach().cpu() for k, v in base.model.state_dict().items()}
        head = [k for k in init_state if k.startswith(("head.", f"net.{len(base.model.net) - 1}."))] \
            if hasattr(base.model, "net") else [k for k in init_state if k.startswith("head.")]
        base_names = list(base.label_map.target.names)
        rows = [base_names.index(class_names[c]) if class_names[c] in base_names else -1 for c in present]
        for k in head:  # the base's output rows of the coder's classes; a new layer when one is missing
            if min(rows) >= 0:
                init_state[k] = init_state[k][rows]
            else:
                init_state.pop(k)
        normaliser = base.normaliser
    lo, hi = int(coded[0]), int(coded[-1]) + 1
    cut = hi - int(round((hi - lo) * val_fraction)) if val_fraction > 0 else hi
    train_labels, val_labels = labels.copy(), np.full_like(labels, MASK)
    train_labels[cut:] = MASK
    val_labels[cut:hi] = labels[cut:hi]
    if not (train_labels >= 0).any():
        train_labels, val_labels = labels, np.full_like(labels, MASK)
    train = replace(session, labels=train_labels, masked={})
    val = [replace(session, labels=val_labels, masked={})] if (val_labels >= 0).any() else []
    fitted = fit([train], val, len(present), config, init_state=init_state, normaliser=normaliser)
    if fitted.calibration.get("frames", 0) < MIN_CALIBRATION_FRAMES:  # too few to fit a temperature on
        fitted.temperature = float(base.temperature) if base is not None else 1.0
        fitted.calibration = {**fitted.calibration, "note": f"fewer than {MIN_CALIBRATION_FRAMES} held-out coded "
                              f"frames: temperature {'of the base bundle' if base is not None else '1 (unscaled)'}"}
    raw = predict_fitted(fitted, session, calibrated=False)
    small = scale_probs(raw, fitted.temperature)
    if base is not None and base_mix > 0:
        small = (1.0 - base_mix) * small + base_mix * _base_probs(base, session, [class_names[c] for c in present])
    probs = np.zeros((session.n_frames, n_classes), np.float32)
    probs[:, present] = small
    raw_probs = np.zeros((session.n_frames, n_classes), np.float32)
    raw_probs[:, present] = raw
    pred = present[small.argmax(1)]
    min_frames = int(round(float(min_dur_ms) / step))
    pred[split_frame:] = smooth_min_duration(pred[split_frame:], probs[split_frame:], min_frames)
    conf = probs[np.arange(len(pred)), pred]
    predicted = confidence_segments(pred[split_frame:], conf[split_frame:], step, threshold,
                                    offset_ms=split_frame * step, min_frames=min_frames)
    rows = coded_rows(segments, split)
    out = np.zeros(len(rows) + len(predicted), dtype=rows.dtype)
    out[:len(rows)] = rows
    tail = out[len(rows):]
    for name in ("from", "to", "id", "conf"):
        tail[name] = predicted[name]
    if len(predicted):
        tail["from"][0] = split  # abut the coded part exactly (the grid is at most half a frame off)
    return Completion(out, len(rows), split, split_frame, probs, pred.astype(np.int64), fitted, int(len(coded)),
                      raw_probs)
