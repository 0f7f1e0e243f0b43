"""Video and audio decoding for every module: decord for video, soundfile/decord for audio, scipy for resampling.

Videos are read in batches of frames on a background thread so decoding overlaps model inference. Audio is
returned as mono float32 at the requested rate. Every failure is a one-line ``VideoDecodeError`` /
``AudioDecodeError`` that names the file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator, Sequence

import numpy as np

from nova_infant.core.errors import AudioDecodeError, VideoDecodeError
from nova_infant.core.prefetch import prefetched
from nova_infant.core.streams import open_ssi_stream
from nova_infant.core.write_policy import register_input

log = logging.getLogger(__name__)

# Containers soundfile (libsndfile) reads directly; anything else goes through decord/FFmpeg.
_SOUNDFILE_EXTS = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".w64", ".caf", ".mp3"}


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, with every frame's time on the session axis.

    Attributes
    ----------
    path : str
    fps : float
        Average frame rate (Hz), as the container reports it.
    n_frames : int
        Decodable frames.
    width, height : int
        Frame size (px).
    start_ms : float
        Time (ms) at which the video stream starts after the container's start (the earliest stream): a video
        whose audio starts 500 ms earlier has ``start_ms = 500``. Session time 0 is the container's start, as in
        a player.
    frame_times_ms : ndarray (n_frames,) float64 or None
        Presentation time (ms, session axis) of each frame, from the container's timestamps (PTS); None when the
        frames are evenly spaced (constant frame rate), where frame ``i`` starts at ``start_ms + i * 1000 / fps``.
    """

    path: str
    fps: float
    n_frames: int
    width: int
    height: int
    start_ms: float = 0.0
    frame_times_ms: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def variable_rate(self) -> bool:
        """True when frames are not evenly spaced (variable frame rate), i.e. :attr:`frame_times_ms` is kept."""
        return self.frame_times_ms is not None

    @property
    def duration_ms(self) -> float:
        """End of the last frame on the session axis (ms): ``start_ms + n_frames * 1000 / fps`` at a constant rate,
        else the last frame's time plus the last frame interval."""
        if self.frame_times_ms is None:
            return self.start_ms + self.n_frames * 1000.0 / self.fps
        times = self.frame_times_ms
        last = float(times[-1] - times[-2]) if len(times) > 1 else 1000.0 / self.fps
        return round(float(times[-1]) + last, 6)  # 1 ns: float noise must not add a grid row

    def frame_starts_ms(self) -> np.ndarray:
        """Presentation time (ms, session axis) of every frame, float64 (n_frames,)."""
        if self.frame_times_ms is not None:
            return np.asarray(self.frame_times_ms, dtype=np.float64)
        return self.start_ms + np.arange(self.n_frames, dtype=np.float64) * 1000.0 / self.fps

    def frame_at_ms(self, times_ms: np.ndarray) -> np.ndarray:
        """Index of the frame on screen at each session time (ms): the last frame whose timestamp is at or
        before it; times before the first frame get frame 0, times after the last get the last frame. int64."""
        times = np.asarray(times_ms, dtype=np.float64)
        if self.frame_times_ms is None:
            idx = np.floor((times - self.start_ms) * self.fps / 1000.0 + 1e-9).astype(np.int64)
        else:  # 1 us tolerance: decord reports timestamps as float32 seconds
            idx = np.searchsorted(self.frame_times_ms, times + 1e-3, side="right").astype(np.int64) - 1
        return np.clip(idx, 0, max(self.n_frames - 1, 0))


def frame_timestamps(reader, path: str, fps: float) -> tuple[float, float, np.ndarray | None]:
    """Frame times of a video on the session axis, from the container's timestamps (PTS).

    PyAV demuxes the video packets (no decoding) and gives their PTS as exact fractions of the stream's time base,
    and the container's start (``container.start_time``, the earliest stream), which is session time 0. If PyAV
    cannot read the file or counts other frames than decord, decord's ``get_frame_timestamp`` (float32 s,
    relative to the video stream's own start) is used with PyAV's stream offset.

    Parameters
    ----------
    reader : decord.VideoReader
        The open reader whose frame indices the times describe (presentation order).
    path : str
    fps : float
        Average frame rate from the header (Hz).

    Returns
    -------
    (start_ms, fps, frame_times_ms) : float ms (first frame's time); the frame rate (Hz: ``fps``, or the rate the
        timestamps are evenly spaced at when the header's average disagrees); float64 (n_frames,) ms on the session
        axis, or None when every frame lies within 0.5 ms of ``start_ms + i * 1000 / fps`` (constant frame rate).

    Raises
    ------
    VideoDecodeError
        If the timestamps cannot be read, are not finite or go backwards.
    """
    n = len(reader)
    times = _packet_times_ms(path)
    if times is None or len(times) != n:
        try:
            relative = np.asarray(reader.get_frame_timestamp(np.arange(n)), dtype=np.float64)[:, 0] * 1000.0
        except Exception as exc:
            raise VideoDecodeError(f"{path}: cannot read frame timestamps ({_first_line(exc)})") from None
        start = _video_start_ms(path) if times is None else float(times[0])
        times = start + relative - (relative[0] if n else 0.0)
    if not np.isfinite(times).all() or np.any(np.diff(times) < 0):
        raise VideoDecodeError(f"{path}: frame timestamps go backwards (corrupt container?)")
    start_ms = float(times[0]) if n else 0.0
    even = start_ms + np.arange(n, dtype=np.float64) * 1000.0 / fps
    if np.max(np.abs(times - even), initial=0.0) < 0.5:
        return start_ms, fps, None
    if n > 1:  # evenly spaced at another rate than the header's average (e.g. an edit list): keep that rate
        rate = float(Fraction(1000.0 / float(np.median(np.diff(times)))).limit_denominator(1001))
        even = start_ms + np.arange(n, dtype=np.float64) * 1000.0 / rate
        if np.max(np.abs(times - even)) < 0.5:
            return start_ms, rate, None
    return start_ms, fps, times


def _packet_times_ms(path: str) -> np.ndarray | None:
    """Sorted PTS (ms after the container's start) of every packet of the first video stream, with PyAV; None if
    PyAV cannot tell."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            base = container.start_time or 0  # in AV_TIME_BASE (us)
            pts = [packet.pts for packet in container.demux(stream) if packet.pts is not None and packet.size]
            if not pts:
                return None
            return (np.sort(np.asarray(pts, dtype=np.float64)) * float(stream.time_base) - base / 1e6) * 1000.0
    except Exception as exc:  # av.error.* (OSError subclasses), IndexError (no video stream)
        log.debug("%s: PyAV cannot read the packet timestamps (%s)", path, _first_line(exc))
        return None


def _video_start_ms(path: str) -> float:
    """Start of the first video stream after the container's start, ms (0 if unknown), with PyAV."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            if stream.start_time is None or stream.time_base is None:
                return 0.0
            stream_start = float(stream.start_time * stream.time_base)
            container_start = (container.start_time / 1e6) if container.start_time is not None else stream_start
    except Exception as exc:  # PyAV raises av.error.* (OSError subclasses) or IndexError (no video stream)
        log.warning("%s: cannot read the video stream's start time (%s); assuming it starts with the file",
                    path, _first_line(exc))
        return 0.0
    return max(0.0, (stream_start - container_start) * 1000.0)


def _audio_start_ms(path: str) -> float:
    """Start of the first audio stream after the container's start, ms (0 if unknown or not a container)."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.audio[0]
            if stream.start_time is None or stream.time_base is None or container.start_time is None:
                return 0.0
            return max(0.0, (float(stream.start_time * stream.time_base) - container.start_time / 1e6) * 1000.0)
    except Exception:  # decord already read the track; an unreadable start time means "starts with the file"
        return 0.0


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
        If the file does not exist, is empty, cannot be opened (the cause asked of FFmpeg: not media, no video
        stream, a stream decord cannot open), has no frames, or a frame cannot be decoded: the file ends before the
        frame count its header announces (truncated), the data is corrupt (FFmpeg fails too), or only decord fails
        (the codec, pixel format, size and rotation are named). Rotated (display-matrix) and odd-sized videos
        decode, rotated as players show them.
    """

    def __init__(self, path: str, width: int | None = None, height: int | None = None):
        import decord

        self.path = str(path)
        register_input(self.path)  # an output of this job may never replace it
        if not os.path.isfile(self.path):
            raise VideoDecodeError(f"{self.path}: no such video file")
        if os.path.getsize(self.path) == 0:
            raise VideoDecodeError(f"{self.path}: empty file (0 bytes), not a video")
        try:
            self._reader = decord.VideoReader(self.path, ctx=decord.cpu(0), width=width or -1,
                                              height=height or -1, num_threads=max(1, (os.cpu_count() or 2) // 2))
        except Exception as exc:  # decord raises its own DECORDError/RuntimeError types
            raise VideoDecodeError(f"{self.path}: cannot open as video ({_open_failure(self.path, exc)})") from None
        n_frames = len(self._reader)
        if n_frames == 0:
            raise VideoDecodeError(f"{self.path}: video has no frames")
        fps = float(self._reader.get_avg_fps())
        if not np.isfinite(fps) or fps <= 0:
            raise VideoDecodeError(f"{self.path}: video has no valid frame rate ({fps})")
        first = self._decode([0])
        start_ms, fps, times = frame_timestamps(self._reader, self.path, fps)
        self.info = VideoInfo(self.path, fps, n_frames, int(first.shape[2]), int(first.shape[1]), start_ms, times)
        # A truncated file still announces its original frame count: prove the last frame decodes.
        self._decode([n_frames - 1])

    def _decode(self, indices: Sequence[int]) -> np.ndarray:
        try:
            return self._reader.get_batch(list(indices)).asnumpy()
        except Exception as exc:
            last = max(indices) if len(indices) else 0
            raise VideoDecodeError(f"{self.path}: cannot decode frame {last} of {len(self._reader)}: "
                                   f"{_decode_failure(self.path, len(self._reader), exc)}") from None

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

        def decoded():
            for batch in batches:
                unique, inverse = np.unique(batch, return_inverse=True)
                yield batch, self._decode(unique.tolist())[inverse]

        yield from prefetched(decoded, prefetch, name="video-decode")


def probe_video(path: str) -> VideoInfo:
    """Frame count, rate, size and duration of a video without decoding it (:class:`VideoSource`).

    Parameters
    ----------
    path : str

    Returns
    -------
    VideoInfo

    Raises
    ------
    VideoDecodeError
        If the file is missing or has no readable video stream.
    """
    return VideoSource(path).info


def audio_duration_ms(path: str) -> float:
    """Duration of an audio file (or a video's audio track) in ms, without decoding all samples.

    Raises
    ------
    AudioDecodeError
        If the file is missing or holds no readable audio.
    """
    path = str(path)
    register_input(path)
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
        If the file is missing, has no audio stream, holds no samples, or holds NaN/infinite samples.
    """
    register_input(str(path))  # an output of this job may never replace it
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
            # decord drops the audio stream's start offset: pad so sample 0 is the container's start
            pad = int(round(_audio_start_ms(path) * sr / 1000.0))
            if pad > 0:
                mono = np.concatenate([np.zeros(pad, np.float32), mono])
        except Exception as exc:
            message = _first_line(exc)
            if "audio stream" in message.lower():
                raise AudioDecodeError(f"{path}: file has no audio track") from None
            raise AudioDecodeError(f"{path}: cannot read audio ({message})") from None
    if mono.size == 0:
        raise AudioDecodeError(f"{path}: audio holds no samples")
    bad = ~np.isfinite(mono)
    if bad.any():  # a NaN would poison every window it falls into, silently
        first = int(np.argmax(bad))
        raise AudioDecodeError(f"{path}: audio holds {int(bad.sum())} NaN/infinite samples (first at "
                               f"{first / float(sr):.3f} s)")
    return resample(mono, int(sr), target_sr), (int(target_sr) if target_sr else int(sr))


def resample(signal: np.ndarray, sr_in: int, sr_out: int | None) -> np.ndarray:
    """Resample a mono signal with a polyphase filter (``scipy.signal.resample_poly``, ratio reduced by
    ``fractions.Fraction``).

    Parameters
    ----------
    signal : ndarray, float, shape (n_samples,)
    sr_in : int
        Input rate in Hz.
    sr_out : int or None
        Output rate in Hz; None or equal to ``sr_in`` returns the input as float32.

    Returns
    -------
    ndarray, float32, shape (about n_samples * sr_out / sr_in,)
    """
    if not sr_out or int(sr_in) == int(sr_out):
        return np.asarray(signal, dtype=np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(int(sr_out), int(sr_in))
    return resample_poly(np.asarray(signal, dtype=np.float32), ratio.numerator, ratio.denominator).astype(np.float32)


def _stream_facts(stream) -> str:
    """``h264 yuv420p 175x143, rotated 90°`` of a PyAV video stream (what decides whether a decoder copes)."""
    ctx = stream.codec_context
    facts = f"{ctx.name} {ctx.pix_fmt or '?'} {ctx.width}x{ctx.height}"
    rotation = (stream.metadata or {}).get("rotate")
    side = getattr(stream, "side_data", None)
    if rotation is None and side is not None:
        try:
            rotation = side.get("DISPLAYMATRIX")
        except Exception:  # older PyAV: no side data access
            rotation = None
    return facts + (f", rotated {rotation}°" if rotation not in (None, "", 0, "0") else "")


def _open_failure(path: str, exc: BaseException) -> str:
    """The true cause of a file decord cannot open, asked of FFmpeg through PyAV: not a media file, no video
    stream (e.g. audio only), or as :func:`_decode_failure` (truncated, corrupt, or a stream only decord fails on)."""
    import av

    try:
        with av.open(path) as container:
            if not len(container.streams):
                return ("FFmpeg finds no stream in it: the file is truncated before its index (an MP4 whose 'moov' "
                        "was never written) or not a media file")
            if not container.streams.video:
                kinds = sorted({s.type for s in container.streams})
                return f"the file has no video stream ({', '.join(kinds)} only)"
            announced = int(container.streams.video[0].frames or 0)
    except Exception as probe:  # av.error.*: FFmpeg cannot read it either
        return f"FFmpeg cannot read it: {_first_line(probe)}"
    return _decode_failure(path, announced, exc)


def _decode_failure(path: str, n_frames: int, exc: BaseException) -> str:
    """The true cause of a video decord cannot decode: the file ends early (fewer video packets than the frames
    its header announces, or the demuxer stops with an error), FFmpeg (PyAV) cannot decode it either (its
    message), or only decord fails (the stream's codec, pixel format, size and rotation, and how to re-encode)."""
    import av

    packets, error = 0, None
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            facts = _stream_facts(stream)
            try:
                for packet in container.demux(stream):
                    packets += 1 if packet.size else 0
            except Exception as probe:  # the data ends or breaks before the last packet
                error = probe
    except Exception as probe:
        return f"FFmpeg cannot read it either ({_first_line(probe)})"
    if packets < n_frames or error is not None:
        return (f"the file is truncated or broken after {packets} of the {n_frames or '?'} frames its header "
                f"announces ({facts}{'; ' + _first_line(error) if error is not None else ''})")
    try:
        with av.open(path) as container:
            for _ in container.decode(video=0):
                pass
    except Exception as probe:
        return f"the video data is corrupt: FFmpeg fails too ({_first_line(probe)}; {facts})"
    return (f"decord fails ({_first_line(exc)}) on a stream FFmpeg decodes ({facts}); re-encode with: "
            f"ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4")


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
        return open_ssi_stream(path).duration_ms
    if ext in _SOUNDFILE_EXTS:
        return audio_duration_ms(path)
    return probe_video(path).duration_ms
