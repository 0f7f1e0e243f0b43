"""THE annotation reader and writer of the package: NOVA ``.annotation`` files (discrete, continuous, free), the
class names and segments of a discrete one, and frame labels merged into segments. Every module reads and writes
annotations through here (ICEP-R training labels, tagger training and evaluation, review helpers; DISCOVER sessions
through ``Session.read_annotation``); writes are atomic (:mod:`nova_infant.core.atomic`).

Parsing is discover-utils' ``FileHandler`` (ASCII/binary ``.annotation`` header + ``.annotation~`` data, times in
seconds on disk and ms in memory; docs/discover-integration.md §3.3-3.4); this module adds the checks that make every
bad file one line naming it (docs/troubleshooting.md).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np

from nova_infant.core.atomic import check_pair, save_atomic
from nova_infant.core.errors import AnnotationError
from nova_infant.core.schemes import annotation_scheme, is_discrete_scheme
from nova_infant.core.schemes import class_names  # noqa: F401  (the one scheme parser; re-exported)
from nova_infant.core import write_policy

#: dtype of discrete segments when an annotation holds none (``from``/``to`` ms, ``id``, ``conf``).
EMPTY_SEGMENTS = np.zeros(0, dtype=[("from", "i4"), ("to", "i4"), ("id", "i4"), ("conf", "f4")])


def read_annotation(path: str | os.PathLike):
    """Load a NOVA ``.annotation`` (discrete, continuous or free) with discover-utils' ``FileHandler``.

    Returns a ``DiscreteAnnotation`` (data: ``from``/``to`` int32 ms, ``id`` int32, ``conf`` float32),
    ``ContinuousAnnotation`` (``score``, ``conf`` at the scheme's rate) or ``FreeAnnotation``.

    Raises
    ------
    AnnotationError
        If the file is not an ``.annotation``, it or its ``~`` data file is missing, or it cannot be parsed.
    """
    from discover_utils.data.annotation import Annotation
    from discover_utils.data.handler.file_handler import FileHandler

    path = Path(path)
    write_policy.register_input(path)
    if path.suffix != ".annotation":
        raise AnnotationError(f"{path}: not a NOVA .annotation file")
    check_pair(path, AnnotationError)
    if not path.is_file():
        raise AnnotationError(f"{path}: no such annotation file (is the session coded with this scheme and annotator?)")
    if not Path(str(path) + "~").is_file():
        raise AnnotationError(f"{path}: data file {path.name}~ is missing")
    try:
        with warnings.catch_warnings():  # NaN times cast to int: reported by check_annotation below
            warnings.simplefilter("ignore", RuntimeWarning)
            annotation = FileHandler().load(path)
    except Exception as exc:  # the parser raises XML, value and index errors alike
        raise AnnotationError(f"{path}: cannot read annotation ({type(exc).__name__}: {exc})") from None
    if not isinstance(annotation, Annotation):
        raise AnnotationError(f"{path}: not an annotation")
    check_annotation(annotation, str(path))
    write_policy.register_input(path)  # an output of this job may never replace it
    write_policy.register_annotator(getattr(annotation.meta_data, "annotator", None))
    return annotation


#: the largest class id a scheme may use relative to its class count (ids are 0..N-1 in NOVA; gaps from deleted
#: classes are tolerated up to here, an id like 9e8 is refused before anything builds a list that long)
MAX_ID_SLACK = 1000


def check_annotation(annotation, source: str = "annotation") -> None:
    """The checks every annotation passes before any module uses it (discrete ones; continuous and free pass).

    Parameters
    ----------
    annotation : discover-utils ``DiscreteAnnotation`` (or any annotation)
        Segments ``from``/``to`` in int32 ms as loaded (a NaN or infinite time in the file becomes a negative
        number here), ``id`` int32.
    source : str
        File or origin named in errors.

    Raises
    ------
    AnnotationError
        One line naming ``source`` and the first offence: two classes of one name; a class id that is negative or
        far beyond the scheme's class count (more than :data:`MAX_ID_SLACK` above it); a segment time that is NaN,
        infinite or negative; a segment that ends before it starts; two segments that overlap (a NOVA discrete track
        holds one label at a time, the rule ``review import-elan`` applies); a label id that is neither -1
        (garbage) nor a class of the scheme.
    """
    if not is_discrete_scheme(annotation):
        return
    classes = annotation_scheme(annotation, source).classes
    seen: dict[str, int] = {}
    for c in classes:
        if c["name"] in seen:
            raise AnnotationError(f"{source}: class name {c['name']!r} is used by ids {seen[c['name']]} and "
                                  f"{c['id']}; give every class its own name")
        seen[c["name"]] = c["id"]
    limit = len(classes) + MAX_ID_SLACK
    for c in classes:
        if c["id"] < 0 or c["id"] > limit:
            raise AnnotationError(f"{source}: scheme class {c['name']!r} has id {c['id']}, expected 0..{limit} "
                                  f"(NOVA numbers classes 0..N-1)")
    data = annotation.data
    if data is None or not len(data):
        return
    start = np.asarray(data["from"], np.int64)
    stop = np.asarray(data["to"], np.int64)
    bad = np.flatnonzero((start < 0) | (stop < 0))
    if len(bad):
        raise AnnotationError(f"{source}: segment {bad[0] + 1} has a time that is NaN, infinite or negative "
                              f"(row {bad[0] + 1} of the data file)")
    bad = np.flatnonzero(stop < start)
    if len(bad):
        i = bad[0]
        raise AnnotationError(f"{source}: segment {i + 1} ends at {stop[i] / 1000:.3f} s before it starts at "
                              f"{start[i] / 1000:.3f} s")
    order = np.argsort(start, kind="stable")
    s, e = start[order], stop[order]
    over = np.flatnonzero(s[1:] < e[:-1])
    if len(over):
        raise AnnotationError(f"{source}: segments overlap at {s[over[0] + 1] / 1000:.3f} s (a NOVA discrete track "
                              f"cannot hold overlapping labels)")
    ids = np.asarray(data["id"], np.int64)
    known = np.array(sorted({c["id"] for c in classes} | {-1}), np.int64)
    bad = np.flatnonzero(~np.isin(ids, known))
    if len(bad):
        i = bad[np.argmin(start[bad])]
        raise AnnotationError(f"{source}: label id {ids[i]} at {start[i] / 1000:.2f} s is outside the scheme "
                              f"(ids {', '.join(str(k) for k in known[1:][:10])}{' ...' if len(known) > 11 else ''}; "
                              f"-1 = garbage)")


def discrete_segments(annotation, source: str = "") -> tuple[np.ndarray, list[str]]:
    """``(segments, class names by id)`` of a discrete annotation, as stored (garbage -1 and REST rows kept).

    Returns
    -------
    segments : structured ndarray (``from`` int32 ms, ``to`` int32 ms, ``id`` int32, ``conf`` float32)
    names : list of str, indexed by class id

    Raises
    ------
    AnnotationError
        If the annotation is not discrete.
    """
    names = class_names(annotation, source)
    data = annotation.data if annotation.data is not None else EMPTY_SEGMENTS
    return data, names


def labelled_segments(annotation, source: str = "") -> list[tuple[float, float, str, float]]:
    """Every segment whose id is a class of the scheme (garbage -1 and REST skipped), in file order.

    Returns
    -------
    list of (from_ms, to_ms, class name, conf) with floats in ms.

    Raises
    ------
    AnnotationError
        If the annotation is not discrete.
    """
    data, names = discrete_segments(annotation, source)
    known = {i for i, n in enumerate(names) if n}
    return [(float(r["from"]), float(r["to"]), names[int(r["id"])], float(r["conf"]) if "conf" in data.dtype.names
             else 1.0) for r in data if int(r["id"]) in known]


def read_segments(path: str | os.PathLike) -> list[tuple[float, float, str, float]]:
    """:func:`labelled_segments` of the discrete ``.annotation`` file ``path`` (raises ``AnnotationError``)."""
    return labelled_segments(read_annotation(path), str(path))


def write_annotation(annotation, path: str | os.PathLike) -> Path:
    """Write a discover-utils annotation as an ASCII NOVA ``.annotation`` (+ ``~`` data file), atomically
    (discover-utils' BINARY writer is broken: never used).

    Parameters
    ----------
    annotation : discover-utils ``DiscreteAnnotation``, ``ContinuousAnnotation`` or ``FreeAnnotation``
    path : path
        ``.annotation`` is appended if missing.

    Returns
    -------
    pathlib.Path
        ``path`` with its suffix; the rows are in ``<path>~``.

    Raises
    ------
    OutputError
        Folder not writable (full disk, read-only, lock held too long): an existing annotation is kept as it was.
    """
    path = Path(path)
    if path.suffix != ".annotation":
        path = path.with_name(path.name + ".annotation")
    return save_atomic(annotation, path)


def frames_to_segments(labels: np.ndarray, step_ms: float, conf: np.ndarray | None = None,
                       skip_ids: Iterable[int] = (), offset_ms: float = 0.0) -> np.ndarray:
    """Merge consecutive equal frame labels into segments (NOVA ``LabelDType.DISCRETE``: ms, id, conf).

    Parameters
    ----------
    labels : int array of shape (n_frames,)
        Class id per frame; frame k covers ``[offset + k*step, offset + (k+1)*step)`` ms.
    conf : float array of shape (n_frames,), optional
        Per-frame confidence; a segment's ``conf`` is the mean over its frames (1.0 if omitted).
    skip_ids : ids that produce no segment (e.g. REST, or -1 for "no prediction").

    Returns
    -------
    structured ndarray with fields ``from``, ``to`` (int32 ms), ``id`` (int32), ``conf`` (float32)
    """
    from discover_utils.utils.type_definitions import LabelDType

    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    conf = np.ones(len(labels), np.float32) if conf is None else np.asarray(conf, np.float32).reshape(-1)
    if len(labels) == 0:
        return np.zeros(0, dtype=LabelDType.DISCRETE.value)
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(labels)]])
    keep = ~np.isin(labels[starts], list(skip_ids))
    starts, ends = starts[keep], ends[keep]
    csum = np.concatenate([[0.0], np.cumsum(conf, dtype=np.float64)])
    sums = csum[ends] - csum[starts]
    out = np.zeros(len(starts), dtype=LabelDType.DISCRETE.value)
    out["from"] = np.round(offset_ms + starts * step_ms).astype(np.int32)
    out["to"] = np.round(offset_ms + ends * step_ms).astype(np.int32)
    out["id"] = labels[starts]
    out["conf"] = (sums / np.maximum(ends - starts, 1)).astype(np.float32)
    return out
