"""Recordings of the default crying model: real infant cries and package negatives, how they are read, grouped into
folds and embedded (cached YAMNet logits), and the wideband room floor.

- Cries: the Donate-a-cry corpus (gveres/donateacry-corpus, cleaned part; ODbL 1.0 / DbCL 1.0), 7 s clips of
  crying infants recorded by parents with a phone app. ``../shared/data/donateacry`` holds all development clips as
  8 kHz telephone-band copies; ``../shared/data/donateacry-16k`` holds the 130 of them (61 recorders) that the iOS
  app recorded at 16 kHz, decoded from their originals (real energy above 4 kHz). Every split is grouped by
  ``recorder_id`` (one infant's clips never on both sides).
- Negatives from packages: read speech (Debian ``pocketsphinx-testdata``) grouped by **speaker** (the LibriVox
  narrator, the ``cards`` speaker, and the remaining CMU test utterances of unknown speakers as one group), CC0
  music and sounds (Debian ``sonic-pi-samples``) grouped by file, and silence / room noise made here (seeded).
- :func:`room_floor`: a made-up wideband room floor (pink + brown noise, mains hum, white hiss: energy up to 8 kHz).
  Mixtures, cries over floors and the CV's test sessions are built from these in :mod:`.crying_mixes`.

Layering: imports :mod:`.audio_model` only; :mod:`.crying_mixes`, :mod:`.crying`,
:mod:`.crying_cv` and :mod:`.audio_events` build on it.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nova_infant.core.errors import MediaError, OptionError
from nova_infant.core.media import read_audio, resample
from nova_infant.taggers.audio_model import load_backend

CORPUS_ENV = "NOVA_INFANT_DONATEACRY"
CORPUS16_ENV = "NOVA_INFANT_DONATEACRY16"
SONIC_DIR = "/usr/share/sonic-pi/samples"
POCKETSPHINX_DIR = "/usr/share/pocketsphinx/test/data"
SPEECH_SPEEDS = (1.0, 1.4, 1.8)
SR = 16000



def _shared_data(name: str) -> Path:
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / name


def corpus_dir() -> Path:
    """The 8 kHz Donate-a-cry folder: ``$NOVA_INFANT_DONATEACRY``, else ``../shared/data/donateacry`` next to the
    repository root. The folder may not exist."""
    env = os.environ.get(CORPUS_ENV)
    return Path(env) if env else _shared_data("donateacry")


def corpus16_dir() -> Path:
    """The 16 kHz originals: ``$NOVA_INFANT_DONATEACRY16``, else ``donateacry-16k`` beside :func:`corpus_dir`."""
    env = os.environ.get(CORPUS16_ENV)
    return Path(env) if env else corpus_dir().parent / "donateacry-16k"


@dataclass
class Recording:
    """One recording of the crying model's training or test data.

    Attributes
    ----------
    path : str
        Audio file (``a|b|c`` joins one-shots with 0.25 s gaps; ``.raw`` is 16 kHz s16le PCM), or for a made-up
        signal a unique description (the cache key).
    kind : str
        ``"crying"``, ``"speech"``, ``"music"``, ``"other"``, ``"silence"``, ``"crying+speech"`` (a mixture) or
        ``"session"`` (a cry between neighbours; see ``segments``).
    group : str
        Recorder id for cries (``rec:<id>``), speaker for speech (``spk:<name>``), source file otherwise.
    band : str
        ``"full"`` or ``"phone"`` (passed through the 8 kHz telephone band, 16 -> 8 -> 16 kHz).
    signal : ndarray or object with ``make()``, optional
        A made-up 16 kHz signal, or a recipe made on first use (so that cached logits need no audio).
    speed : float
        Speech played faster, which raises its pitch towards a child's (1.0, 1.4, 1.8).
    source : str
        ``"8k"`` or ``"16k"`` for cries (which corpus folder), ``""`` otherwise.
    segments : list of (start_ms, end_ms, kind)
        For a session: its parts (``crying``, ``speech``, ``music``).
    """

    path: str
    kind: str
    group: str
    band: str = "full"
    signal: object = None
    speed: float = 1.0
    source: str = ""
    segments: list = field(default_factory=list)


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
        raise MediaError(f"{root}: no Donate-a-cry manifest.csv here; set {CORPUS_ENV} (8 kHz) or {CORPUS16_ENV} "
                         f"(16 kHz) to the corpus folder")
    with open(manifest, newline="") as fh:
        return root, list(csv.DictReader(fh))


def corpus_recordings(root: str | os.PathLike | None = None, source: str = "8k") -> list[Recording]:
    """The corpus clips listed in ``manifest.csv``: kind ``crying``, group ``rec:<recorder_id>``.

    Parameters
    ----------
    root : str or path, optional
        Corpus folder (default by ``source``: :func:`corpus_dir` or :func:`corpus16_dir`).
    source : str
        ``"8k"`` (telephone-band copies, band ``phone``) or ``"16k"`` (originals, band ``full``).

    Raises
    ------
    MediaError
        If the folder or its manifest is missing.
    """
    root, rows = manifest_rows(root or (corpus_dir() if source == "8k" else corpus16_dir()))
    band = "phone" if source == "8k" else "full"
    return [Recording(str(root / r["file"]), "crying", "rec:" + r["recorder_id"], band=band, source=source)
            for r in rows]


def held_out_recorders(root16: str | os.PathLike | None = None, n: int = 6) -> list[str]:
    """The fixed recorders the shipped crying model never trains on (groups ``rec:<id>``): the first ``n`` recorder
    ids, sorted, among those with at least 2 clips in the 16 kHz folder (so each has 8 kHz and 16 kHz clips).

    Raises
    ------
    MediaError
        If the 16 kHz manifest is missing.
    """
    _, rows = manifest_rows(root16 or corpus16_dir())
    counts: dict = {}
    for r in rows:
        counts[r["recorder_id"]] = counts.get(r["recorder_id"], 0) + 1
    return ["rec:" + k for k in sorted(k for k, c in counts.items() if c >= 2)[:n]]


def speaker_of(path: str) -> str:
    """Speaker group of a pocketsphinx-testdata recording: ``spk:librivox`` (one LibriVox narrator, *Sense and
    Sensibility*), ``spk:cards`` (the speaker of ``cards/*.wav``), else ``spk:cmu-misc`` (goforward, numbers,
    something, tidigits: speakers not documented, so kept together)."""
    p = str(path)
    if "/librivox/" in p:
        return "spk:librivox"
    if "/cards/" in p:
        return "spk:cards"
    return "spk:cmu-misc"


def _pink(rng, n):
    from scipy.signal import lfilter

    return lfilter([0.049922, -0.095993, 0.050613, -0.004408], [1, -2.494956, 2.017265, -0.522189],
                   rng.standard_normal(n))


def _brown(rng, n):
    from scipy.signal import lfilter

    brown = np.cumsum(rng.standard_normal(n))
    return brown - lfilter([1], [1, -0.999], brown)  # remove drift (leaky integrator)


def room_floor(n: int, level_db: float = -50.0, seed: int = 0) -> np.ndarray:
    """A wideband room-noise floor at 16 kHz: pink noise (ventilation), brown noise (rumble), mains hum with
    harmonics and white hiss (electronics; energy up to 8 kHz), mixed at random proportions (seeded) and scaled to
    ``level_db`` dBFS RMS (0 dBFS = RMS 1.0).

    Parameters
    ----------
    n : int
        Samples.
    level_db : float
        RMS level in dB re full scale.
    seed : int

    Returns
    -------
    ndarray, float32, shape (n,)
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    mains = float(rng.choice([50.0, 60.0]))
    parts = [_pink(rng, n), _brown(rng, n), sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 6.3)) / k
                                               for k in range(1, 5)), rng.standard_normal(n)]
    w = rng.dirichlet([2.0, 1.0, 0.5, 1.5])
    x = sum(wi * p / (np.std(p) + 1e-12) for wi, p in zip(w, parts))
    return (x / (np.std(x) + 1e-12) * 10 ** (level_db / 20)).astype(np.float32)


def _made_noises(seconds: float = 10.0, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """Silence and room noise at 16 kHz: digital silence with dither, white / pink / brown noise at -60 and
    -40 dBFS, mains hum with harmonics, and a "room" (brown noise + hum + rare clicks)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    out = [("silence", 1e-5 * rng.standard_normal(n))]
    for level_db in (-60, -40):
        amp = 10 ** (level_db / 20)
        for name, x in (("white", rng.standard_normal(n)), ("pink", _pink(rng, n)), ("brown", _brown(rng, n))):
            out.append((f"{name}{level_db}", amp * x / (np.std(x) + 1e-12)))
    hum = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((50, 100, 150, 200), 1))
    out.append(("hum", 0.01 * hum / np.std(hum)))
    room = 0.003 * out[6][1] / 0.01 + 0.002 * hum / np.std(hum)
    clicks = np.zeros(n)
    clicks[rng.integers(0, n, 8)] = 0.2
    out.append(("room", room + clicks))
    return [(name, x.astype(np.float32)) for name, x in out]


def negative_recordings(min_seconds: float = 1.0, bands: tuple = ("full", "phone")) -> list[Recording]:
    """Package negatives (speech, music, other sounds) and made-up silence/noise, each in the given bands.

    Speech is grouped by speaker (:func:`speaker_of`) and also played faster (:data:`SPEECH_SPEEDS`): raised pitch
    without crying. Sonic Pi one-shots shorter than ``min_seconds`` (drum hits) are joined, per family, into one
    sequence with 0.25 s gaps, so they still count as music.

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
    out = [Recording(p, "speech", speaker_of(p)) for p in speech]
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
    return [Recording(r.path, r.kind, r.group, band, r.signal, speed) for r in out for band in bands
            for speed in (SPEECH_SPEEDS if r.kind == "speech" else (1.0,))]


def phone_band(x: np.ndarray) -> np.ndarray:
    """The 8 kHz telephone band of a 16 kHz signal: resampled 16 -> 8 -> 16 kHz (polyphase,
    :func:`nova_infant.core.media.resample`), so nothing above 4 kHz remains.

    Parameters
    ----------
    x : ndarray, float, shape (n_samples,)

    Returns
    -------
    ndarray, float32, shape (n_samples,)
    """
    y = resample(resample(np.asarray(x, np.float32), SR, 8000), 8000, SR)
    return np.asarray(y[:len(x)], np.float32)


def read_recording(rec: Recording) -> np.ndarray:
    """The 16 kHz signal of a recording: one-shots joined, raw 16-bit PCM read, recipe made, speed and phone band
    applied (:func:`nova_infant.core.media.read_audio`, :func:`nova_infant.core.media.resample`).

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
    if hasattr(rec.signal, "make"):
        x = rec.signal.make()
    elif rec.signal is not None:
        x = rec.signal
    elif "|" in rec.path:
        gap = np.zeros(4000, np.float32)
        x = np.concatenate([np.concatenate([read_audio(p, SR)[0], gap]) for p in rec.path.split("|")])
    elif rec.path.endswith(".raw"):
        x = np.fromfile(rec.path, dtype="<i2").astype(np.float32) / 32768.0  # pocketsphinx: 16 kHz s16le
    else:
        x = read_audio(rec.path, SR)[0]
    if rec.speed != 1.0:
        x = resample(x, int(round(SR * rec.speed)), SR)
    if rec.band == "phone" and not (rec.kind == "crying" and rec.source == "8k"):  # 8 kHz clips: already
        x = phone_band(x)
    return np.asarray(x, np.float32)


def embed_recordings(recs: list[Recording], backend: str = "yamnet", cache: str | None = None,
                     progress: bool = True) -> list[tuple[np.ndarray, float]]:
    """YAMNet logits and duration of every recording (cached per recording).

    Signals shorter than one window are zero-padded to 975 ms (the zeros are part of the recording's silence).

    Parameters
    ----------
    recs : list of Recording
    backend : str
        Audio model (:func:`nova_infant.taggers.audio_model.load_backend`).
    cache : str, optional
        Folder of ``.npz`` caches (key: path, band, speed, backend); written atomically.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    list of (ndarray float32 (n_windows, 521), float)
        Logits and the duration in ms, per recording.
    """
    from tqdm import tqdm

    model = load_backend(backend)
    win = int(round(model.window_ms * SR / 1000))
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
        logits, duration_ms = model.logits(x), len(x) * 1000.0 / SR
        if key is not None:
            key.parent.mkdir(parents=True, exist_ok=True)
            tmp = key.with_name(f".{key.stem}.partial.npz")
            np.savez(tmp, logits=logits, duration_ms=duration_ms)
            os.replace(tmp, key)
        out.append((logits, duration_ms))
    return out


# ---------------------------------------------------------------- folds


@dataclass
class FoldPlan:
    """Which recordings each outer fold tests on and may train on.

    Attributes
    ----------
    test : ndarray, bool, shape (n_recordings, n_folds)
        Recording i is scored in fold k.
    train : ndarray, bool, shape (n_recordings, n_folds)
        Recording i may be trained on in fold k (False wherever a recorder, speaker or negative file it holds is
        held out in fold k).
    """

    test: np.ndarray
    train: np.ndarray

    @property
    def n_folds(self) -> int:
        return int(self.test.shape[1])


def fold_plan(recs: list[Recording], n_folds: int = 5, seed: int = 0) -> FoldPlan:
    """Grouped outer folds: cries by ``GroupKFold`` over recorder ids (one infant's 8 kHz and 16 kHz clips in the
    same fold), music / other / noise by source file shuffled (seeded) and dealt round robin, speech by **speaker**:
    with fewer speakers than folds, speaker ``j`` is held out in every fold ``k`` with ``k % n_speakers == j`` (so
    every fold tests on an unseen voice, never on one it trained on). A mixture or session is tested in its cry's
    fold and trained on in no fold where its cry or its speaker is held out.

    Parameters
    ----------
    recs : list of Recording
    n_folds, seed : int

    Returns
    -------
    FoldPlan

    Raises
    ------
    OptionError
        If there are fewer recorders than folds.
    """
    from sklearn.model_selection import GroupKFold

    n = len(recs)
    test = np.zeros((n, n_folds), bool)
    cry = [i for i, r in enumerate(recs) if r.kind == "crying"]
    recorders = sorted({recs[i].group for i in cry})
    if len(recorders) < n_folds:
        raise OptionError(f"{len(recorders)} recorders: too few for {n_folds} grouped folds")
    fold_of: dict = {}
    for k, (_, te) in enumerate(GroupKFold(n_folds).split(recorders, groups=recorders)):
        for j in te:
            fold_of[recorders[j]] = {k}
    speakers = sorted({r.group for r in recs if r.kind == "speech"})
    for j, s in enumerate(speakers):
        fold_of[s] = {k for k in range(n_folds) if k % len(speakers) == j}
    others = sorted({r.group for r in recs if r.kind in ("music", "other", "silence")})
    order = np.random.default_rng(seed).permutation(len(others))
    for m, j in enumerate(order):
        fold_of[others[j]] = {m % n_folds}
    for i, r in enumerate(recs):
        for k in fold_of.get(r.group, ()):
            test[i, k] = True
    train = ~test
    for i, r in enumerate(recs):
        for part in getattr(r.signal, "groups", ()):  # a mixture/session also holds its speaker's or music's group
            for k in fold_of.get(part, ()):
                train[i, k] = False
    return FoldPlan(test, train)


def inner_folds(recs: list[Recording], n_folds: int = 3, seed: int = 0) -> np.ndarray:
    """Inner fold id per (training) recording for threshold fitting: every group (recorder, speaker, file) whole in
    one fold; cries by ``GroupKFold``, other kinds' groups shuffled (seeded) and dealt round robin.

    Returns
    -------
    ndarray, int, shape (len(recs),)
    """
    from sklearn.model_selection import GroupKFold

    out = np.zeros(len(recs), np.int64)
    recorders = sorted({r.group for r in recs if r.kind.startswith("crying")})
    fold_of: dict = {}
    if len(recorders) >= n_folds:
        for k, (_, te) in enumerate(GroupKFold(n_folds).split(recorders, groups=recorders)):
            for j in te:
                fold_of[recorders[j]] = k
    rng = np.random.default_rng(seed)
    for kind in ("speech", "music", "other", "silence"):
        groups = sorted({r.group for r in recs if r.kind == kind})
        for m, j in enumerate(rng.permutation(len(groups))):
            fold_of[groups[j]] = m % n_folds
    for i, r in enumerate(recs):
        out[i] = fold_of.get(r.group, 0)
    return out
