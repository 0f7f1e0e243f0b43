"""Infant-lab audio event classes and the zero-shot mapping from AudioSet labels; window scores to the session grid.

Design from VIBA-Net (Ong et al., WACV-W'25, §3.3): 8 classes (baby crying, baby laughing, music, singing, child
speech, male speech, female speech, lullaby); we add a ninth, ``speech`` (any speech), because the embedded YAMNet
has no male/female split. Zero-shot: a class's score is the max sigmoid probability over the AudioSet labels of
:data:`AUDIOSET_NAMES` that the model has (matched by the model's own label names); a class with none of them is
*unavailable*. Pure numpy; no model is loaded here.
"""

from __future__ import annotations

import numpy as np

from nova_infant.core.annotations import frames_to_segments
from nova_infant.core.errors import OptionError
from nova_infant.core.grid import FrameGrid

#: our event classes (ids in this order in schemes/audio_events.json)
CLASSES = ["baby_crying", "baby_laughing", "music", "singing", "child_speech", "male_speech", "female_speech",
           "lullaby", "speech"]

#: AudioSet display names (ontology) pooled (max) into each class
AUDIOSET_NAMES = {
    "baby_crying": ["Baby cry, infant cry", "Crying, sobbing", "Whimper"],
    "baby_laughing": ["Baby laughter"],
    "music": ["Music"],
    "singing": ["Singing", "Child singing", "Choir", "Humming"],
    "child_speech": ["Child speech, kid speaking", "Babbling"],
    "male_speech": ["Male speech, man speaking"],
    "female_speech": ["Female speech, woman speaking"],
    "lullaby": ["Lullaby"],
    "speech": ["Speech", "Male speech, man speaking", "Female speech, woman speaking", "Child speech, kid speaking",
               "Conversation", "Narration, monologue"],
}


def _norm(name: str) -> str:
    return " ".join(str(name).lower().replace("_", " ").split())


def class_map(label_names: list[str], classes: list[str] = CLASSES) -> dict[str, list[int]]:
    """Which of the model's labels make each of our classes (:data:`AUDIOSET_NAMES`, matched on the model's own label
    names, case- and punctuation-insensitive).

    Parameters
    ----------
    label_names : list of str
        The model's label names by output index.
    classes : list of str
        Our classes (:data:`CLASSES`).

    Returns
    -------
    dict
        ``{class: [label indices]}``; an empty list means the model cannot produce the class.

    Raises
    ------
    OptionError
        If a class has no AudioSet mapping.
    """
    index = {_norm(n): i for i, n in enumerate(label_names)}
    unknown = [c for c in classes if c not in AUDIOSET_NAMES]
    if unknown:
        raise OptionError(f"audio event classes {unknown} have no AudioSet mapping; known: {', '.join(CLASSES)}")
    return {c: [index[_norm(n)] for n in AUDIOSET_NAMES[c] if _norm(n) in index] for c in classes}


def zero_shot(logits: np.ndarray, label_names: list[str], classes: list[str] = CLASSES) -> tuple[np.ndarray, list[bool]]:
    """Zero-shot class probabilities: per class, the maximum sigmoid over its AudioSet labels (:func:`class_map`).

    Parameters
    ----------
    logits : ndarray, float32, shape (n_windows, n_labels)
    label_names : list of str
        The model's label names by column.
    classes : list of str
        Our classes, in output column order.

    Returns
    -------
    probs : ndarray, float32, shape (n_windows, n_classes)
        Zeros in the column of an unavailable class.
    available : list of bool
        Per class: False when the model has none of its labels.
    """
    prob = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
    mapping = class_map(label_names, classes)
    out = np.zeros((len(prob), len(classes)), np.float32)
    for j, c in enumerate(classes):
        if mapping[c]:
            out[:, j] = prob[:, mapping[c]].max(axis=1)
    return out, [bool(mapping[c]) for c in classes]


def context_windows(emb: np.ndarray, context: int) -> np.ndarray:
    """Each window's embedding with its neighbours (edges repeated), the input of a head with temporal context.

    Parameters
    ----------
    emb : ndarray, float32, shape (n, dim)
    context : int
        Neighbours on each side.

    Returns
    -------
    ndarray, float32, shape (n, 2 * context + 1, dim)
    """
    n = len(emb)
    idx = np.clip(np.arange(n)[:, None] + np.arange(-context, context + 1)[None, :], 0, n - 1)
    return emb[idx]


def to_grid(window_scores: np.ndarray, centres_ms: np.ndarray, grid: FrameGrid) -> np.ndarray:
    """Per-class window scores on the session grid: linear interpolation between window centres at each row's centre
    (``numpy.interp``; held constant before the first / after the last centre).

    Parameters
    ----------
    window_scores : ndarray, float32, shape (n_windows, C)
    centres_ms : ndarray, float, shape (n_windows,)
        Window centres in ms (:func:`window_centres_ms`).
    grid : FrameGrid
        The session's output grid.

    Returns
    -------
    ndarray, float32, shape (grid.n_frames, C)
    """
    t = grid.centres_ms()
    return np.stack([np.interp(t, centres_ms, window_scores[:, j]) for j in range(window_scores.shape[1])],
                    axis=1).astype(np.float32) if grid.n_frames else np.zeros((0, window_scores.shape[1]), np.float32)


def active_frames(x: np.ndarray, threshold: float, hold: tuple | list | None = None,
                  step_ms: float = 40.0) -> np.ndarray:
    """Grid rows of one class that are on: score >= ``threshold``, each run of such rows extended by at most
    ``hold[1]`` ms on either side while the score stays >= ``hold[0]`` (hysteresis with a bounded hangover, as in
    voice activity detectors: a run must reach the high threshold to start, may then run on through a short dip or
    a fading edge, and never more than ``hold[1]`` ms past its last row at the high threshold).

    Parameters
    ----------
    x : ndarray, float, shape (n_frames,)
        Scores on the grid, 0..1.
    threshold : float
        High threshold: a row at or above it is on.
    hold : (float, float), optional
        ``(low threshold, max ms)``; None = plain thresholding.
    step_ms : float
        Grid step in ms.

    Returns
    -------
    ndarray, bool, shape (n_frames,)
    """
    x = np.asarray(x)
    on = x >= threshold
    if not hold or not on.any():
        return on
    low, n = float(hold[0]), int(round(float(hold[1]) / step_ms))
    out = on.copy()
    ok = x >= low
    idx = np.flatnonzero(on)
    starts = idx[np.r_[True, np.diff(idx) > 1]]
    ends = idx[np.r_[np.diff(idx) > 1, True]]
    for a, b in zip(starts, ends):
        for step, first in ((-1, a - 1), (1, b + 1)):
            i = first
            while 0 <= i < len(x) and abs(i - (a if step < 0 else b)) <= n and ok[i]:
                out[i] = True
                i += step
    return out


def events_from_scores(scores: np.ndarray, step_ms: float, threshold: float = 0.5, min_event_ms: float = 0.0,
                       hold: tuple | list | None = None):
    """One discrete NOVA track per class: runs of grid rows whose score reaches the threshold (with ``hold``: runs
    of :func:`active_frames`).

    Parameters
    ----------
    scores : ndarray, float32, shape (n_frames, C)
        Per-class probabilities on the grid.
    step_ms : float
        Grid step in ms.
    threshold : float
        Score a row needs to be part of an event, 0..1.
    min_event_ms : float
        Runs shorter than this (ms) are dropped.
    hold : (float, float), optional
        ``(low threshold, max ms)`` of :func:`active_frames`, for every column.

    Returns
    -------
    list of ndarray
        One ``LabelDType.DISCRETE`` array per column (from/to in ms, id 0, conf = the run's mean score).
    """
    out = []
    for j in range(scores.shape[1]):
        active = np.where(active_frames(scores[:, j], threshold, hold, step_ms), 0, -1)
        seg = frames_to_segments(active, step_ms, conf=scores[:, j], skip_ids=(-1,))
        if min_event_ms > 0:
            seg = seg[(seg["to"] - seg["from"]) >= min_event_ms]
        out.append(seg)
    return out
