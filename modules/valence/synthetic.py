"""Synthetic drawn-face sessions whose valence is recoverable from the picture, for tests, benchmarks and demos.

Each subject has its own skin tone, face size, position, eye spacing and background; in second ``k`` the mouth's
curvature is set by the valence ``v_k`` in [-100, 100] (a smile curves up, a frown down; a little jitter per frame).
Videos are written as real H.264 files (:func:`nova_infant.core.sample_media.write_video`) and decoded back through
the same reader as real sessions; only the face detector is bypassed (:func:`known_face_track`), because BlazeFace
is not meant to find drawn faces -- the real-media path (carphone) exercises it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nova_infant.core.media import probe_video
from nova_infant.core.sample_media import write_video
from nova_infant.valence.clips import FaceTrack


def draw_face(valence: float, size: int, look: dict, rng: np.random.Generator) -> np.ndarray:
    """One RGB frame (size, size, 3) uint8 of a drawn face; mouth curvature ∝ ``valence`` / 100."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), tuple(look["background"]))
    d = ImageDraw.Draw(img)
    cx = size / 2 + look["dx"] + rng.normal(0, 0.5)
    cy = size / 2 + look["dy"] + rng.normal(0, 0.5)
    r = look["radius"] * size
    d.ellipse([cx - r, cy - 1.15 * r, cx + r, cy + 1.15 * r], fill=tuple(look["skin"]))
    eye, ey = look["eye_gap"] * r, cy - 0.35 * r
    for sx in (-1, 1):
        d.ellipse([cx + sx * eye - 0.12 * r, ey - 0.12 * r, cx + sx * eye + 0.12 * r, ey + 0.12 * r], fill=(20, 20, 20))
    curve = float(np.clip(valence / 100.0 + rng.normal(0, 0.03), -1, 1))
    xs = np.linspace(-0.7 * r, 0.7 * r, 15)
    ys = cy + 0.4 * r - curve * 0.5 * r * (1 - (xs / (0.7 * r)) ** 2)  # up at the corners when positive
    d.line(list(zip(cx + xs, ys)), fill=(120, 20, 30), width=max(2, int(0.18 * r)))
    return np.asarray(img, np.uint8)


def subject_look(rng: np.random.Generator) -> dict:
    """Random appearance of one synthetic subject."""
    return {"background": rng.integers(0, 256, 3).tolist(), "skin": rng.integers(120, 256, 3).tolist(),
            "radius": float(rng.uniform(0.38, 0.42)), "dx": float(rng.uniform(-1, 1)), "dy": float(rng.uniform(-1, 1)),
            "eye_gap": float(rng.uniform(0.3, 0.45))}


def valence_series(seconds: int, rng: np.random.Generator) -> np.ndarray:
    """Per-second valence in [-100, 100]: uniform draws held for 1-3 s (coded valence changes in steps), float64."""
    held = np.repeat(rng.uniform(-100, 100, seconds), rng.integers(1, 4, seconds))
    return held[:seconds]


def write_subject(folder, seconds: int, fps: int, size: int, seed: int) -> tuple[Path, np.ndarray]:
    """Write ``folder/infant.video.mp4`` of one subject -> (video path, per-second valence (seconds,))."""
    rng = np.random.default_rng(seed)
    look = subject_look(rng)
    values = valence_series(seconds, rng)
    frames = np.stack([draw_face(values[i // fps], size, look, rng) for i in range(seconds * fps)])
    return write_video(Path(folder) / "infant.video.mp4", frames, fps), values


def known_face_track(video: str, score: float = 0.99) -> FaceTrack:
    """A :class:`FaceTrack` whose face box is the whole frame in every frame (drawn faces fill the frame)."""
    info = probe_video(video)
    boxes = np.tile(np.array([0, 0, info.width, info.height], np.float32), (info.n_frames, 1))
    return FaceTrack(str(video), info.frame_starts_ms(), boxes, np.full(info.n_frames, score, np.float32),
                     info.width, info.height, info.fps)
