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

import numpy as np

from nova_infant.core.errors import AnnotationError, NovaInfantError, OptionError
from nova_infant.core.grid import parse_step_ms

log = logging.getLogger("nova_infant")


# ---------------------------------------------------------------- scalar checkers


def _number(value: Any, name: str, expected: str) -> float:
    """``value`` (a number or its text, not a bool) as a float, possibly NaN/inf; else ``OptionError``
    ``option <name>: expected <expected>, got <value>``."""
    if isinstance(value, bool):
        raise OptionError(f"option {name}: expected {expected}, got {value!r}")
    try:
        return float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise OptionError(f"option {name}: expected {expected}, got {value!r}") from None


def int_option(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int within ``[minimum, maximum]``; "3", 3 and 3.0 are accepted, 3.5 and "x" are not.

    Raises
    ------
    OptionError
        ``option <name>: ...`` for a non-integer or out-of-range value.
    """
    number = _number(value, name, "an integer")
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
    number = _number(value, name, "a number")
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


# ---------------------------------------------------------------- training targets (every trainer)


def check_class_targets(labels, names, where: str) -> list[str]:
    """Refuse to train a classifier on fewer than two classes (it would learn a constant, and its macro-F1 and
    kappa would mean nothing). Called by every trainer over the pooled targets of all its training sessions:
    ICEP-R (:func:`nova_infant.icep.pipeline.check_consistent`), cry reason, the tagger heads, affect expressions.

    Parameters
    ----------
    labels : int array (n,) or (n, n_classes) in {0, 1}
        Class id per frame/window (negative = masked, ignored), or multi-label indicator rows.
    names : list of str
        Class names by id (column order for multi-label rows).
    where : str
        Trainer and sessions named in the error (e.g. ``"ICEP-R training on sessions S1, S2"``).

    Returns
    -------
    list of str
        Warnings (multi-label only): one per class that is present in every sample or in none. A lab may mean
        that (a scheme class nobody coded yet), so it is said, not refused; the caller logs it and records it in
        the model's description.

    Raises
    ------
    OptionError
        ``<where>: only class 'x' occurs in the training labels ...`` (or none occurs); multi-label: every class
        is the same in every sample.
    """
    y = np.asarray(labels)
    if y.ndim == 2:
        if not len(y):
            return []
        constant = [j for j in range(y.shape[1]) if (y[:, j] == y[0, j]).all()]
        said = [f"{where}: class {names[j]!r} is {'present' if y[0, j] else 'absent'} in every training sample, "
                f"so it cannot be learnt (the head will {'always' if y[0, j] else 'never'} predict it); add "
                f"sessions with and without it or leave it out (option classes)" for j in constant]
        if len(constant) == y.shape[1]:
            raise OptionError(said[0].replace("so it cannot be learnt", "as is every other class, so nothing can be "
                                                                        "learnt"))
        return said
    present = sorted({int(v) for v in np.unique(y[y >= 0])}) if y.size else []
    shown = [names[i] if 0 <= i < len(names) else str(i) for i in present]
    if len(present) < 2:
        what = f"only class {shown[0]!r} occurs" if shown else "no class occurs"
        raise OptionError(f"{where}: {what} in the training labels; a classifier needs two classes or more "
                          f"(code more sessions, or check the annotator and label set)")
    return []


def check_continuous_targets(values, where: str, low: float | None = None, high: float | None = None) -> None:
    """Refuse continuous training targets that are constant or outside the scheme's range (a regressor trained on
    one value predicts that value; values outside ``[low, high]`` mean another unit or a broken file).

    Parameters
    ----------
    values : float array
        Targets (NaN = not coded, ignored).
    where : str
        Trainer, session or file named in the error.
    low, high : float, optional
        The scheme's range (``min``/``max`` of a continuous NOVA scheme).

    Raises
    ------
    OptionError
        ``<where>: every coded value is <v>`` (constant), no coded value, or the first value outside the range.
    """
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        raise OptionError(f"{where}: no coded value to train on (every value is NaN)")
    if low is not None and high is not None:
        out = v[(v < low) | (v > high)]
        if out.size:
            raise OptionError(f"{where}: value {out[0]:g} is outside the scheme's range [{low:g}, {high:g}] "
                              f"({out.size} values); code in the scheme's unit or fix its min/max")
    if np.ptp(v) == 0:
        raise OptionError(f"{where}: every coded value is {v[0]:g}; a regressor needs targets that vary "
                          f"(code more sessions, or check the annotator)")


def check_continuous_range(values, low: float, high: float, source: str) -> None:
    """Refuse a continuous annotation whose coded scores (NaN = not coded) leave its scheme's range.

    Parameters
    ----------
    values : float array
        Scores of one annotation.
    low, high : float
        The scheme's ``min``/``max``.
    source : str
        The file (or session) named in the error.

    Raises
    ------
    AnnotationError
        ``<source>: score <v> (sample <i>) is outside the scheme's range [low, high] (<n> scores)``.
    """
    v = np.asarray(values, np.float64).ravel()
    bad = np.flatnonzero(np.isfinite(v) & ((v < low) | (v > high)))
    if len(bad):
        raise AnnotationError(f"{source}: score {v[bad[0]]:g} (sample {bad[0]}) is outside the scheme's range "
                              f"[{low:g}, {high:g}] ({len(bad)} scores); code in the scheme's unit or fix its min/max")


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
