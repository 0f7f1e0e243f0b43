"""Coarse face registration and 1-s face clips on the session grid (seed 004, §III-A a).

Paper rules: a face detector on every frame; frames whose face probability is below 0.8 are dropped; the face box
is cropped and resized; a 1-s clip with fewer than 24 valid face frames is dropped. Here the detector is the
emotion tagger's BlazeFace short range (:mod:`nova_infant.taggers.faces`; the paper used Bulat & Tzimiropoulos'
detector, which does not install offline), the crop is the box made square and enlarged by ``margin`` per side,
resized straight to the model's input size (the paper resized to 384 px, then fed 224 px).

Clips follow the continuous annotation's sample rate: row ``k`` of the session grid with step ``1000 / sr`` ms
(:func:`nova_infant.core.grid.frame_grid`) gets the clip ``[c - clip/2, c + clip/2)`` around its centre ``c``; at the
paper's 1 Hz that is exactly second ``k``. Frames belong to a clip by their presentation time (PTS, VFR-safe).
Pixels are never kept: a clip is frame indices + boxes, decoded again when a batch needs it (bounded memory).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from nova_infant.core.grid import FrameGrid
from nova_infant.core.media import VideoSource
from nova_infant.taggers.faces import BlazeFaceDetector, choose_face

log = logging.getLogger("nova_infant")

FACE_THRESHOLD = 0.8  # §III-A: frames with face probability below 0.8 are removed
MIN_FACE_FRAMES = 24  # §III-A: clips with fewer valid face frames are removed


@dataclass
class FaceTrack:
    """The tracked face in every frame of one video.

    Attributes
    ----------
    video : str
    frame_ms : float64 (n_frames,) presentation time of each frame (ms, session axis)
    boxes : float32 (n_frames, 4) x, y, w, h in px (NaN without a face)
    scores : float32 (n_frames,) detector probability of the chosen face (0 without a face)
    width, height : int frame size (px)
    fps : float
    """

    video: str
    frame_ms: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    width: int
    height: int
    fps: float


def detect_faces(video: str, face: str = "largest", batch_size: int = 8, progress: bool = True) -> FaceTrack:
    """Run BlazeFace on every frame of ``video`` and keep one face per frame by ``face`` rule
    (:func:`nova_infant.taggers.faces.choose_face`: largest, central, left, right).

    Frames are decoded in batches on a background thread (:meth:`VideoSource.iter_batches`): memory holds at most a
    few batches, whatever the session length.

    Raises
    ------
    VideoDecodeError
        Missing, unreadable or truncated video.
    WeightsUnavailableError
        The face detector model is missing.
    OptionError
        Unknown ``face`` rule.
    """
    from tqdm import tqdm

    choose_face([], (1, 1), face)  # unknown rule -> OptionError before any decoding
    detector = BlazeFaceDetector()
    source = VideoSource(str(video))
    info = source.info
    n = info.n_frames
    boxes = np.full((n, 4), np.nan, np.float32)
    scores = np.zeros(n, np.float32)
    bar = tqdm(total=n, desc="faces", unit="frame", disable=not progress, leave=False)
    for idx, frames in source.iter_batches(np.arange(n), batch_size):
        for i, frame in zip(idx, frames):
            f = choose_face(detector.detect(frame), frame.shape, face)
            if f is not None:
                boxes[i] = (f.x, f.y, f.w, f.h)
                scores[i] = f.score
        bar.update(len(idx))
    bar.close()
    return FaceTrack(str(video), info.frame_starts_ms(), boxes, scores, int(info.width), int(info.height), info.fps)


@dataclass
class Clip:
    """One clip: ``row`` of the clip grid, its window ``start_ms``..``end_ms``, the video frames with a valid face
    (``frames`` int64 (N,), ``boxes`` float32 (N, 4) px), ``n_window`` frames in the window, ``target`` (valence,
    NaN when unknown)."""

    row: int
    start_ms: float
    end_ms: float
    frames: np.ndarray
    boxes: np.ndarray
    n_window: int
    target: float = float("nan")

    @property
    def face_fraction(self) -> float:
        """Valid face frames / frames in the window, in [0, 1]."""
        return len(self.frames) / self.n_window if self.n_window else 0.0


@dataclass
class ClipPlan:
    """The clips of one session: ``grid`` (one row per annotation sample), ``clips`` (usable), ``skipped``
    [(row, reason)] for every other row, ``video``."""

    video: str
    grid: FrameGrid
    clips: list[Clip]
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def skip_summary(self) -> str:
        """One line: how many rows were skipped and why (counts per reason)."""
        if not self.skipped:
            return f"all {self.grid.n_frames} clips usable"
        counts: dict[str, int] = {}
        for _, reason in self.skipped:
            key = reason.split(":")[0]
            counts[key] = counts.get(key, 0) + 1
        parts = ", ".join(f"{n} {why}" for why, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        return f"{len(self.clips)} of {self.grid.n_frames} clips usable; skipped: {parts}"


def plan_clips(track: FaceTrack, grid: FrameGrid, clip_ms: float = 1000.0, threshold: float = FACE_THRESHOLD,
               min_face_frames: int = MIN_FACE_FRAMES, targets: np.ndarray | None = None) -> ClipPlan:
    """Cut the session into clips on ``grid`` by the paper's rules.

    Parameters
    ----------
    track : FaceTrack
    grid : FrameGrid
        One row per annotation sample (step = 1000 / sample rate, ms).
    clip_ms : float
        Clip length (ms; paper: 1000), centred on each row's centre.
    threshold : float
        Minimum face probability of a valid frame (paper: 0.8).
    min_face_frames : int
        Minimum valid face frames per clip (paper: 24).
    targets : float array (n_rows,) or None
        Valence per row (training); NaN rows (NOVA garbage) are skipped.

    Returns
    -------
    ClipPlan
        Every row is either a clip or in ``skipped`` with its reason ("no face", "too few face frames",
        "no annotation", "annotation garbage", "outside the video").
    """
    centres = grid.centres_ms()
    valid = track.scores >= threshold
    clips, skipped = [], []
    video_end = track.frame_ms[-1] + 1000.0 / track.fps if len(track.frame_ms) else 0.0
    for row, c in enumerate(centres):
        a, b = c - clip_ms / 2, c + clip_ms / 2
        if targets is not None and row >= len(targets):
            skipped.append((row, "no annotation: the annotation ends before this clip"))
            continue
        if targets is not None and not np.isfinite(targets[row]):
            skipped.append((row, "annotation garbage: NaN value"))
            continue
        inside = np.flatnonzero((track.frame_ms >= a) & (track.frame_ms < b))
        if not len(inside) or b > video_end + 1000.0 / track.fps:
            skipped.append((row, f"outside the video: clip {a:.0f}-{b:.0f} ms, video ends at {video_end:.0f} ms"))
            continue
        good = inside[valid[inside]]
        if not len(good):
            skipped.append((row, f"no face: no frame with face probability >= {threshold:g}"))
            continue
        if len(good) < min_face_frames:
            skipped.append((row, f"too few face frames: {len(good)} of {len(inside)} with face probability >= "
                                 f"{threshold:g}, need {min_face_frames}"))
            continue
        target = float(targets[row]) if targets is not None else float("nan")
        clips.append(Clip(row, float(a), float(b), good.astype(np.int64), track.boxes[good].copy(), len(inside),
                          target))
    return ClipPlan(track.video, grid, clips, skipped)


def crop_face(frame: np.ndarray, box, size: int, margin: float = 0.1) -> np.ndarray:
    """RGB square crop (size, size, 3) uint8 around ``box`` (x, y, w, h px), the longer side enlarged by ``margin``
    on each side, clipped to the frame; the crop is resized with PIL bilinear."""
    from PIL import Image

    h, w = frame.shape[:2]
    x, y, bw, bh = (float(v) for v in box)
    side = max(bw, bh) * (1 + 2 * margin)
    cx, cy = x + bw / 2, y + bh / 2
    x1, y1 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    x2, y2 = int(min(cx + side / 2, w)), int(min(cy + side / 2, h))
    patch = frame[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]
    return np.asarray(Image.fromarray(patch).resize((size, size), Image.BILINEAR), np.uint8)


class ClipReader:
    """Decodes the face crops of clips on demand, keeping at most ``max_open`` videos open (LRU).

    ``read(video, clip, positions, size)`` -> uint8 (len(positions), size, size, 3): the crops of the clip's valid
    frames at ``positions`` (indices into ``clip.frames``). Only those frames are decoded.
    """

    def __init__(self, max_open: int = 4, margin: float = 0.1):
        self.max_open, self.margin = int(max_open), float(margin)
        self._open: OrderedDict = OrderedDict()

    def source(self, video: str):
        """The open :class:`~nova_infant.core.media.VideoSource` of ``video`` (opened on first use; the least
        recently used one is closed beyond ``max_open``). Raises ``VideoDecodeError``."""
        if video in self._open:
            self._open.move_to_end(video)
        else:
            self._open[video] = VideoSource(video)
            while len(self._open) > self.max_open:
                self._open.popitem(last=False)
        return self._open[video]

    def read(self, video: str, clip: Clip, positions: np.ndarray, size: int) -> np.ndarray:
        """Face crops uint8 (len(positions), size, size, 3) of ``clip``'s valid frames at ``positions``."""
        positions = np.asarray(positions, dtype=np.int64)
        frames = self.source(video).read(clip.frames[positions].tolist())
        return np.stack([crop_face(f, clip.boxes[p], size, self.margin) for f, p in zip(frames, positions)])
