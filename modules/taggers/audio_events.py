"""Audio event tagger: AudioSet model scores -> infant-lab event classes -> NOVA event tracks and score streams.

Design from VIBA-Net (Ong et al., WACV-W'25, §3.3): audio -> 16 kHz mono -> log-mel -> pretrained AudioSet embedding
-> a small multi-label head. The model and its front end are in :mod:`.audio_model`, the classes and the zero-shot
mapping in :mod:`.audio_classes`, the default crying model in :mod:`.crying`; a trained head (:mod:`.heads`) on the
model's 521/527 logits replaces the mapping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from nova_infant.core.annotations import read_segments
from nova_infant.core.errors import OptionError
from nova_infant.core.grid import FrameGrid, session_grid
from nova_infant.taggers.audio_classes import AUDIOSET_NAMES, CLASSES, context_windows, events_from_scores, \
    to_grid, zero_shot
from nova_infant.taggers.audio_model import embed_audio, embedding_name, load_backend
from nova_infant.taggers.crying import load_default_head
from nova_infant.taggers.heads import Head, fit_head

log = logging.getLogger("nova_infant")


@dataclass
class AudioEventResult:
    """Audio-event tagger output on one session grid.

    Attributes
    ----------
    classes : list of str
        Class names in column order.
    available : list of bool
        Per class; False = the model cannot produce it (no AudioSet label of it).
    grid : FrameGrid
    scores : ndarray, float32, shape (n_frames, C)
        Probabilities on the grid; 0 for unavailable classes.
    events : list of ndarray
        One ``LabelDType.DISCRETE`` array per class (ms).
    backend : str
        Model name.
    mode : str
        ``"zero-shot"`` or ``"head:<path>"``.
    window_ms, hop_ms : float
        Window length and hop of the model.
    meta : dict
        E.g. ``thresholds`` per class and ``notes``.
    """

    classes: list
    available: list
    grid: FrameGrid
    scores: np.ndarray
    events: list
    backend: str
    mode: str
    window_ms: float
    hop_ms: float
    meta: dict = field(default_factory=dict)


def tag_audio_events(path: str, backend: str = "yamnet", head: str | None = None, step_ms: float = 40.0,
                     duration_ms: float | None = None, threshold: float | None = None, min_event_ms: float = 0.0,
                     classes: list[str] | None = None, required: list[str] | None = None,
                     crying_model: str = "default", reference_duration_ms: float | None = None,
                     session_duration_ms: float | None = None) -> AudioEventResult:
    """Tag audio events in one recording.

    Parameters
    ----------
    path : audio file (wav/flac/ogg) or a video container's audio track
    backend : "yamnet" or a Hugging Face AudioSet classifier id / folder (see :func:`load_backend`)
    head : folder of a trained head (:func:`fit_audio_head`); replaces the zero-shot mapping; its classes are the
        output classes
    step_ms : grid step in ms (default 40 = 25 Hz, the project's shared grid)
    duration_ms, reference_duration_ms, session_duration_ms : the option ``duration_ms``, the duration of the
        session's reference input and of the NOVA session, ms; the grid's duration is the first one set, else the
        audio's own (:func:`nova_infant.core.grid.session_grid`)
    threshold : probability an event frame must reach, for every class; None (default) = per-class thresholds:
        those fitted with a head (the default crying model's ``baby_crying`` and ``speech``, see
        :mod:`.crying`), else 0.5 (VIBA-Net's rule); with per-class thresholds a head's ``hold`` also applies
        (the default crying model lets a crying run go on up to one YAMNet hop, 480 ms, while the score stays
        >= 0.5: :func:`nova_infant.taggers.audio_classes.active_frames`); a given ``threshold`` turns it off
    classes : subset of :data:`CLASSES` (zero-shot) or the head's classes (must match when both are given)
    required : classes the caller will write tracks for (e.g. the DISCOVER outputs asked for); a head must
        predict every one of them
    crying_model : "default" (YAMNet backend without ``head``: ``baby_crying`` and ``speech`` come from the shipped
        crying model trained on the Donate-a-cry corpus) or "off" (pure zero-shot mapping)

    Returns
    -------
    AudioEventResult (``meta["thresholds"]``: the threshold used per class; ``meta["holds"]``: ``{class: [low
    threshold, max ms]}`` applied; ``meta["notes"]``: why a class is unavailable)

    Raises
    ------
    AudioDecodeError
        Missing/unreadable file, no audio track, audio shorter than one model window.
    WeightsUnavailableError
        Backend or head cannot be loaded.
    OptionError
        A head trained for other classes than ``classes``, or for another embedding than this backend's, or an
        unknown ``crying_model``.
    """
    if crying_model not in ("default", "off"):
        raise OptionError(f"option crying_model: expected 'default' or 'off', got {crying_model!r}")
    model = load_backend(backend)
    head_obj = Head.load(head, kind="audio-events") if head else None
    if head_obj is not None:
        if classes and list(classes) != head_obj.classes:
            raise OptionError(f"{head}: head predicts {head_obj.classes}, but the scheme asks for {list(classes)}")
        missing = [c for c in (required or []) if c not in head_obj.classes]
        if missing:
            raise OptionError(f"{head}: head predicts {head_obj.classes}, but tracks for {missing} were asked for")
        if head_obj.cfg.embedding != embedding_name(model):
            raise OptionError(f"{head}: head was trained on {head_obj.cfg.embedding} embeddings, "
                              f"this run uses {embedding_name(model)}")
    logits, centres, own_ms = embed_audio(path, model)
    grid = session_grid(step_ms, own_ms, duration_ms=duration_ms, reference=reference_duration_ms,
                        session_duration_ms=session_duration_ms, source=str(path))
    fitted: dict = {}
    holds: dict = {}
    notes: dict = {}
    if head_obj is not None:
        names = head_obj.classes
        win = head_obj.predict_proba(context_windows(logits, head_obj.cfg.context))
        available, mode = [True] * len(names), f"head:{head}"
        fitted = dict(head_obj.cfg.thresholds)
        holds = dict(head_obj.cfg.hold)
    else:
        names = list(classes or CLASSES)
        win, available = zero_shot(logits, model.label_names, names)
        mode = "zero-shot"
        crying = _default_crying_head(model) if crying_model == "default" else None
        if crying is not None and any(c in names for c in crying.classes):
            cry_win = crying.predict_proba(context_windows(logits, crying.cfg.context))
            for k, c in enumerate(crying.classes):
                if c in names:
                    win[:, names.index(c)] = cry_win[:, k]
                    available[names.index(c)] = True
                    fitted[c] = crying.cfg.thresholds.get(c, 0.5)
                    if c in crying.cfg.hold:
                        holds[c] = crying.cfg.hold[c]
            mode = "zero-shot+crying-model"
    for j, ok in enumerate(available):
        if not ok:
            notes[names[j]] = (f"unavailable: the {model.name} model has no AudioSet label for {names[j]} "
                               f"({', '.join(AUDIOSET_NAMES.get(names[j], []))}); track left empty")
    thresholds = {c: float(threshold) if threshold is not None else float(fitted.get(c, 0.5)) for c in names}
    scores = to_grid(win, centres, grid)
    holds = holds if threshold is None else {}  # a caller's threshold means plain thresholding
    events = [events_from_scores(scores[:, [j]], grid.step_ms, thresholds[c], min_event_ms, holds.get(c))[0]
              for j, c in enumerate(names)]
    for j, ok in enumerate(available):
        if not ok:
            events[j] = events[j][:0]
            log.warning("%s: class %s is unavailable with the %s model (no matching AudioSet label)", path,
                        names[j], model.name)
    return AudioEventResult(names, available, grid, scores, events, model.name, mode, model.window_ms, model.hop_ms,
                            meta={"thresholds": thresholds, "holds": holds, "notes": notes})


def _default_crying_head(model):
    """The shipped crying model if it fits this backend's logits (YAMNet's 521), else None."""
    head = load_default_head()
    if head is None or head.cfg.embedding != embedding_name(model):
        return None
    return head


# ---------------------------------------------------------------- training a head


def window_targets(centres_ms: np.ndarray, window_ms: float, segments: list[tuple[float, float, str]],
                   classes: list[str], min_cover: float = 0.5) -> np.ndarray:
    """Multi-label targets per model window: class c is on if its segments cover >= ``min_cover`` of the window.

    Parameters
    ----------
    segments : list of (start_ms, end_ms, class_name); names outside ``classes`` are ignored.

    Returns
    -------
    float32 array of shape (n_windows, len(classes)) in {0, 1}
    """
    starts = centres_ms - window_ms / 2
    ends = starts + window_ms
    y = np.zeros((len(centres_ms), len(classes)), np.float32)
    cover = np.zeros_like(y)
    index = {c: i for i, c in enumerate(classes)}
    for s, e, name in segments:
        if name not in index:
            continue
        overlap = np.clip(np.minimum(ends, e) - np.maximum(starts, s), 0, None)
        cover[:, index[name]] += overlap / window_ms
    y[cover >= min_cover] = 1.0
    return y


def segments_from_annotation(path: str) -> list[tuple[float, float, str]]:
    """Every labelled segment of a NOVA discrete ``.annotation`` file (the training targets of a head).

    Parameters
    ----------
    path : str

    Returns
    -------
    list of (start_ms, end_ms, class name)
        Garbage (-1) and ids outside the scheme skipped.

    Raises
    ------
    AnnotationError
        For an unreadable or non-discrete file.
    """
    return [(start, end, name) for start, end, name, _ in read_segments(path)]


def fit_audio_head(items: list[tuple[str, list[tuple[float, float, str]]]], classes: list[str],
                   backend: str = "yamnet", context: int = 1, epochs: int = 300, seed: int = 0):
    """Fit a VIBA-Net-shaped head on a lab's labelled recordings.

    Parameters
    ----------
    items : list of (audio path, segments) with segments (start_ms, end_ms, class name) as from
        :func:`segments_from_annotation` (overlapping segments of different classes allowed)
    classes : output classes of the head (any names: the lab's scheme)
    context : windows each side averaged by the temporal pooling (T = 2*context+1)

    Returns
    -------
    heads.Head (save it with ``.save(folder)``)
    """
    model = load_backend(backend)
    xs, ys = [], []
    for path, segments in items:
        logits, centres, _ = embed_audio(path, model)
        xs.append(context_windows(logits, context))
        ys.append(window_targets(centres, model.window_ms, segments, classes))
    return fit_head(np.concatenate(xs), np.concatenate(ys), classes, kind="audio-events",
                    embedding=embedding_name(model), multilabel=True, context=context, epochs=epochs, seed=seed)
