"""Spec of the DINOv2-PCA extractor (:func:`nova_infant.features.dinov2_pca.extract_dinov2`; docs/dinov2-pca.md).

Input ``video``. The grid's duration is the option ``duration_ms``, else the ``reference`` input (not declared:
NOVA would always send one; a hand-written ``--data`` entry still works), else the NOVA session, else the video's.
Outputs ``dinov2_pca`` (PCA of the patch tokens, ``(size/14)^2 * k`` per row) and ``dinov2_cls`` (CLS token). With
``pca=dataset`` one basis serves the whole dataset: loaded from ``pca_basis`` (default
``<dataset folder>/dinov2_pca_basis/<...>/``, a saved-model folder), fitted once per job on the job's sessions
(or ``pca_fit_sessions``)
when that file is missing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from nova_infant.core.backbones import DEFAULT_DINOV2, load_dinov2
from nova_infant.core.errors import OptionError
from nova_infant.features.dinov2_basis import dataset_basis, default_basis_path
from nova_infant.features.dinov2_encoder import DinoV2Encoder, parse_framing
from nova_infant.features.dinov2_pca import CLS_MEDIA_TYPE, PCA_MEDIA_TYPE, extract_dinov2, picture_of_row
from nova_infant.specs import options as shared
from nova_infant.specs.module_spec import ModuleSpec
from nova_infant.specs.options import Option
from nova_infant.specs.ports import Port, REFERENCE, Result, StreamData
from nova_infant.specs.sessions import FileSession

log = logging.getLogger("nova_infant")

OUTPUT_IDS = {"pca": "dinov2_pca", "cls": "dinov2_cls"}


def _size(value: int, name: str) -> int:
    if value % 14:
        raise OptionError(f"option {name}: must be a multiple of the patch size 14 px, got {value}")
    return value


def _framing(value: Any, name: str) -> str:
    parse_framing(str(value))
    return str(value)


def load_backbone(session, o: dict):
    """The job's DINOv2 backbone (loaded once per job, :func:`nova_infant.core.backbones.load_dinov2`).

    Parameters
    ----------
    session : nova_infant.specs.sessions.Session
    o : dict
        Parsed options (``model``, ``device``, ``precision``).

    Returns
    -------
    nova_infant.core.backbones.LoadedBackbone

    Raises
    ------
    WeightsUnavailableError
        Missing or wrong weights, naming the folder.
    """
    return session.cached("dinov2", lambda: load_dinov2(o["model"], device=o["device"], precision=o["precision"]))


def dataset_folder(output_path: Path, session_name: str, named_folder: bool = False) -> Path:
    """The folder holding the session folder of an output path (NOVA's layout ``<dataset>/<session>/...``); else
    the output's own folder.

    Parameters
    ----------
    output_path : Path
    session_name : str
    named_folder : bool
        The output folder is one the user named (the command line's ``--out``): only that folder is compared with
        the session name, so the basis goes no higher than its parent (``--out a/S1`` with session ``S1`` -> ``a``;
        ``--out a/S1/x`` -> ``a/S1/x``). Else (DISCOVER) every folder above the output is.

    Returns
    -------
    Path
    """
    if named_folder:
        path = Path(os.path.abspath(output_path))
        return path.parent.parent if path.parent.name == session_name else path.parent
    path = Path(output_path).resolve()
    for parent in path.parents:
        if parent.name == session_name:
            return parent.parent
    return path.parent


def dataset_pca(session, o: dict):
    """The dataset's PCA basis, once per job (``session.job["dataset_pca"]``): option ``pca_basis``, else
    ``<dataset folder>/dinov2_pca_basis/<model>-<fingerprint>-k<k>-<size>px-<framing>/``; fitted on the job's
    sessions' videos (or ``pca_fit_sessions``) and saved there when the file is missing.

    Returns
    -------
    nova_infant.features.dinov2_basis.PatchPCA

    Raises
    ------
    PCAError, VideoDecodeError
    """
    def make():
        backbone = load_backbone(session, o)
        path = o["pca_basis"]
        if not path:
            encoder = DinoV2Encoder(backbone, o["size"], o["framing"])
            folder = dataset_folder(Path(session.out_dir or ".") / "x", session.name,
                                    named_folder=isinstance(session, FileSession))
            path = default_basis_path(folder, encoder, backbone.name, o["k"])
        names = [n.strip() for n in o["pca_fit_sessions"].split(",") if n.strip()] or session.job_session_names()
        videos = [v for v in (session.path_in("video", n) for n in names) if v is not None]
        pca, created = dataset_basis(path, videos or [session.path("video")], backbone, size=o["size"], k=o["k"],
                                     pca_fit_frames=o["pca_fit_frames"], framing=o["framing"],
                                     frame_step=o["frame_step"], batch_size=o["batch_size"])
        log.info("%s: PCA basis %s %s", path, pca.basis_hash,
                 f"fitted on {len(pca.sources)} videos and saved" if created else "reused")
        return pca

    return session.cached("dataset_pca", make)


def fit_batch_basis(spec, given: dict, videos: dict, dataset_dir: Path) -> dict:
    """The dataset basis of a ``nova-infant batch`` job, made once before its workers start
    (:func:`nova_infant.cli.batch.prepare_job`).

    Parameters
    ----------
    spec : ModuleSpec
        This module's spec (:data:`SPEC`).
    given : dict
        The job's options (strings or values, as du-process's ``--options``).
    videos : dict of str to Path
        Every session of the job -> its video (files that do not exist are left out of the fit).
    dataset_dir : Path
        ``<root>/<dataset>``, home of the default basis folder.

    Returns
    -------
    dict
        ``{"pca_basis": <folder>}`` to add to the job's options; ``{}`` when no dataset basis is used
        (``pca=session``/``frame``, ``output=cls``).

    Raises
    ------
    OptionError
        A bad option, or no session of ``pca_fit_sessions`` has a video.
    SavedModelError, VideoDecodeError, WeightsUnavailableError
        As :func:`nova_infant.features.dinov2_basis.dataset_basis`.
    """
    o = spec.parse_options(given)
    if o["pca"] != "dataset" or o["output"] == "cls":
        return {}
    backbone = load_dinov2(o["model"], device=o["device"], precision=o["precision"])
    path = Path(o["pca_basis"]) if o["pca_basis"] else default_basis_path(
        dataset_dir, DinoV2Encoder(backbone, o["size"], o["framing"]), backbone.name, o["k"])
    names = [n.strip() for n in o["pca_fit_sessions"].split(",") if n.strip()] or list(videos)
    fit = [videos[n] for n in names if n in videos and Path(videos[n]).is_file()]
    if not fit and not path.exists():
        raise OptionError(f"option pca_fit_sessions: none of the sessions {', '.join(names[:5])} has a video to fit "
                          f"the dataset's PCA basis {path} on")
    pca, created = dataset_basis(path, fit, backbone, size=o["size"], k=o["k"], pca_fit_frames=o["pca_fit_frames"],
                                 framing=o["framing"], frame_step=o["frame_step"], batch_size=o["batch_size"],
                                 progress=True)
    log.info("%s: PCA basis %s %s", path, pca.basis_hash,
             f"fitted once on {len(pca.sources)} videos of the job before its workers start" if created else "reused")
    return {"pca_basis": str(path.resolve())}


def run(session, o: dict) -> Result:
    """DINOv2-PCA and/or CLS streams of one session's video.

    Parameters
    ----------
    session : nova_infant.specs.sessions.Session
    o : dict
        Parsed options of :data:`SPEC`.

    Returns
    -------
    Result
        ``dinov2_pca``: float32 ``(n_rows, (size/14)^2 * k)``; ``dinov2_cls``: float32 ``(n_rows, hidden)``; at
        1000 / step Hz (the video's fps with ``frame_step=video``). Empty when no wanted output is active.

    Raises
    ------
    VideoDecodeError, WeightsUnavailableError, PCAError, OptionError
    """
    wanted = {"pca", "cls"} if o["output"] == "both" else {o["output"]}
    active = {kind for kind in wanted if session.is_active_output(OUTPUT_IDS[kind])}
    if not active:
        return Result(notes=["no active output: nothing extracted"])
    pca = o["pca"]
    if pca.lower() == "dataset" and "pca" in active:
        pca = dataset_pca(session, o)
    features = extract_dinov2(
        str(session.path("video")), load_backbone(session, o), size=o["size"], k=o["k"], pca=pca,
        pca_fit_frames=o["pca_fit_frames"], output="both" if active == {"pca", "cls"} else next(iter(active)),
        framing=o["framing"], frame_step=o["frame_step"], batch_size=o["batch_size"], duration_ms=o["duration_ms"],
        reference_duration_ms=session.reference_duration_ms(), progress=session.job.get("progress", False))
    rate, result = features.grid.sample_rate_hz, Result()
    if features.pca is not None:
        result.streams["dinov2_pca"] = StreamData(features.pca, rate, features.pca_dim_names(), PCA_MEDIA_TYPE,
                                                  features.meta)
    if features.cls is not None:
        result.streams["dinov2_cls"] = StreamData(features.cls, rate, features.cls_dim_names(), CLS_MEDIA_TYPE,
                                                  features.meta)
    if o["picture_dir"] and features.pca is not None:
        name = f"{session.dataset}.{session.name}" if session.dataset else session.name
        name += ".dinov2_pca.png"
        result.files.append(picture_of_row(features, len(features.row_frames) // 2, Path(o["picture_dir"]) / name))
    result.extra["features"] = features  # the CLI's --picture draws from it
    return result


SPEC = ModuleSpec(
    name="dinov2_pca", create="DinoV2PCA", category="Feature",
    description="DINOv2 patch tokens -> PCA (k per patch, 16x16xk for 224 px) and CLS token per video frame",
    inputs=(Port("video", "stream:Video", "video", "session video (any format FFmpeg reads)"),
            REFERENCE),
    outputs=(Port("dinov2_pca", "stream:SSIStream:dinov2", "dinov2",
                  "float32 (n_rows, (size/14)^2 * k) PCA of the patch tokens, media type feature;video;dinov2"),
             Port("dinov2_cls", "stream:SSIStream:dino_cls", "dinov2cls",
                  "float32 (n_rows, hidden) CLS token, media type feature;video;dino_cls")),
    options=(
        Option("model", "str", DEFAULT_DINOV2, "hub id or local checkpoint folder (nova-infant export-weights)"),
        Option("size", "int", 224, "input side in px, a multiple of 14 (224 -> 16x16 patches)", minimum=14,
               maximum=1792, check=_size),
        Option("k", "int", 4, "PCA components per patch (ICMI'24 ICEP-R paper: 4)", minimum=1, maximum=1024),
        Option("pca", "str", "dataset", "dataset (one basis per dataset, fitted once and reused) | session (one per "
               "video, not comparable across sessions) | frame (paper reproduction) | path of a saved basis"),
        Option("pca_basis", "path", "", "basis folder of pca=dataset (default <dataset folder>/dinov2_pca_basis/"
               "<model>-<fingerprint>-k<k>-<size>px-<framing>/, a saved-model folder); fitted and saved when missing"),
        Option("pca_fit_sessions", "str", "", "comma-separated sessions to fit a missing dataset basis on "
               "(default: the job's sessions; give the training sessions only)"),
        Option("pca_fit_frames", "int", 256, "frames sampled per video to fit the PCA", minimum=1,
               maximum=1000000),
        Option("output", "choice", "both", "which streams: both, pca, cls", choices=("both", "pca", "cls")),
        Option("framing", "str", "resize", "resize | center_crop | crop:x,y,w,h (pixels, or fractions with a '.')",
               check=_framing),
        shared.frame_step("video", allow_video=True),
        Option("batch_size", "int", 8, "frames per forward pass", minimum=1, maximum=4096),
        shared.device(), shared.precision(), shared.duration_ms(),
        Option("picture_dir", "path", "", "folder for a PNG of the middle row's first PCA components "
               "(<dataset>.<session>.dinov2_pca.png); empty = none"),
        shared.legacy_bf16()),
    run=run, check=shared.check_precision, doc="docs/dinov2-pca.md",
    citation="Oquab et al. 2023, DINOv2 (arXiv:2304.07193); PCA of patch tokens: ICMI'24 ICEP-R paper, Eq. 1-3",
    licence="DINOv2 weights: Apache-2.0; code: MIT")
