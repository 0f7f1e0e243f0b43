"""The cry-reason trainer's own estimate of its worth: a recorder-grouped cross-validation of the whole training
procedure on the coded sessions, run by ``cry_reason_train`` before the final fit (option ``cv_folds``; 0 skips it).

Protocol: the unit scored is a coded cry-reason segment (its label = argmax of its windows' mean fused
probability, as the predictor with ``smooth_windows`` 0). Folds are ``StratifiedGroupKFold`` over segments grouped
by recorder (option ``groups``: the infant or recording device of each session; default each session its own), so
one recorder's segments are never on both sides (:func:`nova_infant.cry.evaluation.make_splits`). Everything
(scalers, autoencoders, DNNs, face head, fusion, class weights) is fitted on the training folds only
(:func:`nova_infant.cry.session.train_model`). Baseline on the same folds: the majority reason of the training
segments. Figures: balanced accuracy and macro-F1 (scikit-learn, :func:`nova_infant.cry.evaluation.metrics`) of
the pooled out-of-fold predictions, per-fold balanced accuracy, and a 95 % percentile interval of the balanced
accuracy from a bootstrap over recorders (Efron & Tibshirani 1993; a drawn recorder brings all its segments).
Chance is 1 / (number of reasons coded); the model **beats chance** when that interval lies above it.
"""

from __future__ import annotations

import logging

import numpy as np

from nova_infant.core.errors import OptionError
from nova_infant.cry.evaluation import make_splits, metrics
from nova_infant.cry.session import TrainingItem, train_model

log = logging.getLogger("nova_infant")

BOOTSTRAP_ROUNDS = 1000


def _subset(item, mask: np.ndarray):
    """A :class:`~nova_infant.cry.session.TrainingItem` holding only the windows in ``mask``."""
    return TrainingItem(item.session, {k: v[mask] for k, v in item.features.items()},
                        [n for n, keep in zip(item.labels, mask) if keep], item.classes,
                        None if item.face is None else item.face[mask],
                        [s for s, keep in zip(item.segment_of, mask) if keep])


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    classes = np.unique(y_true)
    return float(np.mean([(y_pred[y_true == c] == c).mean() for c in classes])) if len(classes) else float("nan")


def recorder_cv(items: list, groups: dict[str, str], n_folds: int = 5, epochs_ae: int = 40, epochs: int = 40,
                epochs_fusion: int = 100, seed: int = 0, epochs_face: int = 10) -> dict:
    """Recorder-grouped CV of :func:`nova_infant.cry.session.train_model` on coded sessions (module docstring).

    Parameters
    ----------
    items : list of TrainingItem
        One per coded session (``segment_of`` gives each window's segment).
    groups : dict
        session -> recorder (infant/device); sessions missing here are their own recorder.
    n_folds : int
        Folds (capped at the number of recorders).
    epochs_ae, epochs, epochs_fusion, epochs_face, seed : int
        As the final fit.

    Returns
    -------
    dict (JSON-ready)
        ``protocol``, ``folds``, ``n_segments``, ``n_recorders``, ``classes`` (coded reasons), ``chance``,
        ``model`` and ``majority`` (each ``balanced_accuracy``, ``macro_f1``, ``accuracy``, ``recall``,
        ``confusion``, ``fold_balanced_accuracy``), ``model.balanced_accuracy_ci95``, ``beats_chance`` (bool) and
        ``line`` (one sentence for people).

    Raises
    ------
    OptionError
        Fewer than 2 recorders or fewer than 2 coded reasons (no CV possible: the caller says so and goes on).
    """
    import dataclasses

    # items made without segment ids (older callers): each session is one segment
    items = [it if it.segment_of else dataclasses.replace(it, segment_of=[0] * len(it.labels)) for it in items]
    classes = list(items[0].classes)
    seg_item, seg_id, seg_label = [], [], []
    for i, it in enumerate(items):
        for s in dict.fromkeys(it.segment_of):
            first = it.segment_of.index(s)
            seg_item.append(i), seg_id.append(s), seg_label.append(classes.index(it.labels[first]))
    y = np.asarray(seg_label)
    rec = [groups.get(items[i].session, items[i].session) for i in seg_item]
    n_rec, coded = len(set(rec)), sorted(set(y.tolist()))
    if n_rec < 2 or len(coded) < 2:
        raise OptionError(f"recorder-grouped CV needs 2 recorders and 2 reasons or more, got {n_rec} recorder(s) "
                          f"and {len(coded)} reason(s)")
    folds = min(n_folds, n_rec)
    pred, base = np.full(len(y), -1), np.full(len(y), -1)
    fold_ba, fold_base = [], []
    for k, (train, test) in enumerate(make_splits(y, rec, folds, seed)):
        train_set = {(seg_item[j], seg_id[j]) for j in train.tolist()}
        sub = []
        for i, it in enumerate(items):
            mask = np.array([(i, s) in train_set for s in it.segment_of], bool)
            if mask.any():
                sub.append(_subset(it, mask))
        if len({lab for it in sub for lab in it.labels}) < 2:
            log.warning("cry-reason CV fold %d: one reason only on the training side: predicted as the majority", k)
            model = None
        else:
            model = train_model(sub, epochs_ae, epochs, epochs_fusion, seed, epochs_face=epochs_face,
                                face_backbone=None)
        majority = int(np.bincount(y[train], minlength=len(classes)).argmax())
        for j in test:
            it = items[seg_item[j]]
            mask = np.array([s == seg_id[j] for s in it.segment_of])
            if model is None:
                pred[j] = majority
            else:
                feats = {kind: it.features[kind][mask] for kind in model.config["kinds"]}
                face = None if it.face is None else it.face[mask]
                pred[j] = int(model.window_proba(feats, face).mean(0).argmax())
            base[j] = majority
        fold_ba.append(_balanced_accuracy(y[test], pred[test]))
        fold_base.append(_balanced_accuracy(y[test], base[test]))
    names = [classes[c] for c in range(len(classes))]
    model_m = {**metrics(y, pred, names), "fold_balanced_accuracy": fold_ba}
    base_m = {**metrics(y, base, names), "fold_balanced_accuracy": fold_base}
    # bootstrap over recorders: a drawn recorder brings all its segments
    units = sorted(set(rec))
    members = [np.flatnonzero(np.asarray(rec) == u) for u in units]
    draws = np.random.default_rng(seed).integers(0, len(units), size=(BOOTSTRAP_ROUNDS, len(units)))
    boot = [_balanced_accuracy(y[idx], pred[idx]) for idx in (np.concatenate([members[u] for u in d]) for d in draws)]
    lo, hi = np.nanpercentile(boot, [2.5, 97.5]).tolist()
    model_m["balanced_accuracy_ci95"] = [lo, hi]
    chance = 1.0 / len(coded)
    beats = bool(lo > chance)
    line = (f"cry-reason CV ({folds} folds, {n_rec} recorders, {len(y)} segments): balanced accuracy "
            f"{model_m['balanced_accuracy']:.2f} [{lo:.2f}, {hi:.2f}], macro-F1 {model_m['macro_f1']:.2f}; majority "
            f"baseline {base_m['balanced_accuracy']:.2f} / {base_m['macro_f1']:.2f}; chance {chance:.2f} -> "
            + ("beats chance" if beats else "does NOT beat chance: do not trust its reasons"))
    return {"protocol": "StratifiedGroupKFold over coded segments, grouped by recorder (option groups); majority "
                        "baseline on the same folds; 95 % interval from a bootstrap over recorders",
            "folds": folds, "n_segments": int(len(y)), "n_recorders": n_rec, "classes": [classes[c] for c in coded],
            "chance": chance, "model": model_m, "majority": base_m, "beats_chance": beats, "line": line,
            "epochs": {"autoencoder": epochs_ae, "dnn": epochs, "fusion": epochs_fusion}, "seed": seed}
