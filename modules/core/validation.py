"""Up-front checks of module options and of a batch of training sessions: one place per module, shared by the
command line and the DISCOVER adapters, each failure a one-line ``OptionError`` naming the option (and the file).

Options arrive as Python values from argparse or as strings from NOVA (``"0.5"``, ``"True"``); every checker
accepts both. A check runs before any file is read or written, so a bad option never leaves a partial output.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from nova_infant.core.errors import NovaInfantError, OptionError

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


# ---------------------------------------------------------------- ICEP-R training (CLI icep cv/train, icep_train)

#: Options of :class:`nova_infant.icep.training.TrainConfig` a grid point may override, with their checkers.
GRID_KEYS = ("model", "window", "stride", "hidden", "layers", "dropout", "optimizer", "lr", "weight_decay",
             "batch_size", "max_epochs", "patience", "normalise")


def _train_checks() -> dict:
    return {
        "model": lambda v: choice_option(v, "model", ("bilstm", "mlp")),
        "window": lambda v: int_option(v, "window", 1, 100000),
        "stride": lambda v: int_option(v, "stride", 1, 100000),
        "hidden": lambda v: int_option(v, "hidden", 1, 65536),
        "layers": lambda v: int_option(v, "layers", 1, 64),
        "dropout": lambda v: float_option(v, "dropout", 0.0, 1.0, max_open=True),
        "optimizer": lambda v: choice_option(v, "optimizer", ("adam", "sgd")),
        "lr": lambda v: float_option(v, "lr", 0.0, 10.0, min_open=True),
        "weight_decay": lambda v: float_option(v, "weight_decay", 0.0, 1.0),
        "batch_size": lambda v: int_option(v, "batch_size", 1, 1 << 20),
        "max_epochs": lambda v: int_option(v, "epochs", 1, 1000000),
        "patience": lambda v: int_option(v, "patience", 1, 1000000),
        "seed": lambda v: int_option(v, "seed", 0, 2 ** 32 - 1),
        "device": device_option,
        "normalise": lambda v: choice_option(str(v).strip().lower(), "normalise", ("session", "fold")),
    }


def check_train_config(values: dict) -> dict:
    """Check every ICEP-R training hyper-parameter (keys of ``TrainConfig``; ``epochs`` is ``max_epochs``).

    Ranges: window, stride, hidden, layers, batch_size, epochs, patience >= 1; stride <= window (else frames between
    windows are never seen); 0 <= dropout < 1; 0 < lr <= 10; model bilstm|mlp; optimizer adam|sgd; normalise session|fold.

    Returns
    -------
    dict : the values cast to their types.

    Raises
    ------
    OptionError
        The first bad option, in one line.
    """
    checks = _train_checks()
    out = {key: checks[key](value) if key in checks else value for key, value in values.items()}
    if "window" in out and "stride" in out and out["stride"] > out["window"]:
        raise OptionError(f"option stride: must be <= window ({out['window']} frames), got {out['stride']}: "
                          f"frames between windows would never be seen")
    return out


def parse_grid(text: Any, base: dict | None = None, source: str = "option grid") -> list[dict] | None:
    """Parse the hyper-parameter grid: a JSON list of objects overriding :data:`GRID_KEYS`.

    Each point is checked with the base configuration ``base`` (so ``{"stride": 80}`` with window 50 fails).

    Returns
    -------
    list of dict, or None when ``text`` is empty.

    Raises
    ------
    OptionError
        For text that is not JSON, not a non-empty list of objects, an unknown key or a bad value.
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, str):
        try:
            grid = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OptionError(f"{source}: not JSON ({exc.msg} at character {exc.pos}): {text[:60]!r}") from None
    else:
        grid = text
    if not isinstance(grid, list) or not grid or not all(isinstance(p, dict) for p in grid):
        raise OptionError(f"{source}: expected a non-empty JSON list of objects, e.g. [{{\"lr\": 0.001}}], got {text!r}"[:200])
    points = []
    for point in grid:
        unknown = sorted(set(point) - set(GRID_KEYS))
        if unknown:
            raise OptionError(f"{source}: unknown key(s) {', '.join(unknown)} (known: {', '.join(GRID_KEYS)})")
        merged = check_train_config({**(base or {}), **point})
        points.append({key: merged[key] for key in point})
    return points


def check_folds(folds: Any, name: str = "folds") -> int:
    """Outer cross-validation folds: 0 (no cross-validation) or >= 2. Raises ``OptionError``."""
    value = int_option(folds, name, 0, 1000)
    if value == 1:
        raise OptionError(f"option {name}: 1 fold has no test sessions; use 0 (no cross-validation) or >= 2")
    return value


def check_inner_folds(value: Any, name: str = "inner_folds") -> int:
    """Folds of the group-wise inner model-selection CV: >= 2. Raises ``OptionError``."""
    return int_option(value, name, 2, 1000)


def check_val_fraction(value: Any, name: str = "val_fraction") -> float:
    """Share of training sessions held out for early stopping: 0 <= v < 1. Raises ``OptionError``."""
    return float_option(value, name, 0.0, 1.0, max_open=True)


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


# ---------------------------------------------------------------- one check per module (CLI and du-process)


def step_option(value, name: str = "frame_step", allow_video: bool = False):
    """A frame-step option in ms (``nova_infant.core.grid.parse_step_ms``: ``40ms``, ``0.04s``, ``25fps``, a number of
    ms); ``video`` (the native frame period) only where ``allow_video``. Returns float ms or ``"video"``.

    Raises
    ------
    OptionError
        ``option <name>: ...`` for 0, a negative or an unparsable step.
    """
    from nova_infant.core.grid import parse_step_ms

    if allow_video and (value is None or str(value).strip().lower() in ("", "video", "native", "none")):
        return "video"
    try:
        return parse_step_ms(value)
    except OptionError as exc:
        raise OptionError(f"option {name}: {exc}") from None


def check_audio_event_options(threshold=None, min_event_ms=0, step="40ms", duration_ms=None,
                              crying_model="default") -> dict:
    """Audio event tagger (``taggers audio-events``, ``audio_events``): threshold ``auto``/unset (-> None: the
    per-class fitted thresholds) or 0 < threshold < 1, min_event_ms >= 0, a positive step, duration_ms unset or
    > 0, crying_model ``default`` or ``off``. Raises ``OptionError``."""
    auto = threshold is None or str(threshold).strip().lower() in ("", "auto", "none")
    if str(crying_model) not in ("default", "off"):
        raise OptionError(f"option crying_model: expected 'default' or 'off', got {crying_model!r}")
    return {"threshold": None if auto else check_threshold(threshold),
            "min_event_ms": float_option(min_event_ms, "min_event_ms", 0.0), "step_ms": step_option(step),
            "duration_ms": check_duration_ms(duration_ms), "crying_model": str(crying_model)}


def check_emotion_options(sample_fps="1", smooth=3, step="40ms", duration_ms=None, face="largest") -> dict:
    """Emotion tagger (``taggers emotion``, ``emotion_tagger``): sample_fps 'all' or 0 < rate <= 1000 Hz,
    smooth >= 1, a positive step, duration_ms unset or > 0, face largest|central|left|right."""
    if str(sample_fps).strip().lower() not in ("all", "every", "0", ""):
        float_option(sample_fps, "sample_fps", 0.0, 1000.0, min_open=True)
    return {"sample_fps": sample_fps, "smooth": int_option(smooth, "smooth", 1, 10000), "step_ms": step_option(step),
            "duration_ms": check_duration_ms(duration_ms),
            "face": choice_option(face, "face", ("largest", "central", "left", "right"))}


def check_w2v_bert_options(step="40ms", left_context=50, right_context=50, layer=-1, chunk_s=30.0, overlap_s=3.0,
                           batch_size=2, duration_ms=None, device="auto", precision="auto") -> dict:
    """W2V-BERT extractor (``w2v-bert``, ``w2v_bert``): contexts >= 0 ms, 1 <= chunk_s <= 600, 0 <= overlap_s <
    chunk_s, batch_size >= 1, layer an integer, a positive step, duration_ms unset or > 0, precision
    auto|fp32|bf16|int8 (int8 not on a CUDA device)."""
    chunk = float_option(chunk_s, "chunk_s", 1.0, 600.0)
    return {"step": step_option(step), "left_ms": float_option(left_context, "left_context", 0.0, 10000.0),
            "right_ms": float_option(right_context, "right_context", 0.0, 10000.0),
            "layer": int_option(layer, "layer", -100, 100), "chunk_s": chunk,
            "overlap_s": float_option(overlap_s, "overlap_s", 0.0, chunk, max_open=True),
            "batch_size": int_option(batch_size, "batch_size", 1, 4096),
            "duration_ms": check_duration_ms(duration_ms), **_device_precision(device, precision)}


def _device_precision(device, precision) -> dict:
    device, precision = device_option(device), precision_option(precision)
    if precision == "int8" and device.startswith("cuda"):
        raise OptionError(f"option precision: int8 (dynamic quantisation) runs on the CPU only, not on device "
                          f"{device}; use bf16 or fp32 there")
    return {"device": device, "precision": precision}


def check_dinov2_options(size=224, k=4, pca_fit_frames=256, batch_size=8, output="both", framing="resize",
                         frame_step="video", duration_ms=None, device="auto", precision="auto") -> dict:
    """DINOv2-PCA extractor (``dinov2 ...``, ``dinov2_pca``): size a multiple of 14 in [14, 1792], 1 <= k <= 1024,
    pca_fit_frames >= 1, batch_size >= 1, output pca|cls|both, framing as ``parse_framing``, step ``video`` or
    positive, duration_ms unset or > 0, precision auto|fp32|bf16|int8 (int8 not on a CUDA device)."""
    from nova_infant.features.dinov2_pca import parse_framing

    size = int_option(size, "size", 14, 1792)
    if size % 14:
        raise OptionError(f"option size: must be a multiple of the patch size 14 px, got {size}")
    parse_framing(str(framing))
    return {"size": size, "k": int_option(k, "k", 1, 1024),
            "pca_fit_frames": int_option(pca_fit_frames, "pca_fit_frames", 1, 1000000),
            "batch_size": int_option(batch_size, "batch_size", 1, 4096),
            "output": choice_option(output, "output", ("pca", "cls", "both")), "framing": str(framing),
            "frame_step": step_option(frame_step, allow_video=True), "duration_ms": check_duration_ms(duration_ms),
            **_device_precision(device, precision)}


def check_predict_options(min_dur_ms=0, batch_size=64, device="auto") -> dict:
    """ICEP-R prediction (``icep predict``, ``icep_predict``): min_dur_ms >= 0, batch_size >= 1."""
    return {"min_dur_ms": float_option(min_dur_ms, "min_dur_ms", 0.0),
            "batch_size": int_option(batch_size, "batch_size", 1, 1 << 20), "device": device_option(device)}
