"""Wav2Vec2-BERT audio features on the session's frame grid (docs/w2v-bert.md, docs/alignment.md).

Pipeline: audio file -> mono 16 kHz (``media.read_audio``) -> SeamlessM4T log-mel features computed block-wise
over the whole session and normalised per mel bin with the statistics of the whole session (identical to one call
of the feature extractor on the full signal) -> ``Wav2Vec2BertModel`` run once over the session in overlapping
chunks of equal length (bounded memory for any length; batched) -> each chunk's centre part kept -> 50 Hz hidden
states -> averaged onto the output grid with left/right context.

Method: ICMI'24 ICEP-R paper, Eq. 4 (W2V-BERT 2.0 states pooled over each 40 ms video frame with 50 ms context on
each side); model and feature extractor from Hugging Face transformers (``Wav2Vec2BertModel``,
``SeamlessM4TFeatureExtractor``). Unlike the public discover-modules ``w2v_bert_2`` module (one 1 s window per
output frame, each through the model separately), the encoder sees every second of audio once (plus the overlap).

Timing convention (derived from the feature extractor): fbank frame ``i`` covers samples ``[160 i, 160 i + 400)``
at 16 kHz, i.e. ``[10 i, 10 i + 25)`` ms (Kaldi framing, no centre padding); the extractor stacks frames ``2j`` and
``2j+1`` into input step ``j``, and the encoder keeps that rate, so hidden state ``j`` is dated at its centre
``20 j + 17.5`` ms (:data:`HIDDEN_OFFSET_MS`), 50 Hz.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from nova_infant.core.backbones import DEFAULT_W2V_BERT, LoadedBackbone, load_w2v_bert
from nova_infant.core.errors import AudioDecodeError, OptionError
from nova_infant.core.grid import FrameGrid, parse_step_ms, resolve_duration_ms, session_grid
from nova_infant.core.media import read_audio
from nova_infant.core.streams import make_ssi_stream

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000
HOP_SAMPLES = 160  # fbank hop (10 ms)
WIN_SAMPLES = 400  # fbank window (25 ms)
STACK = 2  # SeamlessM4T stacks 2 fbank frames -> 20 ms per encoder step
HIDDEN_RATE_HZ = SAMPLE_RATE_HZ / (HOP_SAMPLES * STACK)  # 50 Hz
HIDDEN_OFFSET_MS = (WIN_SAMPLES / 2 + HOP_SAMPLES / 2) * 1000.0 / SAMPLE_RATE_HZ  # 17.5 ms: centre of step 0
MEDIA_TYPE = "feature;audio;w2vbert"


@dataclass(frozen=True)
class ChunkPlan:
    """Where the encoder runs: equal-length windows ``[start, start + length)`` of input steps, and the part of each
    window that is kept (absolute step indices, contiguous and covering all steps).

    Attributes
    ----------
    starts : ndarray, int64, shape (n_chunks,)
        First input step of each window.
    length : int
        Input steps per window.
    keep_from, keep_to : ndarray, int64, shape (n_chunks,)
        The steps ``[keep_from, keep_to)`` each window contributes.
    """

    starts: np.ndarray
    length: int
    keep_from: np.ndarray
    keep_to: np.ndarray


def plan_chunks(n_steps: int, chunk_steps: int, overlap_steps: int) -> ChunkPlan:
    """Split ``n_steps`` encoder steps into ``m = ceil(n_steps / chunk_steps)`` balanced chunks plus context.

    Each chunk keeps ``c = ceil(n_steps / m) <= chunk_steps`` consecutive steps and is encoded in a window of
    ``c + 2 * overlap_steps`` steps, so it sees at least ``overlap_steps`` of context on each side wherever the
    signal has it (the first and last windows are shifted inside the signal, so every window has the same length and
    chunks batch without padding). Encoder work is about ``n_steps + 2 * m * overlap_steps`` steps. A signal no
    longer than ``chunk_steps + 2 * overlap_steps`` is a single window, i.e. exactly a full pass.

    Raises
    ------
    OptionError
        If ``chunk_steps < 1``, ``overlap_steps < 0`` or ``n_steps < 1``.
    """
    if chunk_steps < 1 or overlap_steps < 0:
        raise OptionError(f"chunk must be >= 1 step and overlap >= 0 steps, got {chunk_steps} and {overlap_steps}")
    if n_steps < 1:
        raise OptionError("no encoder steps to plan (empty audio)")
    if n_steps <= chunk_steps + 2 * overlap_steps:
        zero = np.zeros(1, np.int64)
        return ChunkPlan(zero, n_steps, zero, np.array([n_steps], np.int64))
    n_chunks = math.ceil(n_steps / chunk_steps)
    core = math.ceil(n_steps / n_chunks)
    length = core + 2 * overlap_steps
    keep_from = np.arange(0, n_steps, core, dtype=np.int64)
    keep_to = np.minimum(keep_from + core, n_steps)
    starts = np.clip(keep_from - overlap_steps, 0, n_steps - length)
    return ChunkPlan(starts, length, keep_from, keep_to)


def seamless_features(audio_16k: np.ndarray, processor, block_s: float = 600.0) -> np.ndarray:
    """SeamlessM4T encoder inputs for a whole session, computed in blocks of ``block_s`` seconds.

    Equals ``processor(audio_16k, sampling_rate=16000)["input_features"][0]`` (80-bin Kaldi fbank, 25 ms window,
    10 ms hop, per-mel-bin normalisation over the *whole* session, stacked by 2) while holding only one block's
    spectrogram in memory: the fbank frames are independent of each other, so blocks aligned on the hop give the
    same frames, and the normalisation uses the statistics of all frames afterwards.

    Parameters
    ----------
    audio_16k : ndarray of shape (n_samples,), float32, 16 kHz mono
    processor : ``SeamlessM4TFeatureExtractor`` (``stride`` 2, 80 mel bins)

    Returns
    -------
    ndarray of shape (ceil(n_fbank / 2), 160), float32 (50 Hz); ``n_fbank = 1 + (n_samples - 400) // 160``

    Raises
    ------
    AudioDecodeError
        If the audio is shorter than two fbank frames (35 ms).
    """
    audio = np.asarray(audio_16k, dtype=np.float32).reshape(-1)
    if audio.size < WIN_SAMPLES + HOP_SAMPLES:  # 2 fbank frames: the per-bin variance needs two
        raise AudioDecodeError(f"audio lasts {audio.size / 16:.1f} ms: W2V-BERT needs at least 35 ms")
    n_fbank = 1 + (audio.size - WIN_SAMPLES) // HOP_SAMPLES
    block = max(2, int(block_s * SAMPLE_RATE_HZ / HOP_SAMPLES) // 2 * 2)  # fbank frames per block (even)
    raw = []
    for first in range(0, n_fbank, block):
        count = min(block, n_fbank - first)
        piece = audio[first * HOP_SAMPLES:(first + count - 1) * HOP_SAMPLES + WIN_SAMPLES]
        if count % 2:  # the extractor drops an odd last frame: add one hop of zeros, drop the extra frame below
            piece = np.concatenate([piece, np.zeros(HOP_SAMPLES, np.float32)])
        stacked = processor(piece, sampling_rate=SAMPLE_RATE_HZ, do_normalize_per_mel_bins=False, padding=False,
                            pad_to_multiple_of=None, return_tensors="np")["input_features"][0]
        raw.append(stacked.reshape(-1, stacked.shape[-1] // STACK)[:count])
    fbank = np.concatenate(raw).astype(np.float64)
    mean = fbank.mean(axis=0, keepdims=True)
    var = fbank.var(axis=0, ddof=1, keepdims=True)
    normed = ((fbank - mean) / np.sqrt(var + 1e-7)).astype(np.float32)
    if len(normed) % 2:  # the extractor pads to an even count with zeros after normalising
        normed = np.concatenate([normed, np.zeros((1, normed.shape[1]), np.float32)])
    return normed.reshape(-1, normed.shape[1] * STACK)


def encode_session(audio_16k: np.ndarray, backbone: LoadedBackbone, chunk_s: float = 30.0, overlap_s: float = 3.0,
                   layer: int = -1, batch_size: int = 2, progress: bool = False) -> np.ndarray:
    """Run the W2V-BERT encoder once over a whole session in overlapping chunks; 50 Hz hidden states.

    Parameters
    ----------
    audio_16k : ndarray of shape (n_samples,), float32, 16 kHz mono
    backbone : LoadedBackbone from :func:`nova_infant.core.backbones.load_w2v_bert`
    chunk_s, overlap_s : float, s
        Kept part of each encoder window and the context added on each side (window = chunk + 2 overlap).
        Audio no longer than one window runs as a single full pass.
    layer : int
        -1: ``last_hidden_state``; ``0..num_hidden_layers``: that entry of ``hidden_states`` (0 = feature
        projection, i = output of conformer layer i).
    batch_size : int
        Windows per forward call.

    Returns
    -------
    ndarray of shape (n_steps, hidden_size), float32; step ``j`` is dated ``20 j + 17.5`` ms.

    Raises
    ------
    OptionError
        For a chunk/overlap/layer/batch size out of range.
    AudioDecodeError
        If the audio is shorter than 35 ms.
    """
    import torch

    n_layers = int(backbone.model.config.num_hidden_layers)
    if not -1 <= int(layer) <= n_layers:
        raise OptionError(f"option layer: must be -1 (last) or 0..{n_layers}, got {layer!r}")
    if not (chunk_s > 0 and overlap_s >= 0 and math.isfinite(chunk_s) and math.isfinite(overlap_s)):
        raise OptionError(f"options chunk_s/overlap_s: need chunk_s > 0 and overlap_s >= 0 s, "
                          f"got {chunk_s}, {overlap_s}")
    if int(batch_size) < 1:
        raise OptionError(f"option batch_size: must be >= 1, got {batch_size!r}")
    feats = seamless_features(audio_16k, backbone.processor)
    plan = plan_chunks(len(feats), max(1, round(chunk_s * HIDDEN_RATE_HZ)), round(overlap_s * HIDDEN_RATE_HZ))
    hidden = None
    order = range(0, len(plan.starts), int(batch_size))
    if progress:
        from tqdm import tqdm

        order = tqdm(order, desc="w2v-bert", unit="batch", total=math.ceil(len(plan.starts) / int(batch_size)))
    with torch.inference_mode(), backbone.autocast():
        for b in order:
            idx = np.arange(b, min(b + int(batch_size), len(plan.starts)))
            windows = np.stack([feats[s:s + plan.length] for s in plan.starts[idx]])
            inputs = torch.from_numpy(windows).to(device=backbone.device, dtype=backbone.dtype)
            out = backbone.model(input_features=inputs, output_hidden_states=int(layer) != -1)
            states = out.last_hidden_state if int(layer) == -1 else out.hidden_states[int(layer)]
            states = states.float().cpu().numpy()  # pooling stays float32 whatever the model's precision
            if hidden is None:
                hidden = np.empty((len(feats), states.shape[-1]), np.float32)
            for row, c in enumerate(idx):
                a, z, s = plan.keep_from[c], plan.keep_to[c], plan.starts[c]
                hidden[a:z] = states[row, a - s:z - s]
    return hidden


def pool_to_grid(hidden: np.ndarray, hidden_rate_hz: float, grid: FrameGrid, left_ms: float = 50.0,
                 right_ms: float = 50.0, first_centre_ms: float = HIDDEN_OFFSET_MS) -> np.ndarray:
    """Average hidden states over each output row's window.

    Row ``k`` averages the hidden states whose time ``first_centre_ms + j * 1000 / hidden_rate_hz`` lies in
    ``[k*step - left_ms, (k+1)*step + right_ms)`` ms, clipped to the signal. A row whose window holds no state
    (past the end of the audio, or a window narrower than the hidden period) takes the state nearest to its centre
    ``(k + 0.5) * step``, so no row is NaN. Method: ICMI'24 ICEP-R paper, Eq. 4.

    Parameters
    ----------
    hidden : ndarray of shape (n_steps, dim), float32
    hidden_rate_hz : float, Hz (50 for W2V-BERT 2.0)
    grid : FrameGrid (n_frames rows of step_ms)
    left_ms, right_ms : float, ms (>= 0)

    Returns
    -------
    ndarray of shape (grid.n_frames, dim), float32

    Raises
    ------
    OptionError
        If a context is negative or not finite, or ``hidden`` is empty.
    """
    hidden = np.asarray(hidden)
    _check_contexts(left_ms, right_ms)
    if hidden.ndim != 2 or len(hidden) == 0:
        raise OptionError(f"no hidden states to pool (shape {hidden.shape})")
    period = 1000.0 / hidden_rate_hz
    times = first_centre_ms + np.arange(len(hidden)) * period
    windows = grid.windows_ms(left_ms, right_ms)
    lo = np.searchsorted(times, windows[:, 0], side="left")
    hi = np.searchsorted(times, windows[:, 1], side="left")
    csum = np.concatenate([np.zeros((1, hidden.shape[1])), np.cumsum(hidden, axis=0, dtype=np.float64)])
    counts = (hi - lo)[:, None]
    pooled = (csum[hi] - csum[lo]) / np.maximum(counts, 1)
    empty = counts[:, 0] == 0
    if empty.any():
        nearest = np.clip(np.rint((grid.centres_ms()[empty] - first_centre_ms) / period), 0, len(hidden) - 1)
        pooled[empty] = hidden[nearest.astype(np.int64)]
    return pooled.astype(np.float32)


def _check_contexts(left_ms: float, right_ms: float) -> None:
    for name, value in (("left_context", left_ms), ("right_context", right_ms)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise OptionError(f"option {name}: must be a number of ms >= 0, got {value!r}")


def extract_w2v_bert(audio_path: str, model: str | LoadedBackbone = DEFAULT_W2V_BERT, step="40ms",
                     left_ms: float = 50.0, right_ms: float = 50.0, layer: int = -1, chunk_s: float = 30.0,
                     overlap_s: float = 3.0, batch_size: int = 2, device: str = "auto", bf16: bool | None = None,
                     precision: str = "auto", duration_ms=None, reference_duration_ms: float | None = None,
                     progress: bool = False, session_duration_ms: float | None = None) -> tuple[np.ndarray, FrameGrid, dict]:
    """W2V-BERT features of one audio file (or a video's audio track) on the session grid.

    Parameters
    ----------
    audio_path : str
        Any file ``media.read_audio`` reads (WAV/FLAC/... at any rate, any channel count; video containers).
    model : str, LoadedBackbone or callable
        Hub id, local checkpoint directory, an already loaded backbone (reused across sessions), or a function
        returning one (called only once the audio was read and the options checked).
    step : frame step ("40ms", "0.04s", "25fps", or ms)
    left_ms, right_ms : context on each side of a row, ms
    layer, chunk_s, overlap_s, batch_size : see :func:`encode_session`
    device, precision : where to run (``auto`` = cuda when present) and in what precision (``auto``, ``fp32``,
        ``bf16``, ``int8``; :func:`nova_infant.core.backbones.resolve_precision`), when ``model`` is not loaded yet
    bf16 : deprecated flag (False = ``precision="fp32"``)
    duration_ms : explicit session duration (ms) defining the grid; 0/None = unset
    reference_duration_ms : duration of the session's reference input (e.g. its video), ms
    session_duration_ms : duration of the NOVA session (database mode), ms; the grid's duration is picked by
        :func:`nova_infant.core.grid.session_grid` (option > reference > session > the audio's own)

    Returns
    -------
    features : ndarray of shape (n_rows, hidden_size), float32, ``n_rows = floor(D / step)``
    grid : FrameGrid
    metadata : dict of str -> str (model, weights, layer, step, contexts, chunking, durations), for the stream header

    Raises
    ------
    OptionError
        Bad step (e.g. 0), context, layer, chunking or duration.
    AudioDecodeError
        Missing file, no audio track, empty or < 35 ms audio.
    WeightsUnavailableError
        Wrong or missing model directory / weights.
    """
    # validate every option before decoding audio or loading weights
    step_ms = parse_step_ms(step)
    _check_contexts(left_ms, right_ms)
    resolve_duration_ms(0.0, duration_ms)
    audio, _ = read_audio_16k(audio_path)
    own_ms = len(audio) * 1000.0 / SAMPLE_RATE_HZ
    grid = session_grid(step_ms, own_ms, duration_ms=duration_ms, reference=reference_duration_ms,
                        session_duration_ms=session_duration_ms, source=str(audio_path))
    if isinstance(model, LoadedBackbone):
        backbone = model
    elif callable(model):  # a job's loader: weights load once, after the audio proved readable
        backbone = model()
    else:
        backbone = load_w2v_bert(model, device=device, bf16=bf16, precision=precision)
    try:
        hidden = encode_session(audio, backbone, chunk_s, overlap_s, int(layer), int(batch_size), progress)
    except AudioDecodeError as exc:
        raise AudioDecodeError(f"{audio_path}: {exc}") from None
    features = pool_to_grid(hidden, HIDDEN_RATE_HZ, grid, left_ms, right_ms)
    metadata = {
        "model": str(backbone.name), "weights": backbone.weights_label, "precision": backbone.precision,
        "layer": str(int(layer)),
        "frame_step_ms": f"{step_ms:g}", "left_context_ms": f"{left_ms:g}", "right_context_ms": f"{right_ms:g}",
        "chunk_s": f"{chunk_s:g}", "overlap_s": f"{overlap_s:g}", "hidden_rate_hz": f"{HIDDEN_RATE_HZ:g}",
        "hidden_offset_ms": f"{HIDDEN_OFFSET_MS:g}", "audio_duration_ms": f"{own_ms:.3f}",
        "grid_duration_ms": f"{grid.duration_ms:.3f}",
        "alignment": "row k = mean of states in [k*step-left, (k+1)*step+right)",
    }
    return features, grid, metadata


def read_audio_16k(path: str) -> tuple[np.ndarray, int]:
    """Read audio for the encoder: :func:`nova_infant.core.media.read_audio` at 16 kHz.

    Parameters
    ----------
    path : str
        Audio file or a video with an audio track.

    Returns
    -------
    (samples, sample_rate) : (ndarray, float32, shape (n_samples,); int)
        Mono (channel mean) samples in [-1, 1] and 16000 Hz.

    Raises
    ------
    AudioDecodeError
        If the file is missing, has no audio or holds no or non-finite samples.
    """
    return read_audio(str(path), target_sr=SAMPLE_RATE_HZ)


def to_stream(features: np.ndarray, grid: FrameGrid, metadata: dict, name: str | None = None, role: str | None = None,
              session: str | None = None, dataset: str | None = None):
    """Wrap features as an ``SSIStream`` (discover-utils).

    Parameters
    ----------
    features : ndarray, float32, shape (n_frames, dim)
    grid : FrameGrid
        The session grid; the stream's rate is ``1000 / step_ms`` Hz.
    metadata : dict
        Written into the header's ``<meta>`` (model, weights, precision, ...).
    name, role, session, dataset : str, optional
        NOVA metadata.

    Returns
    -------
    discover_utils.data.stream.SSIStream
        Media type ``feature;audio;w2vbert``, dims ``w2vbert_<i>``.

    Raises
    ------
    StreamError
        If the features are empty or not finite.
    """
    dims = [f"w2vbert_{i}" for i in range(features.shape[1])]
    return make_ssi_stream(features, grid.sample_rate_hz, MEDIA_TYPE, dims, name=name, role=role, session=session,
                           dataset=dataset, custom_meta=metadata)
