"""Predict ICEP-R tracks for a session with a saved bundle: per-frame probabilities, smoothing, NOVA annotations.

Output: a discrete annotation in the label map's scheme (class ids 0..K-1) whose segments are runs of equal frame
labels, split where the calibrated confidence crosses the review threshold (NOVA's 0.7 by default;
:func:`nova_infant.icep.calibration.confidence_segments`), with ``conf`` = mean calibrated probability of the predicted
class over the segment; optionally one continuous annotation per class (its calibrated probability per frame).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nova_infant.core.continuous import gap_rows
from nova_infant.icep.bundle import Bundle, check_session
from nova_infant.icep.calibration import confidence_segments, scale_probs
from nova_infant.icep.dataset import SessionData
from nova_infant.core.atomic import safe_name, save_atomic
from nova_infant.icep.schemes import write_discrete_annotation
from nova_infant.icep.training import predict_proba


def smooth_min_duration(labels: np.ndarray, probs: np.ndarray, min_frames: int) -> np.ndarray:
    """Remove runs shorter than ``min_frames``: each (shortest first) joins the neighbouring run whose class has the
    higher mean probability over it. A session that is one short run stays as is.

    Parameters
    ----------
    labels : ndarray, int, shape (n_frames,)
        Predicted class per frame.
    probs : ndarray, float, shape (n_frames, C)
        Class probabilities per frame.
    min_frames : int
        Shortest run kept (``min_dur_ms / step_ms``); 0 or 1 keeps every run.

    Returns
    -------
    ndarray, int64, shape (n_frames,)
    """
    labels = np.asarray(labels, np.int64).copy()
    if min_frames <= 1 or len(labels) == 0:
        return labels
    while True:
        change = np.flatnonzero(np.diff(labels)) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(labels)]])
        if len(starts) == 1:
            return labels
        lengths = ends - starts
        i = int(np.argmin(lengths))
        if lengths[i] >= min_frames:
            return labels
        s, e = starts[i], ends[i]
        candidates = []
        if i > 0:
            candidates.append(labels[s - 1])
        if i < len(starts) - 1:
            candidates.append(labels[e])
        labels[s:e] = max(candidates, key=lambda c: probs[s:e, c].mean())


@dataclass
class Prediction:
    """Per-frame result of a bundle on one session.

    Attributes
    ----------
    labels : ndarray, int64, shape (n_frames,)
        Predicted class ids (the bundle's label map).
    conf : ndarray, float32, shape (n_frames,)
        Probability of the predicted class.
    probs : ndarray, float32, shape (n_frames, C)
        Class probabilities.
    step_ms : float
        Frame step of the grid in ms.
    threshold : float
        Review threshold: segments are split where ``conf`` crosses it (0: runs of equal labels only).
    min_frames : int
        Shortest stretch a split may make (the smoothing's shortest segment).
    """

    labels: np.ndarray
    conf: np.ndarray
    probs: np.ndarray
    step_ms: float
    threshold: float = 0.0
    min_frames: int = 0

    def segments(self) -> np.ndarray:
        """Segments of equal labels split at threshold crossings (discover-utils ``LabelDType.DISCRETE``, ms;
        ``conf`` the mean over the segment's frames)."""
        return confidence_segments(self.labels, self.conf, self.step_ms, self.threshold, min_frames=self.min_frames)


def predict_session(bundle: Bundle, session: SessionData, min_dur_ms: float | None = None,
                    batch_size: int = 64, threshold: float = 0.7) -> Prediction:
    """Check the session against the bundle's feature spec, predict every frame, scale the probabilities by the
    bundle's temperature (fitted on held-out frames at training time), smooth.

    ``threshold``: review threshold of :attr:`Prediction.threshold` (NOVA's default 0.7; 0 = no split).

    ``min_dur_ms`` (shortest segment kept, ms): None or negative = the bundle's (:attr:`Bundle.min_dur_ms`, the
    smoothing its cross-validation evaluated), 0 = no smoothing.

    Raises
    ------
    StreamError
        If the streams do not match the feature spec (count, dims, rate).
    SessionTooShortError
        If the session is shorter than one window.
    """
    check_session(bundle.features, session, str(bundle.path))
    cfg = bundle.config
    probs = scale_probs(predict_proba(bundle.model, bundle.normaliser, session, cfg.window, cfg.stride, batch_size,
                                      normalise=cfg.normalise), bundle.temperature)
    if min_dur_ms is None or min_dur_ms < 0:
        min_dur_ms = bundle.min_dur_ms
    min_frames = int(round(float(min_dur_ms) / session.step_ms))
    labels = smooth_min_duration(probs.argmax(1), probs, min_frames)
    conf = probs[np.arange(len(labels)), labels]
    return Prediction(labels, conf.astype(np.float32), probs, session.step_ms, float(threshold), min_frames)


def discrete_annotation(bundle: Bundle, pred: Prediction, role: str = "", annotator: str = "", session: str = "",
                        dataset: str = "", scheme=None):
    """The prediction as a discover-utils ``DiscreteAnnotation`` (:meth:`Prediction.segments`: equal labels split at
    review-threshold crossings, ms; conf = mean calibrated probability of the segment's class).

    Parameters
    ----------
    bundle : Bundle
    pred : Prediction
    role, annotator, session, dataset : str
        NOVA metadata.
    scheme : discover-utils ``DiscreteAnnotationScheme``, optional
        The output's scheme (a NOVA database template's); default the label map's target scheme.

    Returns
    -------
    discover_utils.data.annotation.DiscreteAnnotation
    """
    from discover_utils.data.annotation import DiscreteAnnotation

    scheme = scheme or bundle.label_map.target.discover_scheme()
    return DiscreteAnnotation(scheme=scheme, data=pred.segments(), role=role, annotator=annotator, session=session,
                              dataset=dataset)


def probability_annotations(bundle: Bundle, pred: Prediction, role: str = "", annotator: str = "",
                            session: str = "", dataset: str = "") -> dict:
    """One continuous NOVA annotation per class: its probability per frame.

    Parameters
    ----------
    bundle, pred : Bundle, Prediction
        The model (its label map names the classes) and its prediction on one session.
    role, annotator, session, dataset : str
        NOVA metadata.

    Returns
    -------
    dict
        ``{class name: ContinuousAnnotation}`` of scheme ``<target scheme>-p<class>`` at ``1000 / step_ms`` Hz, range
        0..1, conf 1.
    """
    from discover_utils.data.annotation import ContinuousAnnotation, ContinuousAnnotationScheme
    out = {}
    for c, name in enumerate(bundle.label_map.target.names):
        data = gap_rows(pred.probs[:, c], np.ones(len(pred.labels), np.float32))
        scheme = ContinuousAnnotationScheme(name=f"{bundle.label_map.target.name}-p{name}",
                                            sample_rate=1000.0 / pred.step_ms, min_val=0.0, max_val=1.0)
        out[name] = ContinuousAnnotation(scheme=scheme, data=data, role=role, annotator=annotator, session=session,
                                         dataset=dataset)
    return out


def write_prediction(session_dir: str | os.PathLike, bundle: Bundle, pred: Prediction, role: str,
                     annotator: str = "icep", probabilities: bool = False, dataset: str = "") -> list[Path]:
    """Write ``<role>.<scheme>.<annotator>.annotation`` (and per-class ``<role>.<scheme>-p<class>.<annotator>.annotation``)
    into a NOVA file-mode session folder, each atomically. Returns the header paths.

    Raises
    ------
    PathError
        If ``role`` or ``annotator`` is not a plain name (e.g. ``x/../../escaped``).
    OutputError
        If a file cannot be written (the previous annotation is kept)."""
    session_dir = Path(session_dir)
    safe_name(role, "role")
    safe_name(annotator, "annotator")
    scheme = bundle.label_map.target
    paths = [write_discrete_annotation(session_dir / f"{role}.{scheme.name}.{annotator}.annotation", scheme,
                                       pred.segments(), role, annotator, session_dir.name, dataset)]
    if probabilities:
        for name, anno in probability_annotations(bundle, pred, role, annotator, session_dir.name, dataset).items():
            paths.append(save_atomic(anno, session_dir / f"{role}.{anno.annotation_scheme.name}.{annotator}.annotation"))
    return paths
