"""Leak-free evaluation: session-grouped K-fold (outer) with validation sessions taken from the training side
(inner split, for early stopping and a small hyper-parameter grid). Metrics from scikit-learn.

Every normaliser, class weight and the model are fitted in :func:`training.fit` on the outer-training sessions
minus the validation sessions; the label map is fixed by the scheme configuration before any data is seen.
Every test frame is scored exactly once (overlapping windows averaged in ``predict_proba``); masked frames
(-1: gaps, garbage, excluded classes) are not scored. The reference code instead fitted scalers and class weights
on all sessions and scored overlapping windows twice (docs/reference-and-peers.md A3-A5).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..metrics import frame_scores
from sklearn.model_selection import KFold

from .dataset import SessionData
from .training import FitResult, TrainConfig, fit, predict_proba

log = logging.getLogger("nova_infant.icep")


def scores(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, weighted and macro precision/recall/F1, per-class scores, confusion matrix and Cohen's kappa
    (:func:`nova_infant.metrics.frame_scores`); frames with ``y_true < 0`` are ignored. An undefined κ (one class
    only) is reported as 0.0, chance agreement."""
    out = frame_scores(y_true, y_pred, class_names)
    out["kappa"] = 0.0 if out["kappa"] is None else out["kappa"]
    return out


@dataclass
class FoldResult:
    """One outer fold: which sessions went where, the fitted model and its test predictions."""

    index: int
    train: list[str]
    val: list[str]
    test: list[str]
    chosen: dict
    fitted: FitResult
    scores: dict
    predictions: dict = field(default_factory=dict)  # session -> (gold int64 (n,), pred int64 (n,))


@dataclass
class CVResult:
    folds: list[FoldResult]
    pooled: dict

    def report(self) -> dict:
        """JSON-ready report: per fold (sessions, chosen grid point, best epoch, scores) and pooled scores."""
        return {"folds": [{"fold": f.index, "train_sessions": f.train, "val_sessions": f.val,
                           "test_sessions": f.test, "chosen": f.chosen, "best_epoch": f.fitted.best_epoch,
                           "scores": f.scores} for f in self.folds],
                "pooled": self.pooled}


def split_validation(train_idx: np.ndarray, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Take ``max(1, round(val_fraction * n))`` validation sessions from the training side (none if only one)."""
    n_val = 0 if len(train_idx) < 2 or val_fraction <= 0 else max(1, int(round(val_fraction * len(train_idx))))
    perm = rng.permutation(train_idx)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def cross_validate(sessions: list[SessionData], class_names: list[str], config: TrainConfig, folds: int = 5,
                   grid: list[dict] | None = None, val_fraction: float = 0.2, seed: int = 0) -> CVResult:
    """Nested session-grouped cross-validation.

    Parameters
    ----------
    sessions : labelled sessions (one group each: no session is ever split across train/val/test)
    config : base hyper-parameters; ``grid`` = list of overrides (e.g. ``[{"lr": 1e-3}, {"lr": 3e-3}]``), the one
        with the best validation macro-F1 is tested
    folds : outer folds (at most the number of sessions)
    val_fraction : share of outer-training sessions held out for validation

    Returns
    -------
    CVResult (per-fold fitted models, scores, predictions; pooled scores over all test frames)

    Raises
    ------
    ValueError
        If there are fewer than 2 sessions.
    """
    if len(sessions) < 2:
        raise ValueError("cross-validation needs at least 2 sessions")
    rng = np.random.default_rng(seed)
    kfold = KFold(n_splits=min(folds, len(sessions)), shuffle=True, random_state=seed)
    names = [s.name for s in sessions]
    results, gold_all, pred_all = [], [], []
    for k, (train_idx, test_idx) in enumerate(kfold.split(np.arange(len(sessions)))):
        fit_idx, val_idx = split_validation(train_idx, val_fraction, rng)
        train = [sessions[i] for i in fit_idx]
        val = [sessions[i] for i in val_idx]
        best, best_f1, chosen = None, -1.0, {}
        for point in grid or [{}]:
            fitted = fit(train, val, len(class_names), config.replace(**point))
            if not val or len(grid or [{}]) == 1:
                best, chosen = fitted, point
                break
            gold = np.concatenate([s.labels for s in val])
            pred = np.concatenate([predict_proba(fitted.model, fitted.normaliser, s, config.window, config.stride)
                                   .argmax(1) for s in val])
            f1 = scores(gold, pred, class_names)["f1_macro"]
            if f1 > best_f1:
                best, best_f1, chosen = fitted, f1, point
        preds = {}
        for i in test_idx:
            s = sessions[i]
            cfg = best.config
            pred = predict_proba(best.model, best.normaliser, s, cfg.window, cfg.stride).argmax(1)
            preds[s.name] = (s.labels, pred)
        gold = np.concatenate([g for g, _ in preds.values()])
        pred = np.concatenate([p for _, p in preds.values()])
        fold_scores = scores(gold, pred, class_names)
        log.info("fold %d: macro-F1 %.3f, kappa %.3f", k, fold_scores["f1_macro"], fold_scores["kappa"])
        results.append(FoldResult(k, [names[i] for i in fit_idx], [names[i] for i in val_idx],
                                  [names[i] for i in test_idx], chosen, best, fold_scores, preds))
        gold_all.append(gold)
        pred_all.append(pred)
    return CVResult(results, scores(np.concatenate(gold_all), np.concatenate(pred_all), class_names))
