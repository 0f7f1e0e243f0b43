"""Up-front checks of option values and of a batch of training sessions, each failure a one-line ``OptionError``
naming the option (and the file). Which option of which module gets which check is declared once, in the module
specs (:mod:`nova_infant.specs`, ``Option.parse``); the checkers here are what those declarations call.

Options arrive as Python values from argparse or as strings from NOVA (``"0.5"``, ``"True"``); every checker
accepts both. A check runs before any file is read or written, so a bad option never leaves a partial output.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from nova_infant.core.errors import NovaInfantError, OptionError
from nova_infant.core.grid import parse_step_ms

log = logging.getLogger("nova_infant")


# ---------------------------------------------------------------- scalar checkers


def int_option(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int within ``[minimum, maximum]``; "3", 3 and 3.0 are accepted, 3.5 and "x" are not.

    Raises
    ------
    OptionError
        ``option <name>: ...`` for a non-integer or out-of-range value.
    """
    if isinstance(value, bool):
        raise OptionError(f"option {name}: expected an integer, got {value!r}")
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise OptionError(f"option {name}: expected an integer, got {value!r}") from None
    if not math.isfinite(number) or number != int(number):
        raise OptionError(f"option {name}: expected an integer, got {value!r}")
    number = int(number)
    _check_range(number, name, minimum, maximum, value)
    return number


def float_option(value: Any, name: str, minimum: float | None = None, maximum: float | None = None,
                 min_open: bool = False, max_open: bool = False) -> float:
    """``value`` as a finite float within its bounds (``min_open``/``max_open``: bound excluded).

    Raises
    ------
    OptionError
        ``option <name>: ...`` for a non-number, NaN/inf or out-of-range value.
    """
    if isinstance(value, bool):
        raise OptionError(f"option {name}: expected a number, got {value!r}")
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise OptionError(f"option {name}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise OptionError(f"option {name}: expected a finite number, got {value!r}")
    if minimum is not None and (number < minimum or (min_open and number == minimum)):
        raise OptionError(f"option {name}: must be {'>' if min_open else '>='} {minimum:g}, got {value!r}")
    if maximum is not None and (number > maximum or (max_open and number == maximum)):
        raise OptionError(f"option {name}: must be {'<' if max_open else '<='} {maximum:g}, got {value!r}")
    return number


def choice_option(value: Any, name: str, choices: tuple) -> str:
    """``value`` as a lower-case string among ``choices``. Raises ``OptionError``."""
    text = str(value).strip().lower()
    if text not in choices:
        raise OptionError(f"option {name}: expected one of {', '.join(choices)}, got {value!r}")
    return text


def device_option(value: Any, name: str = "device") -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:<n>`` (availability is checked when the model is placed)."""
    text = str(value or "auto").strip().lower()
    head, _, index = text.partition(":")
    if head not in ("auto", "cpu", "cuda", "mps") or (index and not (head == "cuda" and index.isdigit())):
        raise OptionError(f"option {name}: expected auto, cpu, cuda or cuda:<n>, got {value!r}")
    return text


def precision_option(value: Any, name: str = "precision") -> str:
    """``auto``, ``fp32``, ``bf16`` or ``int8`` (whether the device supports it is checked when the model loads,
    :func:`nova_infant.core.backbones.resolve_precision`). Raises ``OptionError``."""
    return choice_option(value if str(value or "").strip() else "auto", name, ("auto", "fp32", "bf16", "int8"))


def _check_range(number, name, minimum, maximum, given) -> None:
    if minimum is not None and number < minimum:
        raise OptionError(f"option {name}: must be >= {minimum}, got {given!r}")
    if maximum is not None and number > maximum:
        raise OptionError(f"option {name}: must be <= {maximum}, got {given!r}")


def folds_for(folds: int, n_sessions: int, where: str, name: str = "folds") -> int:
    """The folds cross-validation will use for ``n_sessions`` usable sessions, said out loud.

    Raises
    ------
    OptionError
        If cross-validation is asked for (folds >= 2) with fewer than 2 usable sessions.
    """
    if folds >= 2 and n_sessions < 2:
        raise OptionError(f"{where}: option {name}={folds} needs at least 2 usable sessions, got {n_sessions}; "
                          f"use {name} 0 to train without cross-validation")
    if folds > n_sessions:
        log.warning("%s: option %s=%d but only %d usable sessions: using %d folds (one session each)", where, name,
                    folds, n_sessions, n_sessions)
        return n_sessions
    return folds


# ---------------------------------------------------------------- batches of training sessions


def usable_training_sessions(sessions: list, where: str = "") -> tuple[list, list[tuple[str, str]]]:
    """Drop sessions that cannot be trained on, reporting each: sessions without one labelled frame (every
    segment garbage, unmapped or masked), and sessions whose fused feature dimension or frame step differs from
    the most common one among the others.

    Returns
    -------
    (kept sessions, [(session name, one-line reason)])
    """
    kept, skipped = [], []
    for s in sessions:
        if not (s.labels >= 0).any():
            skipped.append((s.name, "no labelled frame (every segment is garbage or outside the label set): "
                                    "not trained on"))
        else:
            kept.append(s)
    if kept:
        from collections import Counter

        shapes = Counter((s.dim, round(s.step_ms, 3)) for s in kept)
        (dim, step), _ = shapes.most_common(1)[0]
        odd = [s for s in kept if (s.dim, round(s.step_ms, 3)) != (dim, step)]
        for s in odd:
            skipped.append((s.name, f"{s.dim} dims at {s.step_ms:.2f} ms, but the other sessions have {dim} dims at "
                                    f"{step:.2f} ms: not trained on"))
        kept = [s for s in kept if s not in odd]
    for name, reason in skipped:
        log.error("%ssession %s: skipped: %s", f"{where}: " if where else "", name, reason)
    return kept, skipped


# ---------------------------------------------------------------- taggers


def check_threshold(value: Any, name: str = "threshold") -> float:
    """An event probability threshold, 0 < t < 1. Raises ``OptionError``."""
    return float_option(value, name, 0.0, 1.0, min_open=True, max_open=True)


def check_duration_ms(value: Any, name: str = "duration_ms") -> float | None:
    """A session duration option in ms: None/0/"" = unset, else > 0. Raises ``OptionError``."""
    if value in (None, "", "0", 0, 0.0, "None"):
        return None
    return float_option(value, name, 0.0, None, min_open=True)


def one_line(exc: BaseException) -> str:
    """Text of an error on one line (first line; ``OSError``: ``<path>: <strerror>``)."""
    if isinstance(exc, OSError) and not isinstance(exc, NovaInfantError):
        where = exc.filename if exc.filename is not None else ""
        text = exc.strerror or str(exc)
        return f"{where}: {text}" if where else text
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# ---------------------------------------------------------------- frame steps


def step_option(value, name: str = "frame_step", allow_video: bool = False):
    """A frame-step option in ms (``nova_infant.core.grid.parse_step_ms``: ``40ms``, ``0.04s``, ``25fps``, a number of
    ms); ``video`` (the native frame period) only where ``allow_video``. Returns float ms or ``"video"``.

    Raises
    ------
    OptionError
        ``option <name>: ...`` for 0, a negative or an unparsable step.
    """
    if allow_video and (value is None or str(value).strip().lower() in ("", "video", "native", "none")):
        return "video"
    try:
        return parse_step_ms(value)
    except OptionError as exc:
        raise OptionError(f"option {name}: {exc}") from None
