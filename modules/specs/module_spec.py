"""The module spec API: one declarative description per module, from which the ``.trainer`` XML, the CLI
sub-command, the DISCOVER ``Processor``, the option checks and ``trainers/nova_infant/README.md`` are generated.

A module is a :class:`ModuleSpec` (its options, inputs, outputs and the function doing one session's work) plus its
core functions. ``run(session, options)`` sees the same :class:`~nova_infant.specs.sessions.Session` whether it runs
from ``nova-infant`` or under du-process, receives options parsed once by :meth:`ModuleSpec.parse_options`, and
returns a :class:`~nova_infant.specs.ports.Result` that ONE writer (:func:`nova_infant.specs.writing.nova_objects`)
turns into discover-utils NOVA objects for both the command line and DISCOVER. The contract is docs/SPEC_API
(issue 11); field names here must not change, fields may be added.

The API lives in: :mod:`~nova_infant.specs.options` (``Option``), :mod:`~nova_infant.specs.ports` (``Port``,
``Result`` and its data), this module (``ModuleSpec``, ``TrainContext``, ``TrainResult``),
:mod:`~nova_infant.specs.sessions` (``Session``, ``FileSession``) and :mod:`~nova_infant.specs.writing` (the one
writer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from nova_infant.core.errors import OptionError
from nova_infant.core.trainer_files import TrainerIO, TrainerSpec
from nova_infant.specs.options import Option, is_unset
from nova_infant.specs.ports import Port, Result
from nova_infant.specs.sessions import Session


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
        """The ``.trainer`` this module is listed with in NOVA (for
        :func:`nova_infant.core.trainer_files.write_trainer`).

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
