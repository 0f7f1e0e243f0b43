"""Recorder-grouped cross-validation of the default crying model on three arms (8 kHz cries; 16 kHz cries; 16 kHz
cries over a room floor next to speech and music), against the zero-shot mapping on the same folds.

In every outer fold (:func:`nova_infant.taggers.crying_data.fold_plan`: cries grouped by recorder, speech by
speaker, other negatives by file) each candidate training set of :data:`nova_infant.taggers.crying.TRAINING_SETS`
is fitted on the training folds only, thresholds included (inner grouped folds), tagged as the tagger does (with
the crying hold, :data:`nova_infant.taggers.crying.CRYING_HOLD`; the shipped set also without it), and scored on
the held-out fold's *sessions*: each held-out cry clip between held-out speech (or music), end to end, on the 40 ms
grid the tagger writes. Figures (:func:`session_counts`): clip recall, frame recall, negative frames tagged crying
(the held-out speech / music / silence files, and the neighbours more than 1 s from the cry), the speech track
inside the cry more than 1 s from its edges, and how far each track bleeds past a cry/neighbour boundary.

Command: ``nova-infant taggers crying-cv`` or ``python scripts/crying_cv.py`` (docs/audio-event-tagger.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nova_infant.core.atomic import save_figure
from nova_infant.taggers.audio_classes import active_frames
from nova_infant.taggers.crying import (DEFAULT_TRAINING_SET, GRID_MS, HEAD_CLASSES, TARGET_NEGATIVES, TRAINING_SETS, choose_thresholds,
                                        fit_with_thresholds, grid_scores, head_scores, in_training_set,
                                        training_set, zero_shot_scores)
from nova_infant.taggers.crying_data import inner_folds
from nova_infant.taggers.crying_mixes import ARM_NAMES, ARMS

EDGE_MS = 1000.0


def _run_from(on: np.ndarray, start: int, step: int) -> int:
    """Length of the run of True in ``on`` starting at index ``start`` and going in direction ``step``."""
    n, i = 0, start
    while 0 <= i < len(on) and on[i]:
        n += 1
        i += step
    return n


def session_counts(scores: np.ndarray, segments: list, thresholds: dict, step_ms: float = GRID_MS,
                   hold: dict | None = None) -> dict:
    """Counts of one test session (a cry between neighbours) on the tagger's grid.

    Parameters
    ----------
    scores : ndarray, float32, shape (n_frames, 2)
        ``baby_crying`` and ``speech`` scores on the grid (row k centred at (k + 0.5) * step_ms).
    segments : list of (start_ms, end_ms, kind)
        The session's parts; exactly one ``crying``.
    thresholds : dict
        ``{"baby_crying": float, "speech": float}``.
    step_ms : float
    hold : dict, optional
        ``{class: [low threshold, max ms]}`` (:func:`nova_infant.taggers.audio_classes.active_frames`), as the
        tagger applies a head's ``cfg.hold``.

    Returns
    -------
    dict
        ``cry_frames``, ``cry_on`` (frames of the cry tagged crying), ``hit`` (0/1: any), ``speech_touches`` (0/1:
        any cry frame tagged speech, edges included), ``inner_frames`` and
        ``inner_speech`` (cry frames more than :data:`EDGE_MS` from its edges; of them tagged speech),
        ``neighbour_frames`` and ``neighbour_crying`` (neighbour frames more than :data:`EDGE_MS` from the cry; of
        them tagged crying), ``crying_bleed_ms`` (per boundary: how far the crying track runs on into the
        neighbour) and ``speech_bleed_ms`` (per boundary with speech: how far the speech track runs on into the cry).
    """
    t = (np.arange(len(scores)) + 0.5) * step_ms
    hold = hold or {}
    cry_on = active_frames(scores[:, 0], thresholds["baby_crying"], hold.get("baby_crying"), step_ms)
    speech_on = active_frames(scores[:, 1], thresholds["speech"], hold.get("speech"), step_ms)
    c0, c1 = next((s, e) for s, e, k in segments if k == "crying")
    in_cry = (t >= c0) & (t < c1)
    inner = (t >= c0 + EDGE_MS) & (t < c1 - EDGE_MS)
    neighbour = ((t < c0 - EDGE_MS) | (t >= c1 + EDGE_MS)) & (t < segments[-1][1])
    first, last = int(np.argmax(in_cry)), int(len(in_cry) - 1 - np.argmax(in_cry[::-1]))
    crying_bleed = [_run_from(cry_on, first - 1, -1) * step_ms, _run_from(cry_on, last + 1, 1) * step_ms]
    speech_bleed = []
    kinds = [k for _, _, k in segments]
    if kinds[0] == "speech":
        speech_bleed.append(_run_from(speech_on & in_cry, first, 1) * step_ms)
    if kinds[-1] == "speech":
        speech_bleed.append(_run_from(speech_on & in_cry, last, -1) * step_ms)
    return {"cry_frames": int(in_cry.sum()), "cry_on": int((cry_on & in_cry).sum()), "hit": int((cry_on & in_cry).any()),
            "speech_touches": int((speech_on & in_cry).any()),
            "inner_frames": int(inner.sum()), "inner_speech": int((speech_on & inner).sum()),
            "neighbour_frames": int(neighbour.sum()), "neighbour_crying": int((cry_on & neighbour).sum()),
            "crying_bleed_ms": crying_bleed, "speech_bleed_ms": speech_bleed}


def arm_figures(counts: list[dict], negatives: list[np.ndarray], thresholds: dict,
                hold: dict | None = None) -> dict:
    """The figures of one arm in one fold from its sessions' counts and the fold's held-out negative recordings.

    Parameters
    ----------
    counts : list of dict
        :func:`session_counts` per session.
    negatives : list of ndarray, float32, shape (n_frames, 2)
        Grid scores of the held-out speech, music and silence recordings.
    thresholds : dict
    hold : dict, optional
        As :func:`session_counts`.

    Returns
    -------
    dict
        ``clip_recall``, ``frame_recall``, ``negative_frames_tagged_crying`` (held-out negative files),
        ``neighbour_frames_tagged_crying``, ``speech_inside_cries``, ``cries_touched_by_speech`` (share of cry
        clips with any speech frame, edges included), ``crying_bleed_ms_mean/p95/max``,
        ``speech_bleed_ms_mean/p95/max``, ``n_sessions`` (JSON-ready floats).
    """
    def ratio(a, b):
        den = sum(c[b] for c in counts)
        return float(sum(c[a] for c in counts) / den) if den else float("nan")

    hold = (hold or {}).get("baby_crying")
    neg = (np.concatenate([active_frames(s[:, 0], thresholds["baby_crying"], hold) for s in negatives])
           if negatives else np.zeros(0, bool))
    out = {"n_sessions": len(counts), "clip_recall": float(np.mean([c["hit"] for c in counts])),
           "frame_recall": ratio("cry_on", "cry_frames"),
           "negative_frames_tagged_crying": float(np.mean(neg)) if len(neg) else np.nan,
           "neighbour_frames_tagged_crying": ratio("neighbour_crying", "neighbour_frames"),
           "speech_inside_cries": ratio("inner_speech", "inner_frames"),
           "cries_touched_by_speech": float(np.mean([c["speech_touches"] for c in counts]))}
    for track in ("crying", "speech"):
        b = np.array([x for c in counts for x in c[f"{track}_bleed_ms"]], float)
        out[f"{track}_bleed_ms_mean"] = float(b.mean()) if len(b) else float("nan")
        out[f"{track}_bleed_ms_p95"] = float(np.percentile(b, 95)) if len(b) else float("nan")
        out[f"{track}_bleed_ms_max"] = float(b.max()) if len(b) else float("nan")
    return out


#: suffix of the shipped training set scored without its hold (plain thresholds): the comparison of the hold
NO_HOLD = ", no hold"


def _fold_figures(k, name, plan, recs, kinds, score, thr, hold) -> dict:
    """The figures of every arm in outer fold ``k`` for one scorer (``score(indices) -> grid scores``) with its
    thresholds and hold; ``name`` is the training set (its input band and negative bands)."""
    band = TRAINING_SETS[name]["input_band"]
    neg = [i for i in np.flatnonzero(plan.test[:, k]) if kinds[i] in TARGET_NEGATIVES
           and recs[i].band in TRAINING_SETS[name]["negative_bands"] and recs[i].speed == 1.0]
    neg_scores = score(neg)
    arms = {}
    for arm in ARMS:
        ses = [i for i in np.flatnonzero(plan.test[:, k]) if kinds[i] == "session" and recs[i].source == arm
               and recs[i].band == band]
        counts = [session_counts(s, recs[i].segments, thr, hold=hold) for i, s in zip(ses, score(ses))]
        arms[arm] = arm_figures(counts, neg_scores, thr, hold)
    return {"thresholds": {c_: float(thr[c_]) for c_ in HEAD_CLASSES}, "hold": {c_: list(v) for c_, v in hold.items()},
            "arms": arms}


def cross_validate(cache: str | None = None, n_folds: int = 5, seed: int = 0, c: float = 0.1,
                   methods: tuple = tuple(TRAINING_SETS), progress: bool = True, corpus: str | None = None,
                   corpus16: str | None = None) -> dict:
    """Recorder- and speaker-grouped CV of the crying model's candidate training sets on every arm of
    :data:`nova_infant.taggers.crying_data.ARMS`, with the zero-shot mapping (thresholds fitted on the same
    training folds by the same rule) as the baseline.

    Parameters
    ----------
    cache : str, optional
        Folder of cached YAMNet logits (computed once; the CV then runs on them).
    n_folds, seed : int
    c : float
        Inverse L2 strength of the logistic regressions.
    methods : tuple of str
        Keys of :data:`nova_infant.taggers.crying.TRAINING_SETS`.
    progress : bool
    corpus, corpus16 : str, optional
        Corpus folders.

    Returns
    -------
    dict
        ``folds``: per fold ``{method: {"thresholds", "hold", "arms": {arm: figures}}}`` (the shipped training
        set also as ``"<set>, no hold"``: its plain thresholds, without
        :data:`nova_infant.taggers.crying.CRYING_HOLD`); ``summary``: ``{method: {arm: {figure: {"mean", "min",
        "max"}}}}`` over folds; ``n_clips`` (8 kHz, 16 kHz), ``n_recorders``, ``n_folds``.
    """
    from tqdm import tqdm

    data = training_set(cache, n_folds, seed, progress, sessions=True, corpus=corpus, corpus16=corpus16)
    recs, logits, durations, kinds, plan = (data["recordings"], data["logits"], data["durations"], data["kinds"],
                                            data["plan"])
    zs = [grid_scores(zero_shot_scores(lg, data["label_names"]), d) for lg, d in zip(logits, durations)]
    per_fold = []
    for k in tqdm(range(n_folds), desc="outer folds", disable=not progress):
        fold = {"fold": k}
        for method in methods:
            tr = [i for i in np.flatnonzero(plan.train[:, k]) if in_training_set(recs[i], method)]
            head = fit_with_thresholds([logits[i] for i in tr], [durations[i] for i in tr], [kinds[i] for i in tr],
                                       inner_folds([recs[i] for i in tr], 3, seed), c=c)
            score = lambda idx, h=head: head_scores(h, [logits[i] for i in idx], [durations[i] for i in idx])  # noqa: E731
            fold[method] = _fold_figures(k, method, plan, recs, kinds, score, head.cfg.thresholds, head.cfg.hold)
            if method == DEFAULT_TRAINING_SET:
                fold[method + NO_HOLD] = _fold_figures(k, method, plan, recs, kinds, score, head.cfg.thresholds, {})
        tr = [i for i in np.flatnonzero(plan.train[:, k]) if in_training_set(recs[i], "8k")]
        thr = choose_thresholds([zs[i] for i in tr], [kinds[i] for i in tr])
        fold["zero-shot"] = _fold_figures(k, "8k", plan, recs, kinds, lambda idx: [zs[i] for i in idx], thr, {})
        per_fold.append(fold)
    names = [m for method in methods for m in ([method, method + NO_HOLD] if method == DEFAULT_TRAINING_SET
                                                 else [method])] + ["zero-shot"]
    summary: dict = {}
    for method in names:
        summary[method] = {}
        for arm in ARMS:
            keys = per_fold[0][method]["arms"][arm]
            summary[method][arm] = {key: {"mean": float(np.nanmean(v)), "min": float(np.nanmin(v)),
                                          "max": float(np.nanmax(v))}
                                    for key in keys
                                    for v in [np.array([f[method]["arms"][arm][key] for f in per_fold], float)]}
    cries = [r for r in recs if r.kind == "crying" and r.source in ("8k", "16k")]
    return {"folds": per_fold, "summary": summary, "n_folds": n_folds, "seed": seed, "c": c,
            "n_clips": {s: sum(r.source == s for r in cries) for s in ("8k", "16k")},
            "n_recorders": {s: len({r.group for r in cries if r.source == s}) for s in ("8k", "16k")},
            "methods": names}


#: (figure key, label, target) rows of :func:`format_report`
REPORT_ROWS = [("clip_recall", "clip recall", ">= 0.95"), ("frame_recall", "frame recall", ">= 0.80"),
               ("negative_frames_tagged_crying", "held-out negative frames tagged crying", "<= 0.03"),
               ("neighbour_frames_tagged_crying", "neighbour frames (> 1 s from the cry) tagged crying", "<= 0.03"),
               ("speech_inside_cries", "speech track inside cries (> 1 s from edges)", "<= 0.10"),
               ("cries_touched_by_speech", "cry clips the speech track touches anywhere (edges included)", ""),
               ("crying_bleed_ms_mean", "crying bleed past the cry, mean ms", ""),
               ("crying_bleed_ms_p95", "crying bleed past the cry, 95th pct ms", "< 1000"),
               ("crying_bleed_ms_max", "crying bleed past the cry, max ms", ""),
               ("speech_bleed_ms_mean", "speech bleed into the cry, mean ms", ""),
               ("speech_bleed_ms_p95", "speech bleed into the cry, 95th pct ms", "< 1000"),
               ("speech_bleed_ms_max", "speech bleed into the cry, max ms", "")]


def format_report(result: dict) -> str:
    """The cross-validation figures as Markdown tables: one per training set, a row per figure, a column per arm
    (mean over folds, min-max in brackets).

    Parameters
    ----------
    result : dict
        From :func:`cross_validate`.

    Returns
    -------
    str
    """
    s = result["summary"]
    lines = [f"{result['n_clips']['8k']} cry clips at 8 kHz ({result['n_recorders']['8k']} recorders), "
             f"{result['n_clips']['16k']} at 16 kHz ({result['n_recorders']['16k']} recorders); "
             f"{result['n_folds']} folds grouped by recorder (cries), speaker (speech) and file (other negatives); "
             f"mean over folds (min-max)"]
    for method in result["methods"]:
        if method == "zero-shot":
            what = " (baseline: YAMNet zero-shot mapping, thresholds fitted on the training folds, no hold)"
        elif method.endswith(NO_HOLD):
            what = f" (training set `{method[:-len(NO_HOLD)]}`, plain thresholds: the rule shipped before)"
        else:
            what = f" (training set `{method}`, thresholds and the crying hold)"
        lines += ["", f"**{method}**" + what, "",
                  "| figure | target | " + " | ".join(f"{a}: {ARM_NAMES[a]}" for a in ARMS) + " |",
                  "|---|---|" + "---|" * len(ARMS)]
        for key, label, target in REPORT_ROWS:
            cells = []
            for arm in ARMS:
                v = s[method][arm][key]
                fmt = "{:.0f}" if "ms" in key else "{:.3f}"
                cells.append(f"{fmt.format(v['mean'])} ({fmt.format(v['min'])}-{fmt.format(v['max'])})")
            lines.append(f"| {label} | {target} | " + " | ".join(cells) + " |")
        thr = [f"{f[method]['thresholds']['baby_crying']:g}/{f[method]['thresholds']['speech']:g}"
               for f in result["folds"]]
        hold = result["folds"][0][method].get("hold", {}).get("baby_crying")
        lines += ["", "thresholds per fold (crying/speech): " + ", ".join(thr)
                  + (f"; crying hold: on for at most {hold[1]:g} ms past a run while the score is >= {hold[0]:g}"
                     if hold else "")]
    return "\n".join(lines)


def arms_figure(result: dict, path) -> Path:
    """Save frame recall and clip recall per arm and training set (mean over folds, min-max as error bars, the
    targets as lines) as a PNG (matplotlib, atomic: :func:`nova_infant.core.atomic.save_figure`).

    Parameters
    ----------
    result : dict
        From :func:`cross_validate`.
    path : str or path
        The PNG to write.

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s, methods, arms = result["summary"], result["methods"], list(ARMS)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    width = 0.8 / len(methods)
    for ax, key, target in ((axes[0], "frame_recall", 0.80), (axes[1], "clip_recall", 0.95)):
        for m, method in enumerate(methods):
            mean = np.array([s[method][a][key]["mean"] for a in arms])
            lo = mean - np.array([s[method][a][key]["min"] for a in arms])
            hi = np.array([s[method][a][key]["max"] for a in arms]) - mean
            ax.bar(np.arange(len(arms)) + (m - (len(methods) - 1) / 2) * width, mean, width, yerr=[lo, hi],
                   capsize=3, label=method)
        ax.axhline(target, color="k", ls="--", lw=1, label="target (frame recall 0.80, clip recall 0.95)")
        ax.set_xticks(range(len(arms)), [f"{a}: {ARM_NAMES[a]}".replace(" + ", "\n+ ") for a in arms], fontsize=8)
        ax.set_title(key.replace("_", " ") + " (held-out recorders and speakers)")
        ax.set_ylim(0.4, 1.02)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=len(labels))
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return save_figure(fig, path)
