"""The output frame grid shared by every module of a session (docs/alignment.md).

Rule: a session of duration ``D`` ms and a frame step of ``s`` ms has ``n = floor(D / s)`` output rows; row ``k``
covers ``[k*s, (k+1)*s)`` ms and is described by what happens at its centre ``(k + 0.5) * s``. Every extractor of
the session uses the same ``D`` (the session duration in NOVA database mode; in file mode the duration of a
reference input or an explicit ``duration_ms`` option, else the module's own input), so streams of one session
always have the same number of rows for the same step.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

import numpy as np

from nova_infant.core.errors import AlignmentError, OptionError

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
                        source: str = "input") -> float:
    """Pick the session duration that defines the grid, in ms.

    Priority: explicit ``duration_option`` (ms, > 0) > ``reference_duration_ms`` (another input of the session,
    e.g. the video for the audio module) > ``own_duration_ms``. A ``duration_option`` of 0/None/"" means unset.

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
    if reference_duration_ms is not None and reference_duration_ms > 0:
        return float(reference_duration_ms)
    return float(own_duration_ms)


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
