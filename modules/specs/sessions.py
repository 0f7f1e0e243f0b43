"""The session ``run`` sees, the same from the command line (:class:`FileSession`) and under du-process (a subclass
in :mod:`nova_infant.discover.processor`): its input files, where outputs go, the session grid and a job-wide cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from nova_infant.core.annotations import read_annotation
from nova_infant.core.grid import session_grid
from nova_infant.core.media import media_duration_ms
from nova_infant.core.streams import load_ssi_stream
from nova_infant.specs.ports import Port
from nova_infant.core.errors import InputMissingError


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
        raise InputMissingError(f"session {self.name}: no input {port_id!r} given")

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
