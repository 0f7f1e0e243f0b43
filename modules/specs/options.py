"""Module options: :class:`Option` (one option, declared once, checked once, shown in NOVA, the CLI and the README),
the value helpers every caller shares (:func:`is_unset`, :func:`as_bool`), and the declarations several modules
share in meaning (device, precision, frame step, session duration).

Each shared declaration returns a fresh :class:`Option`; the module's spec calls it once with its own default, so the
option is still declared in one place per module.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable

from nova_infant.core import validation as v
from nova_infant.core.errors import OptionError

log = logging.getLogger("nova_infant")

#: Option kinds :meth:`Option.parse` understands.
KINDS = ("int", "float", "str", "bool", "choice", "path", "device", "precision", "json")
DEVICE_CHOICES = ("auto", "cpu", "cuda")
PRECISION_CHOICES = ("auto", "fp32", "bf16", "int8")


def is_unset(value: Any) -> bool:
    """True for what NOVA sends for "use the default": None, ``""`` and ``"None"`` (any surrounding blanks).

    Parameters
    ----------
    value : Any
        An option value as NOVA (str) or argparse (Python value) hands it over.

    Returns
    -------
    bool
    """
    return value is None or (isinstance(value, str) and value.strip() in ("", "None"))


def as_bool(value: Any, name: str = "option") -> bool:
    """Cast an option to bool: ``True``/``"true"``/``"1"``/``"yes"``/``"on"`` and their opposites (any case).

    Parameters
    ----------
    value : Any
        Python bool or the text NOVA sends.
    name : str
        Option name for the error message.

    Returns
    -------
    bool

    Raises
    ------
    OptionError
        ``option <name>: expected True or False, got ...``.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise OptionError(f"option {name}: expected True or False, got {value!r}")


@dataclass(frozen=True)
class Option:
    """One option of a module: declared once, checked once, shown in NOVA, the CLI and the README.

    Attributes
    ----------
    name : str
        NOVA option name, snake_case; the CLI flag is ``--name-with-dashes``.
    kind : str
        One of :data:`KINDS`.
    default : Any
        Default value (already of the option's type; ``""`` for an unset path/str).
    help : str
        One line: meaning, unit (ms, Hz, frames, px) and source.
    minimum, maximum : float or None
        Range of int/float options (inclusive unless ``min_open``/``max_open``).
    min_open, max_open : bool
        Exclude the bound.
    choices : tuple of str
        Allowed values of a ``choice`` option (the default must be one of them).
    grid : bool
        The option may appear as a key of an ICEP-R training grid.
    check : callable or None
        Extra check ``check(parsed_value, name) -> value`` after the kind's own (e.g. a frame step ``40ms`` ->
        40.0 ms); raises ``OptionError``.
    cli_flags : tuple of str
        Extra flag spellings of the existing per-module commands (e.g. ``--step`` for ``frame_step``).
    nova : bool
        False: the option exists on the command line only and is not written into the ``.trainer``.
    hidden : bool
        A deprecated option still accepted (from old ``.trainer`` files and flags) but not written into the
        ``.trainer``, the README or ``--help``.
    """

    name: str
    kind: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    min_open: bool = False
    max_open: bool = False
    choices: tuple[str, ...] = ()
    grid: bool = False
    check: Callable[[Any, str], Any] | None = None
    cli_flags: tuple[str, ...] = ()
    nova: bool = True
    hidden: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: unknown kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.kind == "choice" and self.default not in self.choices:
            raise ValueError(f"option {self.name}: default {self.default!r} is not among {self.choices}")

    @property
    def flag(self) -> str:
        """The CLI flag, ``--name-with-dashes``."""
        return "--" + self.name.replace("_", "-")

    def parse(self, value: Any) -> Any:
        """Turn a NOVA string or an argparse value into the option's type, checked against its range/choices.

        Parameters
        ----------
        value : Any
            ``"0.5"``, ``"True"``, ``0.5``, ... ; an unset value (None, ``""``, ``"None"``) gives the default.

        Returns
        -------
        Any
            int, float, str, bool, str (choice/device/precision, lower case), str (path, ``""`` = unset) or the
            decoded JSON value (None when unset), after ``check`` if given.

        Raises
        ------
        OptionError
            ``option <name>: ...`` in one line (checkers of :mod:`nova_infant.core.validation`).
        """
        if is_unset(value):
            value = self.default
        kind, name = self.kind, self.name
        if kind == "int":
            lo = None if self.minimum is None else int(self.minimum) + (1 if self.min_open else 0)
            hi = None if self.maximum is None else int(self.maximum) - (1 if self.max_open else 0)
            out = v.int_option(value, name, lo, hi)
        elif kind == "float":
            out = v.float_option(value, name, self.minimum, self.maximum, self.min_open, self.max_open)
        elif kind == "bool":
            out = as_bool(value, name)
        elif kind == "choice":
            out = v.choice_option(value, name, tuple(c.lower() for c in self.choices))
        elif kind == "device":
            out = v.device_option(value, name)
        elif kind == "precision":
            out = v.precision_option(value, name)
        elif kind == "json":
            if value is None or (isinstance(value, str) and not value.strip()):
                out = None
            elif isinstance(value, str):
                try:
                    out = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise OptionError(f"option {name}: not JSON ({exc.msg} at character {exc.pos}): "
                                      f"{value[:60]!r}") from None
            else:
                out = value
        else:  # str, path
            out = "" if value is None else str(value).strip()
        return self.check(out, name) if self.check is not None else out

    def nova_entry(self) -> tuple[str, str, str]:
        """``(name, TYPE, default)`` of the ``.trainer`` option string
        (:func:`nova_infant.core.trainer_files.option_string`).

        Returns
        -------
        tuple of str
            TYPE is ``LIST`` for choices (default first, then the others), devices and precisions; ``BOOL`` for
            bools; ``STRING`` otherwise (NOVA shows a text box).
        """
        if self.kind == "choice":
            rest = [c for c in self.choices if c != self.default]
            return self.name, "LIST", ",".join([str(self.default)] + rest)
        if self.kind in ("device", "precision"):
            choices = DEVICE_CHOICES if self.kind == "device" else PRECISION_CHOICES
            return self.name, "LIST", ",".join([str(self.default)] + [c for c in choices if c != self.default])
        if self.kind == "bool":
            return self.name, "BOOL", "True" if self.default else "False"
        default = self.default
        if default is None:
            default = ""
        if self.kind == "json" and not isinstance(default, str):
            default = json.dumps(default)
        return self.name, "STRING", _plain(default)

    def range_text(self) -> str:
        """Human-readable range or choices (``[14, 1792]``, ``(0, 1)``, ``auto | cpu | cuda``, ``""``)."""
        if self.kind == "choice":
            return " \\| ".join(self.choices)
        if self.kind == "device":
            return "auto \\| cpu \\| cuda \\| cuda:N"
        if self.kind == "precision":
            return " \\| ".join(PRECISION_CHOICES)
        if self.minimum is None and self.maximum is None:
            return ""
        lo = "-inf" if self.minimum is None else _plain(self.minimum)
        hi = "inf" if self.maximum is None else _plain(self.maximum)
        left = "(" if self.min_open or self.minimum is None else "["
        right = ")" if self.max_open or self.maximum is None else "]"
        return f"{left}{lo}, {hi}{right}"


def _plain(value: Any) -> str:
    """``224`` not ``224.0``; ``0.001`` as written; other values as ``str``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


# ---------------------------------------------------------------- shared declarations


def _step(value: Any, name: str):
    return v.step_option(value, name)


def _step_or_video(value: Any, name: str):
    return v.step_option(value, name, allow_video=True)


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


def precision_of(options: dict) -> str:
    """The ``precision`` option of a backbone module, honouring the deprecated ``bf16`` option of older trainers
    (``{bf16:BOOL:True}`` = auto; False = fp32, with a warning).

    Parameters
    ----------
    options : dict
        With ``precision`` (``auto``/``fp32``/``bf16``/``int8``, may be absent) and optionally ``bf16``.

    Returns
    -------
    str
        The precision to load the backbone in.

    Raises
    ------
    OptionError
        ``bf16`` False together with precision bf16 or int8, or ``bf16`` not a boolean.
    """
    precision = str(options.get("precision") or "auto").strip().lower()
    legacy = options.get("bf16")
    if legacy is not None and not as_bool(legacy, "bf16"):
        if precision in ("bf16", "int8"):
            raise OptionError(f"options bf16=False and precision={precision} contradict each other; drop bf16")
        log.warning("option bf16 is deprecated (use precision): bf16=False read as precision=fp32")
        return "fp32"
    return precision


def check_precision(options: dict) -> dict:
    """Cross-option check of backbone modules: fold the deprecated ``bf16`` into ``precision``
    (:func:`precision_of`) and refuse int8 on a CUDA device.

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
    legacy = options.get("bf16")
    if legacy not in (None, ""):
        options["precision"] = precision_of({"precision": options["precision"], "bf16": legacy})
    options["bf16"] = ""
    if options["precision"] == "int8" and str(options["device"]).startswith("cuda"):
        raise OptionError(f"option precision: int8 (dynamic quantisation) runs on the CPU only, not on device "
                          f"{options['device']}; use bf16 or fp32 there")
    return options
