"""What flows through a module: its inputs and outputs (:class:`Port`) and what ``run`` returns for them
(:class:`Result` of :class:`StreamData`, :class:`DiscreteData`, :class:`ContinuousData`), which the one writer
(:mod:`nova_infant.specs.writing`) turns into NOVA objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


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


#: The optional input whose duration fixes the session grid (:meth:`nova_infant.specs.sessions.Session.grid`;
#: docs/alignment.md), accepted on the command line and in a hand-written ``--data`` but not declared in ``.trainer``
#: files.
REFERENCE = Port("reference", "stream:Video", "video", "video/audio/.stream whose duration fixes the grid",
                 optional=True, declared=False)


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
