"""The PCA basis of DINOv2 patch tokens (ICMI'24 ICEP-R paper, Eq. 2-3): :class:`PatchPCA`, saved as a saved-model
folder (kind ``dinov2-pca-basis``: :func:`save_pca`, :func:`load_pca`; old ``.npz`` files: :func:`convert_npz_basis`),
fitted over many videos with bounded memory (:func:`fit_pca_over_videos`), and the dataset's one basis, fitted once
and reused by every later job (:func:`dataset_basis`). See docs/dinov2-pca.md.

Libraries: scikit-learn (``IncrementalPCA``, ``PCA``).
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

from nova_infant.core.backbones import DEFAULT_DINOV2, LoadedBackbone
from nova_infant.core.errors import OptionError, SavedModelError, VideoDecodeError
from nova_infant.core.saved import load_model, save_model
from nova_infant.features.dinov2_encoder import (DinoV2Encoder, Framing, _as_backbone, _progress, _resolve_grid,
                                                 fit_frame_indices, open_for_model, row_frame_indices)

log = logging.getLogger(__name__)

#: A saved PCA basis is missing, malformed, of the old ``.npz`` format, or was fitted on another model. The one
#: error type of saved models (:class:`nova_infant.core.errors.SavedModelError`), under its former name.
PCAFileError = SavedModelError
#: ``kind`` of a PCA basis saved-model folder.
PCA_KIND = "dinov2-pca-basis"


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


def _new_ipca(k: int):
    from sklearn.decomposition import IncrementalPCA

    return IncrementalPCA(n_components=int(k))


def _partial_fit(ipca, patches, source: str) -> None:
    tokens = patches.reshape(-1, patches.shape[-1]).cpu().numpy()
    if tokens.shape[0] < ipca.n_components:
        raise OptionError(f"{source}: a batch of {tokens.shape[0]} patch tokens cannot fit {ipca.n_components} components")
    ipca.partial_fit(tokens)


def _check_k(k: int, encoder: DinoV2Encoder) -> int:
    k = int(k)
    if k <= 0 or k > min(encoder.token_dim, encoder.n_patches):
        raise OptionError(f"option k: must be between 1 and {min(encoder.token_dim, encoder.n_patches)} "
                          f"(token dim / patches per frame), got {k}")
    return k


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
