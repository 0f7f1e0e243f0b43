"""The default crying model: a small head on YAMNet's AudioSet logits, trained on real infant cries.

Why: zero-shot, YAMNet's "Baby cry, infant cry" reaches 0.5 on only a quarter of the crying frames of real phone
recordings (Donate-a-cry corpus), and its speech classes fire on most cry clips. The model is one L2 logistic
regression per class (``baby_crying``, ``speech``) on YAMNet's 521 logits averaged over a window and its neighbours,
stored as a :mod:`.heads` head without hidden layers (VIBA-Net's pooled head, Ong et al. WACV-W'25, §3.3, minus the
hidden layers). Training data (:mod:`.crying_data`):

- positives: Donate-a-cry cries (ODbL 1.0 / DbCL 1.0) in both bands -- the 8 kHz telephone-band copies and the
  16 kHz originals -- and copies of them over made-up wideband room floors, so that "nothing above 4 kHz" cannot
  stand for "crying" (:data:`TRAINING_SETS`, chosen by the recorder-grouped CV of :mod:`.crying_cv`);
- negatives from packages: read speech grouped by speaker, CC0 music and sounds, made-up silence and noise, each
  as it is and through the telephone band; cries with speech over them (labelled both).

Thresholds are fitted on training data only (inner grouped folds); a ``baby_crying`` run may then go on for at most
one YAMNet hop (480 ms) while its score stays >= 0.5 (:data:`CRYING_HOLD`, a fixed hangover, not fitted). Commands: ``nova-infant taggers crying-cv``
(docs/audio-event-tagger.md) and ``nova-infant taggers train-crying-head --out modules/taggers/data/crying_head``.
Layering: imports :mod:`.audio_model`, :mod:`.audio_classes`, :mod:`.crying_data`, :mod:`.crying_mixes`,
:mod:`.heads`; the tagger
(:mod:`.audio_events`) imports this module, never the other way round.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from nova_infant.core.grid import frame_grid
from nova_infant.core.standardiser import Standardiser
from nova_infant.taggers.audio_classes import context_windows, to_grid, zero_shot
from nova_infant.taggers.audio_model import YamnetBackend, load_backend
from nova_infant.taggers.crying_data import (Recording, corpus_recordings, embed_recordings, fold_plan,
                                             held_out_recorders, inner_folds, negative_recordings)
from nova_infant.taggers.crying_mixes import arm_sessions, floor_augmented, speech_mixtures
from nova_infant.taggers.heads import Head, HeadConfig, build_module

log = logging.getLogger("nova_infant")

#: folder of the shipped head (config.json, model.safetensors, NOTICE.md)
HEAD_DIR = Path(__file__).resolve().parent / "data" / "crying_head"
GRID_MS = 40.0
HEAD_CLASSES = ["baby_crying", "speech"]
NEGATIVE_KINDS = ["speech", "music", "other", "silence"]
TARGET_NEGATIVES = ["speech", "music", "silence"]

#: What each candidate model trains on (a recording's ``source``; negatives' bands) and the band of its input.
#: ``8k``: the 8 kHz cries only (the model shipped before); ``phone``: the same, with every input (training and
#: tagging) passed through the telephone band; ``both+floor``: 8 kHz and 16 kHz cries, each also over a wideband
#: room floor (:func:`nova_infant.taggers.crying_data.floor_augmented`).
TRAINING_SETS = {
    "8k": {"sources": ("8k", "mix"), "negative_bands": ("full", "phone"), "input_band": "full"},
    "phone": {"sources": ("8k", "mix"), "negative_bands": ("phone",), "input_band": "phone"},
    "both+floor": {"sources": ("8k", "16k", "8k+floor", "16k+floor", "mix"), "negative_bands": ("full", "phone"),
                   "input_band": "full"},
}
#: the training set of the shipped model (decided by ``nova-infant taggers crying-cv``, docs/audio-event-tagger.md)
DEFAULT_TRAINING_SET = "both+floor"


def in_training_set(rec: Recording, name: str) -> bool:
    """Whether ``rec`` belongs to the training set ``name`` of :data:`TRAINING_SETS` (cries by source, negatives by
    band; test sessions never)."""
    spec = TRAINING_SETS[name]
    if rec.kind == "session":
        return False
    if rec.kind.startswith("crying"):
        return rec.source in spec["sources"]
    return rec.band in spec["negative_bands"]


def window_labels(kind: str, n_windows: int) -> np.ndarray:
    """Whole-recording targets of every window for :data:`HEAD_CLASSES` (baby_crying, speech).

    Parameters
    ----------
    kind : str
        The recording's kind (``crying+speech`` sets both).
    n_windows : int

    Returns
    -------
    ndarray, float32, shape (n_windows, 2)
    """
    y = np.zeros((n_windows, len(HEAD_CLASSES)), np.float32)
    y[:, 0] = kind.startswith("crying")
    y[:, 1] = kind == "speech" or kind.endswith("+speech")
    return y


# ---------------------------------------------------------------- scores on the session grid

#: How far a ``baby_crying`` run may go on past its last row at the fitted threshold: ``[low threshold, max ms]``
#: (:func:`nova_infant.taggers.audio_classes.active_frames`). Fixed, not fitted: at most one YAMNet hop (480 ms,
#: the spacing of the window centres the grid interpolates between) and only while the model still says crying
#: is more likely than not (0.5, the decision boundary of the balanced logistic regression). So the crying track's
#: bleed past a cry grows by at most 480 ms (the target: under a second), while a cry's fading edges and short
#: dips (breaths) stay tagged. Why: the fitted threshold lands at 0.99-0.995 (inner models trained on one speaker
#: group call unseen speakers crying), which alone cut frame recall to 0.73-0.79 (docs/audio-event-tagger.md).
CRYING_HOLD = {"baby_crying": [0.5, YamnetBackend.hop_ms]}

THRESHOLDS = np.concatenate([np.round(np.arange(0.05, 0.951, 0.05), 2), [0.97, 0.98, 0.99, 0.995]])


def grid_scores(window_scores: np.ndarray, duration_ms: float, step_ms: float = GRID_MS) -> np.ndarray:
    """Window scores of a YAMNet run on the tagger's grid, interpolated as the tagger does
    (:func:`nova_infant.taggers.audio_classes.to_grid`).

    Parameters
    ----------
    window_scores : ndarray, float32, shape (n_windows, C)
    duration_ms : float
        Length of the recording in ms.
    step_ms : float
        Grid step in ms.

    Returns
    -------
    ndarray, float32, shape (n_frames, C)
    """
    centres = np.arange(len(window_scores)) * YamnetBackend.hop_ms + YamnetBackend.window_ms / 2
    return to_grid(window_scores, centres, frame_grid(duration_ms, step_ms))


def zero_shot_scores(logits: np.ndarray, label_names: list[str]) -> np.ndarray:
    """The zero-shot baseline: :data:`HEAD_CLASSES` scores by the tagger's AudioSet mapping.

    Parameters
    ----------
    logits : ndarray, float32, shape (n_windows, 521)
    label_names : list of str
        YAMNet's label names.

    Returns
    -------
    ndarray, float32, shape (n_windows, 2)
    """
    return zero_shot(logits, label_names, HEAD_CLASSES)[0]


def _fires(scores: list[np.ndarray], col: int, t: float) -> np.ndarray:
    return np.array([bool((s[:, col] >= t).any()) for s in scores])


def _frame_rate(scores: list[np.ndarray], col: int, t: float) -> float:
    if not scores:
        return float("nan")
    return float(np.mean(np.concatenate([s[:, col] for s in scores]) >= t))


def choose_thresholds(scores: list[np.ndarray], kinds: list[str], max_negative_rate: float = 0.01,
                      max_speech_on_cry: float = 0.05) -> dict:
    """Per-class thresholds from (out-of-fold) grid scores of training recordings.

    ``baby_crying``: the lowest threshold of :data:`THRESHOLDS` at which each of speech, music and silence has at
    most ``max_negative_rate`` of its frames tagged. ``speech``: the lowest at which at most ``max_speech_on_cry`` of
    the pure cry clips and at most ``max_negative_rate`` of the music and silence frames fire. For either, none
    passing -> 0.995, the last of :data:`THRESHOLDS`. ("other" sounds -- crows, burps, robot voices -- are trained on
    and reported, not calibrated on.) The lowest passing threshold keeps recall highest.

    Parameters
    ----------
    scores : list of ndarray, float32, shape (n_frames, 2)
    kinds : list of str
    max_negative_rate, max_speech_on_cry : float
        Shares, 0..1.

    Returns
    -------
    dict
        ``{"baby_crying": float, "speech": float}``.
    """
    by_kind = {k: [s for s, kk in zip(scores, kinds) if kk == k] for k in set(kinds)}
    out = {}
    for col, name in enumerate(HEAD_CLASSES):
        chosen = float(THRESHOLDS[-1])
        for t in THRESHOLDS:
            if name == "baby_crying":
                ok = all(_frame_rate(by_kind[k], col, t) <= max_negative_rate for k in TARGET_NEGATIVES if by_kind.get(k))
            else:
                ok = (_fires(by_kind.get("crying", []), col, t).mean() <= max_speech_on_cry if by_kind.get("crying")
                      else True) and all(_frame_rate(by_kind[k], col, t) <= max_negative_rate
                                         for k in ("music", "silence") if by_kind.get(k))
            if ok:
                chosen = float(t)
                break
        out[name] = chosen
    return out


# ---------------------------------------------------------------- fitting


def _design(logits: list[np.ndarray], kinds: list[str], context: int):
    x = np.concatenate([context_windows(lg, context).mean(1) for lg in logits]).astype(np.float32)
    y = np.concatenate([window_labels(k, len(lg)) for lg, k in zip(logits, kinds)])
    return x, y


def fit_crying_head(logits: list[np.ndarray], kinds: list[str], context: int = 1, c: float = 0.1,
                    embedding: str = "yamnet-logits-521"):
    """Fit the default crying model: one L2 logistic regression per class of :data:`HEAD_CLASSES` on YAMNet logits
    averaged over each window and ``context`` neighbours each side, standardised
    (:class:`nova_infant.core.standardiser.Standardiser`, StandardScaler semantics) + scikit-learn
    ``LogisticRegression(C=c, class_weight="balanced")``.

    Stored as a :class:`~.heads.Head` without hidden layers (pooling -> standardiser -> one linear layer ->
    sigmoid: exactly the fitted model), so it loads and runs like any trained head. A linear model is used
    rather than VIBA-Net's 64/32 MLP because, with a few dozen speech recordings, the MLP tagged unseen
    speakers as crying and its held-out frame recall was lower (docs/audio-event-tagger.md). Returns the head
    without thresholds.
    """
    import torch
    from sklearn.linear_model import LogisticRegression

    x, y = _design(logits, kinds, context)
    scaler = Standardiser.from_array(x, min_scale=1e-6)
    xs = scaler.apply(x)
    weights, biases = [], []
    for j in range(len(HEAD_CLASSES)):
        model = LogisticRegression(C=c, max_iter=1000, class_weight="balanced").fit(xs, y[:, j])
        weights.append(model.coef_[0])
        biases.append(model.intercept_[0])
    cfg = HeadConfig(kind="audio-events", classes=list(HEAD_CLASSES), multilabel=True, input_dim=int(x.shape[1]),
                     embedding=embedding, hidden=[], dropout=0.0, context=int(context),
                     mean=scaler.mean.tolist(), scale=scaler.scale.tolist(),
                     metrics={"model": f"LogisticRegression(C={c}, class_weight=balanced)", "n_windows": int(len(x)),
                              "positives": {n: int(y[:, j].sum()) for j, n in enumerate(HEAD_CLASSES)}})
    module = build_module(cfg)
    with torch.no_grad():
        linear = module.net[0]
        linear.weight.copy_(torch.tensor(np.stack(weights), dtype=torch.float32))
        linear.bias.copy_(torch.tensor(biases, dtype=torch.float32))
    return Head(cfg, module)


def head_scores(head, logits: list[np.ndarray], durations: list[float]) -> list[np.ndarray]:
    """Grid scores of a head on each recording (windows with the head's context, then :func:`grid_scores`).

    Parameters
    ----------
    head : Head
    logits : list of ndarray, float32, shape (n_windows, 521)
    durations : list of float
        Recording lengths in ms.

    Returns
    -------
    list of ndarray, float32, shape (n_frames, 2)
    """
    return [grid_scores(head.predict_proba(context_windows(lg, head.cfg.context)), d)
            for lg, d in zip(logits, durations)]


def fit_with_thresholds(logits, durations, kinds, inner: np.ndarray, c: float = 0.1, context: int = 1,
                        hold: bool = True, **rule):
    """Fit a head on all given (training) recordings and its thresholds on inner grouped out-of-fold scores.

    Parameters
    ----------
    logits, durations, kinds : lists
        Per recording: YAMNet logits (n_windows, 521), length in ms, kind.
    inner : ndarray, int, shape (n_recordings,)
        Inner fold id per recording (:func:`nova_infant.taggers.crying_data.inner_folds`: groups stay whole).
    c : float
        Inverse L2 strength of the logistic regressions.
    context : int
        Windows averaged each side.
    hold : bool
        Set ``cfg.hold`` to :data:`CRYING_HOLD` (a bounded hangover of the crying track); False = plain thresholds.
    **rule
        Passed to :func:`choose_thresholds`.

    Returns
    -------
    Head
        With ``cfg.thresholds`` (and ``cfg.hold``) set.
    """
    inner = np.asarray(inner)
    oof: list = [None] * len(logits)
    for k in np.unique(inner):
        tr, te = np.flatnonzero(inner != k), np.flatnonzero(inner == k)
        h = fit_crying_head([logits[i] for i in tr], [kinds[i] for i in tr], context=context, c=c)
        for i, s in zip(te, head_scores(h, [logits[i] for i in te], [durations[i] for i in te])):
            oof[i] = s
    thresholds = choose_thresholds(oof, kinds, **rule)
    head = fit_crying_head(logits, kinds, context=context, c=c)
    head.cfg.thresholds = thresholds
    head.cfg.hold = {k: list(v) for k, v in (CRYING_HOLD if hold else {}).items()}
    return head


def training_set(cache: str | None = None, n_folds: int = 5, seed: int = 0, progress: bool = True,
                 sessions: bool = False, corpus: str | None = None, corpus16: str | None = None) -> dict:
    """Every recording the crying model is trained and evaluated on, with its grouped folds and cached logits.

    Parameters
    ----------
    cache : str, optional
        Folder of logit caches (:func:`nova_infant.taggers.crying_data.embed_recordings`).
    n_folds, seed : int
        Outer folds (:func:`nova_infant.taggers.crying_data.fold_plan`).
    progress : bool
    sessions : bool
        Also build the test sessions of the CV arms (:func:`nova_infant.taggers.crying_cv.arm_sessions`).
    corpus, corpus16 : str, optional
        The 8 kHz and 16 kHz corpus folders (default ``$NOVA_INFANT_DONATEACRY`` / ``../shared/data/...``).

    Returns
    -------
    dict
        ``recordings``, ``logits``, ``durations`` (ms), ``kinds``, ``plan`` (FoldPlan) and YAMNet's
        ``label_names``: cries (8 kHz, 16 kHz, over room floors), negatives (both bands), cry+speech mixtures,
        and with ``sessions`` the arms' sessions.

    Raises
    ------
    MediaError
        If a corpus folder, pocketsphinx-testdata or sonic-pi-samples is missing.
    """
    cries = corpus_recordings(corpus, "8k") + corpus_recordings(corpus16, "16k")
    base = cries + negative_recordings()
    plan = fold_plan(base, n_folds, seed)
    recs = base + speech_mixtures(base, plan, seed) + floor_augmented(cries)
    if sessions:
        recs += arm_sessions(base, plan, seed)
    plan = fold_plan(recs, n_folds, seed)
    embedded = embed_recordings(recs, cache=cache, progress=progress)
    return {"recordings": recs, "logits": [e[0] for e in embedded], "durations": [e[1] for e in embedded],
            "kinds": [r.kind for r in recs], "plan": plan, "label_names": load_backend("yamnet").label_names}


NOTICE = """# Default crying model of the nova-infant audio event tagger

A nova-infant saved model (`config.json`, `model.safetensors`, `checksums`, `README.md`): logistic regressions (classes `baby_crying`, `speech`) on YAMNet's 521
AudioSet logits (training set `{training_set}`), trained by `nova-infant taggers train-crying-head --out modules/taggers/data/crying_head`
(nova_infant.taggers.crying).

## Training data and attribution
- Positives: the **Donate-a-cry corpus** (https://github.com/gveres/donateacry-corpus, cleaned part;
  {n_clips} clips from {n_recorders} recorders: 8 kHz copies and the 16 kHz iOS originals; the recorders
  {held_out} are left out for tests), recordings of crying infants donated by parents through a phone app.
  The corpus is made available under the **Open Database License 1.0 (ODbL)**
  (https://opendatacommons.org/licenses/odbl/1-0/); its contents under the **Database Contents License 1.0
  (DbCL)** (https://opendatacommons.org/licenses/dbcl/1-0/). This model is a Produced Work of that database.
- Negatives: LibriVox and other speech of Debian's `pocketsphinx-testdata` (public domain / BSD), CC0 samples of
  Debian's `sonic-pi-samples`, and silence / noise generated by the training code.

No audio is stored in these files; only {n_params} regression weights, a standardiser and thresholds.
"""


def train_default_head(out: str | os.PathLike, cache: str | None = None, c: float = 0.1, seed: int = 0,
                       progress: bool = True, training: str = DEFAULT_TRAINING_SET, corpus: str | None = None,
                       corpus16: str | None = None):
    """Fit the shipped crying model on the training set ``training`` (:data:`TRAINING_SETS`) of the whole corpus
    except the recorders of :func:`nova_infant.taggers.crying_data.held_out_recorders` (kept for the fast test),
    thresholds from inner grouped 5-fold out-of-fold scores (:func:`fit_with_thresholds`), and write it with its
    NOTICE.md into ``out`` (atomically).

    Raises
    ------
    MediaError
        If the corpus or the package negatives are missing.
    """
    data = training_set(cache, 5, seed, progress, corpus=corpus, corpus16=corpus16)
    held = set(held_out_recorders(corpus16))
    keep = [i for i, r in enumerate(data["recordings"]) if in_training_set(r, training) and r.group not in held]
    recs = [data["recordings"][i] for i in keep]
    head = fit_with_thresholds([data["logits"][i] for i in keep], [data["durations"][i] for i in keep],
                               [data["kinds"][i] for i in keep], inner_folds(recs, 5, seed), c=c)
    cry = [r for r in recs if r.kind == "crying" and r.source in ("8k", "16k")]
    n_rec = len({r.group for r in cry})
    head.cfg.metrics.update({"corpus": "Donate-a-cry (gveres/donateacry-corpus), ODbL 1.0 / DbCL 1.0",
                             "training_set": training, "input_band": TRAINING_SETS[training]["input_band"],
                             "n_cry_clips": len(cry), "n_recorders": n_rec,
                             "held_out_recorders": sorted(held),
                             "retrain": "nova-infant taggers train-crying-head --out <folder>"})
    n_params = head.cfg.input_dim * len(HEAD_CLASSES) + len(HEAD_CLASSES)
    write_head_folder(head, Path(out), NOTICE.format(n_clips=len(cry), n_recorders=n_rec, n_params=n_params,
                                                     training_set=training,
                                                     held_out=", ".join(g[4:12] + "..." for g in sorted(held))))
    return Path(out)


def write_head_folder(head, out: str | os.PathLike, notice: str) -> Path:
    """Save a head with its ``NOTICE.md`` (training data licence) into ``out``: one atomic saved-model folder of
    kind ``tagger-head`` (:meth:`nova_infant.taggers.heads.Head.save`).

    Raises
    ------
    PathError, OutputError
        As :func:`nova_infant.core.saved.save_model`.
    """
    readme = ("Default crying model of the audio event tagger: logistic regressions (classes baby_crying, speech) on "
              "YAMNet's 521 AudioSet logits, trained on 8 kHz and 16 kHz infant cries (also over wideband room "
              "floors) against speech, music and noise; thresholds from recorder- and speaker-grouped out-of-fold "
              "scores; a crying event runs on for at most 480 ms past its last frame at the threshold while the score "
              "stays >= 0.5 (config.json: hold) (nova_infant.taggers.crying.train_default_head; cross-validation: "
              "docs/audio-event-tagger.md). "
              "Training data and licence: NOTICE.md.")
    return head.save(out, readme=readme, files={"NOTICE.md": notice})


def load_default_head():
    """The shipped crying model (:data:`HEAD_DIR`), or None if the package was built without it."""
    if not (HEAD_DIR / "config.json").is_file():
        return None
    return Head.load(HEAD_DIR, kind="audio-events")
