"""Synthetic drawn-face clips whose geometry sets the affect targets (for tests and demos; no real faces).

Per frame three smooth latent signals in [-1, 1] (sums of slow sinusoids with random phases): valence ``v`` bends
the mouth (corners up = positive), arousal ``a`` opens it, brow ``b`` raises (> 0) or lowers (< 0) the eyebrows.
Targets follow the geometry: VA = (v, a); AUs (in :data:`~nova_infant.affect.model.AU_NAMES` order) AU1 = AU2 =
b > 0.3, AU4 = AU7 = b < -0.3, AU6 = AU12 = v > 0.3, AU10 = v > 0.6, AU15 = v < -0.3, AU23 = AU24 = a < -0.5 (lips
pressed thin), AU25 = a > 0.0 (lips part), AU26 = a > 0.5 (jaw drop); expression: surprise (b > 0.3 and a > 0.3),
happiness (v > 0.3), sadness (v < -0.3 and a <= 0), anger (v < -0.3 and a > 0), else neutral. A subject = face
colour, size, position and background, so subject-grouped splits test generalisation to new faces.
"""

from __future__ import annotations

import numpy as np

from nova_infant.affect.model import AU_NAMES, EXPR_CLASSES


def latent_tracks(n: int, rng: np.random.Generator, fps: float = 25.0) -> np.ndarray:
    """(n, 3) float32 smooth signals in [-1, 1]: valence, arousal, brow (periods 1.5-6 s)."""
    t = np.arange(n) / fps
    out = np.zeros((n, 3), np.float32)
    for k in range(3):
        periods = rng.uniform(1.5, 6.0, 3)
        phases = rng.uniform(0, 2 * np.pi, 3)
        s = sum(np.sin(2 * np.pi * t / p + ph) for p, ph in zip(periods, phases)) / 1.8
        out[:, k] = np.clip(s, -1, 1)
    return out


def targets_from_latents(lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latents (n, 3) -> (va (n, 2) float32, expression ids (n,) int64 into EXPR_CLASSES, AUs (n, 12) float32 0/1)."""
    v, a, b = lat[:, 0], lat[:, 1], lat[:, 2]
    au = {"AU1": b > 0.3, "AU2": b > 0.3, "AU4": b < -0.3, "AU7": b < -0.3, "AU6": v > 0.3, "AU12": v > 0.3,
          "AU10": v > 0.6, "AU15": v < -0.3, "AU23": a < -0.5, "AU24": a < -0.5, "AU25": a > 0.0, "AU26": a > 0.5}
    aus = np.stack([au[name] for name in AU_NAMES], 1).astype(np.float32)
    e = np.full(len(lat), EXPR_CLASSES.index("neutral"))
    e[v > 0.3] = EXPR_CLASSES.index("happiness")
    e[(v < -0.3) & (a <= 0)] = EXPR_CLASSES.index("sadness")
    e[(v < -0.3) & (a > 0)] = EXPR_CLASSES.index("anger")
    e[(b > 0.3) & (a > 0.3)] = EXPR_CLASSES.index("surprise")
    return lat[:, :2].astype(np.float32).copy(), e.astype(np.int64), aus


def draw_face(v: float, a: float, b: float, subject: dict, size: int = 112) -> np.ndarray:
    """One RGB face (size, size, 3) uint8 drawn with PIL; ``subject`` from :func:`make_subject`."""
    from PIL import Image, ImageDraw
    s = size / 112.0 * subject["scale"]
    cx, cy = size / 2 + subject["dx"], size / 2 + subject["dy"]
    img = Image.new("RGB", (size, size), subject["background"])
    d = ImageDraw.Draw(img)
    d.ellipse([cx - 38 * s, cy - 48 * s, cx + 38 * s, cy + 48 * s], fill=subject["skin"])
    for side in (-1, 1):  # eyes and brows
        ex, ey = cx + side * 15 * s, cy - 10 * s
        eye_h = (3 + 2 * max(b, 0)) * s  # raised brows open the eyes wider
        d.ellipse([ex - 5 * s, ey - eye_h, ex + 5 * s, ey + eye_h], fill=(30, 30, 30))
        lift = b * 14 * s
        inner = (-b if b < 0 else 0) * 4 * s  # a lowered brow slants down towards the nose
        d.line([(ex - side * 8 * s, ey - 10 * s - lift + inner),
                (ex + side * 8 * s, ey - 10 * s - lift)], fill=subject["brow"], width=max(1, int(7 * s)))
    mx, my, half = cx, cy + 22 * s, 16 * s
    xs = np.linspace(-1, 1, 17)
    curve = -v * 7 * s * xs ** 2 + v * 3 * s  # corners up for positive valence
    opening = max(a + 0.6, 0.0) * 6 * s * (1 - xs ** 2) + 1.0
    upper = [(mx + x * half, my + c) for x, c in zip(xs, curve)]
    lower = [(mx + x * half, my + c + o) for x, c, o in zip(xs, curve, opening)]
    d.polygon(upper + lower[::-1], fill=(120, 20, 30), outline=(90, 10, 20))
    return np.asarray(img, np.uint8)


def make_subject(rng: np.random.Generator) -> dict:
    """Random appearance: skin and brow colour, background, face scale (0.95-1.05) and offset (+-2 px: crops from a
    face detector are roughly aligned)."""
    return {"skin": tuple(int(c) for c in rng.integers(120, 240, 3)),
            "brow": tuple(int(c) for c in rng.integers(20, 90, 3)),
            "background": tuple(int(c) for c in rng.integers(0, 120, 3)),
            "scale": float(rng.uniform(0.95, 1.05)), "dx": float(rng.uniform(-2, 2)), "dy": float(rng.uniform(-2, 2))}


def synthetic_clip(n_frames: int, seed: int, subject: dict | None = None, size: int = 112, noise: float = 6.0,
                   no_face_every: int = 0) -> dict:
    """One clip of drawn faces.

    Returns
    -------
    dict: ``crops`` (n, size, size, 3) uint8, ``has_face`` (n,) bool (every ``no_face_every``-th frame blank, 0 =
    none), ``va`` (n, 2) float32, ``expr`` (n,) int64, ``au`` (n, 12) float32, ``latents`` (n, 3).
    """
    rng = np.random.default_rng(seed)
    subject = subject or make_subject(rng)
    lat = latent_tracks(n_frames, rng)
    va, expr, au = targets_from_latents(lat)
    crops = np.stack([draw_face(*lat[i], subject, size) for i in range(n_frames)])
    crops = np.clip(crops + rng.normal(0, noise, crops.shape), 0, 255).astype(np.uint8)
    has = np.ones(n_frames, bool)
    if no_face_every:
        has[::no_face_every] = False
        crops[~has] = 0
    return {"crops": crops, "has_face": has, "va": va, "expr": expr, "au": au, "latents": lat}
