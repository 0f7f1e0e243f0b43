"""Audio features of seed 003 (Cha & Bae, §3.2): MFCC and log-magnitude STFT, computed with librosa.

Parameters and why (docs/cry-reason.md):

- ``SAMPLE_RATE`` 8000 Hz: the Donate-a-cry corpus is 8 kHz phone audio; a lab's 16/44.1 kHz audio is resampled to
  the same band so a model trained on one applies to the other (cry fundamentals 300-600 Hz and their first
  formants lie below 4 kHz).
- ``N_FFT`` 256 samples = 32 ms frame (Hann window), ``HOP`` 80 samples = 10 ms: the usual speech-analysis frame,
  short enough for the cry's fast pitch changes, long enough to resolve a 300 Hz fundamental (31 Hz bins).
- ``N_MFCC`` 20 from ``N_MELS`` 40 mel bands (librosa defaults for n_mfcc; 40 bands fit the 4 kHz band).
- STFT: ``log(1 + |X|)`` of the 129 bins (0-4 kHz).
- The paper classifies fixed-length inputs; a cry is cut into ``WINDOW_MS`` 1000 ms analysis windows every
  ``WINDOW_HOP_MS`` 500 ms, each summarised by the mean and standard deviation of its frames (2 x dim values).
  A clip or a crying segment is labelled from its windows (rolling prediction average, :mod:`.models`).

Scaling (paper §3.2: "Standard Scaler, then Min-max Scaler to 0..1") is :func:`make_scaler`, fitted on training
folds only by the callers.
"""

from __future__ import annotations

import numpy as np

from nova_infant.core.errors import AudioDecodeError, OptionError
from nova_infant.core.media import read_audio

SAMPLE_RATE = 8000
N_FFT = 256
HOP = 80
N_MFCC = 20
N_MELS = 40
WINDOW_MS = 1000.0
WINDOW_HOP_MS = 500.0
KINDS = ("mfcc", "stft")
#: shortest piece of audio that gets a window (shorter crying segments are skipped with a note)
MIN_WINDOW_MS = 250.0


def read_signal(path: str) -> np.ndarray:
    """Mono float32 signal of ``path`` (WAV or any media with audio) resampled to :data:`SAMPLE_RATE` (8 kHz).

    Parameters
    ----------
    path : str or path
        Audio or video file (decoded with :func:`nova_infant.core.media.read_audio`).

    Returns
    -------
    ndarray of shape (n_samples,), float32, 8000 Hz

    Raises
    ------
    AudioDecodeError
        If the file cannot be decoded or has no audio (from :func:`nova_infant.core.media.read_audio`).
    """
    return np.asarray(read_audio(str(path), SAMPLE_RATE)[0], np.float32)


def frame_features(signal: np.ndarray, kind: str) -> np.ndarray:
    """Frame-level features of an 8 kHz signal: (n_frames, 20) MFCC or (n_frames, 129) log(1+|STFT|), float32.

    Frames are ``N_FFT`` = 32 ms long every ``HOP`` = 10 ms, centred (librosa ``center=True``).
    Source: librosa ``feature.mfcc`` / ``stft``; seed 003 §3.2.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,), float32, 8000 Hz
    kind : "mfcc" or "stft"

    Returns
    -------
    ndarray of shape (1 + n_samples // 80, 20 or 129), float32

    Raises
    ------
    OptionError
        For an unknown ``kind`` (not "mfcc" or "stft").
    """
    import librosa

    y = np.asarray(signal, np.float32)
    if kind == "mfcc":
        f = librosa.feature.mfcc(y=y, sr=SAMPLE_RATE, n_mfcc=N_MFCC, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS)
    elif kind == "stft":
        f = np.log1p(np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP)))
    else:
        raise OptionError(f"feature kind {kind!r}: expected one of {', '.join(KINDS)}")
    return np.ascontiguousarray(f.T, dtype=np.float32)


def feature_dim(kind: str) -> int:
    """Length of one window's feature vector: 2 x frame dim (mean and std).

    Parameters
    ----------
    kind : "mfcc" or "stft"

    Returns
    -------
    int
        40 for MFCC, 258 for STFT.
    """
    return 2 * (N_MFCC if kind == "mfcc" else N_FFT // 2 + 1)


def window_starts_ms(duration_ms: float, window_ms: float = WINDOW_MS, hop_ms: float = WINDOW_HOP_MS) -> np.ndarray:
    """Start times of the analysis windows of a piece ``duration_ms`` long: every ``hop_ms`` while a whole window
    fits; a piece shorter than one window (but >= :data:`MIN_WINDOW_MS`) gets one window covering it.

    Parameters
    ----------
    duration_ms, window_ms, hop_ms : float
        Piece length, window length and window hop (ms).

    Returns
    -------
    ndarray of shape (n_windows,), float64
        Starts in ms from the piece's start (empty below :data:`MIN_WINDOW_MS`).
    """
    if duration_ms < MIN_WINDOW_MS:
        return np.zeros(0)
    if duration_ms <= window_ms:
        return np.zeros(1)
    n = int(np.floor((duration_ms - window_ms) / hop_ms + 1e-9)) + 1
    return np.arange(n) * hop_ms


def window_features(signal: np.ndarray, kind: str, start_ms: float = 0.0, end_ms: float | None = None,
                    window_ms: float = WINDOW_MS, hop_ms: float = WINDOW_HOP_MS) -> tuple[np.ndarray, np.ndarray]:
    """Window features of ``signal[start_ms:end_ms]`` (8 kHz): mean and std of each window's frame features.

    Parameters
    ----------
    signal : ndarray of shape (n_samples,), float32, 8000 Hz
    kind : "mfcc" or "stft"
    start_ms, end_ms : float
        Piece of the signal to cut into windows (ms; ``end_ms`` None or past the end: the signal's end).
    window_ms, hop_ms : float
        Window length and hop (ms; defaults 1000 and 500).

    Returns
    -------
    features : float32 (n_windows, :func:`feature_dim`)
    starts_ms : float64 (n_windows,), window starts in the signal's time (ms)
    """
    frames = frame_features(signal, kind)
    end_ms = len(signal) * 1000.0 / SAMPLE_RATE if end_ms is None else min(end_ms, len(signal) * 1000.0 / SAMPLE_RATE)
    starts = start_ms + window_starts_ms(end_ms - start_ms, window_ms, hop_ms)
    frame_ms = HOP * 1000.0 / SAMPLE_RATE
    out = np.zeros((len(starts), 2 * frames.shape[1]), np.float32)
    for i, s in enumerate(starts):
        a = int(round(s / frame_ms))
        b = int(round(min(s + window_ms, end_ms) / frame_ms)) + 1
        chunk = frames[a:max(b, a + 1)]
        out[i] = np.concatenate([chunk.mean(0), chunk.std(0)])
    return out, starts


def clip_windows(path: str, kinds=KINDS) -> dict:
    """Window features of a whole clip for every kind.

    Parameters
    ----------
    path : str
        Audio file (any rate).
    kinds : sequence of str
        Feature kinds (default MFCC and STFT).

    Returns
    -------
    dict
        ``{kind: ndarray (n_windows, feature_dim(kind)) float32}``.

    Raises
    ------
    AudioDecodeError
        If the file cannot be read or lasts less than :data:`MIN_WINDOW_MS`.
    """
    signal = read_signal(path)
    if len(signal) * 1000.0 / SAMPLE_RATE < MIN_WINDOW_MS:
        raise AudioDecodeError(f"{path}: lasts {len(signal) / SAMPLE_RATE * 1000:.0f} ms, shorter than one "
                               f"{MIN_WINDOW_MS:.0f} ms analysis window")
    return {k: window_features(signal, k)[0] for k in kinds}


def make_scaler():
    """The paper's scaling (§3.2): ``StandardScaler`` then ``MinMaxScaler`` to 0..1 (scikit-learn pipeline).

    Fit it on training windows only; at inference values may fall outside 0..1 (not clipped).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted.
    """
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    return make_pipeline(StandardScaler(), MinMaxScaler())


def scaler_arrays(scaler) -> dict[str, np.ndarray]:
    """A fitted :func:`make_scaler` as 4 float32 arrays (for the saved model).

    Parameters
    ----------
    scaler : fitted :func:`make_scaler` pipeline

    Returns
    -------
    dict
        ``std_mean``, ``std_scale``, ``mm_min``, ``mm_scale``, each float32 (dim,), so that
        ``x_scaled = ((x - std_mean) / std_scale) * mm_scale + mm_min``.
    """
    std, mm = scaler[0], scaler[1]
    return {"std_mean": std.mean_.astype(np.float32), "std_scale": std.scale_.astype(np.float32),
            "mm_min": mm.min_.astype(np.float32), "mm_scale": mm.scale_.astype(np.float32)}


def apply_scaler_arrays(x: np.ndarray, arrays: dict) -> np.ndarray:
    """Apply scaling stored by :func:`scaler_arrays`.

    Parameters
    ----------
    x : ndarray of shape (n, dim)
    arrays : dict from :func:`scaler_arrays`

    Returns
    -------
    ndarray of shape (n, dim), float32
    """
    z = (np.asarray(x, np.float32) - arrays["std_mean"]) / arrays["std_scale"]
    return (z * arrays["mm_scale"] + arrays["mm_min"]).astype(np.float32)
