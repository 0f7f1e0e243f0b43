"""Frame-level agreement between two discrete annotations (model vs coder, coder vs coder).

Both annotations are sampled at the frame centres of one grid (default 40 ms = 25 fps, the ICEP-R papers' rate);
frames where either side is garbage (-1) or unlabelled are masked. Scores come from scikit-learn:
``cohen_kappa_score`` (Cohen 1960 κ, the field's inter-rater statistic; human ICEP-R coders reach κ≈0.73-0.82),
``precision_recall_fscore_support`` (per class, macro, weighted) and ``confusion_matrix``; sessions are reported
one by one and pooled (all compared frames of all sessions together).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from nova_infant.core.atomic import atomic_file, save_figure
from nova_infant.core.errors import AnnotationError
from nova_infant.core.metrics import frame_scores
from nova_infant.review.annotations import end_ms, is_discrete, read_annotation, sample_frames, scheme_classes

DEFAULT_STEP_MS = 40.0
log = logging.getLogger("nova_infant")


@dataclass
class FramePair:
    """Frame labels of one session on a common grid.

    Attributes
    ----------
    session : str
    reference, hypothesis : ndarray of shape (n_frames,), int64
        Class ids in the *reference* scheme's numbering; -1 garbage, -2 unlabelled.
    step_ms : float
    """

    session: str
    reference: np.ndarray
    hypothesis: np.ndarray
    step_ms: float

    @property
    def mask(self) -> np.ndarray:
        """Frames both sides label with a real class, shape (n_frames,), bool."""
        return (self.reference >= 0) & (self.hypothesis >= 0)


def frame_pair(reference, hypothesis, step_ms: float = DEFAULT_STEP_MS, duration_ms: float | None = None,
               session: str = "", source: str = "", class_map: dict | None = None) -> tuple[FramePair, list[str]]:
    """Sample two discrete annotations of one session on a common frame grid.

    The hypothesis' classes are matched to the reference's **by name** (a model and a coder may number them
    differently); a hypothesis class the reference scheme does not have is an error. Both annotations must be of
    one scheme (same scheme name) unless ``class_map`` says how their classes correspond: then every class name of
    either side is replaced by ``class_map.get(name, name)`` first (e.g. the full ICEP-R codes onto the merged ones),
    and the reference's mapped names, in order of first appearance, are the compared classes.

    Parameters
    ----------
    reference, hypothesis : DiscreteAnnotation
        E.g. the coder's (gold) and the model's (predicted) track.
    step_ms : float
        Grid step in ms.
    duration_ms : float or None
        Session duration; default the later end of the two annotations. n = floor(duration / step) frames.
    session, source : str
        Names used in the result and in error messages.
    class_map : dict of str to str, optional
        Class name -> compared class name, applied to both sides; allows annotations of different schemes.

    Returns
    -------
    (FramePair, list of str)
        Frame labels and the compared class names (index = class id): the reference's (mapped) names.

    Raises
    ------
    AnnotationError
        If either annotation is not discrete, the two are of different schemes and no ``class_map`` is given, or
        the hypothesis uses a class name (after mapping) the reference lacks.
    """
    for name, ann in (("reference", reference), ("hypothesis", hypothesis)):
        if not is_discrete(ann):
            raise AnnotationError(f"{source or session}: {name} is not a discrete annotation")
    ref_scheme = str(getattr(reference.annotation_scheme, "name", "") or "")
    hyp_scheme = str(getattr(hypothesis.annotation_scheme, "name", "") or "")
    if class_map is None and ref_scheme != hyp_scheme:
        raise AnnotationError(f"{source or session}: reference scheme {ref_scheme!r} and hypothesis scheme "
                              f"{hyp_scheme!r} differ; compare annotations of one scheme, or say how their classes "
                              f"correspond with --map")
    mapped = (lambda n: class_map.get(n, n)) if class_map else (lambda n: n)
    ref_classes = scheme_classes(reference)
    names = list(dict.fromkeys(mapped(c.name) for c in ref_classes))
    by_name = {n: i for i, n in enumerate(names)}
    unknown = [c.name for c in scheme_classes(hypothesis) if mapped(c.name) not in by_name]
    if unknown:
        raise AnnotationError(f"{source or session}: hypothesis classes {unknown} are not in the reference scheme "
                              f"{ref_scheme!r} ({names})")
    duration = float(duration_ms) if duration_ms else max(end_ms(reference), end_ms(hypothesis))
    n = int(math.floor(duration / step_ms + 1e-9))
    ref = sample_frames(reference, step_ms, n)
    hyp = sample_frames(hypothesis, step_ms, n)
    ref_remap = {c.id: by_name[mapped(c.name)] for c in ref_classes}
    remap = {c.id: by_name[mapped(c.name)] for c in scheme_classes(hypothesis)}
    lut = np.vectorize(lambda i: remap.get(int(i), int(i)) if i >= 0 else int(i), otypes=[np.int64])
    hyp = lut(hyp) if n else hyp
    if class_map and n:
        ref_lut = np.vectorize(lambda i: ref_remap.get(int(i), int(i)) if i >= 0 else int(i), otypes=[np.int64])
        ref = ref_lut(ref)
    bad = sorted(set(np.unique(ref[ref >= 0]).tolist() + np.unique(hyp[hyp >= 0]).tolist()) - set(range(len(names))))
    if bad:
        raise AnnotationError(f"{source or session}: label ids {bad} are outside the scheme ({len(names)} classes)")
    return FramePair(session, ref, hyp, float(step_ms)), names


def scores(reference: np.ndarray, hypothesis: np.ndarray, class_names: Sequence[str]) -> dict:
    """Agreement scores of two label vectors (already masked) with scikit-learn.

    Parameters
    ----------
    reference, hypothesis : ndarray of shape (n,), int
        Class ids 0..len(class_names)-1.
    class_names : sequence of str

    Returns
    -------
    dict
        ``n_frames``, ``accuracy``, ``kappa`` (Cohen's κ; ``None`` if undefined, e.g. one class only on both sides),
        ``f1_macro``, ``f1_weighted``, ``precision_macro``, ``recall_macro`` (macro over classes present in either
        side), ``per_class`` {name: precision, recall, f1, support}, ``confusion`` {labels, matrix (rows =
        reference, columns = hypothesis)}.
    """
    if len(reference) == 0:
        raise AnnotationError("no frame is labelled by both annotations (all gaps or garbage)")
    result = frame_scores(reference, hypothesis, class_names)
    keys = ("n_frames", "accuracy", "kappa", "f1_macro", "f1_weighted", "precision_macro", "recall_macro", "per_class")
    return {**{k: result[k] for k in keys},
            "confusion": {"labels": list(class_names), "matrix": result["confusion_matrix"]}}


def agreement_report(pairs: Sequence[tuple[str, str | os.PathLike, str | os.PathLike]],
                     step_ms: float = DEFAULT_STEP_MS, duration_ms: float | None = None,
                     class_map: dict | None = None) -> dict:
    """Agreement of annotation pairs, per session and pooled over sessions.

    Parameters
    ----------
    pairs : sequence of (session, reference path, hypothesis path)
        NOVA ``.annotation`` files of the same discrete scheme (matched by class name).
    step_ms : float
        Frame step in ms (default 40).
    duration_ms : float or None
        Session duration (same for all pairs); default per session the later end of the two annotations.
    class_map : dict of str to str, optional
        How the classes of annotations of different schemes correspond (:func:`frame_pair`); recorded in the report.

    Returns
    -------
    dict
        ``{"step_ms", "classes", "sessions": {session: scores + n_grid_frames, n_masked, reference,
        hypothesis}, "pooled": scores, "warnings": [str], "class_map"}`` (see :func:`scores`); a session without
        any commonly labelled frame has ``"error"`` instead of scores. ``warnings`` says when only one class occurs
        in the pooled frames (κ is then undefined; a review of one class may be what the user meant, so it is a
        warning on stderr and in the report, not an error).

    Raises
    ------
    AnnotationError
        If a file cannot be read, the reference and hypothesis are of different schemes without ``class_map``,
        schemes disagree between sessions, or no frame is comparable in any session.
    """
    if not pairs:
        raise AnnotationError("agreement: no annotation pairs given")
    report = {"step_ms": float(step_ms), "classes": None, "sessions": {}, "pooled": None}
    pooled_ref, pooled_hyp = [], []
    for session, ref_path, hyp_path in pairs:
        ref_ann, hyp_ann = read_annotation(ref_path), read_annotation(hyp_path)
        pair, names = frame_pair(ref_ann, hyp_ann, step_ms, duration_ms, session=session,
                                 source=f"{ref_path} vs {hyp_path}", class_map=class_map)
        if report["classes"] is None:
            report["classes"] = names
        elif names != report["classes"]:
            raise AnnotationError(f"{ref_path}: scheme classes {names} differ from the first session's "
                                  f"{report['classes']}")
        mask = pair.mask
        entry = {"reference": str(ref_path), "hypothesis": str(hyp_path), "n_grid_frames": int(len(mask)),
                 "n_masked": int((~mask).sum())}
        if mask.any():
            entry.update(scores(pair.reference[mask], pair.hypothesis[mask], names))
            pooled_ref.append(pair.reference[mask])
            pooled_hyp.append(pair.hypothesis[mask])
        else:
            entry["error"] = "no frame is labelled by both annotations"
        report["sessions"][session] = entry
    if not pooled_ref:
        raise AnnotationError(f"{pairs[0][1]}: no frame is labelled by both annotations in any session")
    report["pooled"] = scores(np.concatenate(pooled_ref), np.concatenate(pooled_hyp), report["classes"])
    report["pooled"]["n_sessions"] = len(pooled_ref)
    report["class_map"] = dict(class_map) if class_map else None
    present = np.union1d(np.concatenate(pooled_ref), np.concatenate(pooled_hyp))
    report["warnings"] = []
    if len(present) < 2:
        only = report["classes"][int(present[0])]
        report["warnings"].append(f"{pairs[0][1]}: only class {only!r} occurs in the compared frames of both "
                                  f"annotations: kappa is undefined and accuracy says nothing about agreement "
                                  f"between classes")
    for text in report["warnings"]:
        log.warning("%s", text)
    return report


def write_report_json(report: dict, path: str | os.PathLike) -> Path:
    """Write an agreement report as indented JSON, atomically (temp file + rename).

    Parameters
    ----------
    report : dict
        From :func:`agreement_report` (JSON-ready).
    path : path

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    return path


def plot_confusion(result: dict, path: str | os.PathLike, title: str = "") -> Path:
    """Confusion-matrix PNG (matplotlib) of a :func:`scores` result: row-normalised colours, frame counts as text.

    Parameters
    ----------
    result : dict
        A :func:`scores` result (e.g. ``report["pooled"]``).
    path : path
        PNG to write (temp file + rename).
    title : str
        Plot title; κ and macro-F1 are appended.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = result["confusion"]["labels"]
    cm = np.asarray(result["confusion"]["matrix"], float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 1.2 + 0.55 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("hypothesis (frames)")
    ax.set_ylabel("reference (frames)")
    kappa = "n/a" if result["kappa"] is None else f"{result['kappa']:.3f}"
    ax.set_title(f"{title}  κ={kappa}  macro-F1={result['f1_macro']:.3f}".strip(), fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of reference row")
    fig.tight_layout()

    return save_figure(fig, path, dpi=120)
