"""The DISCOVER side of a spec: :func:`processor_class` builds the discover-utils ``Processor`` du-process runs.

The class is built from the :class:`~nova_infant.specs.module_spec.ModuleSpec` alone: options are the spec's defaults, then
the running ``.trainer``'s own defaults (two trainers of one module keep theirs), then the request's; they are
parsed once (:meth:`ModuleSpec.parse_options`) when du-process creates the module, so a bad option refuses the whole
job in one line before any session is read. ``process_data`` wraps du-process's one-session ``DatasetManager`` as a
:class:`DiscoverSession` and calls ``spec.run``; ``to_output`` hands the result to the module's one writer
(:func:`~nova_infant.specs.writing.nova_objects`). Every file du-process saves goes through the atomic writer
installed by :mod:`nova_infant.discover.common`.

Training specs (``trains=True``) collect one item per session and call ``spec.fit`` once after the job's last
session (du-process has no end-of-job hook: the last session named in ``--sessions`` whose inputs exist, and an
``atexit`` fallback when that one fails to load), as ICEP-R training always did.
"""

from __future__ import annotations

import atexit
import json
import logging
import sys
from pathlib import Path, PureWindowsPath

from discover_utils.interfaces.server_module import Processor

from nova_infant.core.errors import NovaInfantError, OptionError
from nova_infant.core.fileid import nova_file_names
from nova_infant.discover.common import SessionIO, one_line_errors, refuse_bad_options, trainer_defaults
from nova_infant.specs.module_spec import ModuleSpec, TrainContext
from nova_infant.specs.options import is_unset
from nova_infant.specs.sessions import Session
from nova_infant.specs.writing import nova_objects, say_notes
from nova_infant.core import write_policy

log = logging.getLogger("nova_infant")


def argv_value(flag: str) -> str | None:
    """Value of ``--flag`` on du-process's command line (``--flag value`` or ``--flag=value``), None if absent.

    Parameters
    ----------
    flag : str
        e.g. ``--sessions``, ``--cml_dir``.

    Returns
    -------
    str or None
    """
    args = sys.argv[1:]
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def job_sessions() -> list[str]:
    """Sessions of the running du-process job (its ``--sessions`` JSON list; ``[]`` when not given)."""
    return json.loads(argv_value("--sessions") or "[]")


def trainer_dir() -> Path:
    """Folder of the ``.trainer`` du-process runs (``--cml_dir`` joined with the parent of ``--trainer_file_path``;
    NOVA sends Windows separators)."""
    cml, tfp = argv_value("--cml_dir") or ".", argv_value("--trainer_file_path") or "x"
    return Path(cml) / Path(*PureWindowsPath(tfp).parent.parts)


def log_to_job_output() -> None:
    """Send the package's INFO messages (a module's notes: a missing head, no base bundle...) to du-process's
    stdout, which DISCOVER keeps as the job's log and NOVA shows (its ``/log`` poll; discover-integration.md);
    without a handler Python drops them. Warnings and errors stay one plain line on stderr, as before. Added once;
    a handler someone configured stays alone."""
    if not log.handlers:
        notes = logging.StreamHandler(sys.stdout)
        notes.setFormatter(logging.Formatter("nova-infant: %(message)s"))
        notes.addFilter(lambda record: record.levelno < logging.WARNING)
        problems = logging.StreamHandler(sys.stderr)
        problems.setLevel(logging.WARNING)
        problems.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(notes)
        log.addHandler(problems)
        log.setLevel(logging.INFO)


class DiscoverSession(Session):
    """A :class:`~nova_infant.specs.sessions.Session` over du-process's one-session ``DatasetManager``.

    Parameters
    ----------
    io : nova_infant.discover.common.SessionIO
        The session as du-process hands it over (file or NOVA database mode).
    job : dict
        Cache shared by the job's sessions.
    """

    def __init__(self, io: SessionIO, job: dict | None = None):
        super().__init__(io.name, io.dataset, None, None, io.duration_ms, job)
        self.io = io
        self.trainer_dir = trainer_dir()

    def path(self, port_id):
        """Input or output file of the request; see :meth:`Session.path`."""
        return self.io.path(port_id)

    def has(self, port_id):
        """True when the request has an entry ``port_id``; see :meth:`Session.has`."""
        return self.io.has(port_id)

    def is_active_output(self, port_id):
        """True for an output entry not marked inactive; see :meth:`Session.is_active_output`."""
        return self.io.is_active_output(port_id)

    def job_session_names(self):
        """The job's ``--sessions`` (this one where absent); see :meth:`Session.job_session_names`."""
        return job_sessions() or [self.name]

    def requested_outputs(self):
        """Ids of the request's active outputs; see :meth:`Session.requested_outputs`."""
        return {d.get("id") for d in self.io.manager.data_description or []
                if d.get("type") == "output" and self.is_active_output(d.get("id"))}

    def path_in(self, port_id, session_name):
        """File of input ``port_id`` of session ``session_name`` of the same request (file-mode ``uri_template``
        or NOVA's ``<data_dir>/<dataset>/<session>/<role>.<name><ext>``); None if it does not exist."""
        from discover_utils.data.provider.data_manager import resolve_file_uri

        if not self.has(port_id):
            return None
        desc = self.io.description(port_id)
        if desc.get("src", "").lower().startswith("file"):
            path = Path(resolve_file_uri(desc, self.dataset, session_name))
        else:
            own = self.path(port_id)
            path = own.parent.parent / session_name / own.name
        return path if path.is_file() else None

    def output_names(self, port_id):
        """Name, role, annotator of du-process's output template; see :meth:`Session.output_names`.

        A file-mode template carries no role and no annotator (discover-utils fills them only from the database),
        yet NOVA labels a file's tier from its header's ``role``/``annotator`` (Types/AnnoListFile.cs): there they
        come from NOVA's file name, ``<role>.<scheme>.<annotator>.annotation`` or ``<role>.<name>.stream``.
        """
        meta = getattr(self.io.template(port_id), "meta_data", None)
        names = {"name": getattr(meta, "name", None), "role": getattr(meta, "role", None) or None,
                 "annotator": getattr(meta, "annotator", None) or None}
        if self.io.has(port_id) and not self.io.in_database(port_id):
            try:
                role, _, annotator = nova_file_names(self.io.path(port_id))
            except (KeyError, NovaInfantError):
                role, annotator = None, None
            names["role"] = names["role"] or role
            names["annotator"] = names["annotator"] or annotator
        return names

    def output_scheme(self, port_id):
        """Scheme of du-process's output template; see :meth:`Session.output_scheme`."""
        return getattr(self.io.template(port_id), "annotation_scheme", None)

    def check_scheme(self, port_id, expected, kind="DISCRETE"):
        """Database mode scheme check (``SessionIO.check_scheme``); see :meth:`Session.check_scheme`."""
        self.io.check_scheme(port_id, expected, kind)

    @property
    def out_dir(self):
        """Folder of the first active output (NOVA's session folder), None when there is none."""
        for desc in self.io.manager.data_description or []:
            if desc.get("type") == "output":
                try:
                    return Path(self.io.path(desc.get("id"))).parent
                except (KeyError, NovaInfantError):
                    continue
        return None

    @out_dir.setter
    def out_dir(self, value):  # the base class sets it; DISCOVER derives it from the outputs
        pass


def _last_loadable(io: SessionIO, names: list[str]) -> str:
    """Last session of the job whose file-mode inputs all exist (du-process fails the others before
    ``process_data``); database-mode inputs are assumed present."""
    from discover_utils.data.provider.data_manager import resolve_file_uri

    inputs = [d for d in io.manager.data_description or []
              if d.get("type") == "input" and d.get("src", "").lower().startswith("file")]
    for name in reversed(names):
        if all(Path(resolve_file_uri(d, io.dataset, name)).exists() for d in inputs):
            return name
    return names[-1]


def given_options(spec: ModuleSpec, trainer, options: dict | None) -> dict:
    """What du-process hands a module, before parsing: the ``.trainer``'s own defaults, then the request's options
    (NOVA's ``None``/``""`` = not given). Only the spec's options are kept from the ``.trainer`` (an older
    ``.trainer`` may carry retired ones); a request's unknown option is kept, so parsing refuses it.

    Parameters
    ----------
    spec : ModuleSpec
    trainer : discover-utils ``Trainer`` or None
    options : dict or None
        ``Processor.options`` as du-process set them.

    Returns
    -------
    dict
    """
    known = {o.name for o in spec.options}
    merged = {k: v for k, v in trainer_defaults(trainer).items() if k in known and not is_unset(v)}
    merged.update({k: v for k, v in (options or {}).items() if not is_unset(v)})
    return merged


def processor_class(name: str, spec: ModuleSpec | None = None) -> type:
    """The discover-utils ``Processor`` subclass du-process runs for the registered spec ``name``.

    Parameters
    ----------
    name : str
        Key of :data:`nova_infant.specs.registry.SPECS`.
    spec : ModuleSpec, optional
        Use this spec instead of the registered one (tests).

    Returns
    -------
    type
        A ``Processor`` subclass named ``spec.create`` (``is_iterable="False"``: one session per ``process_data``).

    Raises
    ------
    KeyError
        For a name that is not registered.
    """
    if spec is None:
        from nova_infant.specs.registry import SPECS  # loads torch: imported on use

        spec = SPECS[name]
    the_spec = spec

    class SpecProcessor(Processor):
        spec = the_spec

        def __init__(self, *args, **kwargs):
            if "discover_utils.scripts.process" in sys.modules:  # du-process: one request per process, built
                write_policy.open_job(self.spec.name)  # names the provenance mark's module
                log_to_job_output()
            super().__init__(*args, **kwargs)
            given = given_options(self.spec, getattr(self, "trainer", None), self.options)
            self.options = refuse_bad_options(lambda: self.spec.parse_options(given), self.spec.name)
            # a trained predictor's .trainer names its model in <model path=...> (relative to its folder)
            self.job = {"trainer_model_path": getattr(getattr(self, "trainer", None), "model_weights_path", "") or ""}
            self.session = None
            if self.spec.trains:
                self.items, self.item_names, self.skipped, self.trained, self.dataset = [], [], [], False, ""
                try:  # torch imports lazily; importing it inside an atexit hook fails
                    import torch._dynamo  # noqa: F401
                except ImportError:
                    pass
                atexit.register(self._fit_if_pending)

        def process_data(self, ds):
            io = SessionIO.from_provider(ds)
            self.session = DiscoverSession(io, self.job)
            if self.spec.trains:
                return self._collect(io)  # says "session <name>: skipped: ..." itself
            return self._run(ds)

        @one_line_errors  # an error: one line "session <name>: <Error>: <problem>", then du-process's traceback
        def _run(self, ds):
            result = self.spec.run(self.session, self.options)
            say_notes(self.spec, self.session, result)
            return result

        def to_output(self, result) -> dict:
            if self.spec.trains or result is None or result == {}:
                return {}
            out = nova_objects(self.spec, result, self.session)
            for port_id in out:
                self.session.io.prepare_output(port_id)
            return out

        # -- training specs
        def _collect(self, io):
            error = None
            self.dataset = io.dataset
            twice = sorted({n for n in job_sessions() if job_sessions().count(n) > 1})
            if twice:
                raise OptionError(f"--sessions: session {twice[0]} is given twice; give each session once")
            try:
                self.items.append(self.spec.run(self.session, self.options))
                self.item_names.append(io.name)
            except NovaInfantError as exc:  # report, keep training on the other sessions
                log.error("session %s: skipped: %s: %s", io.name, type(exc).__name__, exc)
                self.skipped.append((io.name, str(exc)))
                error = exc
            names = job_sessions()
            if self.items and (not names or io.name == _last_loadable(io, names)):
                try:
                    self._fit()  # last session of the job (an unknown session list: after every session)
                except NovaInfantError as exc:
                    log.error("training failed: %s: %s", type(exc).__name__, exc)
                    raise
            if error is not None:
                raise error
            return {}

        def _fit(self):
            self.trained = True
            ctx = TrainContext(trainer_dir(), self.dataset, list(self.item_names), list(self.skipped))
            return self.spec.fit(list(self.items), self.options, ctx)

        def _fit_if_pending(self):
            if self.items and not self.trained:
                try:
                    self._fit()
                except NovaInfantError as exc:
                    log.error("training failed: %s: %s", type(exc).__name__, exc)

    SpecProcessor.__name__ = SpecProcessor.__qualname__ = spec.create
    SpecProcessor.__doc__ = f"DISCOVER ``Processor`` of module {spec.name}: {spec.description}."
    return SpecProcessor
