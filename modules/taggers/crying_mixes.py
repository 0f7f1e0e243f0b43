"""Made-up recordings of the crying model (signals built on first use, so cached logits need no audio): cries with a
parent talking over them, cries over wideband room floors, and the test sessions of the CV arms (a cry clip between
held-out speech or music, end to end).

Layering: imports :mod:`.crying_data` only.
"""

from __future__ import annotations

import numpy as np

from nova_infant.core.errors import OptionError
from nova_infant.taggers.crying_data import SR, FoldPlan, Recording, phone_band, read_recording, room_floor


# ---------------------------------------------------------------- made-up recordings (recipes)


def _rms(x) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-9)


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    return np.tile(x, n // max(len(x), 1) + 1)[:n]


class _Recipe:
    """Base of signals made on first use; ``groups`` lists the negative groups inside (fold bookkeeping)."""

    groups: tuple = ()
    _memo: dict = {}

    @classmethod
    def read(cls, rec: Recording) -> np.ndarray:
        key = (rec.path, rec.band, rec.speed)
        if key not in cls._memo:
            if len(cls._memo) > 64:
                cls._memo.clear()
            cls._memo[key] = read_recording(rec)
        return cls._memo[key]


class _Mix(_Recipe):
    """A parent talking over a crying infant, through the phone band."""

    def __init__(self, cry: Recording, speech: Recording, snr_db: float):
        self.cry, self.speech, self.snr_db, self.groups = cry, speech, snr_db, (speech.group,)

    def make(self) -> np.ndarray:
        c = read_recording(self.cry)
        s = _fit_length(self.read(self.speech), len(c))
        mix = c + s * (_rms(c) / _rms(s)) * 10 ** (self.snr_db / 20)
        return phone_band(mix / max(1.0, float(np.abs(mix).max()) / 0.99))


class _Floor(_Recipe):
    """A recording with a wideband room floor added (:func:`room_floor`)."""

    def __init__(self, base: Recording, level_db: float, seed: int):
        self.base, self.level_db, self.seed = base, level_db, seed

    def make(self) -> np.ndarray:
        x = read_recording(self.base)
        return (x + room_floor(len(x), self.level_db, self.seed)).astype(np.float32)


class _Session(_Recipe):
    """Neighbour, cry, neighbour, end to end (no gap: the hardest boundary), the neighbours at the cry's RMS, an
    optional room floor over the whole session."""

    def __init__(self, cry: Recording, before: Recording, after: Recording, seconds: float, floor_db, seed: int):
        self.cry, self.before, self.after, self.seconds = cry, before, after, seconds
        self.floor_db, self.seed = floor_db, seed
        self.groups = (before.group, after.group)

    def parts(self, n_cry: int) -> tuple[int, int]:
        return int(self.seconds * SR), n_cry

    def make(self) -> np.ndarray:
        c = read_recording(self.cry)
        n = int(self.seconds * SR)
        a = _fit_length(self.read(self.before), n)
        b = _fit_length(self.read(self.after), n)
        x = np.concatenate([a * _rms(c) / _rms(a), c, b * _rms(c) / _rms(b)])
        if self.floor_db is not None:
            x = x + room_floor(len(x), self.floor_db, self.seed)
        return (x / max(1.0, float(np.abs(x).max()) / 0.99)).astype(np.float32)


def speech_mixtures(recs: list[Recording], plan: FoldPlan, seed: int = 0) -> list[Recording]:
    """A parent talking over a crying infant: every 8 kHz cry clip mixed with a speech recording held out in the cry's
    fold (looped to the clip's length) at a speech-to-cry RMS ratio drawn from -6, 0, +6 dB, through the phone band.

    Returns
    -------
    list of Recording
        Kind ``"crying+speech"``, the cry's recorder as group; signals made on demand.
    """
    rng = np.random.default_rng(seed)
    speech = [i for i, r in enumerate(recs) if r.kind == "speech" and r.band == "full" and r.speed == 1.0]
    out = []
    for i, r in enumerate(recs):
        if r.kind != "crying" or r.source != "8k":
            continue
        k = int(np.flatnonzero(plan.test[i])[0])
        same = [j for j in speech if plan.test[j, k]] or speech
        j = same[rng.integers(len(same))]
        snr_db = float(rng.choice([-6.0, 0.0, 6.0]))
        name = f"mix:{r.path}|{recs[j].path}|{snr_db:+.0f}dB"
        out.append(Recording(name, "crying+speech", r.group, "phone", _Mix(r, recs[j], snr_db), source="mix"))
    return out


def floor_augmented(cries: list[Recording], levels_db=(-55.0, -50.0, -45.0), seed: int = 1000) -> list[Recording]:
    """Training copies of cry clips with a wideband room floor (:func:`room_floor`, a level drawn from ``levels_db``
    and a noise mix drawn per clip, seeds from ``seed``): a cry heard through a lab microphone in a quiet room.

    Returns
    -------
    list of Recording
        Kind ``crying``, the cry's recorder as group, band ``full``.
    """
    rng = np.random.default_rng(seed)
    out = []
    for n, r in enumerate(cries):
        level = float(rng.choice(levels_db))
        s = seed + n
        out.append(Recording(f"floor:{r.path}|{level:+.0f}dB|{s}", "crying", r.group, "full", _Floor(r, level, s),
                             source=r.source + "+floor"))
    return out


def cry_sessions(recs: list[Recording], plan: FoldPlan, source: str, after: str = "speech",
                 floor_db: float | None = None, seconds: float = 5.0, seed: int = 0) -> list[Recording]:
    """Test sessions: each cry clip of ``source`` between ``seconds`` of held-out speech before and held-out
    ``after`` (``"speech"`` or ``"music"``) after, end to end, neighbours at the cry's RMS level, optionally over a
    room floor at ``floor_db`` dBFS. Neighbours are drawn (seeded) from the negatives held out in the cry's fold,
    full band, normal speed.

    Parameters
    ----------
    recs : list of Recording
        The cries and negatives :func:`fold_plan` was made for.
    plan : FoldPlan
    source : str
        ``"8k"`` or ``"16k"``.
    after : str
    floor_db : float, optional
    seconds : float
    seed : int

    Returns
    -------
    list of Recording
        Kind ``session``, the cry's recorder as group, ``segments`` in ms.
    """
    import soundfile

    rng = np.random.default_rng(seed)
    pool = {kind: [i for i, r in enumerate(recs) if r.kind == kind and r.band == "full" and r.speed == 1.0]
            for kind in ("speech", "music")}
    out = []
    for i, r in enumerate(recs):
        if r.kind != "crying" or r.source != source:
            continue
        k = int(np.flatnonzero(plan.test[i])[0])
        pick = {kind: [j for j in idx if plan.test[j, k]] for kind, idx in pool.items()}
        if not pick["speech"] or not pick[after]:
            raise OptionError(f"fold {k}: no held-out {after} or speech to build test sessions from")
        b = recs[pick["speech"][rng.integers(len(pick["speech"]))]]
        a = recs[pick[after][rng.integers(len(pick[after]))]]
        s = seed * 100000 + i
        cry_ms = soundfile.info(r.path).duration * 1000.0
        name = f"session:{r.path}|{b.path}|{a.path}|{seconds}|{floor_db}|{s}"
        segs = [(0.0, seconds * 1000, "speech"), (seconds * 1000, seconds * 1000 + cry_ms, "crying"),
                (seconds * 1000 + cry_ms, 2 * seconds * 1000 + cry_ms, after)]
        out.append(Recording(name, "session", r.group, "full", _Session(r, b, a, seconds, floor_db, s),
                             source=source, segments=segs))
    return out


#: The arms of the crying model's cross-validation: (cry source, what follows the cry, room floor in dBFS).
#: a: the 8 kHz telephone-band cries; b: the 16 kHz originals; c: the 16 kHz originals over a wideband room floor
#: at -50 dBFS with speech before and music after.
ARMS = {"a": ("8k", "speech", None), "b": ("16k", "speech", None), "c": ("16k", "music", -50.0)}
ARM_NAMES = {"a": "8 kHz cries", "b": "16 kHz cries", "c": "16 kHz cries + room floor -50 dBFS, speech/music"}


def arm_sessions(recs: list[Recording], plan: FoldPlan, seed: int = 0) -> list[Recording]:
    """The test sessions of every arm of :data:`ARMS` (:func:`cry_sessions`), each also through the telephone band
    (for a model whose input is band-limited); ``source`` is ``"<arm>"``, band ``full`` or ``phone``.

    Returns
    -------
    list of Recording
    """
    out = []
    for arm, (source, after, floor_db) in ARMS.items():
        for r in cry_sessions(recs, plan, source, after, floor_db, seed=seed + ord(arm)):
            for band in ("full", "phone"):
                out.append(Recording(r.path, r.kind, r.group, band, r.signal, source=arm, segments=r.segments))
    return out
