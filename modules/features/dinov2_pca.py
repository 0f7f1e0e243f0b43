"""DINOv2-PCA video features: patch tokens of a DINOv2 ViT reduced to k PCA components per patch, plus the CLS token.

Method: ICMI'24 ICEP-R paper, Eq. 1-3 (DINOv2 ViT-L/14 patch tokens -> PCA with 4 components per patch -> a
16 x 16 x 4 = 1024-d vector per frame for 224 px input); see docs/dinov2-pca.md. Where this code departs from the
reference code (github.com/Daksitha/SCHWAN-ICEP-R-Automation @ 4a2f397, its DINOv2 feature script) and why:

- One PCA basis per dataset and model by default (``pca="dataset"``): fitted once from frames sampled across the
  job's videos (:func:`fit_pca_over_videos`), saved as a file in the dataset folder (:func:`dataset_basis`) and
  reused by every later job, so feature j means the same thing in every frame of every session; each stream header
  records the basis (``pca_mode``, ``pca_basis`` = content hash, ``pca_k``, ``model``). A per-session PCA
  (``pca="session"``) and the reference code's per-frame PCA (``pca="frame"``) are kept for pictures and paper
  reproduction only; the ICEP-R trainer refuses their streams.
- Frames stream through the model in batches (:meth:`nova_infant.core.media.VideoSource.iter_batches`, decoding
  overlaps inference); raw tokens are never kept beyond one batch, except the tokens of the PCA fit sample
  (at most ``pca_fit_frames`` frames, 256 x 256 x 1024 float32 = 268 MB for ViT-L), which are reused so that the
  fit sample is not run through the model twice.
- The whole frame is resized to ``size x size`` by default (no crop); the reference's resize-256/centre-crop-224 is
  ``framing="center_crop"``; ``framing="crop:x,y,w,h"`` selects one role of a split-screen video.
- Output row ``k`` describes the frame on screen at the row centre ``(k + 0.5) * step`` ms (docs/alignment.md).

This module extracts the features (:func:`extract_dinov2`) and draws them (:func:`pca_picture`); the encoder and the
frames it sees are in :mod:`nova_infant.features.dinov2_encoder`, the PCA basis in
:mod:`nova_infant.features.dinov2_basis`.

Libraries: Hugging Face transformers (``Dinov2Model``), PyTorch (pre-processing, projection), scikit-learn
(``IncrementalPCA``, ``PCA``), decord (decoding), matplotlib (pictures).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from nova_infant.core.atomic import save_figure
from nova_infant.core.backbones import DEFAULT_DINOV2, LoadedBackbone
from nova_infant.core.errors import NovaInfantError, OptionError
from nova_infant.core.grid import FrameGrid
from nova_infant.core.media import VideoInfo, VideoSource
from nova_infant.core.streams import make_ssi_stream
from nova_infant.features.dinov2_basis import (PatchPCA, _check_k, _new_ipca, _partial_fit, convert_npz_basis,
                                               dataset_basis, dataset_dir_of, default_basis_path, load_pca)
from nova_infant.features.dinov2_encoder import (DinoV2Encoder, Framing, _as_backbone, _progress, _resolve_grid,
                                                 fit_frame_indices, open_for_model, row_frame_indices)

PCA_MEDIA_TYPE = "feature;video;dinov2"
# NOVA matches an input "stream:SSIStream:dinov2" by substring of the stream type: no "dinov2" in the CLS type
CLS_MEDIA_TYPE = "feature;video;dino_cls"
OUTPUTS = ("pca", "cls", "both")


# ---------------------------------------------------------------- extraction


@dataclass
class DinoV2Features:
    """Features of one video on its session grid.

    Attributes
    ----------
    pca : ndarray (n_rows, grid_side**2 * k), float32, or None
        Patch-row-major PCA grid: column ``(r * grid_side + c) * k + j`` = component j of patch (r, c).
    cls : ndarray (n_rows, token_dim), float32, or None
    grid : FrameGrid
        Row k covers [k*step, (k+1)*step) ms; rate = 1000/step Hz.
    row_frames : ndarray (n_rows,), int64
        Video frame used for each row (the frame on screen at the row centre).
    video : VideoInfo
    pca_model : PatchPCA or None
        The PCA applied (None for ``pca="frame"`` or CLS only).
    meta : dict of str -> str
        Stream metadata: model, weights label, pca source, k, size, framing.
    """

    pca: np.ndarray | None
    cls: np.ndarray | None
    grid: FrameGrid
    row_frames: np.ndarray
    video: VideoInfo
    grid_side: int
    k: int
    pca_model: PatchPCA | None
    meta: dict

    def pca_dim_names(self) -> list[str]:
        """``p<r>_<c>_pc<j>`` for every column of :attr:`pca`."""
        return [f"p{r}_{c}_pc{j}" for r in range(self.grid_side) for c in range(self.grid_side) for j in range(self.k)]

    def cls_dim_names(self) -> list[str]:
        """``cls_<i>`` for every column of :attr:`cls`."""
        return [f"cls_{i}" for i in range(self.cls.shape[1])] if self.cls is not None else []

    def pca_image(self, row: int) -> np.ndarray:
        """PCA values of one row as a patch grid: float32 (grid_side, grid_side, k)."""
        return self.pca[row].reshape(self.grid_side, self.grid_side, self.k)

    def pca_stream(self, **names):
        """The PCA grid as a discover-utils ``SSIStream`` (media type ``feature;video;dinov2``)."""
        return make_ssi_stream(self.pca, self.grid.sample_rate_hz, PCA_MEDIA_TYPE, self.pca_dim_names(),
                               custom_meta=self.meta, **names)

    def cls_stream(self, **names):
        """The CLS tokens as a discover-utils ``SSIStream`` (media type ``feature;video;dino_cls``)."""
        return make_ssi_stream(self.cls, self.grid.sample_rate_hz, CLS_MEDIA_TYPE, self.cls_dim_names(),
                               custom_meta=self.meta, **names)


def extract_dinov2(video_path: str | os.PathLike, model: LoadedBackbone | str = DEFAULT_DINOV2, *, size: int = 224,
                   k: int = 4, pca: str | PatchPCA = "dataset", pca_fit_frames: int = 256, output: str = "both",
                   framing: str | Framing = "resize", frame_step="video", batch_size: int = 8,
                   duration_ms: float | None = None, reference_duration_ms: float | None = None,
                   session_duration_ms: float | None = None, device: str = "auto", bf16: bool | None = None, precision: str = "auto", progress: bool = False,
                   pca_basis: str | os.PathLike | None = None,
                   pca_fit_videos: Sequence[str | os.PathLike] | None = None) -> DinoV2Features:
    """Extract DINOv2-PCA patch features and/or CLS tokens of a video on its session grid.

    Method: ICMI'24 ICEP-R paper, Eq. 1-3 (PCA of DINOv2 patch tokens, 4 components per patch); one PCA basis per
    dataset and model instead of one per frame (docs/dinov2-pca.md).

    Parameters
    ----------
    video_path : path
        Any video FFmpeg reads.
    model : LoadedBackbone or str
        A loaded backbone, or a hub id / local directory for :func:`nova_infant.core.backbones.load_dinov2`.
    size : int
        Input side (px), a multiple of 14; 224 gives a 16 x 16 patch grid.
    k : int
        PCA components per patch.
    pca : "dataset" | "session" | "frame" | path | PatchPCA
        ``dataset`` (default): the dataset's one basis (:func:`dataset_basis`): loaded from ``pca_basis``, or fitted
        on ``pca_fit_videos`` and saved there when the file does not exist yet. ``session``: IncrementalPCA fitted
        on an evenly spaced sample of ``pca_fit_frames`` distinct row frames of this video (pictures only: not
        comparable across sessions); ``frame``: sklearn PCA re-fitted on every frame (paper reproduction only);
        a path: a PCA basis folder saved by :func:`save_pca` (also one basis for every session).
    pca_basis : path, optional
        Basis file of ``pca="dataset"``; default :func:`default_basis_path` of the folder holding the video's
        session folder (``<root>/<dataset>/dinov2_pca_basis/<model>-<fingerprint>-k<k>-<size>px-<framing>/``, a
        saved-model folder).
    pca_fit_videos : paths, optional
        Videos to fit a missing dataset basis on (default: this video only; pass every session of the job, or
        the training sessions only).
    output : "pca" | "cls" | "both"
    framing : str or Framing
        ``resize`` | ``center_crop`` | ``crop:x,y,w,h`` (see :func:`parse_framing`).
    frame_step : str or float
        ``video`` (every frame; rate = fps), or ms / ``"40ms"`` / ``"25fps"`` (see
        :func:`nova_infant.core.grid.parse_step_ms`).
    batch_size : int
        Frames per forward pass.
    duration_ms, reference_duration_ms, session_duration_ms : float, optional
        Session duration (ms) that sets the row count ``floor(D / step)``: the option, the session's reference
        input, the NOVA session; priority in that order, then the video's own duration
        (:func:`nova_infant.core.grid.session_grid`).
    device, precision : str
        Where and in what precision the model runs when ``model`` is not loaded yet (``auto``/``fp32``/``bf16``/
        ``int8``, :func:`nova_infant.core.backbones.resolve_precision`); ``bf16`` is the deprecated flag (False = fp32).
        The stream header's ``precision`` says which was used; PCA and CLS are float32 in every case.

    Returns
    -------
    DinoV2Features
        ``pca`` (n_rows, (size/14)^2 * k) and/or ``cls`` (n_rows, hidden size), float32, finite.

    Raises
    ------
    VideoDecodeError
        Unreadable or truncated video (also when a frame fails to decode mid-way).
    WeightsUnavailableError
        Wrong or missing model directory / weights.
    OptionError
        Bad option (e.g. frame step 0, size not a multiple of 14, unknown output), naming the video.
    PCAFileError
        Saved PCA missing, malformed or fitted on other weights.
    """
    video_path = str(video_path)
    output = str(output or "both").strip().lower()
    if output not in OUTPUTS:
        raise OptionError(f"option output: expected pca, cls or both, got {output!r}")
    batch_size = int(batch_size)
    if batch_size < 1:
        raise OptionError(f"option batch_size: must be >= 1, got {batch_size}")
    backbone = _as_backbone(model, device, bf16, precision)
    encoder = DinoV2Encoder(backbone, size, framing)
    source = open_for_model(video_path, encoder.size, encoder.framing)
    info = source.info
    grid = _resolve_grid(info, frame_step, duration_ms, reference_duration_ms, session_duration_ms)
    k = _check_k(k, encoder)
    want_pca, want_cls = output in ("pca", "both"), output in ("cls", "both")

    row_frames = row_frame_indices(info, grid)
    unique, inverse = np.unique(row_frames, return_inverse=True)
    position = {int(f): i for i, f in enumerate(unique)}
    pca_out = np.zeros((len(unique), encoder.n_patches * k), np.float32) if want_pca else None
    cls_out = np.zeros((len(unique), encoder.token_dim), np.float32) if want_cls else None

    pca_model, pca_source, done = None, "none", np.zeros(len(unique), bool)
    if want_pca:
        if isinstance(pca, PatchPCA):
            pca_model, pca_source = pca, pca.path or "given"
            pca_model.check_compatible(encoder, pca.path or "given PCA", k)
        elif str(pca).strip().lower() == "dataset":
            basis_path = pca_basis or default_basis_path(dataset_dir_of([video_path]), encoder, backbone.name, k)
            pca_model, _ = dataset_basis(basis_path, list(pca_fit_videos or [video_path]), backbone, size=encoder.size,
                                         k=k, pca_fit_frames=pca_fit_frames, framing=encoder.framing,
                                         frame_step=frame_step, batch_size=batch_size, progress=progress)
            pca_source = "dataset"
        elif str(pca).strip().lower() == "frame":
            pca_source = "frame"
        elif str(pca).strip().lower() == "session":
            pca_source = "session"
            fit_frames = fit_frame_indices(unique, pca_fit_frames)
            ipca, cached = _new_ipca(k), []
            n_batches = math.ceil(len(fit_frames) / batch_size)
            for idx, frames in _progress(source.iter_batches(fit_frames, batch_size), n_batches,
                                         "dinov2 PCA fit", progress):
                patches, cls = encoder.encode(frames, video_path)
                _partial_fit(ipca, patches, video_path)
                cached.append((idx, patches, cls))  # bounded by pca_fit_frames (see module docstring)
            pca_model = PatchPCA.from_sklearn(ipca, encoder, backbone.name, [video_path])
            for idx, patches, cls in cached:
                _store(idx, patches, cls, position, pca_out, cls_out, pca_model, k, done)
            cached.clear()
        else:
            pca_model, pca_source = load_pca(str(pca)), os.path.abspath(str(pca))
            pca_model.check_compatible(encoder, str(pca), k)

    todo = unique[~done]
    n_batches = math.ceil(len(todo) / batch_size)
    for idx, frames in _progress(source.iter_batches(todo, batch_size), n_batches, "dinov2", progress):
        patches, cls = encoder.encode(frames, video_path)
        _store(idx, patches, cls, position, pca_out, cls_out, pca_model, k, done)

    meta = {"model": str(backbone.name), "weights": backbone.weights_label, "pca": pca_source if want_pca else "none",
            "k": str(k), "input_size": str(encoder.size), "precision": backbone.precision,
            "framing": encoder.framing.text, "frame_step_ms": f"{grid.step_ms:.6g}",
            "video": os.path.basename(video_path), **pca_meta(pca_source if want_pca else "none", pca_model, backbone.name, k)}
    if len(unique) != len(row_frames) or not np.array_equal(unique, row_frames):  # rows share or skip frames
        pca_out = pca_out[inverse] if want_pca else None
        cls_out = cls_out[inverse] if want_cls else None
    return DinoV2Features(pca_out, cls_out, grid, row_frames, info, encoder.grid_side, k, pca_model, meta)


def pca_meta(source: str, pca_model: PatchPCA | None, model: str, k: int) -> dict:
    """Stream-header keys naming the PCA basis. The ICEP-R trainer refuses "session"/"frame" streams and sessions whose
    ``pca_basis`` differ.

    Parameters
    ----------
    source : str
        ``"dataset"`` (the dataset basis or any saved basis file), ``"session"``, ``"frame"`` or ``"none"``.
    pca_model : PatchPCA or None
    model : str
        Backbone id.
    k : int
        Components per patch.

    Returns
    -------
    dict
        ``pca_mode``, ``pca_basis`` (:attr:`PatchPCA.basis_hash`, empty for "frame"/"none"), ``pca_k``,
        ``pca_model``.
    """
    mode = source if source in ("session", "frame", "none") else "dataset"
    return {"pca_mode": mode, "pca_basis": pca_model.basis_hash if pca_model is not None else "",
            "pca_k": str(k) if mode != "none" else "", "pca_model": str(model)}


def _store(idx, patches, cls, position, pca_out, cls_out, pca_model, k, done) -> None:
    rows = np.fromiter((position[int(i)] for i in idx), dtype=np.int64, count=len(idx))
    if pca_out is not None:
        if pca_model is not None:
            values = pca_model.transform(patches).cpu().numpy()
        else:  # "frame": the reference code's per-frame PCA (not a stable feature space)
            from sklearn.decomposition import PCA

            values = np.stack([PCA(n_components=k).fit_transform(p.cpu().numpy()) for p in patches])
        pca_out[rows] = values.reshape(len(idx), -1)
    if cls_out is not None:
        cls_out[rows] = cls.cpu().numpy()
    done[rows] = True


# ---------------------------------------------------------------- picture (paper, Figure 3)


def pca_picture(frame: np.ndarray, pca_grid: np.ndarray, path: str | os.PathLike, mode: str = "rgb",
                title: str = "") -> Path:
    """Save a PNG of a frame next to its first PCA components rendered as colours (paper, Figure 3).

    Each component is min-max scaled to [0, 1] over the patch grid. ``rgb``: components 0, 1, 2 -> R, G, B.
    ``cmyk``: components 0..3 -> C, M, Y, K, shown as RGB = (1 - C)(1 - K), (1 - M)(1 - K), (1 - Y)(1 - K).
    The patch grid is upscaled (nearest) to the frame's height.

    Parameters
    ----------
    frame : ndarray (H, W, 3), uint8
    pca_grid : ndarray (G, G, k), float
        k >= 3 for rgb, k >= 4 for cmyk.
    path : path of the PNG (written atomically, matplotlib Agg)

    Raises
    ------
    OptionError
        If ``mode`` is unknown or ``k`` too small for it.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    mode = mode.lower()
    need = {"rgb": 3, "cmyk": 4}.get(mode)
    if need is None:
        raise OptionError(f"picture mode must be rgb or cmyk, got {mode!r}")
    if pca_grid.shape[-1] < need:
        raise OptionError(f"picture mode {mode} needs {need} PCA components, the features have {pca_grid.shape[-1]}")
    values = np.asarray(pca_grid[..., :need], np.float64)
    low, high = values.min(axis=(0, 1)), values.max(axis=(0, 1))
    scaled = (values - low) / np.where(high > low, high - low, 1.0)
    if mode == "cmyk":
        c, m, y, kk = (scaled[..., i] for i in range(4))
        scaled = np.stack([(1 - c) * (1 - kk), (1 - m) * (1 - kk), (1 - y) * (1 - kk)], axis=-1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(8, 4), dpi=100)
    axes[0].imshow(frame)
    axes[0].set_title("frame")
    # stretched over the frame's extent: with framing "resize" patch (r, c) covers that part of the frame
    axes[1].imshow(scaled, interpolation="nearest", extent=(0, frame.shape[1], frame.shape[0], 0))
    axes[1].set_title(f"PCA components 1-{need} as {mode.upper()}")
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()

    return save_figure(fig, path, dpi=None)


def picture_of_row(features: DinoV2Features, row: int, path: str | os.PathLike, mode: str = "rgb") -> Path:
    """Render one row of extracted features with :func:`pca_picture` (decodes that one frame).

    Parameters
    ----------
    features : DinoV2Features
    row : int
        Grid row.
    path : path
        Output PNG.
    mode : str
        ``"rgb"`` (components 0-2 as R, G, B) or ``"cmyk"`` (:func:`pca_picture`).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    OptionError
        If the features have no PCA output, ``row`` is outside the rows, or ``mode`` does not fit k.
    """
    if features.pca is None:
        raise OptionError("a PCA picture needs the pca output (option output = pca or both)")
    if not 0 <= row < len(features.row_frames):
        raise OptionError(f"{features.video.path}: row {row} is outside the {len(features.row_frames)} rows")
    frame_index = int(features.row_frames[row])
    frame = VideoSource(features.video.path).read([frame_index])[0]
    title = (f"{os.path.basename(features.video.path)} row {row} ({row * features.grid.step_ms:.0f} ms, frame "
             f"{frame_index}), PCA {features.meta['pca']}")
    return pca_picture(frame, features.pca_image(row), path, mode, title)


if __name__ == "__main__":  # python -m nova_infant.features.dinov2_pca OLD.npz [FOLDER]: convert an old basis
    import sys

    try:
        folder = convert_npz_basis(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    except (IndexError, NovaInfantError) as exc:
        print(f"error: {exc if isinstance(exc, NovaInfantError) else 'usage: OLD.npz [FOLDER]'}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{folder}: PCA basis {load_pca(folder).basis_hash} converted from {sys.argv[1]}")
