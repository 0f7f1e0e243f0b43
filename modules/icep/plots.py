"""Pictures of an evaluation (matplotlib, Agg backend): confusion matrix and gold-vs-predicted timelines."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(matrix, class_names: list[str], path: str | os.PathLike, title: str = "") -> Path:
    """Row-normalised confusion matrix (rows = human coder, columns = model) with counts; written as PNG."""
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
    from ..nova_io import atomic_file

    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_file(path, ".png") as tmp:  # a kill or full disk leaves the previous picture
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return path


def plot_timeline(gold: np.ndarray, pred: np.ndarray, step_ms: float, class_names: list[str], colors: list[str],
                  path: str | os.PathLike, title: str = "") -> Path:
    """Two rows of coloured spans over time (s): the human coder's labels (-1 = unscored, white) and the model's."""
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


def write_cv_pictures(result, lmap, out_dir: str | os.PathLike, step_ms_by_session: dict) -> list[Path]:
    """Pooled confusion matrix plus one timeline per test session of a :class:`~.evaluation.CVResult`."""
    out = Path(out_dir)
    names, colors = lmap.target.names, [c.get("color", "#FF000000") for c in lmap.target.classes]
    paths = [plot_confusion(result.pooled["confusion_matrix"], names, out / "confusion_pooled.png",
                            f"pooled, macro-F1 {result.pooled['f1_macro']:.2f}, kappa {result.pooled['kappa']:.2f}")]
    for fold in result.folds:
        for session, (gold, pred) in fold.predictions.items():
            paths.append(plot_timeline(gold, pred, step_ms_by_session[session], names, colors,
                                       out / f"timeline_{session}.png", f"{session} (fold {fold.index})"))
    return paths
