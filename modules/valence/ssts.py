"""Stochastic and Strided Temporal Sampling (SSTS; seed 004, §III-B, Algorithm 1) and its ensemble-inference
counterpart (§IV-B).

Algorithm 1 draws ``T`` (paper: 24) of a clip's ``N`` face frames at random without replacement, then keeps every
``s``-th of them from a random start ``i ∈ {0, …, s-1}``: ``T / s`` frames per training sample. Two readings of the
pseudo-code are made explicit here:

- ``frame_ind = [0, 1, ..., N]`` is read as the clip's ``N`` frames ``0 … N-1`` (there is no frame ``N``);
- ``np.random.choice`` returns its draw in random order; the drawn indices are sorted before the strided step so a
  sample stays in temporal order, as Fig. 2 shows (orange frames ``i = 0, s = 6`` run left to right).

``s`` must divide ``T`` (the paper uses s ∈ {1, 2, 3, 4, 6, 8, 12} with T = 24) so every sample has the same
``T / s`` frames, which VideoMAE needs.
"""

from __future__ import annotations

import numpy as np

from nova_infant.core.errors import OptionError

CLIP_FRAMES = 24  # T of Algorithm 1 (frames drawn per 1-s clip at 24-30 fps)


def check_stride(stride: int, clip_frames: int = CLIP_FRAMES) -> int:
    """``stride`` as an int that divides ``clip_frames``; ``OptionError`` otherwise.

    Returns the number of frames per sample, ``clip_frames // stride``.
    """
    try:
        s, t = int(stride), int(clip_frames)
    except (TypeError, ValueError):
        raise OptionError(f"option stride: expected an integer, got {stride!r}") from None
    if t < 1:
        raise OptionError(f"option clip_frames: must be >= 1, got {clip_frames!r}")
    if s < 1 or t % s:
        divisors = [d for d in range(1, t + 1) if t % d == 0]
        raise OptionError(f"option stride: must divide clip_frames={t} so every sample has the same number of frames "
                          f"(one of {divisors}), got {stride!r}")
    return t // s


def ssts_indices(n_frames: int, stride: int, rng: np.random.Generator, clip_frames: int = CLIP_FRAMES) -> np.ndarray:
    """One training sample's frame indices by SSTS (Algorithm 1).

    Parameters
    ----------
    n_frames : int
        ``N``: valid face frames in the clip (>= ``clip_frames``).
    stride : int
        ``s`` (divides ``clip_frames``).
    rng : numpy Generator
    clip_frames : int
        ``T`` (paper: 24).

    Returns
    -------
    int64 array of shape (clip_frames // stride,)
        Increasing positions in ``0 … n_frames-1``.

    Raises
    ------
    OptionError
        If ``stride`` does not divide ``clip_frames`` or the clip has fewer than ``clip_frames`` frames.
    """
    check_stride(stride, clip_frames)
    if n_frames < clip_frames:
        raise OptionError(f"SSTS: a clip of {n_frames} frames cannot give {clip_frames} distinct frames")
    inds = np.sort(rng.choice(n_frames, clip_frames, replace=False))  # line 2 (sorted: see module doc)
    start = int(rng.integers(0, stride))                               # line 3
    return inds[np.arange(start, clip_frames, stride)].astype(np.int64)  # lines 4-5


def ensemble_indices(n_frames: int, stride: int, clip_frames: int = CLIP_FRAMES) -> np.ndarray:
    """The ``s`` strided samplings of one test clip for ensemble inference (§IV-B: ``ŷ = Σ y_i / s``).

    Test time has no randomness: the ``T`` frames are spread evenly over the clip's ``N`` (``np.linspace``, rounded),
    then sampling ``i`` (``i = 0 … s-1``) takes every ``s``-th from ``i``. Together the ``s`` samplings use each of
    the ``T`` frames exactly once.

    Returns
    -------
    int64 array of shape (stride, clip_frames // stride)

    Raises
    ------
    OptionError
        As :func:`ssts_indices`.
    """
    per = check_stride(stride, clip_frames)
    if n_frames < clip_frames:
        raise OptionError(f"SSTS: a clip of {n_frames} frames cannot give {clip_frames} distinct frames")
    inds = np.round(np.linspace(0, n_frames - 1, clip_frames)).astype(np.int64)
    return np.stack([inds[np.arange(i, clip_frames, stride)] for i in range(stride)]).reshape(stride, per)


def single_indices(n_frames: int, stride: int, rng: np.random.Generator, clip_frames: int = CLIP_FRAMES) -> np.ndarray:
    """"Single inference" of §IV-B (Table III): one of the ``s`` samplings of :func:`ensemble_indices`, at random.
    int64 array of shape (1, clip_frames // stride)."""
    all_ = ensemble_indices(n_frames, stride, clip_frames)
    return all_[int(rng.integers(0, stride))][None]
