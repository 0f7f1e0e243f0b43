"""Video and audio decoding for every module: decord for video, soundfile/decord for audio, scipy for resampling.

Videos are read in batches of frames on a background thread so decoding overlaps model inference. Audio is
returned as mono float32 at the requested rate. Every failure is a one-line ``VideoDecodeError`` /
``AudioDecodeError`` that names the file.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Sequence

import numpy as np

from .errors import AudioDecodeError, VideoDecodeError

# Containers soundfile (libsndfile) reads directly; anything else goes through decord/FFmpeg.
_SOUNDFILE_EXTS = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".w64", ".caf", ".mp3"}


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds.

    Attributes: ``path``; ``fps`` (average frame rate, Hz); ``n_frames`` (decodable frames); ``width``,
    ``height`` (px); ``duration_ms`` (= n_frames / fps * 1000).
    """

    path: str
    fps: float
    n_frames: int
    width: int
    height: int

    @property
    def duration_ms(self) -> float:
        return self.n_frames * 1000.0 / self.fps

    def frame_at_ms(self, times_ms: np.ndarray) -> np.ndarray:
        """Index of the frame on screen at each time (ms), clipped to the last frame; int64 array."""
        idx = np.floor(np.asarray(times_ms, dtype=np.float64) * self.fps / 1000.0 + 1e-9).astype(np.int64)
        return np.clip(idx, 0, max(self.n_frames - 1, 0))


class VideoSource:
    """A video file opened for random access with decord.

    Parameters
    ----------
    path : str
        Video file (any container FFmpeg reads).
    width, height : int, optional
        Let the decoder scale every frame to this size (px); -1/None keeps the original.

    Raises
    ------
    VideoDecodeError
        If the file does not exist, cannot be opened, has no frames, or ends before the frame count its header
        announces (truncated file).
    """

    def __init__(self, path: str, width: int | None = None, height: int | None = None):
        import decord

        self.path = str(path)
        if not os.path.isfile(self.path):
            raise VideoDecodeError(f"{self.path}: no such video file")
        try:
            self._reader = decord.VideoReader(self.path, ctx=decord.cpu(0), width=width or -1,
                                              height=height or -1, num_threads=max(1, (os.cpu_count() or 2) // 2))
        except Exception as exc:  # decord raises its own DECORDError/RuntimeError types
            raise VideoDecodeError(f"{self.path}: cannot open as video ({_first_line(exc)})") from None
        n_frames = len(self._reader)
        if n_frames == 0:
            raise VideoDecodeError(f"{self.path}: video has no frames")
        fps = float(self._reader.get_avg_fps())
        if not np.isfinite(fps) or fps <= 0:
            raise VideoDecodeError(f"{self.path}: video has no valid frame rate ({fps})")
        first = self._decode([0])
        self.info = VideoInfo(self.path, fps, n_frames, int(first.shape[2]), int(first.shape[1]))
        # A truncated file still announces its original frame count: prove the last frame decodes.
        self._decode([n_frames - 1])

    def _decode(self, indices: Sequence[int]) -> np.ndarray:
        try:
            return self._reader.get_batch(list(indices)).asnumpy()
        except Exception as exc:
            last = max(indices) if len(indices) else 0
            raise VideoDecodeError(f"{self.path}: cannot decode frame {last} of {len(self._reader)} "
                                   f"(file truncated or corrupt? {_first_line(exc)})") from None

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Decode frames by index: uint8 array of shape (len(indices), H, W, 3), RGB."""
        return self._decode(indices)

    def iter_batches(self, indices: Sequence[int], batch_size: int, prefetch: int = 2
                     ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(frame_indices, frames)`` batches, decoding the next batches on a background thread.

        ``frames`` is uint8 of shape (b, H, W, 3). Repeated indices are decoded once per batch and repeated.
        Memory stays bounded by ``(prefetch + 1) * batch_size`` frames.

        Raises
        ------
        VideoDecodeError
            As soon as a batch fails to decode (the error of the worker thread is re-raised here).
        """
        indices = np.asarray(indices, dtype=np.int64)
        batches = [indices[i:i + batch_size] for i in range(0, len(indices), max(1, int(batch_size)))]
        slots: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        stop = threading.Event()

        def worker():
            try:
                for batch in batches:
                    if stop.is_set():
                        return
                    unique, inverse = np.unique(batch, return_inverse=True)
                    slots.put((batch, self._decode(unique.tolist())[inverse]))
            except BaseException as exc:  # handed to the consumer
                slots.put(exc)
                return
            slots.put(None)

        thread = threading.Thread(target=worker, name="video-decode", daemon=True)
        thread.start()
        try:
            while True:
                item = slots.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():  # unblock a worker waiting on a full queue
                try:
                    slots.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.05)


def probe_video(path: str) -> VideoInfo:
    """Open ``path`` and return its :class:`VideoInfo` (raises ``VideoDecodeError``)."""
    return VideoSource(path).info


def audio_duration_ms(path: str) -> float:
    """Duration of an audio file (or a video's audio track) in ms, without decoding all samples.

    Raises
    ------
    AudioDecodeError
        If the file is missing or holds no readable audio.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise AudioDecodeError(f"{path}: no such audio file")
    if os.path.splitext(path)[1].lower() in _SOUNDFILE_EXTS:
        import soundfile

        try:
            info = soundfile.info(path)
        except Exception as exc:
            raise AudioDecodeError(f"{path}: cannot read audio ({_first_line(exc)})") from None
        return info.frames * 1000.0 / info.samplerate
    audio, sr = read_audio(path)
    return len(audio) * 1000.0 / sr


def read_audio(path: str, target_sr: int | None = 16000) -> tuple[np.ndarray, int]:
    """Read an audio file or a video's audio track as mono float32.

    Channels are averaged (downmix); the signal is resampled to ``target_sr`` Hz with a polyphase filter
    (``scipy.signal.resample_poly``) unless ``target_sr`` is None. WAV/FLAC/OGG are read with soundfile; the
    audio track of a video container is decoded and resampled by decord/FFmpeg (at 16 kHz if ``target_sr`` is
    None).

    Returns
    -------
    (samples, sample_rate) : (ndarray of shape (n,), float32 in [-1, 1]; int Hz)

    Raises
    ------
    AudioDecodeError
        If the file is missing, has no audio stream, or holds no samples.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise AudioDecodeError(f"{path}: no such audio file")
    ext = os.path.splitext(path)[1].lower()
    if ext in _SOUNDFILE_EXTS:
        import soundfile

        try:
            data, sr = soundfile.read(path, dtype="float32", always_2d=True)
        except Exception as exc:
            raise AudioDecodeError(f"{path}: cannot read audio ({_first_line(exc)})") from None
        mono = data.mean(axis=1)
    else:
        import decord

        try:
            # decord (FFmpeg) resamples container audio itself; it cannot report a native rate.
            sr = int(target_sr or 16000)
            reader = decord.AudioReader(path, ctx=decord.cpu(0), sample_rate=sr, mono=True)
            mono = reader[:].asnumpy().reshape(-1).astype(np.float32)
        except Exception as exc:
            message = _first_line(exc)
            if "audio stream" in message.lower():
                raise AudioDecodeError(f"{path}: file has no audio track") from None
            raise AudioDecodeError(f"{path}: cannot read audio ({message})") from None
    if mono.size == 0:
        raise AudioDecodeError(f"{path}: audio holds no samples")
    return resample(mono, int(sr), target_sr), (int(target_sr) if target_sr else int(sr))


def resample(signal: np.ndarray, sr_in: int, sr_out: int | None) -> np.ndarray:
    """Resample a 1-D float signal from ``sr_in`` to ``sr_out`` Hz (scipy polyphase); float32 out."""
    if not sr_out or int(sr_in) == int(sr_out):
        return np.asarray(signal, dtype=np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(int(sr_out), int(sr_in))
    return resample_poly(np.asarray(signal, dtype=np.float32), ratio.numerator, ratio.denominator).astype(np.float32)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:200]


def media_duration_ms(path: str) -> float:
    """Duration in ms of a video (frames / fps), an audio file, or an SSI ``.stream`` (rows / rate).

    Used to put every module of a session on the grid of a reference input (docs/alignment.md).

    Raises
    ------
    VideoDecodeError, AudioDecodeError, StreamError
        If the file cannot be read as its extension says.
    """
    ext = os.path.splitext(str(path))[1].lower()
    if ext == ".stream":
        from .nova_io import open_ssi_stream

        return open_ssi_stream(path).duration_ms
    if ext in _SOUNDFILE_EXTS:
        return audio_duration_ms(path)
    return probe_video(path).duration_ms
