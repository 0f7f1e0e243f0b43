"""``nova-infant dinov2``: DINOv2-PCA features from the command line (``extract``, ``fit-pca``, ``picture``).

Same options and defaults as the DISCOVER module (docs/dinov2-pca.md); the model is loaded once per command.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from nova_infant.core.backbones import DEFAULT_DINOV2
from nova_infant.core.errors import NovaInfantError
from nova_infant.core.validation import one_line

log = logging.getLogger(__name__)


def _common(p: argparse.ArgumentParser, fit: bool = False) -> None:
    p.add_argument("--model", default=DEFAULT_DINOV2, help="hub id or local directory (default %(default)s)")
    p.add_argument("--size", type=int, default=224, help="input side in px, a multiple of 14 (default 224 -> 16x16 patches)")
    p.add_argument("--k", type=int, default=4, help="PCA components per patch (default 4)")
    p.add_argument("--pca-fit-frames", type=int, default=256, help="frames sampled per video to fit the PCA (default 256)")
    p.add_argument("--framing", default="resize", help="resize (default) | center_crop | crop:x,y,w,h (pixels, or fractions with a '.')")
    p.add_argument("--frame-step", default="video", help="video (every frame, default) or e.g. 40ms, 0.04s, 25fps")
    p.add_argument("--batch-size", type=int, default=8, help="frames per forward pass (default 8)")
    p.add_argument("--device", default="auto", help="auto (cuda when present) | cpu | cuda")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "int8"],
                   help="auto (default: bf16 on a GPU or on a CPU with avx512_bf16/AMX, else fp32) | fp32 | bf16 | "
                        "int8 (CPU only); do not mix precisions within one dataset")
    p.add_argument("--no-bf16", dest="bf16", action="store_const", const=False, default=None,
                   help="deprecated: same as --precision fp32")
    if not fit:
        p.add_argument("--pca", default="dataset",
                       help="dataset (default: one basis for the dataset, fitted once and reused) | session (one per "
                            "video, not comparable across sessions) | frame (paper reproduction) | path of a saved PCA")
        p.add_argument("--pca-basis", default=None,
                       help="basis folder of --pca dataset (default <out-dir or dataset folder>/dinov2_pca_basis/"
                            "<model>-<fingerprint>-k<k>-<size>px-<framing>/, a saved-model folder); fitted and saved when missing")
        p.add_argument("--pca-fit-videos", nargs="+", default=None,
                       help="videos to fit a missing basis on (default: all videos given; give the training "
                            "sessions only to keep test sessions out of the basis)")
        p.add_argument("--duration-ms", type=float, default=None, help="session duration that sets the row count (default: the video's)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``dinov2 extract``, ``dinov2 fit-pca`` and ``dinov2 picture``."""
    top = sub.add_parser("dinov2", help="DINOv2-PCA video features (extract, fit-pca, picture)")
    cmds = top.add_subparsers(dest="dinov2_command", required=True)

    p = cmds.add_parser("extract", help="write <role>.dinov2.stream (PCA grid) and/or <role>.dinov2cls.stream (CLS) per video")
    p.add_argument("videos", nargs="+", help="video files (NOVA layout <session>/<role>.video.mp4 or any name)")
    p.add_argument("--output", choices=["both", "pca", "cls"], default="both")
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


def _options(args) -> dict:
    from nova_infant.core.validation import check_dinov2_options

    check_dinov2_options(args.size, args.k, args.pca_fit_frames, args.batch_size, getattr(args, "output", "both"),
                         args.framing, args.frame_step, getattr(args, "duration_ms", None), args.device,
                         args.precision)
    return dict(size=args.size, k=args.k, pca_fit_frames=args.pca_fit_frames, framing=args.framing,
                frame_step=args.frame_step, batch_size=args.batch_size)


def _load(args):
    from nova_infant.core.backbones import load_dinov2

    return load_dinov2(args.model, device=args.device, bf16=args.bf16, precision=args.precision)


def _extract(args) -> int:
    """Extract every video; a bad video is reported in one line and the others go on (exit 1 if some failed, 2 if
    all did)."""
    from nova_infant.features.dinov2_pca import extract_dinov2, picture_of_row
    from nova_infant.core.nova_io import write_ssi_stream

    options = _options(args)
    backbone, failed = _load(args), 0
    try:
        pca = _dataset_pca(args, backbone) if args.pca == "dataset" and args.output != "cls" else args.pca
    except (NovaInfantError, OSError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    for video in args.videos:
        try:
            features = extract_dinov2(video, backbone, pca=pca, output=args.output,
                                      duration_ms=args.duration_ms, progress=True, **options)
            out_dir, role = Path(args.out_dir or os.path.dirname(os.path.abspath(video))), _role(video)
            if features.pca is not None:
                print(write_ssi_stream(features.pca_stream(role=role), out_dir / f"{role}.dinov2.stream"))
            if features.cls is not None:
                print(write_ssi_stream(features.cls_stream(role=role), out_dir / f"{role}.dinov2cls.stream"))
            if args.picture and features.pca is not None:
                print(picture_of_row(features, len(features.row_frames) // 2, out_dir / f"{role}.dinov2_pca.png"))
        except (NovaInfantError, OSError) as exc:  # OSError: read-only folder, full disk; go on with the rest
            print(f"error: {one_line(exc)}", file=sys.stderr)
            failed += 1
    return 0 if not failed else (2 if failed == len(args.videos) else 1)


def _basis_path(args, backbone) -> Path:
    from nova_infant.features.dinov2_pca import DinoV2Encoder, dataset_dir_of, default_basis_path

    if args.pca_basis:
        return Path(args.pca_basis)
    folder = Path(args.out_dir) if getattr(args, "out_dir", None) else dataset_dir_of(args.videos if hasattr(args, "videos") else [args.video])
    return default_basis_path(folder, DinoV2Encoder(backbone, args.size, args.framing), backbone.name, args.k)


def _dataset_pca(args, backbone):
    """The dataset basis for ``extract --pca dataset``: reused from its file, else fitted on the job's videos."""
    from nova_infant.features.dinov2_pca import dataset_basis

    path = _basis_path(args, backbone)
    pca, created = dataset_basis(path, args.pca_fit_videos or args.videos, backbone, progress=True, **_options(args))
    print(f"{path}: PCA basis {pca.basis_hash} " + (f"fitted on {len(pca.sources)} videos and saved" if created
                                                    else "reused (delete the folder to fit a new one)"))
    return pca


def _fit_pca(args) -> int:
    from nova_infant.features.dinov2_pca import fit_pca_over_videos, save_pca

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

    from nova_infant.features.dinov2_pca import DinoV2Encoder, fit_pca_over_videos, load_pca, pca_picture
    from nova_infant.core.errors import OptionError
    from nova_infant.core.media import VideoSource

    _options(args)
    source = VideoSource(args.video)
    time_ms = source.info.duration_ms / 2 if args.time_ms is None else args.time_ms
    if not 0 <= time_ms < source.info.duration_ms:
        raise OptionError(f"{args.video}: --time-ms {time_ms} is outside the video (0 to {source.info.duration_ms:.0f} ms)")
    frame_index = int(source.info.frame_at_ms([time_ms])[0])
    options, backbone = {**_options(args), "k": max(args.k, 4 if args.mode == "cmyk" else 3)}, _load(args)
    encoder = DinoV2Encoder(backbone, args.size, args.framing)
    frame = source.read([frame_index])
    patches = encoder.encode(frame, args.video)[0]
    if args.pca == "dataset" and _basis_path(args, backbone).exists():
        args.pca = str(_basis_path(args, backbone))
    elif args.pca == "dataset":
        args.pca = "session"  # no dataset basis saved yet: a picture needs no comparable features
    if args.pca == "frame":
        from sklearn.decomposition import PCA

        values = PCA(n_components=options["k"]).fit_transform(patches[0].cpu().numpy())
    else:
        if args.pca == "session":
            pca = fit_pca_over_videos([args.video], backbone, skip_bad=False, progress=True, **options)
        else:
            pca = load_pca(args.pca)
            pca.check_compatible(encoder, args.pca)
        values = pca.transform(patches)[0].cpu().numpy()
    grid = np.asarray(values, np.float32).reshape(encoder.grid_side, encoder.grid_side, -1)
    title = f"{os.path.basename(args.video)} at {time_ms:.0f} ms (frame {frame_index}), PCA {args.pca}"
    print(pca_picture(frame[0], grid, args.out, args.mode, title))
    return 0
