"""THE one writer of module outputs: a :class:`~nova_infant.specs.ports.Result` becomes discover-utils NOVA objects
(:func:`nova_objects`, CLI and DISCOVER alike), saved atomically by the command line (:func:`write_files`); notes are
said once (:func:`say_notes`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from nova_infant.core.annotations import write_annotation
from nova_infant.core.streams import make_ssi_stream, write_ssi_stream
from nova_infant.core.write_policy import writing
from nova_infant.specs.module_spec import ModuleSpec
from nova_infant.specs.ports import ContinuousData, Result
from nova_infant.specs.sessions import FileSession, Session
from nova_infant.taggers.outputs import continuous_annotation, discrete_annotation

log = logging.getLogger("nova_infant")


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
    ports = {p.id: p for p in spec.outputs}
    paths = []
    for port_id, obj in nova_objects(spec, result, session).items():
        port = ports.get(port_id)
        if port is None:  # an output the module adds at run time (icep_predict's prob_<class>): at its named file
            target, is_stream = session.files[port_id], not hasattr(obj, "annotation_scheme")
        else:
            target, is_stream = session.output_path(port), port.is_stream
        target.parent.mkdir(parents=True, exist_ok=True)
        with writing(spec.name):  # the provenance mark names the module, whichever command ran it
            paths.append(write_ssi_stream(obj, target) if is_stream else write_annotation(obj, target))
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
