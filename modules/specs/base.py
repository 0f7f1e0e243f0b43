"""The module spec API: one declarative description per module, from which the ``.trainer`` XML, the CLI
sub-command, the DISCOVER ``Processor``, the option checks and ``trainers/nova_infant/README.md`` are generated.

A module is a :class:`ModuleSpec` (its options, inputs, outputs and the function doing one session's work) plus its
core functions. ``run(session, options)`` sees the same :class:`Session` whether it runs from ``nova-infant`` or
under du-process, receives options parsed once by :meth:`ModuleSpec.parse_options`, and returns a :class:`Result`
that ONE writer (:func:`nova_objects`) turns into discover-utils NOVA objects for both the command line and DISCOVER.
The contract is docs/SPEC_API (issue 11); field names here must not change, fields may be added.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from nova_infant.core.errors import NovaInfantError, OptionError
from nova_infant.core.trainer_files import TrainerIO, TrainerSpec

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
        from nova_infant.core import validation as v

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
        """``(name, TYPE, default)`` of the ``.trainer`` option string (:func:`nova_infant.core.trainer_files.option_string`).

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


@dataclass(frozen=True)
class Port:
    """One input or output of a module.

    Attributes
    ----------
    id : str
        Key in the ``.trainer`` ``<io id=...>`` and in du-process's ``--data``; the CLI flag of an input.
    data : str
        NOVA io type: ``stream:Video``, ``stream:Audio``, ``stream:SSIStream:<type>``, ``annotation:Discrete``,
        ``annotation:Continuous``, ``annotation:Free``.
    default : str
        ``default_value``: the stream or scheme name NOVA preselects (and the ``<name>`` of the CLI's file
        ``<role>.<name>.<ext>``).
    help : str
        One line for the README and ``--help``.
    scheme : str or None
        Package scheme an annotation output uses (``modules/data/schemes/<scheme>.json``).
    optional : bool
        The input may be absent (CLI: flag not given).
    declared : bool
        False: accepted in a hand-written ``--data`` (and on the CLI) but not written into the ``.trainer``
        (NOVA sends every declared input, e.g. an optional ``reference``).
    """

    id: str
    data: str
    default: str
    help: str
    scheme: str | None = None
    optional: bool = False
    declared: bool = True

    @property
    def is_stream(self) -> bool:
        """True for ``stream:...`` ports."""
        return self.data.startswith("stream")

    @property
    def extension(self) -> str:
        """File extension of an output in NOVA's layout: ``.stream`` or ``.annotation``."""
        return ".stream" if self.is_stream else ".annotation"


@dataclass
class TrainContext:
    """What a training module's ``fit`` gets besides the items and options.

    Attributes
    ----------
    trainer_dir : Path
        Folder of the training ``.trainer`` (models go below it; the predictor ``.trainer`` beside it).
    dataset : str
        NOVA dataset of the job.
    session_names : list of str
        Sessions whose items are passed, in job order.
    skipped : list of (str, str)
        Sessions skipped with the one-line reason.
    """

    trainer_dir: Path
    dataset: str = ""
    session_names: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class TrainResult:
    """What ``fit`` returns: the saved model and the predictor it can be run with.

    Attributes
    ----------
    model_dir : Path
        The saved-model folder.
    predictor : str
        ``ModuleSpec`` name of the predictor (e.g. ``icep_predict``).
    predictor_options : dict
        Options of the ``trained="true"`` predictor ``.trainer``.
    trainer_path : Path or None
        The predictor ``.trainer`` written, if any.
    report : dict
        Cross-validation figures etc. (may be empty).
    """

    model_dir: Path
    predictor: str = ""
    predictor_options: dict = field(default_factory=dict)
    trainer_path: Path | None = None
    report: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModuleSpec:
    """The one declaration of a module (see the module docstring).

    Attributes
    ----------
    name : str
        Trainer file stem and CLI sub-command (``nova-infant run <name>``).
    create : str
        Processor class name written into the ``.trainer`` (``<model create=...>``).
    category : str
        NOVA category (``Feature``, ``Tagger``, ``ICEP-R``, ...).
    description : str
        One line shown in NOVA.
    inputs, outputs : tuple of Port
    options : tuple of Option
    run : callable
        ``run(session, options) -> Result`` (or a per-session item when ``trains``); options already parsed.
    citation, licence : str
        Paper / model card, and the licence of the weights or method (README).
    trains : bool
        A training module: ``run`` returns one item per session, ``fit(items, options, ctx)`` is called once.
    fit : callable or None
        ``fit(items, options, TrainContext) -> TrainResult``.
    frame_step_ms, left_context_ms, right_context_ms : float
        Written into the ``.trainer`` ``<meta>`` (ms).
    check : callable or None
        Cross-option check ``check(options) -> options`` after every option was parsed (e.g. stride <= window).
    write : callable or None
        ``write(result, session) -> {port id: NOVA object}``; None: :func:`nova_objects` (the generic writer).
    doc : str
        Package doc page of the module (README link), e.g. ``docs/dinov2-pca.md``.
    example_options : dict
        Options of the README's example ``/process`` request (default: none).
    """

    name: str
    create: str
    category: str
    description: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    options: tuple[Option, ...]
    run: Callable[["Session", dict], Any]
    citation: str = ""
    licence: str = ""
    trains: bool = False
    fit: Callable[[list, dict, TrainContext], TrainResult] | None = None
    frame_step_ms: float = 0
    left_context_ms: float = 0
    right_context_ms: float = 0
    check: Callable[[dict], dict] | None = None
    write: Callable[["Result", "Session"], dict] | None = None
    doc: str = ""
    example_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        names = [o.name for o in self.options]
        if len(set(names)) != len(names):
            raise ValueError(f"module {self.name}: an option is declared twice in {names}")
        if self.trains and self.fit is None:
            raise ValueError(f"module {self.name}: trains=True needs fit")

    @property
    def script(self) -> str:
        """File name of the DISCOVER script, ``<name>.py``."""
        return f"{self.name}.py"

    @property
    def command(self) -> str:
        """CLI sub-command of ``nova-infant run``: the name with dashes."""
        return self.name.replace("_", "-")

    def option(self, name: str) -> Option:
        """The declared option ``name``.

        Parameters
        ----------
        name : str

        Returns
        -------
        Option

        Raises
        ------
        KeyError
            For an option the module does not have.
        """
        for opt in self.options:
            if opt.name == name:
                return opt
        raise KeyError(f"module {self.name} has no option {name!r}")

    def defaults(self) -> dict:
        """``{option name: default}`` of every option (not yet parsed)."""
        return {o.name: o.default for o in self.options}

    def parse_options(self, given: Mapping[str, Any] | None = None, ignore: Sequence[str] = ()) -> dict:
        """Defaults + ``given``, every option parsed once; used by the CLI and the Processor alike.

        Parameters
        ----------
        given : mapping
            Option values from NOVA (strings), a ``.trainer``'s option string or argparse (Python values); None /
            ``""`` / ``"None"`` mean "use the default".
        ignore : sequence of str
            Names tolerated without being options (e.g. du-process bookkeeping, deprecated options handled by
            ``check``), passed through unparsed.

        Returns
        -------
        dict
            ``{name: typed value}`` of every declared option (plus the ignored ones that were given).

        Raises
        ------
        OptionError
            For an unknown option or a bad value, in one line naming the option.
        """
        known = {o.name: o for o in self.options}
        given = dict(given or {})
        unknown = sorted(k for k in given if k not in known and k not in ignore)
        if unknown:
            raise OptionError(f"module {self.name}: unknown option(s) {', '.join(unknown)} (known: "
                              f"{', '.join(known)})")
        out = {name: opt.parse(opt.default if is_unset(given.get(name)) else given[name])
               for name, opt in known.items()}
        out.update({k: given[k] for k in ignore if k in given})
        return self.check(out) if self.check is not None else out

    def trainer_spec(self) -> TrainerSpec:
        """The ``.trainer`` this module is listed with in NOVA (for :func:`nova_infant.core.trainer_files.write_trainer`).

        Returns
        -------
        TrainerSpec
            io entries of the declared inputs and outputs (in order), the options' ``(name, TYPE, default)``,
            frame step and contexts in ms.
        """
        io = [TrainerIO("input", p.id, p.data, p.default) for p in self.inputs if p.declared]
        io += [TrainerIO("output", p.id, p.data, p.default) for p in self.outputs if p.declared]
        return TrainerSpec(script=self.script, create=self.create, category=self.category,
                           description=self.description, io=io,
                           options=[o.nova_entry() for o in self.options if o.nova and not o.hidden],
                           frame_step_ms=self.frame_step_ms, left_context_ms=self.left_context_ms,
                           right_context_ms=self.right_context_ms)


# ---------------------------------------------------------------- what run() returns


@dataclass
class StreamData:
    """One SSI stream output.

    Attributes
    ----------
    data : np.ndarray
        float32 ``(n_rows, dim)``, one row per grid frame.
    sample_rate_hz : float
        Row rate (1000 / step in ms).
    dim_names : sequence of str
        ``dim`` names of the columns.
    media_type : str
        SSI media type, e.g. ``feature;video;dinov2``.
    meta : dict
        ``<meta>`` attributes of the header (str values).
    """

    data: np.ndarray
    sample_rate_hz: float
    dim_names: Sequence[str]
    media_type: str
    meta: dict = field(default_factory=dict)


@dataclass
class DiscreteData:
    """One discrete annotation output.

    Attributes
    ----------
    segments : np.ndarray
        discover-utils ``LabelDType.DISCRETE`` rows: ``from``/``to`` (ms), ``id`` (index into ``classes``), ``conf``.
    classes : list of str
        Class names of the scheme, in id order.
    scheme : str
        Scheme name.
    annotator : str or None
        Default annotator (a NOVA request's own annotator wins).
    description : str
        Annotation description (e.g. why a track is empty).
    check_scheme : bool
        Database mode: check the NOVA scheme is ``scheme`` before writing.
    """

    segments: np.ndarray
    classes: list
    scheme: str
    annotator: str | None = None
    description: str = ""
    check_scheme: bool = True


@dataclass
class ContinuousData:
    """One continuous annotation output: ``values``/``conf`` float32 ``[n]`` at ``sample_rate_hz`` in
    ``[min_val, max_val]``, scheme ``scheme``."""

    values: np.ndarray
    conf: np.ndarray
    sample_rate_hz: float
    scheme: str
    min_val: float
    max_val: float
    annotator: str | None = None
    description: str = ""
    check_scheme: bool = True


StreamResult = StreamData
AnnotationData = DiscreteData | ContinuousData


@dataclass
class Result:
    """What ``run`` returns; ONE writer turns it into NOVA objects for the CLI and DISCOVER.

    Attributes
    ----------
    streams : dict
        ``{port id: StreamData}``.
    annotations : dict
        ``{port id: DiscreteData | ContinuousData}``.
    notes : list of str
        Said once each (logged; printed by the CLI), e.g. ``no crying segment: empty track``.
    files : list of Path
        Other files ``run`` wrote (pictures, bases), listed by the CLI.
    extra : dict
        Module objects a command may use further (e.g. the extracted features for a picture); never written.
    """

    streams: dict = field(default_factory=dict)
    annotations: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    files: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------- the session run() sees


class Session:
    """One session as ``run`` sees it, the same from the CLI and under du-process.

    Attributes
    ----------
    name, dataset : str
        NOVA session and dataset names.
    role : str or None
        Role of the session's outputs where the caller fixed one.
    out_dir : Path or None
        Folder for file outputs other than NOVA streams/annotations (CLI ``--out``; DISCOVER: beside the outputs).
    duration_ms : float or None
        The NOVA session duration (database mode), else None.
    job : dict
        Cache shared by every session of one job (a model loaded once per job, a fitted basis).
    """

    def __init__(self, name: str, dataset: str = "", role: str | None = None, out_dir: Path | None = None,
                 duration_ms: float | None = None, job: dict | None = None):
        self.name, self.dataset, self.role = name, dataset, role
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.duration_ms = duration_ms
        self.job = job if job is not None else {}

    # -- to be provided by the CLI / DISCOVER sessions
    def path(self, port_id: str) -> Path:
        """File of input (or output) ``port_id``.

        Parameters
        ----------
        port_id : str
            Id of the port (``Port.id``).

        Returns
        -------
        Path

        Raises
        ------
        KeyError
            If the session has no such port.
        """
        raise NotImplementedError

    def has(self, port_id: str) -> bool:
        """True when input ``port_id`` was given.

        Parameters
        ----------
        port_id : str
            Id of the port (``Port.id``).

        Returns
        -------
        bool
        """
        raise NotImplementedError

    def is_active_output(self, port_id: str) -> bool:
        """True when output ``port_id`` is to be written.

        Parameters
        ----------
        port_id : str
            Id of the port (``Port.id``).

        Returns
        -------
        bool
        """
        raise NotImplementedError

    def requested_outputs(self) -> set[str] | None:
        """Output ids the caller asked for (NOVA: the active outputs of the request).

        Returns
        -------
        set of str or None
            None for "whatever the module produces" (the CLI by default).
        """
        return None

    def job_session_names(self) -> list[str]:
        """Names of every session of the job (this one alone where unknown)."""
        return [self.name]

    def path_in(self, port_id: str, session_name: str) -> Path | None:
        """File of input ``port_id`` of another session of the job.

        Parameters
        ----------
        port_id : str
            Id of the port (``Port.id``).
        session_name : str

        Returns
        -------
        Path or None
            None where unknown or missing.
        """
        return self.path(port_id) if session_name == self.name and self.has(port_id) else None

    def output_names(self, port_id: str) -> dict:
        """What output ``port_id`` is to carry.

        Parameters
        ----------
        port_id : str
            Id of the port (``Port.id``).

        Returns
        -------
        dict
            ``name``, ``role``, ``annotator`` (None where the caller has none).
        """
        return {"name": None, "role": self.role, "annotator": None}

    def output_scheme(self, port_id: str):
        """The scheme the caller prepared for annotation output ``port_id``.

        Parameters
        ----------
        port_id : str
            Id of the port (``Port.id``).

        Returns
        -------
        discover-utils ``AnnotationScheme`` or None
            NOVA's scheme (database mode, or a file-mode template), None on the command line.
        """
        return None

    def check_scheme(self, port_id: str, expected: str, kind: str = "DISCRETE") -> None:
        """Database mode: refuse writing ``port_id`` into a scheme other than ``expected``.

        Parameters
        ----------
        port_id : str
            Id of the port (``Port.id``).
        expected : str
            Scheme name the module writes.
        kind : str
            ``DISCRETE`` or ``CONTINUOUS``.

        Raises
        ------
        NovaDatabaseError
            One line saying to run ``nova-infant import-schemes``.
        """

    # -- shared helpers
    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """``job[key]``, made by ``make()`` the first time in this job (a model loaded once per job).

        Parameters
        ----------
        key : str
        make : callable
            ``make()`` -> the value.

        Returns
        -------
        Any
        """
        if key not in self.job:
            self.job[key] = make()
        return self.job[key]

    def reference_duration_ms(self, port_id: str = "reference") -> float | None:
        """Duration (ms) of the optional input ``port_id`` that fixes the session grid, else the NOVA session
        duration, else None (docs/alignment.md).

        Parameters
        ----------
        port_id : str
            Id of the port (``Port.id``).

        Returns
        -------
        float or None
            ms.

        Raises
        ------
        MediaError
            If the reference file cannot be read.
        """
        if self.has(port_id):
            from nova_infant.core.media import media_duration_ms

            return media_duration_ms(str(self.path(port_id)))
        return self.duration_ms

    def grid(self, step_ms: Any, own: Any = None, duration_ms: Any = None):
        """THE session grid: duration priority option ``duration_ms`` > reference input > NOVA session > own input,
        ``floor(D / step)`` rows, so two modules of one session with the same step agree on the row count
        (:func:`nova_infant.core.grid.session_grid`; docs/alignment.md).

        Parameters
        ----------
        step_ms : float or str
            Frame step (ms, ``"40ms"``, ``"25fps"``).
        own : float, str or None
            The module's own input: its duration in ms, or an input port id / file whose duration is read.
        duration_ms : Any
            The module's ``duration_ms`` option (0/None = unset).

        Returns
        -------
        nova_infant.core.grid.FrameGrid

        Raises
        ------
        OptionError
            Bad step or duration, or a session shorter than one step.
        """
        from nova_infant.core.grid import session_grid
        from nova_infant.core.media import media_duration_ms

        if isinstance(own, str) and self.has(own):
            own = self.path(own)
        own_ms = own if own is None or isinstance(own, (int, float)) else media_duration_ms(str(own))
        reference = self.path("reference") if self.has("reference") else None
        return session_grid(step_ms, own_ms, duration_ms=duration_ms, reference=reference,
                            session_duration_ms=self.duration_ms, source=f"session {self.name}")

    def read_annotation(self, port_id: str):
        """The annotation file of input ``port_id``.

        Parameters
        ----------
        port_id : str
            Id of the port (``Port.id``).

        Returns
        -------
        discover-utils ``Annotation``

        Raises
        ------
        AnnotationError
            For a missing or unreadable file (one line naming it).
        """
        from nova_infant.core.annotations import read_annotation

        return read_annotation(self.path(port_id))

    def read_stream(self, port_id: str) -> tuple[np.ndarray, float, dict]:
        """The SSI stream of input ``port_id``.

        Parameters
        ----------
        port_id : str
            Id of the port (``Port.id``).

        Returns
        -------
        tuple
            ``(float32 [n_rows, dim], sample_rate_hz, meta)``.

        Raises
        ------
        StreamError
            For a missing or unreadable stream.
        """
        from nova_infant.core.streams import load_ssi_stream

        stream = load_ssi_stream(self.path(port_id))
        meta = dict(getattr(stream.meta_data, "__dict__", {}) or {})
        return np.asarray(stream.data, np.float32), float(stream.meta_data.sample_rate), meta


class FileSession(Session):
    """A session of the command line: inputs are files given by flag, outputs go to ``<out_dir>/<role>.<name>``.

    Parameters
    ----------
    inputs : mapping
        ``{port id: path}`` of the given inputs.
    out_dir : path
        Folder of the outputs (created when writing).
    outputs : sequence of str or None
        Ports to write (None: every output of the result).
    files : mapping
        ``{port id: path}`` overriding an output's file (the existing per-module commands' names).
    name, dataset, role : str
        Default: the folder of the first input, its parent, ``session``.
    """

    def __init__(self, inputs: Mapping[str, Any], out_dir, outputs: Sequence[str] | None = None,
                 files: Mapping[str, Any] | None = None, name: str | None = None, dataset: str = "",
                 role: str | None = None, duration_ms: float | None = None, job: dict | None = None,
                 annotator: str | None = None):
        self.inputs = {k: Path(v) for k, v in inputs.items() if v is not None and str(v) != ""}
        first = next(iter(self.inputs.values()), Path(out_dir) / "x")
        super().__init__(name or first.resolve().parent.name, dataset, role or "session", Path(out_dir),
                         duration_ms, job)
        self.outputs = None if outputs is None else set(outputs)
        self.files = {k: Path(v) for k, v in (files or {}).items()}
        self.annotator = annotator

    def path(self, port_id: str) -> Path:
        """The given input file (or an output's ``files`` entry); see :meth:`Session.path`."""
        if port_id in self.inputs:
            return self.inputs[port_id]
        if port_id in self.files:
            return self.files[port_id]
        raise KeyError(f"session {self.name}: no input {port_id!r} given")

    def has(self, port_id: str) -> bool:
        """True when input ``port_id`` was given; see :meth:`Session.has`."""
        return port_id in self.inputs

    def is_active_output(self, port_id: str) -> bool:
        """Every output, or those in ``outputs``; see :meth:`Session.is_active_output`."""
        return self.outputs is None or port_id in self.outputs

    def requested_outputs(self) -> set[str] | None:
        """``outputs`` as given (None: whatever the module produces); see :meth:`Session.requested_outputs`."""
        return None if self.outputs is None else set(self.outputs)

    def output_names(self, port_id: str) -> dict:
        """The session's role and annotator, no stream name; see :meth:`Session.output_names`."""
        return {"name": None, "role": self.role, "annotator": self.annotator}

    def output_path(self, port: Port) -> Path:
        """Where output ``port`` is written.

        Parameters
        ----------
        port : Port

        Returns
        -------
        Path
            ``files[port.id]`` if given, else ``<out_dir>/<role>.<port.default><ext>`` (NOVA's file layout).
        """
        if port.id in self.files:
            return self.files[port.id]
        return self.out_dir / f"{self.role}.{port.default}{port.extension}"


# ---------------------------------------------------------------- the one writer


def nova_objects(spec: ModuleSpec, result: Result, session: Session) -> dict:
    """Turn a :class:`Result` into discover-utils NOVA objects, one per active output (CLI and DISCOVER alike).

    Streams become ``SSIStream`` (:func:`nova_infant.core.streams.make_ssi_stream`), discrete and continuous data
    ``DiscreteAnnotation``/``ContinuousAnnotation`` (:mod:`nova_infant.taggers.outputs`), named after what the
    caller prepared (NOVA's request: name, role, annotator) or the port's default. A module with its own ``write``
    uses that instead.

    Parameters
    ----------
    spec : ModuleSpec
    result : Result
    session : Session

    Returns
    -------
    dict
        ``{port id: SSIStream | Annotation}`` in the order of ``spec.outputs``.

    Raises
    ------
    StreamError
        For NaN/inf or empty stream data.
    NovaDatabaseError
        Database mode: an output's scheme is not the one the module writes.
    """
    if spec.write is not None:
        return spec.write(result, session)
    from nova_infant.core.streams import make_ssi_stream
    from nova_infant.taggers.outputs import continuous_annotation, discrete_annotation

    for port_id, data in result.annotations.items():
        if data.check_scheme:
            session.check_scheme(port_id, data.scheme,
                                 "CONTINUOUS" if isinstance(data, ContinuousData) else "DISCRETE")
    out = {}
    for port in spec.outputs:
        if not session.is_active_output(port.id):
            continue
        names = session.output_names(port.id)
        where = dict(role=names.get("role"), session=session.name, dataset=session.dataset or None)
        if port.id in result.streams:
            s = result.streams[port.id]
            out[port.id] = make_ssi_stream(s.data, s.sample_rate_hz, s.media_type, list(s.dim_names),
                                           name=names.get("name") or port.default,
                                           custom_meta={k: str(v) for k, v in s.meta.items()}, **where)
        elif port.id in result.annotations:
            a = result.annotations[port.id]
            annotator = names.get("annotator") or a.annotator or spec.name
            if isinstance(a, ContinuousData):
                obj = continuous_annotation(a.values, a.conf, a.sample_rate_hz, a.scheme, a.min_val, a.max_val,
                                            annotator=annotator, **where)
            else:
                obj = discrete_annotation(a.segments, list(a.classes), a.scheme, annotator=annotator, **where)
            if a.description:
                obj.meta_data.description = a.description
            out[port.id] = obj
    return out


def write_files(spec: ModuleSpec, result: Result, session: FileSession) -> list[Path]:
    """CLI side of the one writer: :func:`nova_objects`, each saved atomically at ``session.output_path(port)``.

    Returns
    -------
    list of Path
        The streams/annotations written (header paths), then ``result.files``.

    Raises
    ------
    NovaInfantError, OSError
        A write failed (the previous file is kept).
    """
    from nova_infant.core.annotations import write_annotation
    from nova_infant.core.streams import write_ssi_stream

    ports = {p.id: p for p in spec.outputs}
    paths = []
    for port_id, obj in nova_objects(spec, result, session).items():
        target = session.output_path(ports[port_id])
        target.parent.mkdir(parents=True, exist_ok=True)
        paths.append(write_ssi_stream(obj, target) if ports[port_id].is_stream else write_annotation(obj, target))
    return paths + [Path(p) for p in result.files]


def say_notes(spec: ModuleSpec, session: Session, result: Result) -> None:
    """Log each of ``result.notes`` once as ``<module>: session <name>: <note>``.

    Parameters
    ----------
    spec : ModuleSpec
    session : Session
    result : Result
    """
    for note in getattr(result, "notes", None) or []:
        log.info("%s: session %s: %s", spec.name, session.name, note)


__all__ = ["Option", "Port", "ModuleSpec", "Session", "FileSession", "Result", "StreamData", "DiscreteData",
           "ContinuousData", "AnnotationData", "TrainContext", "TrainResult", "nova_objects", "write_files",
           "NovaInfantError", "is_unset", "as_bool"]
