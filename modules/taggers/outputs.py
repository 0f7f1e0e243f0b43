"""NOVA objects the taggers hand to DISCOVER or write to disk: discrete/continuous annotations, atomically."""

from __future__ import annotations

import numpy as np

from nova_infant.core.annotations import read_annotation, write_annotation  # noqa: F401  (write_annotation: re-exported)
from nova_infant.core.continuous import gap_rows
from nova_infant.core.schemes import Scheme, package_scheme

#: NOVA colours (#AARRGGBB) given to scheme classes in order
COLOURS = ["#FF2E7D32", "#FFF9A825", "#FFC62828", "#FF1565C0", "#FF6A1B9A", "#FF00838F", "#FFEF6C00", "#FF4E342E",
           "#FF546E7A", "#FFAD1457"]


def tagger_scheme(name: str, class_names: list[str]) -> Scheme:
    """The discrete scheme a tagger writes: the package scheme ``name`` (``data/schemes/*.json``, the one
    ``nova-infant import-schemes`` puts into a NOVA database), restricted to ``class_names`` in their order.

    Parameters
    ----------
    name : str
        NOVA scheme name (``"emotion"``, ``"audio_event_speech"``) or a lab's own scheme name.
    class_names : list of str
        Class names by id (0..N-1) of the rows about to be written.

    Returns
    -------
    Scheme
        Each class keeps the package scheme's colour when the package scheme ``name`` has a class of that name,
        else gets :data:`COLOURS` ``[id]`` (a trained head's or a lab's own classes).
    """
    known = package_scheme(name)
    colours = {c["name"]: c["color"] for c in (known.classes if known is not None else [])}
    classes = [{"id": i, "name": n, "color": colours.get(n, COLOURS[i % len(COLOURS)])}
               for i, n in enumerate(class_names)]
    if known is not None and known.type == "DISCRETE":
        return Scheme(name, classes, known.description, known.color, known.role)
    return Scheme(name, classes)


def discrete_annotation(segments: np.ndarray, class_names: list[str], scheme: str, role: str | None = None,
                        annotator: str | None = None, session: str | None = None, dataset: str | None = None):
    """A discover-utils ``DiscreteAnnotation`` of the scheme :func:`tagger_scheme` ``(scheme, class_names)``.

    Parameters
    ----------
    segments : ndarray, structured ``LabelDType.DISCRETE``
        Rows (from ms, to ms, id 0..N-1, conf).
    class_names : list of str
        Class names by id.
    scheme : str
        NOVA scheme name.
    role, annotator, session, dataset : str, optional
        NOVA metadata of the annotation.
    """
    from discover_utils.data.annotation import DiscreteAnnotation

    return DiscreteAnnotation(scheme=tagger_scheme(scheme, class_names).discover_scheme(), data=segments,
                              role=role, annotator=annotator, session=session, dataset=dataset)


def continuous_annotation(score: np.ndarray, conf: np.ndarray, sample_rate_hz: float, scheme: str,
                          min_val: float, max_val: float, role: str | None = None, annotator: str | None = None,
                          session: str | None = None, dataset: str | None = None):
    """A discover-utils ``ContinuousAnnotation`` (one row per grid frame) with ``score`` and ``conf`` set apart.

    Missing values follow NOVA's gap rule (:func:`nova_infant.core.continuous.gap_rows`): a non-finite score is NaN
    with conf 0 (written ``NaN``, which NOVA shows as a gap), a non-finite conf becomes 0.

    Parameters
    ----------
    score, conf : ndarray, float, shape (n_frames,)
        Value and confidence per frame.
    sample_rate_hz : float
        Frame rate of the grid (Hz; 25 for 40 ms frames).
    scheme : str
        NOVA scheme name (``"valence"``; its package description is ``data/schemes/emotion_valence.json``).
    min_val, max_val : float
        Value range of the scheme.
    role, annotator, session, dataset : str, optional
        NOVA metadata of the annotation.
    """
    from discover_utils.data.annotation import ContinuousAnnotation

    data = gap_rows(score, conf)
    sch = Scheme(scheme, type="CONTINUOUS", sr=float(sample_rate_hz), min=float(min_val), max=float(max_val))
    return ContinuousAnnotation(scheme=sch.discover_scheme(), data=data, role=role, annotator=annotator,
                                session=session, dataset=dataset)


# One writer (atomic, ASCII) and one reader for every module: core.annotations; ``write_annotation`` is re-exported.
load_annotation = read_annotation
