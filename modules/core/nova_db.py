"""NOVA database mode: a thin layer over discover-utils' real MongoDB handlers.

NOVA keeps one MongoDB database per dataset with the collections ``Sessions``, ``Roles``, ``Annotators``,
``Schemes``, ``Annotations``, ``AnnotationData`` and ``Streams`` (NOVA: Database/DatabaseHandler.cs).
discover-utils (``discover_utils.data.handler.nova_db_handler``) reads and writes annotations and streams but never
creates sessions, roles, annotators or schemes, and reports a missing one as ``TypeError: 'NoneType' …`` and a locked
annotation as a bare ``FileExistsError``. The helpers here create those documents the way NOVA does and turn the
handlers' failures into one-line :class:`~nova_infant.core.errors.AnnotationError` / :class:`NovaDatabaseError` messages.

All functions take a *context*: the ``dict`` of keyword arguments of the discover-utils handlers
(``db_host``, ``db_port``, ``db_user``, ``db_password``, ``data_dir``), i.e. exactly ``source_context["db"]`` of a
``DatasetManager``. Build it with :func:`connect`. See docs/nova-database.md.
"""

from __future__ import annotations

import json
import os
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit

import numpy as np

from nova_infant.core.atomic import safe_name
from nova_infant.core.continuous import gap_rows, is_continuous_annotation
from nova_infant.core.du_save import install_atomic_writer
from nova_infant.core.errors import AnnotationError, NovaInfantError
from nova_infant.core.schemes import parse_scheme
from nova_infant.core.write_policy import check_annotator, install_db_checks, register_annotator

SESSIONS, ROLES, ANNOTATORS, SCHEMES, ANNOTATIONS, STREAMS = (
    "Sessions", "Roles", "Annotators", "Schemes", "Annotations", "Streams")


class NovaDatabaseError(NovaInfantError):
    """The NOVA MongoDB cannot be reached, or a session/role/annotator/scheme it needs is missing."""


def parse_mongo_uri(uri: str) -> dict:
    """Split ``mongodb://user:password@host:port`` into discover-utils handler arguments.

    Parameters
    ----------
    uri : str
        MongoDB URI; user, password and port are optional (port defaults to 27017).

    Returns
    -------
    dict
        ``{"db_host", "db_port", "db_user", "db_password"}`` (user/password ``None`` when absent).

    Raises
    ------
    NovaDatabaseError
        If the URI does not start with ``mongodb://`` or has no host.
    """
    parts = urlsplit(uri)
    if parts.scheme != "mongodb" or not parts.hostname:
        raise NovaDatabaseError(f"{uri!r}: not a mongodb://[user:password@]host[:port] URI")
    return {"db_host": parts.hostname, "db_port": parts.port or 27017,
            "db_user": unquote(parts.username) if parts.username else None,
            "db_password": unquote(parts.password) if parts.password else None}


def _handler(ctx: Mapping[str, Any], cls=None):
    from discover_utils.data.handler import nova_db_handler

    cls = cls or nova_db_handler.NovaDBHandler
    handler = cls(**dict(ctx))
    if handler.client is None:
        raise NovaDatabaseError(f"mongodb://{ctx.get('db_host')}:{ctx.get('db_port')}: no connection")
    return handler


def connect(host: str, port: int = 27017, user: str | None = None, password: str | None = None,
            data_dir: str | os.PathLike | None = None) -> dict:
    """Check that a NOVA MongoDB answers and return the handler context for it.

    discover-utils connects with TLS first and falls back to plain TCP unless ``DISCOVER_USE_TLS`` is set
    (``false`` skips the 3 s TLS attempt); it only prints connection failures, so this function pings the server.

    Parameters
    ----------
    host : str
        Host name or IP, or a full ``mongodb://user:password@host:port`` URI (then the other fields may be omitted).
    port : int
        TCP port (NOVA's default 27017).
    user, password : str or None
        MongoDB credentials (discover-utils only authenticates when both are given).
    data_dir : path or None
        NOVA data folder holding ``<dataset>/<session>/<role>.<stream>.<ext>`` files; needed for streams.

    Returns
    -------
    dict
        ``{"db_host", "db_port", "db_user", "db_password", "data_dir"}``: pass it as ``source_context["db"]`` to
        discover-utils' ``DatasetManager`` or to the helpers of this module.

    Raises
    ------
    NovaDatabaseError
        If the server does not answer a ``ping`` (message names host and port).
    """
    if str(host).startswith("mongodb://"):
        given = parse_mongo_uri(host)
        host, port = given["db_host"], given["db_port"]
        user, password = user or given["db_user"], password or given["db_password"]
    ctx = {"db_host": host, "db_port": int(port), "db_user": user, "db_password": password,
           "data_dir": None if data_dir is None else str(data_dir)}
    from discover_utils.data.handler.nova_db_handler import NovaDBHandler

    handler = NovaDBHandler()  # connects below, so that failures can be reported
    try:
        handler.connect(host, int(port), user, password)
        handler.client.admin.command("ping")
    except Exception as exc:  # pymongo raises several kinds (timeout, auth, configuration)
        raise NovaDatabaseError(f"mongodb://{host}:{port}: cannot connect ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:160]})") from None
    return ctx


def _db(ctx: Mapping[str, Any], dataset: str):
    return _handler(ctx).client[dataset]


def _upsert(collection, name: str, document: dict):
    found = collection.find_one({"name": name}, {"_id": 1})
    if found:
        collection.update_one({"_id": found["_id"]}, {"$set": document})
        return found["_id"]
    return collection.insert_one({"name": name, **document}).inserted_id


def ensure_session(ctx: Mapping[str, Any], dataset: str, session: str, duration_ms: float | None = None,
                   location: str = "", language: str = "", date: datetime | None = None):
    """Create (or update) a NOVA ``Sessions`` document and the session's data folder.

    Parameters
    ----------
    ctx : dict
        Handler context from :func:`connect`.
    dataset, session : str
        Dataset (= MongoDB database) and session name.
    duration_ms : float or None
        Session duration in ms; NOVA stores seconds (``duration``), 0 = unknown.
    location, language : str
        Free text NOVA shows in its session list.
    date : datetime or None
        Recording date (default: now).

    Returns
    -------
    bson.ObjectId
        ``_id`` of the session document.
    """
    doc = {"location": location, "language": language, "date": date or datetime.now(),
           "duration": float(duration_ms or 0) / 1000.0, "isValid": True}
    oid = _upsert(_db(ctx, dataset)[SESSIONS], session, doc)
    if ctx.get("data_dir"):
        (Path(ctx["data_dir"]) / safe_name(dataset, "dataset") / safe_name(session, "session")).mkdir(
            parents=True, exist_ok=True)
    return oid


def list_sessions(ctx: Mapping[str, Any], dataset: str, pattern: str | None = None) -> list[str]:
    """Session names of a NOVA database (its ``Sessions`` collection), sorted; sessions NOVA marks invalid
    (``isValid: false``) are left out.

    Parameters
    ----------
    ctx : dict
        Handler context from :func:`connect`.
    dataset : str
        Dataset (= MongoDB database).
    pattern : str or None
        Shell-style pattern on the session name (:func:`fnmatch.fnmatchcase`, case-sensitive), e.g. ``P0*_ffsf?``;
        None: every session.

    Returns
    -------
    list of str

    Raises
    ------
    NovaDatabaseError
        If the database has no session, or none matches ``pattern`` (naming server, dataset and pattern).
    """
    from fnmatch import fnmatchcase

    docs = _db(ctx, dataset)[SESSIONS].find({}, {"name": 1, "isValid": 1})
    names = sorted({str(d["name"]) for d in docs if d.get("name") and d.get("isValid", True) is not False})
    where = f"mongodb://{ctx.get('db_host')}:{ctx.get('db_port')}/{dataset}"
    if not names:
        raise NovaDatabaseError(f"{where}: no session in this NOVA database (is the dataset name right?)")
    if pattern:
        chosen = [n for n in names if fnmatchcase(n, pattern)]
        if not chosen:
            raise NovaDatabaseError(f"{where}: no session matches {pattern!r} ({len(names)} sessions, e.g. {names[0]})")
        names = chosen
    return names


def ensure_role(ctx: Mapping[str, Any], dataset: str, role: str):
    """Create a NOVA ``Roles`` document (e.g. ``infant``, ``caregiver``), or mark an existing one valid.

    Parameters
    ----------
    ctx : dict
        Handler context from :func:`connect`.
    dataset, role : str

    Returns
    -------
    bson.ObjectId
        ``_id`` of the role document.
    """
    return _upsert(_db(ctx, dataset)[ROLES], role, {"isValid": True})


def ensure_annotator(ctx: Mapping[str, Any], dataset: str, annotator: str, fullname: str | None = None):
    """Create a NOVA ``Annotators`` document (a coder, or a model such as ``icep-bilstm``), or update an existing one.

    Parameters
    ----------
    ctx : dict
        Handler context from :func:`connect`.
    dataset, annotator : str
    fullname : str, optional
        Shown in NOVA (default: ``annotator``).

    Returns
    -------
    bson.ObjectId
        ``_id`` of the annotator document.
    """
    return _upsert(_db(ctx, dataset)[ANNOTATORS], annotator, {"fullname": fullname or annotator, "isValid": True})


def import_scheme(ctx: Mapping[str, Any], dataset: str, scheme: Mapping[str, Any] | str | os.PathLike):
    """Create or update a discrete or continuous NOVA scheme (``Schemes`` document) from a scheme description.

    Parameters
    ----------
    ctx : dict
        Handler context from :func:`connect`.
    dataset : str
        Dataset name.
    scheme : dict or path
        A ``schemes/*.json`` description (or a path to one): discrete ``{"name", "type": "DISCRETE", "classes":
        [{"id", "name", "color"}], "color"?, "description"?}`` (``classes`` may also be ``{id: {"name", "color"}}``;
        colours NOVA ``#AARRGGBB`` or ``#RRGGBB``; ids 0..N-1, which discover-utils uses as indices) or continuous
        ``{"name", "type": "CONTINUOUS", "sr" (Hz), "min", "max", "min_color"?, "max_color"?, "description"?}``.

    Returns
    -------
    bson.ObjectId
        ``_id`` of the scheme document (see :func:`scheme_document`).

    Raises
    ------
    AnnotationError
        If the file cannot be read or the scheme is malformed (see :func:`scheme_document`).
    """
    source = f"dataset {dataset}"
    if not isinstance(scheme, Mapping):
        source = str(scheme)
        try:
            scheme = json.loads(Path(scheme).read_text())
        except (OSError, ValueError) as exc:
            raise AnnotationError(f"{source}: cannot read scheme JSON ({exc})") from None
    doc = scheme_document(scheme, source)
    return _upsert(_db(ctx, dataset)[SCHEMES], doc.pop("name"), doc)


def import_discrete_scheme(ctx: Mapping[str, Any], dataset: str, scheme: Mapping[str, Any] | str | os.PathLike):
    """:func:`import_scheme`, kept for callers written when only discrete schemes could be imported.

    Returns
    -------
    bson.ObjectId
        ``_id`` of the scheme document.

    Raises
    ------
    AnnotationError
        As :func:`import_scheme`.
    """
    return import_scheme(ctx, dataset, scheme)


def scheme_document(scheme: Mapping[str, Any], source: str = "scheme") -> dict:
    """The NOVA ``Schemes`` document of a discrete or continuous scheme description (see :func:`import_scheme`).

    Discrete: ``{name, type: "DISCRETE", color, description, labels[{id, name, color, isValid}], attributes: [],
    examples: [], isValid}``; continuous: ``{name, type: "CONTINUOUS", sr (float, Hz), min, max, min_color,
    max_color, description, attributes: [], examples: [], isValid}`` -- the fields NOVA reads (it reads ``sr`` with
    ``AsDouble``: hcmlab/nova Database/DatabaseHandler.cs) and discover-utils' ``AnnotationHandler`` resamples to.

    Raises
    ------
    AnnotationError
        If the type is neither DISCRETE nor CONTINUOUS; a discrete scheme has no classes, non-contiguous ids or a
        malformed colour; a continuous one lacks a positive ``sr`` or has ``min >= max``.
    """
    parsed = parse_scheme(scheme, source)
    common = {"description": parsed.description, "attributes": [], "examples": [], "isValid": True}
    if parsed.type == "CONTINUOUS":
        return {"name": parsed.name, "type": "CONTINUOUS", "sr": parsed.sr, "min": parsed.min, "max": parsed.max,
                "min_color": parsed.min_color, "max_color": parsed.max_color, **common}
    labels = [{"id": c["id"], "name": str(c["name"]), "color": c["color"], "isValid": bool(c.get("isValid", True))}
              for c in parsed.classes]
    return {"name": parsed.name, "type": "DISCRETE", "color": parsed.color, "labels": labels, **common}


IMPORT_HINT = "run `nova-infant import-schemes --db mongodb://HOST:PORT --dataset DATASET` once per NOVA database"


def check_output_scheme(template, io_id: str, expected: str, kind: str, session: str) -> None:
    """In database mode, fail with one line when an output's scheme is not the one the module writes.

    Parameters
    ----------
    template : discover-utils annotation or None
        ``SessionManager.output_data_templates[io_id]`` (its ``annotation_scheme`` came from the NOVA database).
    io_id, session : str
        For the message.
    expected : str
        Name (or, ending in ``*``, name prefix) of the scheme the module writes.
    kind : "DISCRETE" | "CONTINUOUS"

    Raises
    ------
    NovaDatabaseError
        Naming the output, the scheme found and :data:`IMPORT_HINT`.
    """
    scheme = getattr(template, "annotation_scheme", None)
    name = getattr(scheme, "name", None)
    found_kind = str(getattr(getattr(scheme, "scheme_type", None), "name", "")).upper()
    ok_name = name is not None and (name.startswith(expected[:-1]) if expected.endswith("*") else name == expected)
    if not ok_name or (found_kind and found_kind != kind):
        raise NovaDatabaseError(f"session {session}: output {io_id!r} needs the {kind.lower()} scheme {expected!r} "
                                f"in the NOVA database, got {name!r} (NOVA picks another scheme when it is "
                                f"missing): {IMPORT_HINT}")


def _require(ctx, dataset: str, **names: str) -> None:
    db = _db(ctx, dataset)
    collections = {"session": SESSIONS, "role": ROLES, "annotator": ANNOTATORS, "scheme": SCHEMES}
    missing = [f"{kind} {name!r}" for kind, name in names.items()
               if db[collections[kind]].find_one({"name": name}, {"_id": 1}) is None]
    if missing:
        raise NovaDatabaseError(f"NOVA dataset {dataset}: no {', '.join(missing)} (create it in NOVA or with "
                                f"nova_infant.core.nova_db.ensure_*; schemes: {IMPORT_HINT})")


def _where(dataset, session, scheme, annotator, role) -> str:
    return f"NOVA annotation {dataset}/{session} scheme={scheme} annotator={annotator} role={role}"


def load_annotation(ctx: Mapping[str, Any], dataset: str, session: str, scheme: str, annotator: str, role: str):
    """Load one NOVA annotation through discover-utils' ``AnnotationHandler.load``.

    Returns
    -------
    discover_utils.data.annotation.Annotation
        Times in ms (``DiscreteAnnotation.data``: from/to int32 ms, id int32, conf float32); ``meta_data.is_locked``.

    Raises
    ------
    AnnotationError
        If no such annotation exists (message names dataset, session, scheme, annotator and role).
    """
    from discover_utils.data.handler.nova_db_handler import AnnotationHandler

    register_annotator(annotator)  # predictions of this job may not take this name
    try:
        return _handler(ctx, AnnotationHandler).load(dataset=dataset, scheme=scheme, session=session,
                                                     annotator=annotator, role=role)
    except FileNotFoundError:
        raise AnnotationError(f"{_where(dataset, session, scheme, annotator, role)}: not found") from None


def save_annotation(ctx: Mapping[str, Any], annotation, dataset: str, session: str, annotator: str, role: str,
                    scheme: str | None = None, overwrite: bool = True, is_finished: bool = False,
                    is_locked: bool = False):
    """Save an annotation with discover-utils' ``AnnotationHandler.save``, with readable errors.

    Like DISCOVER (``SessionManager.save``), an existing unlocked annotation of the same session, scheme, annotator
    and role is overwritten by default; NOVA's ``isLocked`` flag protects a coder's finished work.

    Parameters
    ----------
    annotation : discover_utils.data.annotation.Annotation
        E.g. a ``DiscreteAnnotation`` with labels in ms; REST rows are dropped by the handler, garbage (-1) is kept.
    dataset, session, annotator, role : str
        Target; all must exist in the database (see :func:`ensure_session` etc.).
    scheme : str or None
        Scheme name (default: the annotation's scheme name).
    overwrite, is_finished, is_locked : bool
        Passed to the handler.

    Raises
    ------
    AnnotationError
        If the existing annotation is locked (or exists and ``overwrite`` is False), or a discrete label id is not a
        class of the database scheme.
    NovaDatabaseError
        If the session, role, annotator or scheme does not exist.
    """
    from discover_utils.data.annotation import DiscreteAnnotation
    from discover_utils.data.handler.nova_db_handler import AnnotationHandler

    install_db_checks()  # a coder's annotation is never replaced; predictions never take a read annotator's name
    scheme = scheme or annotation.annotation_scheme.name
    where = _where(dataset, session, scheme, annotator, role)
    check_annotator(annotator, where)
    _require(ctx, dataset, session=session, role=role, annotator=annotator, scheme=scheme)
    if isinstance(annotation, DiscreteAnnotation) and annotation.data is not None and len(annotation.data):
        doc = _db(ctx, dataset)[SCHEMES].find_one({"name": scheme})
        allowed = {lab["id"] for lab in doc.get("labels", [])} | {-1, annotation.rest_label_id}
        bad = sorted(set(np.asarray(annotation.data["id"]).tolist()) - allowed)
        if bad:
            raise AnnotationError(f"{where}: label ids {bad} are not classes of the scheme")
    if is_continuous_annotation(annotation) and annotation.data is not None and len(annotation.data):
        # NOVA's gap rule (core.continuous): a missing score is NaN with conf 0, confidences finite
        annotation.data = gap_rows(annotation.data["score"], annotation.data["conf"])
    handler = _handler(ctx, AnnotationHandler)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Overwriting existing annotation")
            return handler.save(annotation, dataset=dataset, session=session, annotator=annotator, role=role,
                                scheme=scheme, overwrite=overwrite, is_finished=is_finished, is_locked=is_locked)
    except FileExistsError as exc:
        reason = "is locked (unlock it in NOVA or save under another annotator)" if "locked" in str(exc) \
            else "exists and overwrite is off"
        raise AnnotationError(f"{where}: {reason}") from None


def set_locked(ctx: Mapping[str, Any], dataset: str, session: str, scheme: str, annotator: str, role: str,
               locked: bool = True) -> None:
    """Set NOVA's ``isLocked`` flag of an annotation (what NOVA's lock button does).

    Raises
    ------
    AnnotationError
        If the annotation does not exist.
    """
    db = _db(ctx, dataset)
    ids = {}
    for key, coll, name in (("session_id", SESSIONS, session), ("scheme_id", SCHEMES, scheme),
                            ("annotator_id", ANNOTATORS, annotator), ("role_id", ROLES, role)):
        doc = db[coll].find_one({"name": name}, {"_id": 1})
        if doc is None:
            raise AnnotationError(f"{_where(dataset, session, scheme, annotator, role)}: not found")
        ids[key] = doc["_id"]
    result = db[ANNOTATIONS].update_one(ids, {"$set": {"isLocked": bool(locked)}})
    if result.matched_count == 0:
        raise AnnotationError(f"{_where(dataset, session, scheme, annotator, role)}: not found")


def save_stream(ctx: Mapping[str, Any], stream, dataset: str, session: str, role: str, name: str) -> Path:
    """Register a feature stream: write ``<data_dir>/<dataset>/<session>/<role>.<name>.stream`` and its ``Streams``
    document (``type`` = the stream's media type, ``sr`` in Hz, ``dimlabels``) through discover-utils'
    ``StreamHandler.save``.

    Parameters
    ----------
    stream : discover_utils.data.stream.SSIStream
        E.g. from :func:`nova_infant.core.streams.make_ssi_stream` (float32 (N, dim), media type like
        ``feature;video;dinov2`` so NOVA lists it for matching trainer inputs).
    dataset, session, role, name : str
        Target; the session and role must exist.

    Returns
    -------
    pathlib.Path
        The stream header file written.

    Raises
    ------
    NovaDatabaseError
        If the context has no ``data_dir`` or the session/role is missing.
    PathError
        If dataset, session, role or name is not a plain name.
    OutputError
        If the files cannot be written (the previous stream is kept).
    """
    from discover_utils.data.handler.nova_db_handler import StreamHandler

    if not ctx.get("data_dir"):
        raise NovaDatabaseError(f"NOVA dataset {dataset}: no data_dir given, cannot write stream {role}.{name}")

    install_atomic_writer()  # discover-utils' writer truncates in place; ours replaces header + data as a pair
    for value, what in ((dataset, "dataset"), (session, "session"), (role, "role"), (name, "stream name")):
        safe_name(value, what)
    _require(ctx, dataset, session=session, role=role)
    folder = Path(ctx["data_dir"]) / dataset / session
    folder.mkdir(parents=True, exist_ok=True)
    ext = stream.meta_data.ext or ".stream"
    _handler(ctx, StreamHandler).save(stream, dataset=dataset, session=session, role=role, name=name, file_ext=ext)
    return folder / f"{role}.{name}{ext}"
