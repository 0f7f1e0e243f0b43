"""``nova-infant dinov2``: DINOv2-PCA features from the command line (``extract``, ``fit-pca``, ``picture``).

Options, defaults and checks are the module spec's (:data:`nova_infant.specs.dinov2_pca.SPEC`, docs/dinov2-pca.md);
``extract`` runs the spec's ``run`` and its one writer; the model is loaded once per command.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from nova_infant.core.backbones import load_dinov2
from nova_infant.core.errors import NovaInfantError, OptionError
from nova_infant.core.media import VideoSource
from nova_infant.core.validation import one_line
from nova_infant.features.dinov2_basis import (dataset_basis, dataset_dir_of, default_basis_path, fit_pca_over_videos,
                                               load_pca, save_pca)
from nova_infant.features.dinov2_encoder import DinoV2Encoder
from nova_infant.features.dinov2_pca import pca_picture, picture_of_row
from nova_infant.specs.cli import add_option_flags, options_from_args
from nova_infant.specs.dinov2_pca import SPEC
from nova_infant.specs.sessions import FileSession
from nova_infant.specs.writing import write_files

log = logging.getLogger(__name__)


def _common(p: argparse.ArgumentParser, fit: bool = False) -> None:
    """The option flags of :data:`nova_infant.specs.dinov2_pca.SPEC` a ``dinov2`` command uses (declared there)."""
    skip = ["output", "pca_fit_sessions", "picture_dir"] + (["pca", "pca_basis", "duration_ms"] if fit else [])
    add_option_flags(p, SPEC, skip=skip)
    p.add_argument("--no-bf16", dest="bf16", action="store_const", const="False", default=None,
                   help="deprecated: same as --precision fp32")
    if not fit:
        p.add_argument("--pca-fit-videos", nargs="+", default=None,
                       help="videos to fit a missing basis on (default: all videos given; give the training "
                            "sessions only to keep test sessions out of the basis)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``dinov2 extract``, ``dinov2 fit-pca`` and ``dinov2 picture`` (options: the spec's,
    :data:`nova_infant.specs.dinov2_pca.SPEC`).

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``nova-infant`` sub-command collection.
    """
    top = sub.add_parser("dinov2", help="DINOv2-PCA video features (extract, fit-pca, picture)")
    cmds = top.add_subparsers(dest="dinov2_command", required=True)

    p = cmds.add_parser("extract", help="write <role>.dinov2.stream (PCA grid) and/or <role>.dinov2cls.stream (CLS) per video")
    p.add_argument("videos", nargs="+", help="video files (NOVA layout <session>/<role>.video.mp4 or any name)")
    add_option_flags(p, SPEC, names=["output"])
    p.add_argument("--out-dir", default=None, help="folder for the streams (default: beside each video)")
    p.add_argument("--picture", action="store_true", help="also save <role>.dinov2_pca.png of the middle row")
    _common(p)
    p.set_defaults(func=_extract)

    p = cmds.add_parser("fit-pca", help="fit one PCA of patch tokens over many videos (bounded memory) and save it (a saved-model folder)")
    p.add_argument("out", help="PCA basis folder to write")
    p.add_argument("videos", nargs="+", help="video files to fit on (e.g. the training sessions)")
    _common(p, fit=True)
    p.set_defaults(func=_fit_pca)

    p = cmds.add_parser("picture", help="render a frame's first PCA components as RGB/CMYK next to the frame (PNG)")
    p.add_argument("video")
    p.add_argument("out", help="PNG file to write")
    p.add_argument("--time-ms", type=float, default=None, help="time of the frame in ms (default: middle of the video)")
    p.add_argument("--mode", choices=["rgb", "cmyk"], default="rgb", help="3 components as RGB or 4 as CMYK")
    _common(p)
    p.set_defaults(func=_picture)


def _role(video: str) -> str:
    name = os.path.basename(video)
    return name.split(".")[0] if name.count(".") >= 2 else os.path.splitext(name)[0]


def _parsed(args) -> dict:
    """Every option of the spec parsed once from the flags (``--no-bf16`` folded into ``precision``)."""
    if not hasattr(args, "_parsed"):
        args._parsed = options_from_args(SPEC, args, {"bf16": args.bf16} if args.bf16 is not None else None)
    return args._parsed


def _options(args) -> dict:
    """The keyword arguments of the feature functions (size, k, pca_fit_frames, framing, frame_step,
    batch_size), parsed from the flags."""
    o = _parsed(args)
    return {key: o[key] for key in ("size", "k", "pca_fit_frames", "framing", "frame_step", "batch_size")}


def _load(args):
    o = _parsed(args)
    return load_dinov2(o["model"], device=o["device"], precision=o["precision"])


def _extract(args) -> int:
    """Extract every video through the spec's ``run`` and its one writer; a bad video is reported in one line and
    the others go on (exit 1 if some failed, 2 if all did)."""
    o = _parsed(args)
    backbone, failed = _load(args), 0
    job = {"dinov2": backbone, "progress": True}
    try:
        if o["pca"] == "dataset" and o["output"] != "cls":
            job["dataset_pca"] = _dataset_pca(args, backbone)
    except (NovaInfantError, OSError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    for video in args.videos:
        try:
            out_dir = Path(args.out_dir or os.path.dirname(os.path.abspath(video)))
            session = FileSession({"video": video}, out_dir, role=_role(video), job=job)
            result = SPEC.run(session, o)
            for path in write_files(SPEC, result, session):
                print(path)
            features = result.extra["features"]
            if args.picture and features.pca is not None:
                print(picture_of_row(features, len(features.row_frames) // 2,
                                     out_dir / f"{session.role}.dinov2_pca.png"))
        except (NovaInfantError, OSError) as exc:  # OSError: read-only folder, full disk; go on with the rest
            print(f"error: {one_line(exc)}", file=sys.stderr)
            failed += 1
    return 0 if not failed else (2 if failed == len(args.videos) else 1)


def _basis_path(args, backbone) -> Path:
    if _parsed(args)["pca_basis"]:
        return Path(_parsed(args)["pca_basis"])
    folder = Path(args.out_dir) if getattr(args, "out_dir", None) else dataset_dir_of(args.videos if hasattr(args, "videos") else [args.video])
    o = _parsed(args)
    return default_basis_path(folder, DinoV2Encoder(backbone, o["size"], o["framing"]), backbone.name, o["k"])


def _dataset_pca(args, backbone):
    """The dataset basis for ``extract --pca dataset``: reused from its file, else fitted on the job's videos."""
    path = _basis_path(args, backbone)
    pca, created = dataset_basis(path, args.pca_fit_videos or args.videos, backbone, progress=True, **_options(args))
    print(f"{path}: PCA basis {pca.basis_hash} " + (f"fitted on {len(pca.sources)} videos and saved" if created
                                                    else "reused (delete the folder to fit a new one)"))
    return pca


def _fit_pca(args) -> int:
    options = _options(args)
    pca = fit_pca_over_videos(args.videos, _load(args), progress=True, **options)
    path = save_pca(pca, args.out)
    ratio = ", ".join(f"{v:.3f}" for v in pca.explained_variance_ratio)
    print(f"{path}: {pca.n_components} components of {pca.token_dim}-d tokens from {len(pca.sources)} videos "
          f"({pca.n_tokens} patch tokens); explained variance ratio {ratio}")
    return 0


def _picture(args) -> int:
    """Only the frame asked for goes through the model (plus the PCA fit sample in session mode)."""
    import numpy as np

    o = _parsed(args)
    source = VideoSource(args.video)
    time_ms = source.info.duration_ms / 2 if args.time_ms is None else args.time_ms
    if not 0 <= time_ms < source.info.duration_ms:
        raise OptionError(f"{args.video}: --time-ms {time_ms} is outside the video (0 to {source.info.duration_ms:.0f} ms)")
    frame_index = int(source.info.frame_at_ms([time_ms])[0])
    options, backbone = {**_options(args), "k": max(o["k"], 4 if args.mode == "cmyk" else 3)}, _load(args)
    encoder = DinoV2Encoder(backbone, o["size"], o["framing"])
    pca_choice = o["pca"]
    frame = source.read([frame_index])
    patches = encoder.encode(frame, args.video)[0]
    if pca_choice == "dataset" and _basis_path(args, backbone).exists():
        pca_choice = str(_basis_path(args, backbone))
    elif pca_choice == "dataset":
        pca_choice = "session"  # no dataset basis saved yet: a picture needs no comparable features
    if pca_choice == "frame":
        from sklearn.decomposition import PCA

        values = PCA(n_components=options["k"]).fit_transform(patches[0].cpu().numpy())
    else:
        if pca_choice == "session":
            pca = fit_pca_over_videos([args.video], backbone, skip_bad=False, progress=True, **options)
        else:
            pca = load_pca(pca_choice)
            pca.check_compatible(encoder, pca_choice)
        values = pca.transform(patches)[0].cpu().numpy()
    grid = np.asarray(values, np.float32).reshape(encoder.grid_side, encoder.grid_side, -1)
    title = f"{os.path.basename(args.video)} at {time_ms:.0f} ms (frame {frame_index}), PCA {pca_choice}"
    print(pca_picture(frame[0], grid, args.out, args.mode, title))
    return 0
