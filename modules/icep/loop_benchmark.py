"""Measurements of the cooperative loop on synthetic FFSF-like sessions (:func:`nova_infant.icep.synthetic.ffsf_session`):
completion Cohen's kappa on the uncoded part at several coded shares, with and without a base bundle trained on other
sessions, against a per-frame logistic regression trained on the same coded part; calibration (ECE before/after
temperature scaling) and review efficiency at NOVA's threshold on held-out sessions. Used by
``benchmarks/bench_icep_completion.py`` and the acceptance tests (tests/test_icep_loop.py).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from nova_infant.core.annotations import frames_to_segments

from nova_infant.icep.calibration import REVIEW_THRESHOLD, BinCounts, CalibrationCounts, ReviewCounts, pool
from nova_infant.icep.dataset import ArrayRows, SessionData, session_from_rows
from nova_infant.icep.synthetic import FFSF_CLASSES, ffsf_prototypes, ffsf_session
from nova_infant.icep.training import TrainConfig, fit, predict_fitted, normalised

STEP_MS = 40.0


def make_sessions(n: int, n_frames: int, dim: int = 16, seed: int = 0, prefix: str = "ffsf") -> list[SessionData]:
    """``n`` in-memory FFSF sessions (one ``ArrayRows`` stream at 25 Hz) with labels (ids of
    :data:`FFSF_CLASSES`)."""
    rng = np.random.default_rng(seed)
    proto = ffsf_prototypes(dim)
    out = []
    for i in range(n):
        x, y, _ = ffsf_session(n_frames, dim, rng, proto, step_ms=STEP_MS)
        s = session_from_rows(f"{prefix}{i:02d}", [ArrayRows(x, 1000.0 / STEP_MS, "infant.feature")], None, None)
        s.labels = y
        out.append(s)
    return out


def kappa(gold: np.ndarray, pred: np.ndarray) -> float:
    """Cohen's kappa over frames with ``gold >= 0`` (scikit-learn)."""
    from sklearn.metrics import cohen_kappa_score

    keep = gold >= 0
    return float(cohen_kappa_score(gold[keep], pred[keep]))


def logreg_completion(session: SessionData, split_frame: int, seed: int = 0) -> np.ndarray:
    """Per-frame multinomial logistic regression (class weight balanced, after ``StandardScaler``; the same
    per-session standardisation as the model) fitted on the coded frames before ``split_frame``; predicts every
    frame."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    s = normalised([session], "session")[0]
    x = s.features(0, s.n_frames)
    y = session.labels[:split_frame]
    keep = np.flatnonzero(y >= 0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, class_weight="balanced",
                                                               random_state=seed))
    model.fit(x[keep], y[keep])
    return model.predict(x).astype(np.int64)


def completion_config(seed: int = 0) -> TrainConfig:
    """The completion's default model: a small bi-LSTM (hidden 32, 1 layer, window 50, stride 10, Adam 3e-3, at most
    40 epochs, patience 6)."""
    return TrainConfig(hidden=32, layers=1, window=50, stride=10, lr=3e-3, batch_size=32, max_epochs=40, patience=6,
                       seed=seed, device="cpu")


def run(n_test: int = 4, n_base: int = 6, n_frames: int = 4500, dim: int = 16, shares=(0.10, 0.25, 0.50),
        seed: int = 0, progress=print) -> dict:
    """The whole benchmark.

    Parameters
    ----------
    n_test : int
        Held-out sessions completed at every share (never seen by the base bundle).
    n_base : int
        Sessions of the base bundle (4/5 fitted, 1/5 held out as whole sessions for early stopping and calibration).
    n_frames : int
        Frames per session (25 Hz; 4500 = 3 min).
    shares : tuple of float
        Coded shares of each test session.

    Returns
    -------
    dict
        ``completion``: per share, kappa on the uncoded part (mean, per session) of completion without and with
        the base bundle and of the logistic regression; ECE of the completion before/after scaling;
        ``calibration``: ECE before/after and review efficiency of the base bundle on the held-out sessions;
        ``seconds``.
    """
    from nova_infant.icep.bundle import Bundle
    from nova_infant.icep.completion import complete_session

    tic = time.perf_counter()
    names = list(FFSF_CLASSES)
    base_sessions = make_sessions(n_base, n_frames, dim, seed + 100, "base")
    tests = make_sessions(n_test, n_frames, dim, seed + 200, "test")
    cfg = completion_config(seed)
    n_val = max(1, n_base // 5)
    base_fit = fit(base_sessions[n_val:], base_sessions[:n_val], len(names), cfg.replace(hidden=64))
    lmap = SimpleNamespace(target=SimpleNamespace(names=names))  # the classes are the coder's: the head is kept
    base = Bundle(base_fit.model, base_fit.arch, base_fit.config, base_fit.normaliser, lmap,
                  {"step_ms": STEP_MS, "dim": dim, "streams": [{"name": "infant.feature", "dim": dim,
                                                                "sample_rate_hz": 25.0, "media_type": ""}]},
                  None, base_fit.temperature)
    held = [CalibrationCounts.of(predict_fitted(base_fit, s, calibrated=False), s.labels, base_fit.temperature)
            for s in tests]
    cal = pool(held)
    progress(f"base bundle on {n_test} held-out sessions: ECE {cal.before.ece:.3f} -> {cal.after.ece:.3f} "
             f"(T={base_fit.temperature:.2f}); review efficiency at {REVIEW_THRESHOLD}: {cal.review.efficiency:.2f} "
             f"({100 * cal.review.share_time_below:.0f} % of time, {100 * cal.review.share_errors_below:.0f} % "
             f"of errors)")
    rows = {}
    for share in shares:
        row = {"scratch": [], "base": [], "logreg": [], "counts_scratch": [], "counts_base": []}
        for s in tests:
            split_frame = int(share * s.n_frames)
            segs = _segments(s.labels[:split_frame])
            gold = s.labels.copy()
            gold[:split_frame] = -1
            for key, b in (("scratch", None), ("base", base)):
                done = complete_session(s, segs, names, cfg, None, b, source=s.name)
                row[key].append(kappa(gold, done.labels))
                row[f"counts_{key}"].append(_counts(done.raw_probs, done.probs, gold,
                                                             done.fitted.temperature))
            row["logreg"].append(kappa(gold, logreg_completion(s, split_frame, seed)))
        out = {k: {"mean": float(np.mean(v)), "sessions": [float(x) for x in v]}
               for k, v in row.items() if not k.startswith("counts")}
        for key in ("scratch", "base"):
            c = pool(row[f"counts_{key}"])
            out[f"{key}_calibration"] = {"ece_before": c.before.ece, "ece_after": c.after.ece,
                                         "review": c.review.to_json()}
        rows[f"{int(round(100 * share))}%"] = out
        progress(f"{int(round(100 * share)):>3d} % coded: kappa completion {out['scratch']['mean']:.3f}, with base "
                 f"{out['base']['mean']:.3f}, logistic regression {out['logreg']['mean']:.3f}; completion ECE "
                 f"{out['scratch_calibration']['ece_before']:.3f} -> {out['scratch_calibration']['ece_after']:.3f}, "
                 f"review efficiency {out['scratch_calibration']['review']['efficiency']:.2f}; with base ECE "
                 f"{out['base_calibration']['ece_before']:.3f} -> {out['base_calibration']['ece_after']:.3f}, "
                 f"review efficiency {out['base_calibration']['review']['efficiency']:.2f}")
    return {"completion": rows, "calibration": cal.to_json(), "base_temperature": base_fit.temperature,
            "sessions": {"test": n_test, "base": n_base, "frames": n_frames, "dim": dim},
            "seconds": time.perf_counter() - tic}


def _counts(raw: np.ndarray, cal: np.ndarray, gold: np.ndarray, temperature: float) -> CalibrationCounts:
    """Reliability bins of the model's own ``raw`` probabilities (before) and of the written ``cal`` ones (after:
    temperature and base mix), review counts of ``cal``; frames with ``gold < 0`` left out."""
    keep = gold >= 0
    pred = cal.argmax(1)
    conf = cal[np.arange(len(pred)), pred]
    return CalibrationCounts(BinCounts.of(raw.max(1)[keep], raw.argmax(1)[keep] == gold[keep]),
                             BinCounts.of(conf[keep], pred[keep] == gold[keep]),
                             ReviewCounts.of(pred, gold, conf, REVIEW_THRESHOLD), [float(temperature)])


def _segments(labels: np.ndarray) -> np.ndarray:
    return frames_to_segments(labels, STEP_MS)
