"""What goes into DINOv2 for the DINOv2-PCA features (:mod:`nova_infant.features.dinov2_pca`): the framing and
pre-processing of video frames (:class:`Framing`; the reference's resize-256/centre-crop-224 is ``center_crop``), the
encoder returning patch and CLS tokens of a batch (:class:`DinoV2Encoder`), and which video frames the grid rows and
a PCA fit use (:func:`row_frame_indices`, :func:`fit_frame_indices`).

Libraries: Hugging Face transformers (``Dinov2Model``), PyTorch (pre-processing), decord (decoding).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from nova_infant.core.backbones import DEFAULT_DINOV2, LoadedBackbone, load_dinov2
from nova_infant.core.errors import OptionError
from nova_infant.core.grid import FrameGrid, session_grid
from nova_infant.core.media import VideoInfo, VideoSource

# Reference pre-processing (torchvision Resize(256) + CenterCrop(224)): short side = size * 256 / 224.
_CENTER_CROP_RATIO = 256.0 / 224.0


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


def _as_backbone(model, device, bf16, precision="auto") -> LoadedBackbone:
    if isinstance(model, LoadedBackbone):
        return model
    return load_dinov2(model or DEFAULT_DINOV2, device=device, bf16=bf16, precision=precision)


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="batch")
