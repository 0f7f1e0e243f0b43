"""Scores and subject-grouped cross-validation of the affect model (seed 002 §3: CCC for VA, mean of V and A;
macro-F1 over expressions; mean F1 over the AUs), with simple baselines on the same folds.

Baselines (fitted on the training fold only): VA = the training mean (CCC 0 by construction, shows the floor),
expression = the most frequent training class, AUs = each AU's training prevalence >= 0.5 -> always on, else
always off; plus "all AUs on" (the usual AU-F1 floor of ABAW). Only frames with a face and a label are scored.
"""

from __future__ import annotations

import numpy as np

from pathlib import Path

from nova_infant.core.atomic import save_figure
from nova_infant.core.errors import OptionError
from nova_infant.core.metrics import ccc, frame_scores


def score(truth: dict, pred: dict, expr_classes: list, au_names: list) -> dict:
    """Scores of pooled frames. ``truth``/``pred``: ``va`` (n, 2), ``expr`` (truth: ids (n,), pred: probabilities
    (n, K) or ids (n,)), ``au`` (n, n_au) (truth 0/1, pred probabilities); NaN / -1 = not scored.

    Returns dict: ``ccc_valence``, ``ccc_arousal``, ``ccc_va`` (mean), ``expr_f1_macro``, ``au_f1`` (mean over AUs
    with a positive reference frame), ``au_f1_per_au``, ``n_frames`` per task (absent tasks are missing)."""
    from sklearn.metrics import f1_score
    out = {}
    if truth.get("va") is not None and pred.get("va") is not None:
        tv, pv = np.asarray(truth["va"]), np.asarray(pred["va"])
        out["ccc_valence"], out["ccc_arousal"] = ccc(tv[:, 0], pv[:, 0]), ccc(tv[:, 1], pv[:, 1])
        out["ccc_va"] = float(np.nanmean([out["ccc_valence"], out["ccc_arousal"]]))
        out["n_frames_va"] = int((np.isfinite(tv).all(1) & np.isfinite(pv).all(1)).sum())
    if truth.get("expr") is not None and pred.get("expr") is not None:
        p = np.asarray(pred["expr"])
        ids = np.where(np.isfinite(p).all(1), np.nan_to_num(p).argmax(1), -1) if p.ndim == 2 else p
        s = frame_scores(np.asarray(truth["expr"]), ids, expr_classes)
        out["expr_f1_macro"], out["n_frames_expr"] = s["f1_macro"], s["n_frames"]
    if truth.get("au") is not None and pred.get("au") is not None:
        ta, pa = np.asarray(truth["au"]), np.asarray(pred["au"])
        per = {}
        for k, name in enumerate(au_names):
            keep = np.isfinite(ta[:, k]) & np.isfinite(pa[:, k])
            if keep.any() and ta[keep, k].sum() > 0:
                per[name] = float(f1_score(ta[keep, k] > 0.5, pa[keep, k] >= 0.5, zero_division=0))
        out["au_f1_per_au"] = per
        out["au_f1"] = float(np.mean(list(per.values()))) if per else float("nan")
    return out


def _labels(sessions: list, n_au: int) -> dict:
    """Concatenated references of ``sessions``; frames without a face masked."""
    va, ex, au = [], [], []
    for s in sessions:
        face = s.has_face
        v = s.va.copy() if s.va is not None else np.full((s.n_frames, 2), np.nan, np.float32)
        e = s.expr.copy() if s.expr is not None else np.full(s.n_frames, -1)
        a = s.au.copy() if s.au is not None else np.full((s.n_frames, n_au), np.nan, np.float32)
        v[~face], e[~face], a[~face] = np.nan, -1, np.nan
        va.append(v), ex.append(e), au.append(a)
    return {"va": np.concatenate(va), "expr": np.concatenate(ex), "au": np.concatenate(au)}


def baseline_predictions(train: list, test_truth: dict, n_expr: int, n_au: int) -> dict:
    """Baseline predictions for the test frames (module docstring), fitted on ``train`` sessions."""
    tr = _labels(train, n_au)
    n = len(test_truth["expr"])
    va_mean = np.nanmean(tr["va"], 0) if np.isfinite(tr["va"]).any() else np.zeros(2)
    labelled = tr["expr"][tr["expr"] >= 0]
    majority = int(np.bincount(labelled, minlength=n_expr).argmax()) if len(labelled) else 0
    coded = np.isfinite(tr["au"])
    prevalence = np.nan_to_num(tr["au"], nan=0.0).sum(0) / np.maximum(coded.sum(0), 1)  # uncoded AU -> 0
    return {"mean/majority": {"va": np.tile(va_mean, (n, 1)), "expr": np.full(n, majority),
                              "au": np.tile((prevalence >= 0.5).astype(np.float32), (n, 1))},
            "all AUs on": {"au": np.ones((n, n_au), np.float32)}}


def cross_validate(sessions: list, cfg, options, folds: int = 3, progress: bool = False, predict_batch: int = 4) -> dict:
    """Subject-grouped K-fold CV (scikit-learn ``GroupKFold`` on ``session.subject``): train on K-1 folds, predict
    the held-out subjects' sessions, score per fold and pooled over all held-out frames, with the baselines of
    :func:`baseline_predictions` on the same folds.

    Returns
    -------
    dict: ``folds`` [{fold, test_subjects, model: scores, baselines: {name: scores}}], ``pooled`` {model,
    baselines}, ``spread`` {metric: (mean, std) over folds}.

    Raises
    ------
    OptionError
        If there are fewer distinct subjects than folds.
    """
    from sklearn.model_selection import GroupKFold
    from nova_infant.affect.training import fit, predict_frames  # loads torch: imported on use
    groups = np.array([s.subject for s in sessions])
    if len(set(groups)) < folds:
        raise OptionError(f"cross-validation needs >= {folds} subjects (groups), got {len(set(groups))}")
    n_expr, n_au = len(cfg.expr_classes), len(cfg.au_names)
    report, pooled_truth, pooled_pred, pooled_base = {"folds": []}, [], [], []
    for k, (tr, te) in enumerate(GroupKFold(n_splits=folds).split(np.zeros(len(sessions)), groups=groups)):
        train, test = [sessions[i] for i in tr], [sessions[i] for i in te]
        model, _ = fit(train, cfg, options, progress=progress)
        preds = [predict_frames(model, s.crops, s.has_face, batch_size=predict_batch) for s in test]
        truth = _labels(test, n_au)
        pred = {key: np.concatenate([p[key] for p in preds]) for key in preds[0]}
        base = baseline_predictions(train, truth, n_expr, n_au)
        report["folds"].append({"fold": k, "test_subjects": sorted(set(groups[te].tolist())),
                                "model": score(truth, pred, cfg.expr_classes, cfg.au_names),
                                "baselines": {n: score(truth, b, cfg.expr_classes, cfg.au_names) for n, b in base.items()}})
        pooled_truth.append(truth), pooled_pred.append(pred), pooled_base.append(base)
    cat = lambda ds, key: np.concatenate([d[key] for d in ds]) if all(key in d for d in ds) else None  # noqa: E731
    truth = {key: cat(pooled_truth, key) for key in ("va", "expr", "au")}
    report["pooled"] = {"model": score(truth, {key: cat(pooled_pred, key) for key in ("va", "expr", "au")},
                                       cfg.expr_classes, cfg.au_names),
                        "baselines": {n: score(truth, {key: cat([b[n] for b in pooled_base], key)
                                                       for key in ("va", "expr", "au")}, cfg.expr_classes, cfg.au_names)
                                      for n in pooled_base[0]}}
    report["spread"] = {}
    for metric in ("ccc_va", "expr_f1_macro", "au_f1"):
        vals = [f["model"].get(metric) for f in report["folds"] if f["model"].get(metric) is not None]
        if vals:
            report["spread"][metric] = (float(np.nanmean(vals)), float(np.nanstd(vals)))
    return report


def plot_cv(report: dict, path) -> Path:
    """Bar chart of a :func:`cross_validate` report: per fold and pooled, the model's CCC_VA / expression macro-F1 /
    AU-F1 next to the baselines' (matplotlib), written atomically as PNG to ``path``.

    Returns
    -------
    Path of the PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("ccc_va", "CCC V/A"), ("expr_f1_macro", "expression macro-F1"), ("au_f1", "AU-F1")]
    parts = [(f"fold {f['fold']}", f) for f in report["folds"]] + [("pooled", report["pooled"])]
    arms = ["model"] + list(report["pooled"]["baselines"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    width = 0.8 / len(arms)
    for ax, (key, title) in zip(axes[0], metrics):
        for k, arm in enumerate(arms):
            vals = [(p["model"] if arm == "model" else p["baselines"].get(arm, {})).get(key, np.nan) for _, p in parts]
            ax.bar(np.arange(len(parts)) + k * width, np.nan_to_num(np.asarray(vals, float)), width, label=arm)
        ax.set_xticks(np.arange(len(parts)) + 0.4 - width / 2, [n for n, _ in parts], rotation=30)
        ax.set_title(title)
        ax.set_ylim(min(0, ax.get_ylim()[0]), 1)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)
