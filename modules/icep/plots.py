"""Pictures of an evaluation (matplotlib, Agg backend): confusion matrix and gold-vs-predicted timelines."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nova_infant.core.atomic import save_figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(matrix, class_names: list[str], path: str | os.PathLike, title: str = "") -> Path:
    """Row-normalised confusion matrix with counts, written as a PNG (matplotlib).

    Parameters
    ----------
    matrix : array-like, shape (K, K)
        Frame counts, rows = human coder, columns = model.
    class_names : list of str
    path : path
        Output PNG of the matrix (replaced atomically).
    title : str

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    plt = _pyplot()
    m = np.asarray(matrix, np.float64)
    norm = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(class_names), 1.0 + 0.9 * len(class_names)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("human coder")
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, f"{int(m[i, j])}\n{norm[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title)
    return _save(plt, fig, path)


def _save(plt, fig, path) -> Path:
    """Lay out, write the PNG (parent folders created) and free the figure."""
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def plot_timeline(gold: np.ndarray, pred: np.ndarray, step_ms: float, class_names: list[str], colors: list[str],
                  path: str | os.PathLike, title: str = "") -> Path:
    """Two rows of coloured spans over time (s): the human coder's labels and the model's, written as a PNG.

    Parameters
    ----------
    gold, pred : ndarray, int64, shape (n_frames,)
        Class ids per frame; -1 = unscored (white).
    step_ms : float
        Frame step in ms.
    class_names : list of str
    colors : list of str
        NOVA colours ``#AARRGGBB`` per class.
    path, title : path, str
        Output PNG (replaced atomically) and its title.

    Returns
    -------
    pathlib.Path
    """
    from matplotlib.colors import to_rgb

    plt = _pyplot()
    rgb = [to_rgb("#" + c[-6:]) for c in colors]
    fig, ax = plt.subplots(figsize=(12, 2.0))
    for row, labels in enumerate((gold, pred)):
        img = np.ones((1, len(labels), 3))
        ok = labels >= 0
        img[0, ok] = np.asarray(rgb)[labels[ok]]
        ax.imshow(img, aspect="auto", extent=(0, len(labels) * step_ms / 1000.0, row + 1, row), interpolation="nearest")
    ax.set_ylim(2, 0)
    ax.set_yticks([0.5, 1.5], ["human", "model"])
    ax.set_xlabel("time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in rgb]
    ax.legend(handles, class_names, ncol=len(class_names), loc="upper center", bbox_to_anchor=(0.5, -0.45), fontsize=8)
    ax.set_title(title)
    return _save(plt, fig, path)


def plot_session_kappa(summary: dict, path: str | os.PathLike, title: str = "") -> Path:
    """Cohen's κ per test session (one row each) for the model, the smoothed model and both baselines, with the pooled κ
    and its 95 % session-bootstrap interval of each in the legend; written as a PNG.

    Parameters
    ----------
    summary : dict
        ``CVResult.summary`` (``per_session`` and ``agreement``).
    path : path
        Output PNG, replaced atomically.
    title : str
        Figure title (e.g. the label set).

    Returns
    -------
    pathlib.Path
    """
    plt = _pyplot()
    rows = summary["per_session"]
    names = list(rows)
    variants = [("model", "model", "#1f77b4"), ("model_smoothed", "model, smoothed", "#aec7e8"),
                ("logreg", "per-frame logistic regression", "#ff7f0e"), ("majority", "majority class", "#7f7f7f")]
    variants = [v for v in variants if v[0] in summary["agreement"]]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.35 * len(names) * len(variants) / 2))
    height = 0.8 / len(variants)
    for j, (key, label, color) in enumerate(variants):
        a = summary["agreement"][key]
        values = [np.nan if rows[n][key]["kappa"] is None else rows[n][key]["kappa"] for n in names]  # undefined: no bar
        ax.barh(np.arange(len(names)) + j * height, values, height, color=color,
                label=f"{label}: pooled {a['kappa']:.2f} [{a['kappa_ci95'][0]:.2f}, {a['kappa_ci95'][1]:.2f}]")
    human = summary.get("human_reference")
    if human:
        ax.axvspan(*human["kappa_range"], color="#2ca02c", alpha=0.2, label=f"human coders ({human['codes']})")
    ax.set_yticks(np.arange(len(names)) + 0.4 - height / 2,
                  [n if rows[n]["model"]["kappa"] is not None else f"{n} (one coded class)" for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("Cohen's kappa against the human coder")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.5 / max(len(names), 1)), fontsize=7, ncol=2)
    ax.set_title(title, fontsize=8)
    return _save(plt, fig, path)


def write_cv_pictures(result, lmap, out_dir: str | os.PathLike, step_ms_by_session: dict) -> list[Path]:
    """The pictures of a cross-validation: pooled confusion matrix, per-session κ against the baselines, and one
    timeline per test session.

    Parameters
    ----------
    result : CVResult
    lmap : LabelMap
        Gives the class names, colours and the label-set note for the titles.
    out_dir : path
        Folder the PNGs go to.
    step_ms_by_session : dict
        session -> frame step in ms.

    Returns
    -------
    list of pathlib.Path
        The written PNGs.
    """
    out = Path(out_dir)
    names, colors = lmap.target.names, [c.get("color", "#FF000000") for c in lmap.target.classes]
    note = f"\n{lmap.note}" if lmap.note else ""
    paths = [plot_confusion(result.pooled["confusion_matrix"], names, out / "confusion_pooled.png",
                            f"pooled, macro-F1 {result.pooled['f1_macro']:.2f}, kappa {result.pooled['kappa']:.2f}"
                            + (f"\n{lmap.label_set_short}" if lmap.note else ""))]
    if result.summary:
        paths.append(plot_session_kappa(result.summary, out / "kappa_per_session.png",
                                        f"{lmap.target.name}: kappa per test session{note}"))
    for fold in result.folds:
        for session, (gold, pred) in fold.predictions.items():
            paths.append(plot_timeline(gold, pred, step_ms_by_session[session], names, colors,
                                       out / f"timeline_{session}.png", f"{session} (fold {fold.index})"))
    return paths
