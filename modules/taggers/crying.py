"""The default crying model: a small head on YAMNet's AudioSet logits, trained on real infant cries.

Why: zero-shot, YAMNet's "Baby cry, infant cry" reaches 0.5 on only a quarter of the crying frames of real phone
recordings (Donate-a-cry corpus, 8 kHz), and its speech classes fire on most cry clips. The head (VIBA-Net's pooled
MLP, :mod:`.heads`; VIBA-Net, Ong et al. WACV-W'25, §3.3) is trained on

- positives: the Donate-a-cry corpus (gveres/donateacry-corpus, cleaned part; ODbL 1.0 / DbCL 1.0), 7 s clips of
  crying infants recorded by parents with a phone app; every window of a clip is labelled crying;
- negatives from packages: LibriVox and other read speech (Debian ``pocketsphinx-testdata``), CC0 music and
  sounds (Debian ``sonic-pi-samples``), and silence / room noise made here (seeded). Every negative is used twice:
  as it is and through an 8 kHz telephone band (16 -> 8 -> 16 kHz), so that "narrow band" cannot stand in for
  "crying" (the corpus is 8 kHz).

Evaluation (:func:`cross_validate`): folds grouped by ``recorder_id`` (one infant's clips never on both sides) and
by negative source file; the threshold is fitted on the training folds only (inner grouped CV: the lowest
threshold whose out-of-fold negative frame rate is <= ``max_negative_rate``). Figures are measured on the 40 ms
session grid the tagger writes, after the same interpolation from window centres.

Commands: ``nova-infant taggers crying-cv`` (prints the figures of docs/audio-event-tagger.md) and
``nova-infant taggers train-crying-head --out modules/taggers/data/crying_head`` (retrains the shipped head).
"""

from __future__ import annotations

import csv
import glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nova_infant.core.errors import MediaError, OptionError

log = logging.getLogger("nova_infant")

#: folder of the shipped head (config.json, model.safetensors, NOTICE.md)
CORPUS_ENV = "NOVA_INFANT_DONATEACRY"
SONIC_DIR = "/usr/share/sonic-pi/samples"
POCKETSPHINX_DIR = "/usr/share/pocketsphinx/test/data"
GRID_MS = 40.0
SPEECH_SPEEDS = (1.0, 1.4, 1.8)


def corpus_dir() -> Path:
    """Where the Donate-a-cry corpus lies: ``$NOVA_INFANT_DONATEACRY``, else ``../shared/data/donateacry`` next to
    the repository root (the layout of CI and of the development machine). The folder may not exist."""
    env = os.environ.get(CORPUS_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "donateacry"


@dataclass
class Recording:
    """One training recording of the crying model.

    Attributes
    ----------
    path : str
        Audio file (``a|b|c`` joins one-shots with 0.25 s gaps; ``.raw`` is 16 kHz s16le PCM).
    kind : str
        ``"crying"``, ``"speech"``, ``"music"``, ``"other"``, ``"silence"`` (or ``"crying+speech"`` for a mixture).
    group : str
        Recorder id for cries, source file for negatives: the unit of the grouped folds.
    band : str
        ``"full"`` or ``"phone"`` (8 kHz band, as a phone recording).
    signal : ndarray, float32, shape (n_samples,), optional
        For made-up noise, the 16 kHz signal itself.
    speed : float
        Speech played faster, which raises its pitch towards a child's (1.0, 1.4, 1.8).
    """

    path: str
    kind: str
    group: str
    band: str = "full"
    signal: np.ndarray | None = None
    speed: float = 1.0


def manifest_rows(root: str | os.PathLike | None = None) -> tuple[Path, list[dict]]:
    """The corpus folder and the rows of its ``manifest.csv`` (file, recorder_id, reason, ...).

    Parameters
    ----------
    root : str or path, optional
        Corpus folder (default :func:`corpus_dir`: ``$NOVA_INFANT_DONATEACRY`` or ``../shared/data/donateacry``).

    Returns
    -------
    root : Path
        The corpus folder (``file`` entries are relative to it).
    rows : list of dict
        One ``csv.DictReader`` row (str -> str) per clip, in file order.

    Raises
    ------
    MediaError
        If the folder or its manifest is missing (the message names the folder and the env override).
    """
    root = Path(root) if root else corpus_dir()
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise MediaError(f"{root}: no Donate-a-cry manifest.csv here; set {CORPUS_ENV} to the corpus folder")
    with open(manifest, newline="") as fh:
        return root, list(csv.DictReader(fh))


def corpus_recordings(root: str | os.PathLike | None = None) -> list[Recording]:
    """The corpus clips listed in ``manifest.csv`` (file, recorder_id, ...).

    Raises
    ------
    MediaError
        If the folder or its manifest is missing (the message names the folder and the env override).
    """
    root, rows = manifest_rows(root)
    return [Recording(str(root / r["file"]), "crying", "rec:" + r["recorder_id"]) for r in rows]


def _made_noises(seconds: float = 10.0, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Silence and room noise at 16 kHz: digital silence with dither, white / pink / brown noise at -60 and
    -40 dBFS, mains hum with harmonics, and a "room" (brown noise + hum + rare clicks)."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    out = [("silence", 1e-5 * rng.standard_normal(n))]
    for level_db in (-60, -40):
        amp = 10 ** (level_db / 20)
        white = rng.standard_normal(n)
        pink = lfilter([0.049922, -0.095993, 0.050613, -0.004408], [1, -2.494956, 2.017265, -0.522189], white)
        brown = np.cumsum(rng.standard_normal(n))
        brown -= lfilter([1], [1, -0.999], brown)  # remove drift (leaky integrator)
        for name, x in (("white", white), ("pink", pink), ("brown", brown)):
            out.append((f"{name}{level_db}", amp * x / (np.std(x) + 1e-12)))
    hum = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((50, 100, 150, 200), 1))
    out.append(("hum", 0.01 * hum / np.std(hum)))
    room = 0.003 * out[6][1] / 0.01 + 0.002 * hum / np.std(hum)
    clicks = np.zeros(n)
    clicks[rng.integers(0, n, 8)] = 0.2
    out.append(("room", room + clicks))
    return [(name, x.astype(np.float32)) for name, x in out]


def negative_recordings(min_seconds: float = 1.0) -> list[Recording]:
    """Package negatives (speech, music, other sounds) and made-up silence/noise, each in full and phone band.

    Speech is also played faster (:data:`SPEECH_SPEEDS`): raised pitch without crying, so that high-pitched
    voices are not what the head takes for a cry (the package speech is mostly adult read speech).

    Sonic Pi one-shots shorter than ``min_seconds`` (drum hits) are joined, per family, into one sequence with
    0.25 s gaps, so they still count as music.

    Raises
    ------
    MediaError
        If pocketsphinx-testdata or sonic-pi-samples is not installed.
    """
    import soundfile

    speech = sorted(glob.glob(f"{POCKETSPHINX_DIR}/**/*.wav", recursive=True))
    speech += sorted(glob.glob(f"{POCKETSPHINX_DIR}/**/*.raw", recursive=True))
    music = sorted(glob.glob(f"{SONIC_DIR}/*.flac"))
    if not speech or not music:
        raise MediaError(f"{POCKETSPHINX_DIR} / {SONIC_DIR}: negatives missing; apt-get install "
                         f"pocketsphinx-testdata sonic-pi-samples")
    out = [Recording(p, "speech", "neg:" + Path(p).stem) for p in speech]
    other_prefix = ("misc_", "vinyl_", "mehackit_robot", "mehackit_phone", "perc_door", "perc_till", "glitch_robot")
    short: dict[str, list[str]] = {}
    for p in music:
        name = Path(p).stem
        kind = "other" if name.startswith(other_prefix) else "music"
        if soundfile.info(p).duration >= min_seconds:
            out.append(Recording(p, kind, "neg:" + name))
        else:
            short.setdefault(f"{kind}:{name.split('_')[0]}", []).append(p)
    for family, paths in sorted(short.items()):
        kind, prefix = family.split(":")
        out.append(Recording("|".join(paths), kind, f"neg:{prefix}-hits"))
    for name, x in _made_noises():
        out.append(Recording(f"made:{name}", "silence", f"neg:{name}", signal=x))
    return [Recording(r.path, r.kind, r.group, band, r.signal, speed) for r in out for band in ("full", "phone")
            for speed in (SPEECH_SPEEDS if r.kind == "speech" else (1.0,))]


def read_recording(rec: Recording) -> np.ndarray:
    """The 16 kHz signal of a recording: one-shots joined, raw 16-bit PCM read, speed and phone band applied
    (:func:`nova_infant.core.media.read_audio`, :func:`nova_infant.core.media.resample`).

    Parameters
    ----------
    rec : Recording

    Returns
    -------
    ndarray, float32, shape (n_samples,)
        Mono, 16 kHz.

    Raises
    ------
    AudioDecodeError
        If a file cannot be read.
    """
    from nova_infant.core.media import read_audio, resample

    if isinstance(rec.signal, _LazyMix):
        return rec.signal.make()
    if rec.signal is not None:
        x = rec.signal
    elif "|" in rec.path:
        gap = np.zeros(4000, np.float32)
        x = np.concatenate([np.concatenate([read_audio(p, 16000)[0], gap]) for p in rec.path.split("|")])
    elif rec.path.endswith(".raw"):
        x = np.fromfile(rec.path, dtype="<i2").astype(np.float32) / 32768.0  # pocketsphinx: 16 kHz s16le
    else:
        x = read_audio(rec.path, 16000)[0]
    if rec.speed != 1.0:
        x = resample(x, int(round(16000 * rec.speed)), 16000)
    if rec.band == "phone":
        x = resample(resample(x, 16000, 8000), 8000, 16000)
    return np.asarray(x, np.float32)


def embed_recordings(recs: list[Recording], backend: str = "yamnet", cache: str | None = None,
                     progress: bool = True) -> list[tuple[np.ndarray, float]]:
    """YAMNet logits and duration of every recording.

    Signals shorter than one window are zero-padded to 975 ms (the zeros are part of the recording's silence).

    Parameters
    ----------
    recs : list of Recording
    backend : str
        Audio model (:func:`nova_infant.taggers.audio_events.load_backend`).
    cache : str, optional
        Folder of ``.npz`` caches (key: path, band, backend).
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    list of (ndarray float32 (n_windows, 521), float)
        Logits and the duration in ms, per recording.
    """
    import hashlib

    from tqdm import tqdm

    from nova_infant.taggers.audio_events import load_backend

    model = load_backend(backend)
    win = int(round(model.window_ms * 16))
    out = []
    for rec in tqdm(recs, desc="YAMNet logits", disable=not progress, unit="rec"):
        key = None
        if cache:
            digest = hashlib.sha1(f"{rec.path}|{rec.band}|{rec.speed}|{model.name}".encode()).hexdigest()
            key = Path(cache) / f"{digest}.npz"
            if key.is_file():
                with np.load(key) as z:
                    out.append((z["logits"], float(z["duration_ms"])))
                continue
        x = read_recording(rec)
        if len(x) < win:
            x = np.concatenate([x, np.zeros(win - len(x), np.float32)])
        logits, duration_ms = model.logits(x), len(x) / 16.0
        if key is not None:
            key.parent.mkdir(parents=True, exist_ok=True)
            tmp = key.with_name(f".{key.stem}.partial.npz")
            np.savez(tmp, logits=logits, duration_ms=duration_ms)
            os.replace(tmp, key)
        out.append((logits, duration_ms))
    return out


# ---------------------------------------------------------------- folds, mixtures, targets

HEAD_CLASSES = ["baby_crying", "speech"]
NEGATIVE_KINDS = ["speech", "music", "other", "silence"]
TARGET_NEGATIVES = ["speech", "music", "silence"]


def assign_folds(recs: list[Recording], n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold id per recording: cries by ``GroupKFold`` over recorder ids (balanced clip counts), negatives by
    source file shuffled (seeded) and dealt round robin; both bands of a negative share its fold.

    Returns
    -------
    int array of shape (len(recs),)
    """
    from sklearn.model_selection import GroupKFold

    folds = np.full(len(recs), -1, np.int64)
    cry = [i for i, r in enumerate(recs) if r.kind == "crying"]
    if len({recs[i].group for i in cry}) < n_folds:
        raise OptionError(f"{len({recs[i].group for i in cry})} recorders: too few for {n_folds} grouped folds")
    for k, (_, test) in enumerate(GroupKFold(n_folds).split(cry, groups=[recs[i].group for i in cry])):
        folds[np.asarray(cry)[test]] = k
    groups = sorted({r.group for r in recs if r.kind != "crying"})
    order = np.random.default_rng(seed).permutation(len(groups))
    fold_of = {groups[j]: n % n_folds for n, j in enumerate(order)}
    for i, r in enumerate(recs):
        if r.kind != "crying":
            folds[i] = fold_of[r.group]
    return folds


def speech_mixtures(recs: list[Recording], folds: np.ndarray, seed: int = 0) -> tuple[list[Recording], np.ndarray]:
    """A parent talking over a crying infant: every cry clip mixed with a speech recording of the same fold (looped to
    the clip's length) at a speech-to-cry RMS ratio drawn from -6, 0, +6 dB, through the phone band.

    Parameters
    ----------
    recs : list of Recording
    folds : ndarray, int, shape (len(recs),)
        Fold of every recording (:func:`assign_folds`); a mixture stays in its cry's fold.
    seed : int

    Returns
    -------
    (mixtures, folds) : (list of Recording, ndarray int)
        Kind ``"crying+speech"``, the cry's recorder as group; signals made on demand.
    """
    rng = np.random.default_rng(seed)
    speech = [i for i, r in enumerate(recs) if r.kind == "speech" and r.band == "full" and r.speed == 1.0]
    out, out_folds = [], []
    signals: dict = {}
    for i, r in enumerate(recs):
        if r.kind != "crying":
            continue
        same = [j for j in speech if folds[j] == folds[i]] or speech
        j = same[rng.integers(len(same))]
        snr_db = float(rng.choice([-6.0, 0.0, 6.0]))
        name = f"mix:{r.path}|{recs[j].path}|{snr_db:+.0f}dB"
        out.append(Recording(name, "crying+speech", r.group, "phone", _LazyMix(r, recs[j], snr_db, signals)))
        out_folds.append(folds[i])
    return out, np.asarray(out_folds, np.int64)


class _LazyMix:
    """Mixture signal made on first use (so cached embeddings need no audio)."""

    def __init__(self, cry: Recording, speech: Recording, snr_db: float, cache: dict):
        self.cry, self.speech, self.snr_db, self.cache = cry, speech, snr_db, cache

    def make(self) -> np.ndarray:
        from nova_infant.core.media import resample

        c = read_recording(self.cry)
        if self.speech.path not in self.cache:
            self.cache[self.speech.path] = read_recording(self.speech)
        s = self.cache[self.speech.path]
        s = np.tile(s, len(c) // max(len(s), 1) + 1)[:len(c)]
        rms = lambda x: float(np.sqrt(np.mean(x ** 2)) + 1e-9)  # noqa: E731
        mix = c + s * (rms(c) / rms(s)) * 10 ** (self.snr_db / 20)
        mix = mix / max(1.0, float(np.abs(mix).max()) / 0.99)
        return resample(resample(mix, 16000, 8000), 8000, 16000).astype(np.float32)


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

THRESHOLDS = np.concatenate([np.round(np.arange(0.05, 0.951, 0.05), 2), [0.97, 0.98, 0.99, 0.995]])


def grid_scores(window_scores: np.ndarray, duration_ms: float, step_ms: float = GRID_MS) -> np.ndarray:
    """Window scores of a YAMNet run on the tagger's grid, interpolated as the tagger does
    (:func:`nova_infant.taggers.audio_events.to_grid`).

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
    from nova_infant.core.grid import frame_grid
    from nova_infant.taggers.audio_events import YamnetBackend, to_grid

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
    from nova_infant.taggers.audio_events import zero_shot

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


def figures(scores: list[np.ndarray], kinds: list[str], thresholds: dict) -> dict:
    """The figures of one fold of the crying model's cross-validation (JSON-ready): clip and frame recall of crying on
    pure cry clips, the fraction of negative frames tagged crying (per kind, and over speech+music+silence: the
    target), how often ``speech`` fires on cry clips, and speech / crying frame recall on held-out speech and on
    cry+speech mixes.

    Parameters
    ----------
    scores : list of ndarray, float32, shape (n_frames, 2)
        Grid scores of the fold's test recordings (:func:`head_scores` or the zero-shot baseline).
    kinds : list of str
        Their kinds.
    thresholds : dict
        ``{"baby_crying": float, "speech": float}``.

    Returns
    -------
    dict
    """
    by_kind = {k: [s for s, kk in zip(scores, kinds) if kk == k] for k in set(kinds)}
    tc, ts = thresholds["baby_crying"], thresholds["speech"]
    cry = by_kind.get("crying", [])
    negs = [s for k in TARGET_NEGATIVES for s in by_kind.get(k, [])]
    out = {"n_cry_clips": len(cry), "clip_recall": float(_fires(cry, 0, tc).mean()) if cry else float("nan"),
           "frame_recall": _frame_rate(cry, 0, tc), "negative_frames_tagged_crying": _frame_rate(negs, 0, tc),
           "speech_fires_on_cry_clips": float(_fires(cry, 1, ts).mean()) if cry else float("nan"),
           "speech_frame_recall": _frame_rate(by_kind.get("speech", []), 1, ts),
           "mix_crying_frame_recall": _frame_rate(by_kind.get("crying+speech", []), 0, tc),
           "mix_speech_frame_recall": _frame_rate(by_kind.get("crying+speech", []), 1, ts)}
    for k in NEGATIVE_KINDS:
        out[f"{k}_frames_tagged_crying"] = _frame_rate(by_kind.get(k, []), 0, tc)
    return out


# ---------------------------------------------------------------- training and cross-validation


def _design(logits: list[np.ndarray], kinds: list[str], context: int):
    from nova_infant.taggers.audio_events import context_windows

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
    from nova_infant.core.standardiser import Standardiser
    from nova_infant.taggers.heads import Head, HeadConfig, build_module

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
    from nova_infant.taggers.audio_events import context_windows

    return [grid_scores(head.predict_proba(context_windows(lg, head.cfg.context)), d)
            for lg, d in zip(logits, durations)]


def fit_with_thresholds(logits, durations, kinds, groups_folds: np.ndarray, inner_folds: int = 3, c: float = 0.1, **rule):
    """Fit a head on all given (training) recordings and its thresholds on inner grouped out-of-fold scores.

    Parameters
    ----------
    logits, durations, kinds : lists
        Per recording: YAMNet logits (n_windows, 521), length in ms, kind.
    groups_folds : ndarray, int
        The recordings' fold ids from :func:`assign_folds`; inner folds are these modulo ``inner_folds`` (groups
        stay whole).
    inner_folds : int
    c : float
        Inverse L2 strength of the logistic regressions.
    **rule
        Passed to :func:`choose_thresholds`.

    Returns
    -------
    Head
        With ``cfg.thresholds`` set.
    """
    inner = np.asarray(groups_folds) % inner_folds
    oof: list = [None] * len(logits)
    for k in range(inner_folds):
        tr, te = np.flatnonzero(inner != k), np.flatnonzero(inner == k)
        h = fit_crying_head([logits[i] for i in tr], [kinds[i] for i in tr], c=c)
        for i, s in zip(te, head_scores(h, [logits[i] for i in te], [durations[i] for i in te])):
            oof[i] = s
    thresholds = choose_thresholds(oof, kinds, **rule)
    head = fit_crying_head(logits, kinds, c=c)
    head.cfg.thresholds = thresholds
    return head


def training_set(corpus: str | None = None, cache: str | None = None, n_folds: int = 5, seed: int = 0,
                 progress: bool = True) -> dict:
    """Everything the crying model is trained and evaluated on.

    Parameters
    ----------
    corpus : str, optional
        The Donate-a-cry corpus folder (default: :func:`corpus_dir`, ``$NOVA_INFANT_DONATEACRY`` first).
    cache : str, optional
        Folder of logit caches (:func:`embed_recordings`).
    n_folds, seed : int
        Recorder-grouped folds (:func:`assign_folds`).
    progress : bool

    Returns
    -------
    dict
        ``recordings``, ``logits``, ``durations`` (ms), ``kinds``, ``folds`` (int per recording) and YAMNet's
        ``label_names``; recordings are the cries, the negatives and the cry+speech mixtures.

    Raises
    ------
    MediaError
        If the corpus, pocketsphinx-testdata or sonic-pi-samples is missing.
    """
    from nova_infant.taggers.audio_events import load_backend

    recs = corpus_recordings(corpus) + negative_recordings()
    folds = assign_folds(recs, n_folds, seed)
    mixes, mix_folds = speech_mixtures(recs, folds, seed)
    recs, folds = recs + mixes, np.concatenate([folds, mix_folds])
    embedded = embed_recordings(recs, cache=cache, progress=progress)
    return {"recordings": recs, "logits": [e[0] for e in embedded], "durations": [e[1] for e in embedded],
            "kinds": [r.kind for r in recs], "folds": folds, "label_names": load_backend("yamnet").label_names}


def cross_validate(corpus: str | None = None, n_folds: int = 5, cache: str | None = None, c: float = 0.1,
                   seed: int = 0, progress: bool = True) -> dict:
    """Recorder-grouped cross-validation of the default crying model against the zero-shot baselines.

    For each outer fold: the head and its thresholds are fitted on the other folds only
    (:func:`fit_with_thresholds`), then scored on the held-out fold (:func:`figures`). Baselines on the same
    folds: YAMNet zero-shot at 0.5, and zero-shot with thresholds chosen on the training folds by the same rule.

    Returns
    -------
    dict {"folds": [{"head": figures, "zero_shot_0.5": ..., "zero_shot_calibrated": ..., "thresholds": ...}],
    "summary": {method: {figure: {"mean", "min", "max"}}}, "n_recorders", "n_clips"}
    """
    from tqdm import tqdm

    data = training_set(corpus, cache, n_folds, seed, progress)
    logits, durations, kinds, folds = data["logits"], data["durations"], data["kinds"], data["folds"]
    zs = [grid_scores(zero_shot_scores(lg, data["label_names"]), d) for lg, d in zip(logits, durations)]
    per_fold = []
    for k in tqdm(range(n_folds), desc="outer folds", disable=not progress):
        tr, te = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        head = fit_with_thresholds([logits[i] for i in tr], [durations[i] for i in tr], [kinds[i] for i in tr],
                                   folds[tr], c=c)
        te_kinds = [kinds[i] for i in te]
        held = head_scores(head, [logits[i] for i in te], [durations[i] for i in te])
        zs_thr = choose_thresholds([zs[i] for i in tr], [kinds[i] for i in tr])
        per_fold.append({"fold": k, "thresholds": head.cfg.thresholds, "zero_shot_thresholds": zs_thr,
                         "head": figures(held, te_kinds, head.cfg.thresholds),
                         "zero_shot_0.5": figures([zs[i] for i in te], te_kinds, {"baby_crying": 0.5, "speech": 0.5}),
                         "zero_shot_calibrated": figures([zs[i] for i in te], te_kinds, zs_thr)})
    summary = {}
    for method in ("head", "zero_shot_0.5", "zero_shot_calibrated"):
        summary[method] = {key: {"mean": float(np.nanmean(v)), "min": float(np.nanmin(v)), "max": float(np.nanmax(v))}
                           for key in per_fold[0][method]
                           for v in [np.array([f[method][key] for f in per_fold], float)]}
    cry = [r for r in data["recordings"] if r.kind == "crying"]
    return {"folds": per_fold, "summary": summary, "n_clips": len(cry), "n_recorders": len({r.group for r in cry}),
            "n_folds": n_folds, "c": c, "seed": seed}


NOTICE = """# Default crying model of the nova-infant audio event tagger

A nova-infant saved model (`config.json`, `model.safetensors`, `checksums`, `README.md`): logistic regressions (classes `baby_crying`, `speech`) on YAMNet's 521
AudioSet logits, trained by `nova-infant taggers train-crying-head --out modules/taggers/data/crying_head`
(nova_infant.taggers.crying).

## Training data and attribution
- Positives: the **Donate-a-cry corpus** (https://github.com/gveres/donateacry-corpus, cleaned part;
  {n_clips} clips from {n_recorders} recorders), recordings of crying infants donated by parents through a phone app.
  The corpus is made available under the **Open Database License 1.0 (ODbL)**
  (https://opendatacommons.org/licenses/odbl/1-0/); its contents under the **Database Contents License 1.0
  (DbCL)** (https://opendatacommons.org/licenses/dbcl/1-0/). This model is a Produced Work of that database.
- Negatives: LibriVox and other speech of Debian's `pocketsphinx-testdata` (public domain / BSD), CC0 samples of
  Debian's `sonic-pi-samples`, and silence / noise generated by the training code.

No audio is stored in these files; only {n_params} regression weights, a standardiser and thresholds.
"""


def train_default_head(out: str | os.PathLike, corpus: str | None = None, cache: str | None = None, c: float = 0.1,
                       seed: int = 0, progress: bool = True):
    """Fit the shipped crying model on the whole corpus + negatives (thresholds from grouped 5-fold
    out-of-fold scores, :func:`fit_with_thresholds`) and write it with its NOTICE.md into ``out`` (atomically).

    Raises
    ------
    MediaError
        If the corpus or the package negatives are missing.
    """
    data = training_set(corpus, cache, 5, seed, progress)
    head = fit_with_thresholds(data["logits"], data["durations"], data["kinds"], data["folds"], inner_folds=5, c=c)
    cry = [r for r in data["recordings"] if r.kind == "crying"]
    head.cfg.metrics.update({"corpus": "Donate-a-cry (gveres/donateacry-corpus), ODbL 1.0 / DbCL 1.0",
                             "n_cry_clips": len(cry), "n_recorders": len({r.group for r in cry}),
                             "retrain": "nova-infant taggers train-crying-head --out <folder>"})
    out = Path(out)
    n_params = head.cfg.input_dim * len(HEAD_CLASSES) + len(HEAD_CLASSES)
    write_head_folder(head, out, NOTICE.format(n_clips=len(cry), n_recorders=len({r.group for r in cry}),
                                               n_params=n_params))
    return out


def write_head_folder(head, out: str | os.PathLike, notice: str) -> Path:
    """Save a head with its ``NOTICE.md`` (training data licence) into ``out``: one atomic saved-model folder of
    kind ``tagger-head`` (:meth:`nova_infant.taggers.heads.Head.save`).

    Raises
    ------
    PathError, OutputError
        As :func:`nova_infant.core.saved.save_model`.
    """
    readme = ("Default crying model of the audio event tagger: logistic regressions (classes baby_crying, speech) on "
              "YAMNet's 521 AudioSet logits, thresholds from recorder-grouped out-of-fold scores "
              "(nova_infant.taggers.crying.train_default_head). Training data and licence: NOTICE.md.")
    return head.save(out, readme=readme, files={"NOTICE.md": notice})


def format_report(result: dict) -> str:
    """The cross-validation figures as a Markdown table (mean and min-max over folds) for docs and terminals.

    Parameters
    ----------
    result : dict
        From :func:`cross_validate`.

    Returns
    -------
    str
    """
    rows = [("clip_recall", "cry clips with a crying event (clip recall)", ">= 0.95"),
            ("frame_recall", "cry frames tagged crying (frame recall)", ">= 0.75"),
            ("negative_frames_tagged_crying", "speech+music+silence frames tagged crying", "<= 0.03"),
            ("speech_frames_tagged_crying", "  speech frames tagged crying", ""),
            ("music_frames_tagged_crying", "  music frames tagged crying", ""),
            ("silence_frames_tagged_crying", "  silence/noise frames tagged crying", ""),
            ("other_frames_tagged_crying", "  other sounds (crow, burp, robot) tagged crying", ""),
            ("speech_fires_on_cry_clips", "cry clips on which `speech` fires", "<= 0.10"),
            ("speech_frame_recall", "held-out speech frames tagged speech", ""),
            ("mix_crying_frame_recall", "cry+speech mixes: frames tagged crying", ""),
            ("mix_speech_frame_recall", "cry+speech mixes: frames tagged speech", "")]
    methods = [("head", "default model"), ("zero_shot_calibrated", "zero-shot, calibrated thr."),
               ("zero_shot_0.5", "zero-shot @ 0.5")]
    s = result["summary"]
    lines = [f"{result['n_clips']} cry clips, {result['n_recorders']} recorders, {result['n_folds']} recorder-grouped "
             f"folds; mean (min-max over folds)", "",
             "| figure | target | " + " | ".join(m[1] for m in methods) + " |",
             "|---|---|" + "---|" * len(methods)]
    for key, label, target in rows:
        cells = [f"{s[m][key]['mean']:.3f} ({s[m][key]['min']:.3f}-{s[m][key]['max']:.3f})" for m, _ in methods]
        lines.append(f"| {label} | {target} | " + " | ".join(cells) + " |")
    thr = [f"{f['thresholds']['baby_crying']}/{f['thresholds']['speech']}" for f in result["folds"]]
    lines += ["", "thresholds fitted per fold (crying/speech): " + ", ".join(thr)]
    return "\n".join(lines)
