"""The output frame grid shared by every module of a session (docs/alignment.md).

Rule: a session of duration ``D`` ms and a frame step of ``s`` ms has ``n = floor(D / s)`` output rows; row ``k``
covers ``[k*s, (k+1)*s)`` ms and is described by what happens at its centre ``(k + 0.5) * s``. Every module of
the session picks ``D`` through :func:`session_grid` (priority: option ``duration_ms`` > a reference input > the
NOVA session duration > the module's own input), so streams of one session always have the same number of rows
for the same step.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

import numpy as np

from nova_infant.core.errors import AlignmentError, OptionError
from nova_infant.core.media import media_duration_ms

log = logging.getLogger(__name__)

# Tolerance for float rounding of durations such as 120 frames / 29.97 fps (ms).
_EPS_MS = 1e-6


@dataclass(frozen=True)
class FrameGrid:
    """A regular output grid: ``n_frames`` rows of ``step_ms`` each, starting at 0 ms.

    Attributes
    ----------
    step_ms : float
        Frame step in ms (> 0).
    n_frames : int
        Number of rows (>= 0).
    """

    step_ms: float
    n_frames: int

    @property
    def sample_rate_hz(self) -> float:
        """Rows per second (Hz) = 1000 / ``step_ms``."""
        return 1000.0 / self.step_ms

    @property
    def duration_ms(self) -> float:
        """Time covered by the grid in ms (``n_frames * step_ms``)."""
        return self.n_frames * self.step_ms

    def starts_ms(self) -> np.ndarray:
        """Row start times, float64 array of shape (n_frames,), ms."""
        return np.arange(self.n_frames, dtype=np.float64) * self.step_ms

    def centres_ms(self) -> np.ndarray:
        """Row centre times, float64 array of shape (n_frames,), ms."""
        return (np.arange(self.n_frames, dtype=np.float64) + 0.5) * self.step_ms

    def windows_ms(self, left_ms: float = 0.0, right_ms: float = 0.0) -> np.ndarray:
        """Per-row windows ``[k*s - left, (k+1)*s + right)``, float64 array of shape (n_frames, 2), ms."""
        starts = self.starts_ms()
        return np.stack([starts - left_ms, starts + self.step_ms + right_ms], axis=1)


def frame_grid(duration_ms: float, step_ms: float) -> FrameGrid:
    """Build the grid of a session: ``n = floor(duration_ms / step_ms)`` rows of ``step_ms``.

    Raises
    ------
    OptionError
        If ``step_ms <= 0`` or ``duration_ms`` is negative or not finite.
    """
    step_ms = float(step_ms)
    if not math.isfinite(step_ms) or step_ms <= 0:
        raise OptionError(f"frame step must be a positive number of ms, got {step_ms!r}")
    if not math.isfinite(duration_ms) or duration_ms < 0:
        raise OptionError(f"session duration must be a non-negative number of ms, got {duration_ms!r}")
    return FrameGrid(step_ms=step_ms, n_frames=int(math.floor(duration_ms / step_ms + _EPS_MS)))


_STEP_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|fps|hz)?\s*$", re.IGNORECASE)


def parse_step_ms(value, native_fps: float | None = None) -> float:
    """Parse a frame-step option into ms.

    Accepted: a number (ms), ``"40ms"``, ``"0.04s"``, ``"25fps"`` / ``"25hz"`` (1000/25 ms), or ``"video"`` /
    ``""`` / ``None`` / ``0``-free defaults meaning the native frame period ``1000 / native_fps``.

    Raises
    ------
    OptionError
        If the value is unparsable, zero or negative, or ``"video"`` is asked without ``native_fps``.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "video", "native", "none")):
        if not native_fps or native_fps <= 0:
            raise OptionError("frame step 'video' needs the video's frame rate")
        return 1000.0 / float(native_fps)
    if isinstance(value, bool):
        raise OptionError(f"frame step must be a number of ms, got {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), "ms"
    else:
        match = _STEP_RE.match(str(value))
        if not match:
            raise OptionError(f"cannot parse frame step {value!r}: use e.g. 40ms, 0.04s or 25fps")
        number, unit = float(match.group(1)), (match.group(2) or "ms").lower()
    if number <= 0:
        raise OptionError(f"frame step must be positive, got {value!r}")
    if unit in ("fps", "hz"):
        return 1000.0 / number
    return number * 1000.0 if unit == "s" else number


def resolve_duration_ms(own_duration_ms: float, duration_option=None, reference_duration_ms: float | None = None,
                        source: str = "input", session_duration_ms: float | None = None) -> float:
    """Pick the session duration that defines the grid, in ms (docs/alignment.md).

    Priority: explicit ``duration_option`` (ms, > 0) > ``reference_duration_ms`` (another input of the session,
    e.g. the video for the audio module) > ``session_duration_ms`` (the NOVA session document) >
    ``own_duration_ms`` (the module's own input). 0/None/"" mean unset for every source.

    Parameters
    ----------
    own_duration_ms : float
        Duration of the module's own input, ms.
    duration_option : float or str, optional
        The ``duration_ms`` option, ms.
    reference_duration_ms, session_duration_ms : float, optional
        Duration of the session's reference input and of the NOVA session, ms.
    source : str
        Unused; kept for callers that name the input.

    Returns
    -------
    float, ms.

    Raises
    ------
    OptionError
        If ``duration_option`` is given but not a positive number.
    """
    if duration_option not in (None, "", 0, "0"):
        try:
            value = float(duration_option)
        except (TypeError, ValueError):
            raise OptionError(f"duration_ms must be a number of ms, got {duration_option!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise OptionError(f"duration_ms must be positive, got {duration_option!r}")
        return value
    for candidate in (reference_duration_ms, session_duration_ms):
        if candidate is not None and math.isfinite(float(candidate)) and float(candidate) > 0:
            return float(candidate)
    return float(own_duration_ms)


def _duration_of(value) -> float | None:
    """A duration in ms, or the duration of a media/stream file when given a path; None when unset."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.floating, np.integer)):
        return float(value) if float(value) > 0 else None

    return media_duration_ms(str(value))


def session_grid(step, own=None, *, duration_ms=None, reference=None, session_duration_ms: float | None = None,
                 native_fps: float | None = None, source: str = "input", strict: bool = False) -> FrameGrid:
    """THE grid of a session for one module: the single call every module makes (docs/alignment.md).

    The duration ``D`` is picked by :func:`resolve_duration_ms` (option ``duration_ms`` > ``reference`` input >
    NOVA ``session_duration_ms`` > the module's ``own`` input), the grid has ``floor(D / step)`` rows, and the own
    input's coverage of the grid is checked (:func:`check_coverage`). Two modules of one session given the same
    sources and step therefore always write the same number of rows.

    Parameters
    ----------
    step : float or str
        Frame step: ms, ``"40ms"``, ``"0.04s"``, ``"25fps"`` or ``"video"`` (needs ``native_fps``); see
        :func:`parse_step_ms`.
    own : float or path, optional
        The module's own input: its duration in ms, or its file (video, audio or ``.stream``; read with
        :func:`nova_infant.core.media.media_duration_ms`).
    duration_ms : float or str, optional
        The ``duration_ms`` option (0/None/"" = unset), ms.
    reference : float or path, optional
        The session's reference input (e.g. the video for an audio module): its duration in ms or its file.
    session_duration_ms : float, optional
        Duration recorded in the NOVA session document (database mode), ms.
    native_fps : float, optional
        Frame rate (Hz) of the own video, for ``step="video"``.
    source : str
        Name of the own input, used in messages.
    strict : bool
        Raise instead of warning when the own input and the grid differ by more than one step.

    Returns
    -------
    FrameGrid

    Raises
    ------
    OptionError
        Bad step or duration, or a session shorter than one step (message names ``source``).
    AlignmentError
        With ``strict``, when the own input misses the grid by more than one step.
    VideoDecodeError, AudioDecodeError, StreamError
        When a file given as ``own`` or ``reference`` cannot be read.
    """
    own_ms = _duration_of(own)
    try:
        step_ms = parse_step_ms(step, native_fps=native_fps)
        duration = resolve_duration_ms(own_ms or 0.0, duration_ms, _duration_of(reference), source,
                                       session_duration_ms=_duration_of(session_duration_ms))
        grid = frame_grid(duration, step_ms)
    except OptionError as exc:
        raise OptionError(f"{source}: {exc}") from None
    if grid.n_frames == 0:
        raise OptionError(f"{source}: a session of {duration:.1f} ms holds no row of {step_ms:.3f} ms")
    if own_ms is not None:
        check_coverage(own_ms, grid, source, strict=strict)
    return grid


def check_coverage(media_duration_ms: float, grid: FrameGrid, source: str, strict: bool = False) -> float:
    """Compare a medium's duration with the grid; report a gap of more than one frame.

    Rows past the end of the medium are still produced (edge content is repeated or clipped), never dropped, so
    the row count stays that of the grid. Returns the signed difference media - grid in ms.

    Raises
    ------
    AlignmentError
        If ``strict`` and the difference exceeds one frame step.
    """
    diff = float(media_duration_ms) - grid.duration_ms
    if abs(diff) > grid.step_ms + _EPS_MS:
        message = (f"{source}: lasts {media_duration_ms:.1f} ms but the session grid covers {grid.duration_ms:.1f} ms "
                   f"({grid.n_frames} rows of {grid.step_ms:.3f} ms): mismatch of {diff:+.1f} ms")
        if strict:
            raise AlignmentError(message)
        log.warning(message)
    return diff


def segment_index_at(times_ms: np.ndarray, from_ms: np.ndarray, to_ms: np.ndarray) -> np.ndarray:
    """THE label sampler of the package: which segment holds each time point (frame centres of a grid).

    A time ``t`` belongs to segment ``i`` when ``from_ms[i] <= t < to_ms[i]`` (docs/alignment.md: a frame takes the
    label at its centre). Where segments overlap, the one that starts latest wins (the later one in the given order
    on equal starts): a segment nested inside a longer one labels its own span, and the longer one labels the rest
    of its span again after the nested one ends. ICEP-R training labels (:func:`nova_infant.icep.dataset.
    sample_labels_masked`), the review helpers (:func:`nova_infant.review.annotations.sample_frames`) and the affect
    targets all sample through here, so a frame never gets one label in training and another in review.

    Parameters
    ----------
    times_ms : ndarray of shape (n,), float
        Sorted time points in ms (e.g. ``(k + 0.5) * step_ms``).
    from_ms, to_ms : ndarray of shape (n_segments,), float
        Segment starts and ends in ms, any order.

    Returns
    -------
    ndarray of shape (n,), int64
        Index into the segments, -1 where no segment holds the time.
    """
    times = np.asarray(times_ms, np.float64)
    starts, ends = np.asarray(from_ms, np.float64), np.asarray(to_ms, np.float64)
    out = np.full(len(times), -1, np.int64)
    for i in np.argsort(starts, kind="stable"):  # painted in start order: a later start overwrites
        lo, hi = np.searchsorted(times, [starts[i], ends[i]], side="left")
        out[lo:hi] = i
    return out
