"""Synthetic ICEP-R sessions written as real NOVA file-mode data (SSI streams + ASCII ``.annotation``), for tests,
benchmarks and demos. Values are synthetic; the files are the ones NOVA and discover-utils read.

The "context" task makes a frame's class depend on an event some frames earlier that a per-frame model cannot
see: a one-frame pulse in feature ``c`` starts a run of class ``c`` lasting ``run`` frames whose frames carry only a
weak per-frame cue (so a per-frame model is above chance but far below a temporal one).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from nova_infant.core.annotations import frames_to_segments
from nova_infant.core.streams import make_ssi_stream, write_ssi_stream
from nova_infant.icep.schemes import full_scheme, write_discrete_annotation

# synthetic class -> full infant scheme class name (merged: Ineu, Ipos, Ineg)
CONTEXT_CLASSES = ("Ineu", "Ipos", "Ipro")


def context_task(n_frames: int, dim: int, rng: np.random.Generator, run: int = 20, pulse: float = 6.0,
                 cue: float = 0.25, p_event: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic labelling task that needs temporal context (for tests and benchmarks of the ICEP-R models).

    Class 0 is the background; an event of class c in {1, 2} at frame t puts ``pulse`` into feature c-1 at frame t
    only and labels frames t..t+run-1 as c. Every frame of class c also gets ``cue`` added to feature 2 + c (a weak
    per-frame cue).

    Parameters
    ----------
    n_frames, dim : int
        Frames and feature width (``dim >= 5``).
    rng : numpy.random.Generator
    run : int
        Frames an event's label lasts.
    pulse, cue : float
        Size of the event pulse and of the per-frame cue (noise is standard normal).
    p_event : float
        Probability of an event starting at a background frame.

    Returns
    -------
    features : ndarray, float32, shape (n_frames, dim)
    labels : ndarray, int64, shape (n_frames,)
        In {0, 1, 2}.
    """
    x = rng.standard_normal((n_frames, dim)).astype(np.float32)
    y = np.zeros(n_frames, np.int64)
    t = int(rng.integers(0, run))
    while t < n_frames:
        if rng.random() < p_event * run:
            c = int(rng.integers(1, 3))
            x[t, c - 1] += pulse
            y[t:t + run] = c
            t += run + int(rng.integers(1, run))
        else:
            t += run
    for c in (1, 2):
        x[y == c, 2 + c] += cue
    return x, y


def write_session(root: str | os.PathLike, dataset: str, session: str, streams: dict, labels: np.ndarray | None,
                  step_ms: float, role: str = "infant", annotator: str = "gold",
                  class_names=CONTEXT_CLASSES) -> Path:
    """Write one synthetic NOVA file-mode session ``<root>/<dataset>/<session>/``.

    Parameters
    ----------
    root : path
        NOVA data folder.
    dataset, session : str
    streams : dict
        ``{"<role>.<name>": (array float32 (n, dim), sample_rate_hz, media_type[, header meta dict])}``, each written
        as ``<role>.<name>.stream``.
    labels : ndarray, int, shape (n_frames,), or None
        Class per frame (index into ``class_names``; -1 = garbage, -2 = no annotation), written as
        ``<role>.ICEP-R-<role>.<annotator>.annotation`` in the full ICEP-R scheme of ``role``; None writes none.
    step_ms : float
        Frame step of ``labels`` in ms.
    role, annotator : str
    class_names : list of str
        Names of the label ids (ICEP-R codes of the full scheme).

    Returns
    -------
    pathlib.Path
        The session folder.
    """
    folder = Path(root) / dataset / session
    for name, (array, rate, media_type, *meta) in streams.items():
        stream = make_ssi_stream(array, rate, media_type, [f"f{i}" for i in range(array.shape[1])],
                                 name=name.split(".", 1)[-1], role=name.split(".", 1)[0], session=session,
                                 dataset=dataset, custom_meta=meta[0] if meta else None)
        write_ssi_stream(stream, folder / f"{name}.stream")
    if labels is not None:
        scheme = full_scheme(role)
        ids = np.array([scheme.names.index(n) for n in class_names])
        source = np.where(labels >= 0, ids[np.clip(labels, 0, None)], labels)
        segments = frames_to_segments(source, step_ms, skip_ids=(-2,))
        write_discrete_annotation(folder / f"{role}.{scheme.name}.{annotator}.annotation", scheme, segments, role,
                                  annotator, session, dataset)
    return folder


# ---------------------------------------------------------------- FFSF-like sessions (cooperative-loop benchmarks)

#: FFSF classes (full infant scheme names) and how likely each is in the play / still-face / reunion phases
FFSF_CLASSES = ("Ipos", "Ineu", "Ipro")
FFSF_PHASES = {"play": (0.55, 0.35, 0.10), "still-face": (0.10, 0.40, 0.50), "reunion": (0.35, 0.45, 0.20)}


def ffsf_prototypes(dim: int, seed: int = 1234, separation: float = 0.9) -> np.ndarray:
    """Class prototypes shared by every session of one synthetic lab: float32 (3, dim), rows of norm
    ``separation``."""
    rng = np.random.default_rng(seed)
    proto = rng.standard_normal((len(FFSF_CLASSES), dim))
    return (separation * proto / np.linalg.norm(proto, axis=1, keepdims=True)).astype(np.float32)


def ffsf_session(n_frames: int, dim: int, rng: np.random.Generator, prototypes: np.ndarray | None = None,
                 mean_code_s: float = 3.0, step_ms: float = 40.0, shift: float = 0.6, drift: float = 0.6,
                 noise: float = 1.0, smooth: float = 0.6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic Face-to-Face Still-Face (FFSF) session: play (40 %), still-face (30 %), reunion (30 %) phases
    (Tronick et al. 1978's paradigm), codes that change every few seconds with phase-dependent odds, and features
    that move per session (a constant shift) and over time (a linear drift), as real recordings do.

    Features per frame: the prototype of the frame's class + the session's shift + drift * (t / T) * a session
    direction + AR(1) noise (coefficient ``smooth``, variance ``noise**2``).

    Parameters
    ----------
    n_frames, dim : int
    rng : numpy.random.Generator
    prototypes : ndarray, float32, shape (3, dim), optional
        Class prototypes shared across sessions (default :func:`ffsf_prototypes`).
    mean_code_s : float
        Mean duration of one code (exponential, at least 1 s), seconds.
    step_ms : float
    shift, drift, noise, smooth : float

    Returns
    -------
    features : ndarray, float32, shape (n_frames, dim)
    labels : ndarray, int64, shape (n_frames,)
        Index into :data:`FFSF_CLASSES`.
    phase : ndarray, int64, shape (n_frames,)
        0 play, 1 still-face, 2 reunion.
    """
    proto = ffsf_prototypes(dim) if prototypes is None else prototypes
    bounds = [0, int(0.4 * n_frames), int(0.7 * n_frames), n_frames]
    phase = np.zeros(n_frames, np.int64)
    labels = np.zeros(n_frames, np.int64)
    per_s = 1000.0 / step_ms
    for k, odds in enumerate(FFSF_PHASES.values()):
        phase[bounds[k]:bounds[k + 1]] = k
        t = bounds[k]
        while t < bounds[k + 1]:
            run = int(max(1.0, rng.exponential(mean_code_s)) * per_s)
            labels[t:t + run] = rng.choice(len(FFSF_CLASSES), p=odds)
            t += run
    labels = labels[:n_frames]
    eps = rng.standard_normal((n_frames, dim)) * noise * math.sqrt(1 - smooth ** 2)
    ar = np.empty_like(eps)
    ar[0] = rng.standard_normal(dim) * noise
    for i in range(1, n_frames):
        ar[i] = smooth * ar[i - 1] + eps[i]
    direction = rng.standard_normal(dim)
    direction /= np.linalg.norm(direction)
    x = (proto[labels] + shift * rng.standard_normal(dim) / math.sqrt(dim) * 2
         + drift * np.linspace(0, 1, n_frames)[:, None] * direction + ar)
    return x.astype(np.float32), labels, phase
