"""Option declarations several modules share in meaning (device, precision, frame step, session duration).

Each function returns a fresh :class:`~nova_infant.specs.base.Option`; the module's spec calls it once with its own
default, so the option is still declared in one place per module.
"""

from __future__ import annotations

from typing import Any

from nova_infant.core.errors import OptionError
from nova_infant.specs.base import Option


def _step(value: Any, name: str):
    from nova_infant.core.validation import step_option

    return step_option(value, name)


def _step_or_video(value: Any, name: str):
    from nova_infant.core.validation import step_option

    return step_option(value, name, allow_video=True)


def _duration(value: float, name: str) -> float | None:
    return None if value == 0 else value


def frame_step(default: str = "40ms", allow_video: bool = False, cli_flags: tuple = ()) -> Option:
    """``frame_step``: step of the session grid (``40ms``, ``0.04s``, ``25fps``, a number of ms; ``video`` = the
    video's own frame period where ``allow_video``). Parsed to float ms (or ``"video"``).

    Parameters
    ----------
    default : str
    allow_video : bool
    cli_flags : tuple of str
        Extra flag spellings of the existing commands (``--step``).

    Returns
    -------
    Option
    """
    return Option("frame_step", "str", default,
                  "grid step: 40ms, 0.04s, 25fps or ms" + (", or video (every frame)" if allow_video else "")
                  + " (docs/alignment.md)", check=_step_or_video if allow_video else _step, cli_flags=cli_flags)


def duration_ms() -> Option:
    """``duration_ms``: session duration fixing the grid's row count, ms; 0 = unset (then the reference input, the
    NOVA session, the module's own input). Parsed to float ms or None.

    Returns
    -------
    Option
    """
    return Option("duration_ms", "float", 0, "session duration that fixes the row count, ms; 0 = unset (reference "
                  "input, NOVA session, then the input's own; docs/alignment.md)", minimum=0, check=_duration)


def device() -> Option:
    """``device``: ``auto`` (cuda when present), ``cpu``, ``cuda`` or ``cuda:<n>`` (torch).

    Returns
    -------
    Option
    """
    return Option("device", "device", "auto", "where the model runs: auto (cuda when present), cpu, cuda, cuda:<n>")


def precision() -> Option:
    """``precision`` of a backbone: ``auto``, ``fp32``, ``bf16``, ``int8`` (CPU only)
    (:func:`nova_infant.core.backbones.resolve_precision`).

    Returns
    -------
    Option
    """
    return Option("precision", "precision", "auto", "auto (bf16 on a GPU or a CPU with avx512_bf16/AMX, else fp32) "
                  "| fp32 | bf16 | int8 (CPU only); do not mix precisions within one dataset")


def legacy_bf16() -> Option:
    """Deprecated ``bf16`` (older ``.trainer`` files: ``{bf16:BOOL:True}``); :func:`check_precision` folds it into
    ``precision``.

    Returns
    -------
    Option
    """
    return Option("bf16", "str", "", "deprecated: False = precision fp32", hidden=True)


def check_precision(options: dict) -> dict:
    """Cross-option check of backbone modules: fold the deprecated ``bf16`` into ``precision``
    (:func:`nova_infant.discover.common.precision_of`) and refuse int8 on a CUDA device.

    Parameters
    ----------
    options : dict
        Parsed options with ``device``, ``precision`` and ``bf16``.

    Returns
    -------
    dict
        The same options, ``precision`` possibly changed, ``bf16`` set to ``""``.

    Raises
    ------
    OptionError
        ``bf16`` False with precision bf16/int8, or int8 on a CUDA device.
    """
    from nova_infant.discover.common import precision_of

    legacy = options.get("bf16")
    if legacy not in (None, ""):
        options["precision"] = precision_of({"precision": options["precision"], "bf16": legacy})
    options["bf16"] = ""
    if options["precision"] == "int8" and str(options["device"]).startswith("cuda"):
        raise OptionError(f"option precision: int8 (dynamic quantisation) runs on the CPU only, not on device "
                          f"{options['device']}; use bf16 or fp32 there")
    return options
