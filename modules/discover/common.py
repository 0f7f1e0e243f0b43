"""What the DISCOVER ``Processor`` of every module spec needs (:mod:`nova_infant.discover.processor`): the session as
du-process hands it over (:class:`SessionIO`), the ``.trainer``'s option defaults, one-line errors, and atomic saving.

The processors subclass ``discover_utils.interfaces.server_module.Processor`` with ``is_iterable="False"``:
du-process hands ``process_data`` a ``DatasetManager`` holding exactly one session, and saves the dict
``to_output`` returns.

discover-utils' ``FileHandler.save`` truncates the old header and data files in place, so a kill or a full disk
destroys the previous stream. Importing this module wraps that method, in this process only (the installed library
is not changed: :func:`nova_infant.core.du_save.install_atomic_writer`), so every file du-process saves for our
adapters (file mode and NOVA database mode alike) goes through :func:`nova_infant.core.atomic.save_atomic`: staged
beside the target, header + data replaced as a pair under a lock, the previous pair kept on any failure.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nova_infant.core.atomic import safe_name
from nova_infant.core.du_save import install_atomic_writer
from nova_infant.core.errors import NovaInfantError, VideoDecodeError
from nova_infant.core.nova_db import check_output_scheme
from nova_infant.core import write_policy

log = logging.getLogger("nova_infant")


# ---------------------------------------------------------------- du-process checks


install_atomic_writer()


def install_video_load_check() -> None:
    """Turn discover-utils' refusal of an unreadable video into this package's one-line error (idempotent).

    du-process opens every video input with ``_VideoFileHandler.load`` (ffprobe) before our module runs; for a
    truncated file or one without a video stream it raises a bare ``ValueError``. The wrapper logs one line naming
    the file and raises :class:`~nova_infant.core.errors.VideoDecodeError` instead, so a batch shows the same kind of
    message for a bad video whichever side found it. Other errors (a missing file, …) pass through unchanged.

    Returns
    -------
    None
        Patches discover-utils' ``_VideoFileHandler.load`` in this process.

    Raises
    ------
    VideoDecodeError
        (from the wrapped loader) for a video ffprobe finds no stream in.
    """
    from discover_utils.data.handler import file_handler

    handler_class = getattr(file_handler, "_VideoFileHandler", None)
    if handler_class is None or getattr(handler_class.load, "_nova_infant_checked", False):
        return
    original = handler_class.load

    def load(self, fp, *args, **kwargs):
        try:
            return original(self, fp, *args, **kwargs)
        except ValueError as exc:
            error = VideoDecodeError(f"{fp}: no readable video stream (ffprobe found none: truncated file, or not a "
                                     f"video?) [{exc.__class__.__name__} in discover-utils]")
            log.error("input %s: %s: %s", Path(fp).name, type(error).__name__, error)
            raise error from None

    load._nova_infant_checked = True
    load.__doc__ = original.__doc__
    handler_class.load = load


install_video_load_check()


# ---------------------------------------------------------------- options (NOVA sends int/float/bool/str/None)


def trainer_defaults(trainer) -> dict:
    """Option defaults of the ``.trainer`` du-process runs, so that two trainers of one module (e.g. ICEP-R training
    per role) keep their own defaults when a job sends no option.

    Parameters
    ----------
    trainer : discover-utils ``Trainer`` or None
        ``Processor.trainer``; its ``model_optstr`` is ``{name:TYPE:default};...`` (discover-utils' format).

    Returns
    -------
    dict
        ``{name: default text}``; a LIST option gives its first item; ``{}`` without a trainer.
    """
    text = getattr(trainer, "model_optstr", "") or ""
    out = {}
    for part in text.split(";"):
        fields = part.replace("{", "").replace("}", "").split(":")
        if len(fields) >= 3 and fields[0].strip():
            out[fields[0].strip()] = fields[2].split(",")[0] if "LIST" in fields[1] else fields[2]
    return out


def refuse_bad_options(check, module: str):
    """Run a module's option check when du-process creates the module, before any session is loaded.

    A bad option refuses the whole job: one line ``error: <module>: option ...`` on stderr and exit
    code 2 (``SystemExit``: no traceback, nothing written).

    Parameters
    ----------
    check : callable
        ``check()`` -> the parsed options; raises a ``NovaInfantError`` for a bad one.
    module : str
        Module name for the message.

    Returns
    -------
    Any
        What ``check()`` returns.

    Raises
    ------
    SystemExit
        Code 2 after the one-line message.
    """
    try:
        return check()
    except NovaInfantError as exc:
        print(f"error: {module}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def one_line_errors(process_data):
    """Decorate a module's ``process_data``: an error of this package (or an OSError) is logged as one line
    ``session <name>: <Error>: <file>: <problem>`` before du-process prints its traceback and goes on with the next
    session.

    Parameters
    ----------
    process_data : callable
        ``process_data(self, ds)`` of a ``Processor``.

    Returns
    -------
    callable
        The wrapped method (the error is re-raised unchanged).
    """
    import functools

    @functools.wraps(process_data)
    def wrapper(self, ds):
        try:
            return process_data(self, ds)
        except (NovaInfantError, OSError) as exc:
            names = getattr(ds, "session_names", None) or ["?"]
            log.error("session %s: %s: %s", names[0], type(exc).__name__, exc)
            raise

    return wrapper


# ---------------------------------------------------------------- session access


def _register_inputs(session: str, dataset: str, data_description) -> None:
    """Register every input entry of the request with the write policy (files: their path; database annotations:
    their annotator), so no output of the job replaces an input or takes a coder's annotator name."""
    from discover_utils.data.provider.data_manager import resolve_file_uri

    for desc in data_description:
        if desc.get("type") != "input":
            continue
        write_policy.register_annotator(desc.get("annotator"))
        if str(desc.get("src", "")).lower().startswith("file"):
            try:
                write_policy.register_input(resolve_file_uri(desc, dataset, session))
            except Exception:  # an unresolvable entry fails where it is loaded
                pass


def check_names(session: str, dataset: str, data_description) -> None:
    """Check every name du-process joins into a path: session and dataset (``<data_dir>/<dataset>/<session>``,
    ``{session}`` in a ``uri_template``) and, for NOVA database entries, role and stream name
    (``<role>.<name><ext>``).

    Parameters
    ----------
    session, dataset : str
    data_description : list of dict or None
        du-process's ``--data`` entries.

    Raises
    ------
    PathError
        Naming the bad name (``..``, a separator, empty).
    """
    safe_name(session, "session")
    safe_name(dataset, "dataset")
    for desc in data_description or []:
        if not str(desc.get("src", "")).lower().startswith("file"):
            for key in ("role", "name"):
                if desc.get(key) is not None:
                    safe_name(desc.get(key), f"{desc.get('id', '?')} {key}")


@dataclass
class SessionIO:
    """One session as du-process hands it to a module (``DatasetManager`` with one session).

    Attributes
    ----------
    name, dataset : str
    manager : discover-utils ``SessionManager``
        Holds ``data_description``, ``input_data`` and ``output_data_templates``.
    duration_ms : float or None
        NOVA database session duration (ms), None in file mode.
    data_dir : str or None
        NOVA data folder in database mode, else None.
    """

    name: str
    dataset: str
    manager: Any
    duration_ms: float | None
    data_dir: str | None

    @classmethod
    def from_provider(cls, ds) -> "SessionIO":
        """The one session of du-process's ``DatasetManager`` ``ds``.

        Raises
        ------
        PathError
            A session, dataset, role or stream name that would escape its folder (logged in one line first).
        """
        name = ds.session_names[0]
        try:
            check_names(name, ds.dataset, ds.sessions[name]["manager"].data_description)
        except NovaInfantError as exc:  # du-process prints a traceback; say it in one line first
            log.error("session %s: %s: %s", name, type(exc).__name__, exc)
            raise
        entry = ds.sessions[name]
        _register_inputs(name, ds.dataset, entry["manager"].data_description or [])
        info = entry.get("info")
        duration = getattr(info, "duration", None) if info is not None else None
        data_dir = None
        if ds.source_ctx and "db" in ds.source_ctx:
            data_dir = ds.source_ctx["db"].get("data_dir")
        return cls(name, ds.dataset, entry["manager"], float(duration) if duration else None, data_dir)

    def description(self, io_id: str) -> dict:
        """The ``--data`` entry with this ``id``.

        Parameters
        ----------
        io_id : str
            ``id`` of the ``--data`` entry (the ``.trainer``'s io id).

        Returns
        -------
        dict

        Raises
        ------
        KeyError
            Naming the id if the request has no such entry.
        """
        for desc in self.manager.data_description or []:
            if desc.get("id") == io_id:
                return desc
        raise KeyError(f"session {self.name}: the request has no data entry with id {io_id!r}")

    def has(self, io_id: str) -> bool:
        """True when the request has a ``--data`` entry with id ``io_id``."""
        return any(d.get("id") == io_id for d in self.manager.data_description or [])

    def is_active_output(self, io_id: str) -> bool:
        """True when ``io_id`` is an output entry of the request that is not marked ``active: false``."""
        if not self.has(io_id):
            return False
        desc = self.description(io_id)
        return desc.get("type") == "output" and str(desc.get("active", True)).lower() not in ("false", "0")

    def path(self, io_id: str) -> Path:
        """File path of an input or output: ``uri``/``uri_template`` in file mode, else
        ``<data_dir>/<dataset>/<session>/<role>.<name><ext>`` (NOVA's layout) in database mode.

        Parameters
        ----------
        io_id : str
            ``id`` of the ``--data`` entry (the ``.trainer``'s io id).

        Returns
        -------
        Path

        Raises
        ------
        KeyError
            No such entry, or a database entry without a data folder.
        """
        from discover_utils.data.provider.data_manager import resolve_file_uri

        desc = self.description(io_id)
        if desc.get("src", "").lower().startswith("file"):
            return resolve_file_uri(desc, self.dataset, self.name)
        data = self.manager.input_data.get(io_id) or self.manager.output_data_templates.get(io_id)
        ext = getattr(getattr(data, "meta_data", None), "ext", "") or ""
        if not self.data_dir:
            raise KeyError(f"session {self.name}: input {io_id!r} is in the database but no data_dir was given")
        return Path(self.data_dir) / self.dataset / self.name / f"{desc.get('role')}.{desc.get('name')}{ext}"

    def in_database(self, io_id: str) -> bool:
        """True when the ``--data`` entry ``io_id`` is a NOVA database one (``src`` ``db:...``).

        Parameters
        ----------
        io_id : str
            ``id`` of the ``--data`` entry (the ``.trainer``'s io id).

        Returns
        -------
        bool
        """
        return self.has(io_id) and self.description(io_id).get("src", "").lower().startswith("db")

    def check_scheme(self, io_id: str, expected: str, kind: str = "DISCRETE") -> None:
        """Database mode: raise ``NovaDatabaseError`` (one line, saying to run ``nova-infant import-schemes``) if the
        active output ``io_id`` is not in the scheme ``expected`` (NOVA silently offers another scheme of the same
        type when ours is missing). File mode and inactive outputs: nothing.

        Parameters
        ----------
        io_id : str
            ``id`` of the ``--data`` entry (the ``.trainer``'s io id).
        expected : str
            Scheme name the module writes.
        kind : str
            ``DISCRETE`` or ``CONTINUOUS``.

        Raises
        ------
        NovaDatabaseError
        """
        if self.is_active_output(io_id) and self.in_database(io_id):
            check_output_scheme(self.template(io_id), io_id, expected, kind, self.name)

    def template(self, io_id: str):
        """The output template du-process prepared for ``io_id``.

        Parameters
        ----------
        io_id : str
            ``id`` of the ``--data`` entry (the ``.trainer``'s io id).

        Returns
        -------
        discover-utils ``Annotation`` or ``Stream`` or None
            Carries role, name, annotator and scheme.
        """
        return self.manager.output_data_templates.get(io_id)

    def prepare_output(self, io_id: str) -> None:
        """Create the parent folder of a file-mode output (discover-utils' writer does not).

        Parameters
        ----------
        io_id : str
            ``id`` of the ``--data`` entry (the ``.trainer``'s io id).

        Raises
        ------
        OSError
            The folder cannot be created.
        """
        desc = self.description(io_id)
        if desc.get("src", "").lower().startswith("file"):
            os.makedirs(self.path(io_id).parent, exist_ok=True)
