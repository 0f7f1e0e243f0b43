"""Training data from NOVA sessions: early-fused feature streams on one frame grid plus frame labels.

- Features: any set of SSI streams per session (e.g. ``infant.dinov2``, ``caregiver.dinov2``, ``session.w2vbert``),
  read lazily: rows are read from the ``.stream~`` file on demand (never the whole session into RAM) and
  concatenated along the feature axis (early fusion).
- Time axis: the grid of the first stream (step = 1000 / its rate in ms, n = its row count). Every other stream is
  aligned by time (row for frame k = the row whose interval holds the frame centre); a stream whose duration
  differs from the grid's by more than one frame is an ``AlignmentError`` naming the session.
- Labels: one discrete NOVA annotation sampled at frame centres ``(k + 0.5) * step`` by interval lookup (the
  reference code, github.com/Daksitha/SCHWAN-ICEP-R-Automation @ 4a2f397, drifts by ~2 s per session instead). Gaps (NoAnno), garbage
  (-1) and classes the label map excludes become -1 (masked out of loss and scores, kept on the time axis).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from nova_infant.core.annotations import discrete_segments, read_annotation as read_file
from nova_infant.core.errors import AlignmentError, AnnotationError, StreamError
from nova_infant.core.grid import segment_index_at
from nova_infant.core.streams import open_ssi_stream
from nova_infant.icep.schemes import LabelMap
from nova_infant.core.dataset_sessions import is_session_folder

MASK = -1


class FileRows:
    """Lazy row reader of a BINARY float32 SSI stream: reads rows with a positioned read, holds no data.

    Parameters
    ----------
    path : path
        The ``.stream`` header; rows are read from ``<path>~``.
    name : str, optional
        Stream name (default: the file name without ``.stream``).

    Attributes
    ----------
    path : pathlib.Path
    name : str
    n_rows, dim : int
    sample_rate_hz : float
    media_type : str
    meta : dict
        The header's ``<meta>`` attributes (e.g. the PCA basis of a DINOv2 stream).

    Raises
    ------
    StreamError
        If the stream has no rows or is not BINARY float32.
    """

    def __init__(self, path: str | os.PathLike, name: str | None = None):
        view = open_ssi_stream(path)
        if view.n_rows == 0:
            raise StreamError(f"{path}: stream has no rows")
        if view.data.dtype != np.float32 or not isinstance(view.data, np.memmap):
            raise StreamError(f"{path}: expected a BINARY FLOAT stream, got {view.data.dtype}")
        self.path = Path(path)
        self.name = name or self.path.name[: -len(".stream")]
        self.n_rows, self.dim = view.n_rows, view.dim
        self.sample_rate_hz, self.media_type = view.sample_rate_hz, view.media_type
        self.meta = dict(view.meta)  # header <meta> attributes (e.g. the PCA basis of a DINOv2 stream)
        self._data_path = str(self.path) + "~"
        del view

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as float32 (stop - start, dim)."""
        count = (stop - start) * self.dim
        out = np.fromfile(self._data_path, dtype=np.float32, count=count, offset=start * self.dim * 4)
        return out.reshape(stop - start, self.dim)


class ArrayRows:
    """Row reader over an in-memory array (e.g. an SSIStream du-process loaded in database mode).

    Parameters
    ----------
    data : ndarray, shape (n_rows, dim)
        Converted to float32.
    sample_rate_hz : float
    name, media_type : str
    meta : dict, optional
        Header ``<meta>`` attributes.

    Raises
    ------
    StreamError
        If ``data`` is not 2-D.
    """

    def __init__(self, data: np.ndarray, sample_rate_hz: float, name: str, media_type: str = "",
                 meta: dict | None = None):
        self.data = np.asarray(data, np.float32)
        self.meta = dict(meta or {})
        if self.data.ndim != 2:
            raise StreamError(f"stream {name}: expected (rows, dim), got shape {self.data.shape}")
        self.name, self.sample_rate_hz, self.media_type = name, float(sample_rate_hz), media_type
        self.n_rows, self.dim = self.data.shape

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as float32 (stop - start, dim) (a view, not a copy)."""
        return self.data[start:stop]


@dataclass
class SessionData:
    """One session ready for training or prediction.

    Attributes
    ----------
    name : str
    streams : list of FileRows | ArrayRows, fused in this order
    step_ms : float  -- frame step of the grid (ms)
    n_frames : int
    labels : int64 (n_frames,) or None -- target class id per frame, -1 = masked
    masked : dict -- share of frames masked, in total and by reason (``gap``, ``garbage``, ``excluded``)
    """

    name: str
    streams: list
    step_ms: float
    n_frames: int
    labels: np.ndarray | None = None
    _rows: list = field(default_factory=list, repr=False)
    masked: dict = field(default_factory=dict)
    _norm: tuple | None = field(default=None, repr=False)

    @property
    def dim(self) -> int:
        """Width of the fused features: the sum of the streams' dims."""
        return int(sum(s.dim for s in self.streams))

    def features(self, start: int, stop: int) -> np.ndarray:
        """Fused features of frames ``[start, stop)``: float32 (stop - start, dim)."""
        parts = []
        for stream, rows in zip(self.streams, self._rows):
            if rows is None:
                parts.append(stream.read(start, stop))
            else:
                idx = rows[start:stop]
                lo, hi = int(idx[0]), int(idx[-1]) + 1
                parts.append(stream.read(lo, hi)[idx - lo])
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def check_finite(self, chunk: int = 4096) -> None:
        """Raise ``StreamError`` naming the stream and first bad row if any fused row holds NaN or inf."""
        for stream in self.streams:
            for start in range(0, stream.n_rows, chunk):
                block = stream.read(start, min(start + chunk, stream.n_rows))
                bad = ~np.isfinite(block).all(axis=1)
                if bad.any():
                    row = start + int(np.flatnonzero(bad)[0])
                    where = getattr(stream, "path", stream.name)
                    raise StreamError(f"{where}: session {self.name}: row {row} "
                                      f"({row * 1000.0 / stream.sample_rate_hz:.0f} ms) holds NaN or inf values")


def align_streams(session: str, streams: Sequence) -> tuple[float, int, list]:
    """Frame grid of the first stream and, for every other stream, the row per grid frame.

    Returns ``(step_ms, n_frames, rows)`` where ``rows[i]`` is None when stream i is on the grid already, else an
    int64 (n_frames,) array (row holding each frame centre).

    Raises
    ------
    AlignmentError
        If a stream's duration differs from the grid's by more than one frame (names session and stream).
    """
    if not streams:
        raise StreamError(f"session {session}: no feature streams given")
    ref = streams[0]
    step_ms = 1000.0 / ref.sample_rate_hz
    n_frames = ref.n_rows
    duration = n_frames * step_ms
    rows = [None]
    for stream in streams[1:]:
        own = stream.n_rows * 1000.0 / stream.sample_rate_hz
        if abs(own - duration) > step_ms + 1e-6:
            raise AlignmentError(f"session {session}: stream {stream.name} lasts {own:.0f} ms but {ref.name} "
                                 f"{duration:.0f} ms (more than one {step_ms:.1f} ms frame apart)")
        if abs(stream.sample_rate_hz - ref.sample_rate_hz) < 1e-9 and stream.n_rows >= n_frames:
            rows.append(None)
            continue
        centres = (np.arange(n_frames) + 0.5) * step_ms
        rows.append(np.clip(np.floor(centres * stream.sample_rate_hz / 1000.0), 0, stream.n_rows - 1).astype(np.int64))
    return step_ms, n_frames, rows


def sample_labels(segments: np.ndarray, n_frames: int, step_ms: float, class_ids: np.ndarray, source: str = "",
                  names: list[str] | None = None) -> np.ndarray:
    """Target class per frame by interval lookup at frame centres (:func:`sample_labels_masked` without the shares).

    Returns
    -------
    ndarray, int64, shape (n_frames,)
        Target id per frame; -1 = masked (gap, garbage, excluded class).
    """
    return sample_labels_masked(segments, n_frames, step_ms, class_ids, source, names)[0]


def sample_labels_masked(segments: np.ndarray, n_frames: int, step_ms: float, class_ids: np.ndarray,
                         source: str = "", names: list[str] | None = None) -> tuple[np.ndarray, dict]:
    """Target class per frame by interval lookup at frame centres, and the share of frames masked.

    Parameters
    ----------
    segments : structured array with ``from``, ``to`` (ms) and ``id`` (source class id, -1 = garbage)
    class_ids : int64 array, target id for each source id (-1 = excluded, -2 = unknown), e.g.
        ``LabelMap.lookup(scheme names)``
    source : name used in errors (file or session)
    names : source class names by id (for errors)

    Returns
    -------
    labels : int64 (n_frames,) -- target id, -1 where no segment covers the centre, garbage, or excluded classes.
        Where segments overlap, the one starting latest wins (a nested segment labels its span, its parent the
        rest): :func:`nova_infant.core.grid.segment_index_at`, the sampler review uses too.
    masked : dict -- ``{"frames", "masked", "gap", "garbage", "excluded"}``: frame count and shares (0..1).

    Raises
    ------
    AnnotationError
        If a label id is neither -1 nor a class of the scheme, or a class name used by a segment is neither mapped
        nor excluded by the label map (naming the file, the name and the time of its first segment).
    """
    gap, garbage, excluded = -4, -1, -3
    labels = np.full(n_frames, gap, np.int64)
    ids = np.asarray(segments["id"]).astype(np.int64) if len(segments) else np.zeros(0, np.int64)
    bad = (ids < -1) | (ids >= len(class_ids))
    if bad.any():
        raise AnnotationError(f"{source}: label id {int(ids[bad][0])} at {float(segments['from'][bad][0]) / 1000:.2f} s "
                              f"is outside the scheme (ids 0..{len(class_ids) - 1}, -1 = garbage)")
    if len(segments):
        target_of = np.where(ids >= 0, class_ids[np.clip(ids, 0, None)], garbage)
        unknown = np.flatnonzero(target_of == -2)
        if len(unknown):
            first = unknown[np.argmin(np.asarray(segments["from"], np.float64)[unknown])]
            name = names[ids[first]] if names is not None else f"id {ids[first]}"
            raise AnnotationError(f"{source}: class {name!r} at {float(segments['from'][first]) / 1000:.2f} s is "
                                  f"neither mapped nor excluded by the label set (add it to 'map' or 'exclude' of "
                                  f"a --label-set file)")
        centres = (np.arange(n_frames) + 0.5) * step_ms
        which = segment_index_at(centres, segments["from"], segments["to"])  # the one sampler (core.grid)
        target = np.where(ids >= 0, np.where(target_of == -1, excluded, target_of), garbage)
        labels = np.where(which >= 0, target[np.clip(which, 0, None)], gap).astype(np.int64)
    n = max(n_frames, 1)
    masked = {"frames": int(n_frames), "masked": float((labels < 0).sum() / n), "gap": float((labels == gap).sum() / n),
              "garbage": float((labels == garbage).sum() / n), "excluded": float((labels == excluded).sum() / n)}
    labels[labels < 0] = MASK
    return labels, masked


def read_annotation(path: str | os.PathLike):
    """Load a NOVA file-mode discrete annotation (:func:`nova_infant.core.annotations.read_annotation`).

    Returns
    -------
    (segments, class names by id) : see :func:`annotation_arrays`.

    Raises
    ------
    AnnotationError
        If the file is missing, unreadable or not discrete.
    """
    return annotation_arrays(read_file(path), str(path))


def annotation_arrays(anno, source: str):
    """Segments and class names of a discover-utils ``DiscreteAnnotation`` (:func:`nova_infant.core.schemes.class_names`).

    Parameters
    ----------
    anno : discover-utils ``DiscreteAnnotation``
    source : str
        File or origin named in error messages.

    Returns
    -------
    (segments, names) : (ndarray structured (from ms, to ms, id[, conf]), list of str)
        ``names[id]`` per class id.

    Raises
    ------
    AnnotationError
        If the annotation is not discrete.
    """
    return discrete_segments(anno, source)


@dataclass
class SessionSpec:
    """Which files make a session in NOVA's file layout ``<root>/<dataset>/<session>/``.

    Attributes
    ----------
    streams : list of str
        ``"<role>.<stream name>"`` (file ``<role>.<name>.stream``), fused in this order.
    label : (role, scheme, annotator) or None
        The label annotation ``<role>.<scheme>.<annotator>.annotation``; None for prediction.
    """

    streams: list[str]
    label: tuple[str, str, str] | None = None


def load_session(session_dir: str | os.PathLike, spec: SessionSpec, lmap: LabelMap | None = None,
                 check_finite: bool = True) -> SessionData:
    """Open one file-mode session lazily and sample its labels on the feature grid.

    Raises
    ------
    StreamError, AlignmentError, AnnotationError
        Missing/NaN streams, streams more than one frame apart, missing annotation or labels outside the scheme.
    """
    session_dir = Path(session_dir)
    streams = [FileRows(session_dir / f"{name}.stream", name) for name in spec.streams]
    return session_from_rows(session_dir.name, streams, _labels_from_file(session_dir, spec), lmap, check_finite)


def _labels_from_file(session_dir: Path, spec: SessionSpec):
    if spec.label is None:
        return None
    role, scheme, annotator = spec.label
    path = session_dir / f"{role}.{scheme}.{annotator}.annotation"
    segments, names = read_annotation(path)
    return segments, names, str(path)


def session_from_rows(name: str, streams: list, label_source, lmap: LabelMap | None, check_finite: bool = True) -> SessionData:
    """Build a :class:`SessionData` from row readers and, for training, labels sampled on the grid of the first stream.

    Parameters
    ----------
    name : str
        Session name (for messages).
    streams : list of FileRows or ArrayRows
        Fused in this order; aligned by :func:`align_streams`.
    label_source : (segments, class names, source) or None
        A discrete annotation's rows and names (:func:`annotation_arrays`); None for prediction.
    lmap : LabelMap or None
        Maps the coder's classes to training classes; needed with ``label_source``.
    check_finite : bool
        Refuse NaN/inf features.

    Returns
    -------
    SessionData

    Raises
    ------
    AlignmentError, StreamError
        Streams that disagree on the time axis, or non-finite features.
    AnnotationError
        A class the label map neither maps nor excludes.
    ValueError
        ``label_source`` without ``lmap``.
    """
    step_ms, n_frames, rows = align_streams(name, streams)
    data = SessionData(name, streams, step_ms, n_frames, None, rows)
    if check_finite:
        data.check_finite()
    if label_source is not None:
        if lmap is None:
            raise ValueError("a label map is needed to sample labels")
        segments, names, source = label_source
        data.labels, data.masked = sample_labels_masked(segments, n_frames, step_ms, lmap.lookup(names), source, names)
    return data


def list_sessions(root: str | os.PathLike, dataset: str | None = None) -> list[Path]:
    """Session folders under ``<root>/<dataset>`` (or ``root`` itself when it holds sessions).

    Parameters
    ----------
    root : path
    dataset : str, optional

    Returns
    -------
    list of pathlib.Path
        Sorted by name; hidden folders and the dataset's model folders (``dinov2_pca_basis``) left out.
    """
    base = Path(root) / dataset if dataset else Path(root)
    return sorted(p for p in base.iterdir() if is_session_folder(p))
