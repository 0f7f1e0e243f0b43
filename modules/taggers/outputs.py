"""NOVA objects the taggers hand to DISCOVER or write to disk: discrete/continuous annotations, atomically."""

from __future__ import annotations


import numpy as np

from nova_infant.core import nova_io

#: NOVA colours (#AARRGGBB) given to scheme classes in order
COLOURS = ["#FF2E7D32", "#FFF9A825", "#FFC62828", "#FF1565C0", "#FF6A1B9A", "#FF00838F", "#FFEF6C00", "#FF4E342E",
           "#FF546E7A", "#FFAD1457"]


def discrete_annotation(segments: np.ndarray, class_names: list[str], scheme: str, role: str | None = None,
                        annotator: str | None = None, session: str | None = None, dataset: str | None = None):
    """A discover-utils ``DiscreteAnnotation`` from ``LabelDType.DISCRETE`` segments (ms, ids 0..N-1, conf)."""
    from discover_utils.data.annotation import DiscreteAnnotation, DiscreteAnnotationScheme

    classes = {i: {"name": n, "color": COLOURS[i % len(COLOURS)]} for i, n in enumerate(class_names)}
    return DiscreteAnnotation(scheme=DiscreteAnnotationScheme(name=scheme, classes=classes), data=segments,
                              role=role, annotator=annotator, session=session, dataset=dataset)


def continuous_annotation(score: np.ndarray, conf: np.ndarray, sample_rate_hz: float, scheme: str,
                          min_val: float, max_val: float, role: str | None = None, annotator: str | None = None,
                          session: str | None = None, dataset: str | None = None):
    """A discover-utils ``ContinuousAnnotation`` (one row per grid frame) with ``score`` and ``conf`` set apart."""
    from discover_utils.data.annotation import ContinuousAnnotation, ContinuousAnnotationScheme
    from discover_utils.utils.type_definitions import LabelDType

    data = np.zeros(len(score), dtype=LabelDType.CONTINUOUS.value)
    data["score"], data["conf"] = np.asarray(score, np.float32), np.asarray(conf, np.float32)
    sch = ContinuousAnnotationScheme(name=scheme, sample_rate=float(sample_rate_hz), min_val=float(min_val),
                                     max_val=float(max_val))
    return ContinuousAnnotation(scheme=sch, data=data, role=role, annotator=annotator, session=session,
                                dataset=dataset)


# One writer and one reader for every module (atomic, ASCII): see nova_io.
write_annotation = nova_io.write_annotation
load_annotation = nova_io.read_annotation
