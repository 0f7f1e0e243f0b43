"""Reading, writing and frame-sampling NOVA ``.annotation`` files for the review helpers.

Files are read and written with discover-utils' ``FileHandler`` (ASCII ``.annotation`` header + ``.annotation~``
data, times in seconds on disk and ms in memory; discover-utils ``data/handler/file_handler.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nova_infant.core import annotations as core_annotations
from nova_infant.core.annotations import read_annotation  # noqa: F401  (THE reader, re-exported for review)
from nova_infant.core.errors import AnnotationError
from nova_infant.core.grid import segment_index_at
from nova_infant.core.schemes import SchemeClass, annotation_scheme  # noqa: F401  (SchemeClass: re-exported)

GARBAGE_ID = -1  # NOVA's garbage label
NO_LABEL = -2  # a frame no segment covers (a gap in a discrete annotation)
GARBAGE_COLOR = "#FF404040"




def write_annotation(annotation, path: str | os.PathLike) -> Path:
    """Write an annotation as an ASCII NOVA ``.annotation`` (+ ``~``) atomically.

    Raises
    ------
    AnnotationError
        If ``path`` does not end in ``.annotation``.
    """
    path = Path(path)
    if path.suffix != ".annotation":
        raise AnnotationError(f"{path}: output must end in .annotation")
    return core_annotations.write_annotation(annotation, path)


def is_discrete(annotation) -> bool:
    """True for a discover-utils ``DiscreteAnnotation``.

    Parameters
    ----------
    annotation : discover-utils annotation

    Returns
    -------
    bool
    """
    from discover_utils.data.annotation import DiscreteAnnotation

    return isinstance(annotation, DiscreteAnnotation)


def scheme_classes(annotation) -> list[SchemeClass]:
    """Classes of a discrete annotation's scheme (:func:`nova_infant.core.schemes.annotation_scheme`).

    Parameters
    ----------
    annotation : discover-utils ``DiscreteAnnotation``

    Returns
    -------
    list of SchemeClass
        Sorted by id; ids normalised to int, colour default grey.

    Raises
    ------
    AnnotationError
        If a class id is not an integer.
    """
    return annotation_scheme(annotation).scheme_classes


def segments(annotation) -> np.ndarray:
    """Labelled segments of a discrete annotation, REST rows removed, sorted by start.

    Returns
    -------
    ndarray, structured (from int32 ms, to int32 ms, id int32, conf float32)
    """
    data = annotation.data
    if data is None or len(data) == 0:
        return np.zeros(0, dtype=annotation.annotation_scheme.label_dtype)
    data = data[data["id"] != annotation.rest_label_id]
    return data[np.argsort(data["from"], kind="stable")]


def end_ms(annotation) -> float:
    """Time in ms where the annotation's content ends.

    Parameters
    ----------
    annotation : discover-utils annotation

    Returns
    -------
    float
        The last segment's end (discrete, free) or ``n_samples * 1000 / sample_rate`` (continuous); 0 when empty.
    """
    data = annotation.data
    if data is None or len(data) == 0:
        return 0.0
    if data.dtype.names and "to" in data.dtype.names:
        return float(data["to"].max())
    return len(data) * 1000.0 / float(annotation.annotation_scheme.sample_rate)


def sample_frames(annotation, step_ms: float, n_frames: int) -> np.ndarray:
    """Class id of a discrete annotation at each frame centre of a grid (docs/alignment.md rule).

    Frame k covers [k*step_ms, (k+1)*step_ms) and takes the label whose [from, to) contains its centre
    (k + 0.5) * step_ms; where segments overlap the one starting latest wins (a nested segment labels its span, its
    parent the rest: :func:`nova_infant.core.grid.segment_index_at`, the sampler ICEP-R training uses too); the reference code's window averaging drifts (ICMI'24 ICEP-R paper, §4.2 re-implemented
    by interval lookup).

    Parameters
    ----------
    annotation : DiscreteAnnotation
    step_ms : float
        Grid step in ms (40 ms = 25 fps).
    n_frames : int
        Number of frames.

    Returns
    -------
    ndarray of shape (n_frames,), int64
        Class ids; ``GARBAGE_ID`` (-1) for garbage, ``NO_LABEL`` (-2) where no segment covers the centre.
    """
    if step_ms <= 0:
        raise AnnotationError(f"frame step must be > 0 ms, got {step_ms}")
    centres = (np.arange(n_frames) + 0.5) * float(step_ms)
    seg = segments(annotation)
    out = np.full(n_frames, NO_LABEL, np.int64)
    if len(seg) == 0:
        return out
    which = segment_index_at(centres, seg["from"], seg["to"])  # the one sampler, as ICEP-R training labels
    out[which >= 0] = seg["id"][which[which >= 0]]
    return out


def describe(annotation, fallback: str = "") -> str:
    """Short track title ``role.scheme.annotator`` (NOVA's file naming).

    Parameters
    ----------
    annotation : discover-utils annotation
    fallback : str
        Returned when role, scheme name and annotator are all empty.

    Returns
    -------
    str
    """
    meta = annotation.meta_data
    parts = [getattr(meta, "role", None), annotation.annotation_scheme.name, getattr(meta, "annotator", None)]
    parts = [str(p) for p in parts if p]
    return ".".join(parts) if parts else fallback
