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

Libraries: Hugging Face transformers (``Dinov2Model``), PyTorch (pre-processing, projection), scikit-learn
(``IncrementalPCA``, ``PCA``), decord (decoding), matplotlib (pictures).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from nova_infant.core.atomic import save_figure
from nova_infant.core.backbones import DEFAULT_DINOV2, LoadedBackbone, load_dinov2
from nova_infant.core.errors import NovaInfantError, OptionError, SavedModelError, VideoDecodeError
from nova_infant.core.grid import FrameGrid, session_grid
from nova_infant.core.media import VideoInfo, VideoSource
from nova_infant.core.saved import load_model, save_model
from nova_infant.core.streams import make_ssi_stream

log = logging.getLogger(__name__)

PCA_MEDIA_TYPE = "feature;video;dinov2"
# NOVA matches an input "stream:SSIStream:dinov2" by substring of the stream type: no "dinov2" in the CLS type
CLS_MEDIA_TYPE = "feature;video;dino_cls"
OUTPUTS = ("pca", "cls", "both")
# Reference pre-processing (torchvision Resize(256) + CenterCrop(224)): short side = size * 256 / 224.
_CENTER_CROP_RATIO = 256.0 / 224.0


#: A saved PCA basis is missing, malformed, of the old ``.npz`` format, or was fitted on another model. The one
#: error type of saved models (:class:`nova_infant.core.errors.SavedModelError`), under its former name.
PCAFileError = SavedModelError
#: ``kind`` of a PCA basis saved-model folder.
PCA_KIND = "dinov2-pca-basis"


# ---------------------------------------------------------------- framing and pre-processing


@dataclass(frozen=True)
class Framing:
    """How a video frame becomes the model's ``size x size`` input.

    Attributes
    ----------
    mode : "resize" | "center_crop" | "crop"
        ``resize``: the whole frame is resized to size x size (aspect ratio not kept, nothing cut off; default).
        ``center_crop``: reference pre-processing: short side resized to ``round(size * 256 / 224)``, then the
        central size x size square is kept (drops about half of a 16:9 frame).
        ``crop``: the rectangle ``box`` is cut out, then resized to size x size (one role of a split-screen).
    box : tuple of 4 floats, optional
        ``(x, y, w, h)``: pixels if ``fractions`` is False, else fractions of the frame width/height.
    fractions : bool
    """

    mode: str = "resize"
    box: tuple | None = None
    fractions: bool = False

    @property
    def text(self) -> str:
        """The option string this framing was parsed from (normalised)."""
        if self.mode != "crop":
            return self.mode
        return "crop:" + ",".join(f"{v:g}" for v in self.box)

    def pixel_box(self, width: int, height: int, source: str = "video") -> tuple[int, int, int, int]:
        """The crop rectangle in pixels ``(x, y, w, h)`` for a ``width x height`` frame.

        Raises
        ------
        OptionError
            If the rectangle is empty or leaves the frame.
        """
        x, y, w, h = self.box
        if self.fractions:
            x, y, w, h = x * width, y * height, w * width, h * height
        x, y, w, h = (int(round(v)) for v in (x, y, w, h))
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise OptionError(f"{source}: option framing {self.text!r} gives the rectangle x={x} y={y} w={w} h={h}, "
                              f"which is empty or leaves the {width}x{height} frame")
        return x, y, w, h


def parse_framing(value: str | None) -> Framing:
    """Parse the ``framing`` option: ``resize`` (default), ``center_crop`` or ``crop:x,y,w,h``.

    In ``crop:x,y,w,h`` the four numbers are pixels when all are integers (``crop:0,0,960,1080`` = left half of a
    1920x1080 frame), and fractions of the frame width/height when any has a decimal point
    (``crop:0.5,0,0.5,1.0`` = right half of any frame).

    Raises
    ------
    OptionError
        For any other text, or a rectangle that is not four non-negative numbers with positive width and height.
    """
    text = (value or "resize").strip().lower().replace(" ", "")
    if text in ("resize", "center_crop"):
        return Framing(text)
    match = re.fullmatch(r"crop:([^,]+),([^,]+),([^,]+),([^,]+)", text)
    if not match:
        raise OptionError(f"option framing: expected resize, center_crop or crop:x,y,w,h, got {value!r}")
    try:
        numbers = tuple(float(v) for v in match.groups())
    except ValueError:
        raise OptionError(f"option framing: crop needs four numbers, got {value!r}") from None
    fractions = any("." in v for v in match.groups())
    if any(v < 0 or not math.isfinite(v) for v in numbers) or numbers[2] <= 0 or numbers[3] <= 0:
        raise OptionError(f"option framing: crop needs x,y >= 0 and w,h > 0, got {value!r}")
    if fractions and (numbers[0] + numbers[2] > 1 + 1e-9 or numbers[1] + numbers[3] > 1 + 1e-9):
        raise OptionError(f"option framing: a fractional crop must stay inside the frame (x+w <= 1, y+h <= 1), got {value!r}")
    return Framing("crop", numbers, fractions)


def preprocess_frames(frames: np.ndarray, size: int, framing: Framing, image_mean: Sequence[float],
                      image_std: Sequence[float], device=None, dtype=None, source: str = "video"):
    """Turn decoded frames into normalised model input, in torch.

    Parameters
    ----------
    frames : ndarray of shape (b, H, W, 3), uint8, RGB
    size : int
        Output side in px (a multiple of the patch size, 14 for DINOv2).
    framing : Framing
        See :func:`parse_framing`. Resizing is bilinear with antialiasing (``torch.nn.functional.interpolate``).
    image_mean, image_std : sequence of 3 floats
        The processor's normalisation (ImageNet mean/std for DINOv2), applied after scaling to [0, 1].

    Returns
    -------
    torch.Tensor of shape (b, 3, size, size), ``dtype`` on ``device``.
    """
    import torch
    import torch.nn.functional as F

    height, width = frames.shape[1], frames.shape[2]
    if framing.mode == "crop":
        bx, by, bw, bh = framing.pixel_box(width, height, source)
        frames = frames[:, by:by + bh, bx:bx + bw]
        height, width = bh, bw
    if framing.mode == "center_crop":
        short = int(round(size * _CENTER_CROP_RATIO))
        scale = short / min(height, width)
        target = (max(size, int(round(height * scale))), max(size, int(round(width * scale))))
    else:
        target = (size, size)
    resized = []
    for frame in frames:  # one full-size float frame at a time (a 1080p batch in float32 would be 200 MB)
        x = torch.from_numpy(np.ascontiguousarray(frame)).to(device=device).permute(2, 0, 1)[None].float()
        resized.append(F.interpolate(x, size=target, mode="bilinear", antialias=True, align_corners=False))
    x = torch.cat(resized)
    if framing.mode == "center_crop":
        top, left = (target[0] - size) // 2, (target[1] - size) // 2
        x = x[:, :, top:top + size, left:left + size]
    mean = torch.tensor(image_mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(image_std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    x = (x / 255.0 - mean) / std
    return x.to(dtype=dtype) if dtype is not None else x


def open_for_model(video_path: str, size: int, framing: Framing) -> VideoSource:
    """Open a video for the encoder, letting the decoder scale large frames down first.

    decord buffers a few hundred decoded frames ahead of the consumer (about 0.7 GB at 720p, measured), so for
    ``resize`` and ``center_crop`` framing frames are decoded with their short side at most ``2 * size`` px (aspect
    kept; the final resize to the model input stays in torch). ``crop`` framing decodes at full resolution because
    its box may be given in pixels of the original video.

    Raises
    ------
    VideoDecodeError
        As :class:`nova_infant.core.media.VideoSource`.
    """
    source = VideoSource(video_path)
    info = source.info
    factor = (2 * size) / min(info.width, info.height)
    if framing.mode == "crop" or factor >= 1:
        return source
    width, height = int(round(info.width * factor / 2)) * 2, int(round(info.height * factor / 2)) * 2
    return VideoSource(video_path, width=width, height=height)


# ---------------------------------------------------------------- encoder


class DinoV2Encoder:
    """A loaded DINOv2 model that turns frames into patch tokens and CLS tokens.

    Parameters
    ----------
    backbone : LoadedBackbone
        From :func:`nova_infant.core.backbones.load_dinov2` (any size, with or without register tokens).
    size : int
        Input side in px; must be a multiple of the model's patch size (14). Default 224 -> a 16 x 16 patch grid.
    framing : Framing or str

    Raises
    ------
    OptionError
        If ``size`` is not a positive multiple of the patch size.
    """

    def __init__(self, backbone: LoadedBackbone, size: int = 224, framing: Framing | str = "resize"):
        config = backbone.model.config
        self.backbone = backbone
        self.patch_size = int(config.patch_size)
        if int(size) <= 0 or int(size) % self.patch_size:
            raise OptionError(f"option size: must be a positive multiple of the patch size {self.patch_size} px, got {size!r}")
        self.size = int(size)
        self.framing = parse_framing(framing) if isinstance(framing, str) else framing
        self.grid_side = self.size // self.patch_size
        self.n_patches = self.grid_side ** 2
        self.token_dim = int(config.hidden_size)
        # last_hidden_state = [CLS, registers..., patches...] (already layer-normed, like x_norm_patchtokens)
        self.first_patch = 1 + int(getattr(config, "num_register_tokens", 0) or 0)
        processor = backbone.processor
        self.image_mean = list(getattr(processor, "image_mean", None) or [0.485, 0.456, 0.406])
        self.image_std = list(getattr(processor, "image_std", None) or [0.229, 0.224, 0.225])

    @property
    def fingerprint(self) -> str:
        """Short hash identifying the weights (CLS token + patch embedding, rounded to bfloat16): a PCA file fitted
        with other weights is refused even when the model name differs only by path."""
        import torch

        embeddings = self.backbone.model.embeddings
        digest = hashlib.sha1()
        for tensor in (embeddings.cls_token, embeddings.patch_embeddings.projection.weight):
            values = tensor.detach().to("cpu", torch.bfloat16).float().numpy().ravel()[:65536]
            digest.update(np.ascontiguousarray(values, dtype=np.float32).tobytes())
        return digest.hexdigest()[:16]

    def encode(self, frames: np.ndarray, source: str = "video"):
        """Run one batch of frames through the model.

        Parameters
        ----------
        frames : ndarray of shape (b, H, W, 3), uint8

        Returns
        -------
        (patches, cls) : torch.Tensor (b, n_patches, token_dim) float32 and (b, token_dim) float32, on the model's
            device. Patches are row-major over the ``grid_side x grid_side`` grid (index = r * grid_side + c).
        """
        import torch

        inputs = preprocess_frames(frames, self.size, self.framing, self.image_mean, self.image_std,
                                   device=self.backbone.device, dtype=self.backbone.dtype, source=source)
        with torch.inference_mode(), self.backbone.autocast():
            hidden = self.backbone.model(pixel_values=inputs).last_hidden_state
        hidden = hidden.float()  # PCA and CLS stay float32 whatever the model's precision
        return hidden[:, self.first_patch:], hidden[:, 0]


# ---------------------------------------------------------------- PCA over patch tokens


@dataclass
class PatchPCA:
    """A PCA of DINOv2 patch tokens, applied per patch: ``(x - mean) @ components.T``.

    Attributes
    ----------
    components : ndarray (k, token_dim), float32
    mean : ndarray (token_dim,), float32
    explained_variance : ndarray (k,), float32
    explained_variance_ratio : ndarray (k,), float32
    model, fingerprint : str
        Model name (hub id or directory) and weights hash (:attr:`DinoV2Encoder.fingerprint`).
    size : int
        Input size (px) the tokens were computed at.
    framing : str
    n_tokens : int
        Patch tokens the PCA was fitted on.
    sources : list of str
        Videos it was fitted on.
    """

    components: np.ndarray
    mean: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    model: str = ""
    fingerprint: str = ""
    size: int = 224
    framing: str = "resize"
    n_tokens: int = 0
    sources: list = field(default_factory=list)
    path: str = ""

    @property
    def basis_hash(self) -> str:
        """Content hash of the basis (SHA-1 of the float32 ``components`` and ``mean`` bytes, 16 hex digits):
        two streams with the same hash were projected on the same basis."""
        digest = hashlib.sha1()
        for array in (self.components, self.mean):
            digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
        return digest.hexdigest()[:16]

    @property
    def n_components(self) -> int:
        """k, the PCA components kept per patch token (rows of ``components``)."""
        return int(self.components.shape[0])

    @property
    def token_dim(self) -> int:
        """Width of one patch token the basis projects (the backbone's hidden size, e.g. 1024 for ViT-L/14)."""
        return int(self.components.shape[1])

    @classmethod
    def from_sklearn(cls, pca, encoder: DinoV2Encoder, model: str, sources: Sequence[str] = ()) -> "PatchPCA":
        """Copy a fitted ``IncrementalPCA``/``PCA`` (components_, mean_, explained_variance_[ratio_])."""
        return cls(np.asarray(pca.components_, np.float32), np.asarray(pca.mean_, np.float32),
                   np.asarray(pca.explained_variance_, np.float32),
                   np.asarray(pca.explained_variance_ratio_, np.float32), str(model), encoder.fingerprint,
                   encoder.size, encoder.framing.text, int(getattr(pca, "n_samples_seen_", 0)), list(sources))

    def transform(self, patches):
        """Project patch tokens: torch.Tensor (b, P, token_dim) float32 -> (b, P, k) float32 (same device)."""
        import torch

        mean = torch.from_numpy(self.mean).to(patches.device)
        components = torch.from_numpy(self.components).to(patches.device)
        return (patches - mean) @ components.T

    def check_compatible(self, encoder: DinoV2Encoder, source: str, k: int | None = None) -> None:
        """Refuse a PCA fitted on tokens of another width or other weights, or with another ``k`` than asked for;
        warn on another size/framing.

        Raises
        ------
        PCAFileError
            Naming ``source`` (the PCA file) and the mismatch.
        """
        if k is not None and self.n_components != int(k):
            raise PCAFileError(f"{source}: PCA has {self.n_components} components per patch, option k asks for {k}")
        if self.token_dim != encoder.token_dim:
            raise PCAFileError(f"{source}: PCA was fitted on {self.token_dim}-d tokens ({self.model}) but this model "
                               f"gives {encoder.token_dim}-d tokens")
        if self.fingerprint and self.fingerprint != encoder.fingerprint:
            raise PCAFileError(f"{source}: PCA was fitted on the weights of {self.model} (fingerprint "
                               f"{self.fingerprint}), not on the model used now (fingerprint {encoder.fingerprint})")
        if self.size != encoder.size or self.framing != encoder.framing.text:
            log.warning("%s: PCA was fitted at size %d / framing %s, now size %d / framing %s", source, self.size,
                        self.framing, encoder.size, encoder.framing.text)


def save_pca(pca: PatchPCA, path: str | os.PathLike) -> Path:
    """Save a :class:`PatchPCA` as a saved-model folder (:func:`nova_infant.core.saved.save_model`, kind
    ``dinov2-pca-basis``), atomically.

    ``model.safetensors`` holds ``components`` (k, D) float32, ``mean`` (D,) float32, ``explained_variance`` (k,)
    and ``explained_variance_ratio`` (k,); ``config.json`` holds ``model``, ``fingerprint``, ``size`` (px),
    ``framing``, ``n_tokens``, ``sources`` and ``basis_hash``.

    Parameters
    ----------
    pca : PatchPCA
    path : path
        Folder to write (a trailing ``.npz`` is dropped: bases were single ``.npz`` files before).

    Returns
    -------
    Path of the folder.

    Raises
    ------
    PathError, OutputError
        As :func:`nova_infant.core.saved.save_model`.
    """
    path = Path(path)
    if path.suffix == ".npz":
        path = path.with_suffix("")
    config = {"model": pca.model, "fingerprint": pca.fingerprint, "size": int(pca.size), "framing": pca.framing,
              "n_tokens": int(pca.n_tokens), "n_components": pca.n_components, "token_dim": pca.token_dim,
              "sources": [str(x) for x in pca.sources], "basis_hash": pca.basis_hash}
    tensors = {"components": np.asarray(pca.components, np.float32), "mean": np.asarray(pca.mean, np.float32),
               "explained_variance": np.asarray(pca.explained_variance, np.float32),
               "explained_variance_ratio": np.asarray(pca.explained_variance_ratio, np.float32)}
    readme = (f"PCA of DINOv2 patch tokens ({pca.n_components} components of {pca.token_dim}-d tokens of "
              f"{pca.model}, weights fingerprint {pca.fingerprint}, {pca.size} px, framing {pca.framing}), "
              f"fitted with scikit-learn IncrementalPCA on {pca.n_tokens} patch tokens of {len(pca.sources)} videos "
              f"(unsupervised; ICMI'24 ICEP-R paper Eq. 1-3, one basis per dataset: docs/dinov2-pca.md). Streams "
              f"projected on it carry pca_basis={pca.basis_hash} in their header.")
    return save_model(path, PCA_KIND, config, tensors, readme=readme)


def load_pca(path: str | os.PathLike) -> PatchPCA:
    """Load a PCA basis folder saved by :func:`save_pca` (checksums verified).

    Raises
    ------
    SavedModelError (alias ``PCAFileError``)
        If the folder is missing, damaged, not a PCA basis, an old ``.npz`` basis (the message says how to
        convert it: :func:`convert_npz_basis`), or its arrays disagree in shape.
    """
    path = Path(path)
    if path.is_file():
        raise SavedModelError(f"{path}: a PCA basis in the old .npz format; convert it (same basis, same hash) with "
                              f"python -m nova_infant.features.dinov2_pca {path} or re-fit it (nova-infant dinov2 "
                              f"fit-pca)")
    if not path.exists():
        raise SavedModelError(f"{path}: no such PCA basis folder")
    config, arrays = load_model(path, kind=PCA_KIND)
    try:
        pca = PatchPCA(np.asarray(arrays["components"], np.float32), np.asarray(arrays["mean"], np.float32),
                       np.asarray(arrays["explained_variance"], np.float32),
                       np.asarray(arrays["explained_variance_ratio"], np.float32), str(config["model"]),
                       str(config["fingerprint"]), int(config["size"]), str(config["framing"]),
                       int(config["n_tokens"]), [str(x) for x in config["sources"]], str(path.resolve()))
    except (KeyError, TypeError, ValueError) as exc:
        raise SavedModelError(f"{path / 'config.json'}: not a DINOv2 PCA basis ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:150] if str(exc) else ''})") from None
    if pca.components.ndim != 2 or pca.mean.shape != (pca.token_dim,) or not np.isfinite(pca.components).all():
        raise SavedModelError(f"{path / 'model.safetensors'}: PCA arrays are malformed (components "
                              f"{pca.components.shape}, mean {pca.mean.shape})")
    return pca


def convert_npz_basis(npz_path: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Convert a basis saved as ``.npz`` by nova-infant before the saved-model format into a basis folder.

    The arrays are copied unchanged, so :attr:`PatchPCA.basis_hash` (recorded in stream headers and ICEP-R
    bundles) stays the same. The ``.npz`` file is left in place.

    Parameters
    ----------
    npz_path : path
    out : path, optional
        Folder to write (default: ``npz_path`` without ``.npz``, the name :func:`default_basis_path` now uses).

    Raises
    ------
    SavedModelError
        If the file is not an ``.npz`` PCA of the old layout.
    """
    npz_path = Path(npz_path)
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            pca = PatchPCA(np.asarray(data["components"], np.float32), np.asarray(data["mean"], np.float32),
                           np.asarray(data["explained_variance"], np.float32),
                           np.asarray(data["explained_variance_ratio"], np.float32), str(data["model"]),
                           str(data["fingerprint"]), int(data["size"]), str(data["framing"]), int(data["n_tokens"]),
                           [str(x) for x in data["sources"]])
    except (OSError, ValueError, KeyError) as exc:
        raise SavedModelError(f"{npz_path}: not a DINOv2 PCA file ({str(exc).splitlines()[0][:150] if str(exc) else type(exc).__name__})") from None
    return save_pca(pca, out if out is not None else npz_path.with_suffix(""))


def basis_file_name(model: str, fingerprint: str, k: int, size: int, framing: str) -> str:
    """Folder name of a dataset basis: ``<model>-<weights fingerprint[:8]>-k<k>-<size>px-<framing>`` (characters
    other than letters, digits, ``.``, ``_`` and ``-`` become ``_``)."""
    text = f"{Path(str(model).rstrip('/')).name}-{fingerprint[:8]}-k{int(k)}-{int(size)}px-{framing}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


BASIS_FOLDER = "dinov2_pca_basis"


def default_basis_path(dataset_dir: str | os.PathLike, encoder: DinoV2Encoder, model: str, k: int) -> Path:
    """Where a dataset's basis lives: ``<dataset_dir>/dinov2_pca_basis/<basis_file_name(...)>``."""
    return Path(dataset_dir) / BASIS_FOLDER / basis_file_name(model, encoder.fingerprint, k, encoder.size,
                                                               encoder.framing.text)


def dataset_dir_of(paths: Sequence[str | os.PathLike]) -> Path:
    """The dataset folder of files in NOVA's layout ``<root>/<dataset>/<session>/<file>``.

    Parameters
    ----------
    paths : sequence of path

    Returns
    -------
    pathlib.Path
        The common folder of their session folders' parents (for one file: the folder holding its session folder).
    """
    parents = [os.path.dirname(os.path.dirname(os.path.abspath(str(p)))) for p in paths]
    return Path(os.path.commonpath(parents))


def dataset_basis(basis_path: str | os.PathLike, fit_videos: Sequence[str | os.PathLike],
                  model: LoadedBackbone | str = DEFAULT_DINOV2, *, size: int = 224, k: int = 4,
                  pca_fit_frames: int = 256, framing: str | Framing = "resize", frame_step="video",
                  batch_size: int = 8, device: str = "auto", bf16: bool | None = None, precision: str = "auto",
                  progress: bool = False) -> tuple[PatchPCA, bool]:
    """The dataset's one PCA basis: loaded from ``basis_path`` if it exists, else fitted on ``fit_videos`` with
    :func:`fit_pca_over_videos` and saved there for every later job.

    The folder is written beside and renamed into place only if no other job created it meanwhile (a folder
    cannot be renamed onto an existing one): then that job's basis is loaded and used, so concurrent jobs agree on
    one basis.
    Fitting on every session of a dataset is unsupervised (no labels) but lets test sessions shape the features;
    to keep them out, run the first job on training sessions only or fit with ``nova-infant dinov2 fit-pca``.

    Returns
    -------
    (PatchPCA, created) : ``created`` is True when this call fitted and saved the basis.

    Raises
    ------
    SavedModelError (alias ``PCAFileError``)
        If an existing folder is not a PCA basis (or is an old ``.npz`` file), or was fitted on other weights or
        with another ``k``.
    VideoDecodeError
        If no fit video could be decoded.
    """
    backbone = _as_backbone(model, device, bf16, precision)
    encoder = DinoV2Encoder(backbone, size, framing)
    basis_path = Path(basis_path)
    old_file = basis_path.with_name(basis_path.name + ".npz")
    if not basis_path.exists() and old_file.is_file():  # the dataset's basis, saved before bases were folders
        raise SavedModelError(f"{old_file}: the dataset's PCA basis in the old .npz format; convert it (same basis, "
                              f"same hash) with python -m nova_infant.features.dinov2_pca {old_file} or delete it "
                              f"to fit a new basis")
    if basis_path.exists():
        pca = load_pca(basis_path)
        pca.check_compatible(encoder, str(basis_path), k)
        return pca, False
    pca = fit_pca_over_videos(fit_videos, backbone, size=size, k=k, pca_fit_frames=pca_fit_frames, framing=framing,
                              frame_step=frame_step, batch_size=batch_size, progress=progress)
    basis_path.parent.mkdir(parents=True, exist_ok=True)
    staged = basis_path.parent / f".{basis_path.name}.fit-{uuid.uuid4().hex[:8]}"
    try:
        save_pca(pca, staged)
        try:  # a folder renames onto a missing name only: the first job to finish wins, later ones use its basis
            os.rename(staged, basis_path)
            created = True
        except OSError:
            if not basis_path.exists():
                raise
            created = False
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    pca = load_pca(basis_path)
    pca.check_compatible(encoder, str(basis_path), k)
    if created:
        log.info("%s: PCA basis fitted on %d videos and saved", basis_path, len(pca.sources))
    return pca, created


# ---------------------------------------------------------------- frame selection


def row_frame_indices(info: VideoInfo, grid: FrameGrid) -> np.ndarray:
    """Frame shown at the centre of each grid row (:meth:`VideoInfo.frame_at_ms`), clipped to the last frame.

    Parameters
    ----------
    info : VideoInfo
    grid : FrameGrid

    Returns
    -------
    ndarray, int64, shape (grid.n_frames,)
    """
    return info.frame_at_ms(grid.centres_ms())


def fit_frame_indices(row_frames: np.ndarray, n_fit: int) -> np.ndarray:
    """Deterministic, evenly spaced sample of at most ``n_fit`` distinct frames among the rows' frames (the frames a
    per-session PCA is fitted on).

    Parameters
    ----------
    row_frames : ndarray, int64, shape (n_rows,)
    n_fit : int

    Returns
    -------
    ndarray, int64
        Sorted unique frame indices; all distinct row frames if there are no more than ``n_fit``.
    """
    unique = np.unique(np.asarray(row_frames, dtype=np.int64))
    if n_fit <= 0 or len(unique) <= n_fit:
        return unique
    picks = np.round(np.linspace(0, len(unique) - 1, int(n_fit))).astype(np.int64)
    return np.unique(unique[picks])


def _resolve_grid(info: VideoInfo, frame_step, duration_ms=None, reference_duration_ms=None,
                  session_duration_ms=None) -> FrameGrid:
    return session_grid(frame_step, info.duration_ms, duration_ms=duration_ms, reference=reference_duration_ms,
                        session_duration_ms=session_duration_ms, native_fps=info.fps, source=info.path)


def _new_ipca(k: int):
    from sklearn.decomposition import IncrementalPCA

    return IncrementalPCA(n_components=int(k))


def _partial_fit(ipca, patches, source: str) -> None:
    tokens = patches.reshape(-1, patches.shape[-1]).cpu().numpy()
    if tokens.shape[0] < ipca.n_components:
        raise OptionError(f"{source}: a batch of {tokens.shape[0]} patch tokens cannot fit {ipca.n_components} components")
    ipca.partial_fit(tokens)


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="batch")


def _check_k(k: int, encoder: DinoV2Encoder) -> int:
    k = int(k)
    if k <= 0 or k > min(encoder.token_dim, encoder.n_patches):
        raise OptionError(f"option k: must be between 1 and {min(encoder.token_dim, encoder.n_patches)} "
                          f"(token dim / patches per frame), got {k}")
    return k


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


def _as_backbone(model, device, bf16, precision="auto") -> LoadedBackbone:
    if isinstance(model, LoadedBackbone):
        return model
    return load_dinov2(model or DEFAULT_DINOV2, device=device, bf16=bf16, precision=precision)


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


# ---------------------------------------------------------------- PCA over many sessions


def fit_pca_over_videos(video_paths: Iterable[str | os.PathLike], model: LoadedBackbone | str = DEFAULT_DINOV2, *,
                        size: int = 224, k: int = 4, pca_fit_frames: int = 256, framing: str | Framing = "resize",
                        frame_step="video", batch_size: int = 8, device: str = "auto", bf16: bool | None = None,
                        precision: str = "auto",                        progress: bool = True, skip_bad: bool = True) -> PatchPCA:
    """Fit one PCA of patch tokens over many videos with bounded memory (``IncrementalPCA.partial_fit``).

    Each video contributes the same deterministic sample as ``extract_dinov2(pca="session")`` would take from it
    (``pca_fit_frames`` evenly spaced distinct row frames of its own grid, batches of ``batch_size``), so a PCA
    fitted on one video reproduces that video's session-mode output. Memory: one batch of tokens at a time.

    Parameters
    ----------
    video_paths : iterable of paths
    skip_bad : bool
        Log and skip an unreadable video (True) or raise (False).

    Returns
    -------
    PatchPCA

    Raises
    ------
    VideoDecodeError
        If ``skip_bad`` is False and a video is bad, or if no video could be used.
    WeightsUnavailableError, OptionError
    """
    backbone = _as_backbone(model, device, bf16, precision)
    encoder = DinoV2Encoder(backbone, size, framing)
    k = _check_k(k, encoder)
    ipca, used, last_error = _new_ipca(k), [], ""
    paths = [str(p) for p in video_paths]
    for number, path in enumerate(paths, 1):
        try:
            source = open_for_model(path, encoder.size, encoder.framing)
            grid = _resolve_grid(source.info, frame_step)
            fit_frames = fit_frame_indices(row_frame_indices(source.info, grid), pca_fit_frames)
            batches = source.iter_batches(fit_frames, batch_size)
            for _, frames in _progress(batches, math.ceil(len(fit_frames) / batch_size),
                                       f"PCA fit {number}/{len(paths)}", progress):
                patches, _ = encoder.encode(frames, path)
                _partial_fit(ipca, patches, path)
            used.append(os.path.abspath(path))
        except (VideoDecodeError, OptionError) as exc:
            if not skip_bad:
                raise
            log.error("skipped: %s", exc)
            last_error = str(exc)
    if not used:
        where = paths[0] if len(paths) == 1 else f"{len(paths)} videos"
        raise VideoDecodeError(f"{where}: no usable video to fit the PCA on" + (f" ({last_error})" if last_error else ""))
    return PatchPCA.from_sklearn(ipca, encoder, backbone.name, used)


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
