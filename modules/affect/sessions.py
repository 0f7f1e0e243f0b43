"""NOVA sessions for the affect model: face crops on the session grid and coded targets from NOVA annotations
(the predicted tracks are built by :func:`nova_infant.specs.affect.predictions_result`).

Crops: the project's face detector (BlazeFace, :mod:`nova_infant.taggers.faces`) on the video frame shown at each
grid row's centre, the chosen face (``largest`` by default) cut square with a 10 % margin and resized to the model's
input (112 px), RGB. Rows without a face are marked (``has_face`` False) and get a black crop that no loss and no
score ever sees. Crops go to a memory-mapped ``.npy`` under a temporary folder when one is given (bounded memory:
37.6 kB per row at 112 px).

Targets: continuous valence / arousal annotations (NOVA scores, sampled at the row centres; NaN = uncoded),
a discrete expression annotation (class names mapped onto the model's classes by name; gaps = uncoded), AU
annotations one per AU, discrete (a row inside any segment whose class is not ``absent``/``off``/``0`` = present,
outside = absent) or continuous (score >= 0.5 = present, NaN = uncoded).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nova_infant.core.errors import AnnotationError
from nova_infant.core.grid import FrameGrid, segment_index_at
from nova_infant.core.media import VideoSource
from nova_infant.icep.dataset import annotation_arrays
from nova_infant.taggers.emotion import _models, face_crop
from nova_infant.taggers.faces import choose_face
from nova_infant.core.validation import check_continuous_range

ABSENT_NAMES = {"absent", "off", "0", "no", "none", "false"}


def face_crop_rgb(frame: np.ndarray, box, size: int = 112, margin: float = 0.1) -> np.ndarray:
    """RGB square crop (size, size, 3) uint8 around ``box`` (x, y, w, h px) enlarged by ``margin`` per side
    (:func:`nova_infant.taggers.emotion.face_crop` in RGB)."""
    return face_crop(frame, box, size, margin, mode="RGB")


def extract_crops(video: str, grid: FrameGrid, size: int = 112, face: str = "largest", store: str | None = None,
                  batch_size: int = 16, progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face crops of the frames at the grid's row centres.

    Parameters
    ----------
    video : video file; grid : the session grid (rows past the video's end get no face)
    size : crop side (px); face : face choice rule (:func:`nova_infant.taggers.faces.choose_face`)
    store : folder for a memory-mapped crop array (None = in memory)

    Returns
    -------
    crops (n_rows, size, size, 3) uint8, has_face (n_rows,) bool, boxes (n_rows, 5) float32 (x, y, w, h as frame
    fractions, detector score; zeros without a face)

    Raises
    ------
    VideoDecodeError
        For a missing or unreadable video.
    """
    from tqdm.auto import tqdm

    det = _models()[0]
    source = VideoSource(str(video))
    info = source.info
    n = grid.n_frames
    if store:
        crops = np.lib.format.open_memmap(str(Path(store) / "crops.npy"), mode="w+", dtype=np.uint8,
                                          shape=(n, size, size, 3))
    else:
        crops = np.zeros((n, size, size, 3), np.uint8)
    has = np.zeros(n, bool)
    boxes = np.zeros((n, 5), np.float32)
    centres = grid.centres_ms()
    inside = np.flatnonzero(centres < info.duration_ms)
    idx = info.frame_at_ms(centres[inside])
    uniq, inverse = np.unique(idx, return_inverse=True)
    rows_of = [inside[inverse == k] for k in range(len(uniq))]
    pos = 0
    bar = tqdm(total=len(uniq), desc="face crops", unit="frame", disable=not progress)
    for _, frames in source.iter_batches(list(uniq), batch_size):
        for frame in frames:
            chosen = choose_face(det.detect(frame), frame.shape, face)
            if chosen is not None:
                h, w = frame.shape[:2]
                crop = face_crop_rgb(frame, (chosen.x, chosen.y, chosen.w, chosen.h), size)
                for r in rows_of[pos]:
                    crops[r], has[r] = crop, True
                    boxes[r] = (chosen.x / w, chosen.y / h, chosen.w / w, chosen.h / h, chosen.score)
            pos += 1
            bar.update(1)
    bar.close()
    return crops, has, boxes


def continuous_on_grid(annotation, grid: FrameGrid, source: str = "") -> np.ndarray:
    """Scores of a NOVA continuous annotation at the grid's row centres (nearest earlier sample), float32
    (n_rows,); NaN past its end or where the score is NaN.

    Raises
    ------
    AnnotationError
        If the annotation is not continuous, or a score lies outside its scheme's ``[min, max]``.
    """
    scheme = getattr(annotation, "annotation_scheme", None)
    rate = getattr(scheme, "sample_rate", None)
    data = getattr(annotation, "data", None)
    if rate is None or data is None or "score" not in (data.dtype.names or ()):
        raise AnnotationError(f"{source}: not a continuous annotation (expected score;conf rows at a sample rate)")
    low, high = getattr(scheme, "min_val", None), getattr(scheme, "max_val", None)
    if low is not None and high is not None:
        check_continuous_range(data["score"], float(low), float(high), source)
    k = np.floor(grid.centres_ms() * float(rate) / 1000.0).astype(np.int64)
    out = np.full(grid.n_frames, np.nan, np.float32)
    ok = k < len(data)
    out[ok] = np.asarray(data["score"], np.float32)[k[ok]]
    return out


def discrete_on_grid(annotation, grid: FrameGrid, source: str = "") -> tuple[np.ndarray, list]:
    """(class id per row (n_rows,) int64, -1 where no segment covers the centre or garbage; class names)."""
    segments, names = annotation_arrays(annotation, source)
    if not len(segments):
        return np.full(grid.n_frames, -1, np.int64), names
    which = segment_index_at(grid.centres_ms(), segments["from"], segments["to"])  # the package's one sampler
    ids = np.asarray(segments["id"], np.int64)
    labels = np.where(which >= 0, ids[np.clip(which, 0, None)], -1)
    return np.where(labels >= 0, labels, -1).astype(np.int64), names


def expression_targets(annotation, grid: FrameGrid, classes: list, source: str = "") -> np.ndarray:
    """Expression id per row in ``classes`` order (-1 = uncoded or a class the model does not have).

    Raises
    ------
    AnnotationError
        If no class of the annotation's scheme is one of ``classes`` (names compared case-insensitively).
    """
    ids, names = discrete_on_grid(annotation, grid, source)
    lookup = {c.lower(): i for i, c in enumerate(classes)}
    mapping = np.array([lookup.get(str(n).lower(), -1) for n in names] + [-1], np.int64)
    if len(names) and (mapping[:-1] < 0).all():
        raise AnnotationError(f"{source}: expression scheme classes {names} share no name with the model's "
                              f"classes {classes}")
    return mapping[np.where(ids >= 0, ids, len(names))]


def au_targets(annotation, grid: FrameGrid, source: str = "") -> np.ndarray:
    """One AU's occurrence per row, float32 0/1 (NaN = uncoded), from a discrete or continuous annotation (module
    docstring)."""
    if getattr(getattr(annotation, "annotation_scheme", None), "classes", None) is not None:
        ids, names = discrete_on_grid(annotation, grid, source)
        present = np.array([str(n).strip().lower() not in ABSENT_NAMES for n in names] + [False])
        return present[np.where(ids >= 0, ids, len(names))].astype(np.float32)
    score = continuous_on_grid(annotation, grid, source)
    return np.where(np.isfinite(score), (score >= 0.5).astype(np.float32), np.nan).astype(np.float32)
