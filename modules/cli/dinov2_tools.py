"""``nova-infant dinov2``: DINOv2-PCA tools: ``fit-pca`` (a dataset basis over many videos) and ``picture`` (one
frame's components as colours). Extraction is the module ``nova-infant run dinov2-pca`` (``dinov2 extract`` is its
alias, :mod:`nova_infant.cli.aliases`).

Options, defaults and checks are the module spec's (:data:`nova_infant.specs.dinov2_pca.SPEC`, docs/dinov2-pca.md).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from nova_infant.cli.aliases import add_dinov2_extract, add_no_bf16, fixed_bf16
from nova_infant.core.backbones import load_dinov2
from nova_infant.core.errors import OptionError
from nova_infant.core.media import VideoSource
from nova_infant.features.dinov2_basis import dataset_dir_of, default_basis_path, fit_pca_over_videos, load_pca, save_pca
from nova_infant.features.dinov2_encoder import DinoV2Encoder
from nova_infant.features.dinov2_pca import pca_picture
from nova_infant.specs.cli import add_option_flags, optional_number, options_from_args, tool_spec
from nova_infant.specs.dinov2_pca import SPEC
from nova_infant.specs.options import Option

#: ``dinov2 picture``'s own options, parsed and checked as a module's (:func:`nova_infant.specs.cli.tool_spec`)
PICTURE = tool_spec("dinov2 picture", (
    Option("time_ms", "str", "", "time of the frame, ms; unset: the middle of the video",
           check=optional_number(0.0, None)),
    Option("mode", "choice", "rgb", "3 components as RGB or 4 as CMYK", choices=("rgb", "cmyk"))))

log = logging.getLogger(__name__)


def _common(p: argparse.ArgumentParser, fit: bool = False) -> None:
    """The option flags of :data:`nova_infant.specs.dinov2_pca.SPEC` a ``dinov2`` tool uses (declared there)."""
    skip = ["output", "pca_fit_sessions", "picture_dir"] + (["pca", "pca_basis", "duration_ms"] if fit else [])
    add_option_flags(p, SPEC, skip=skip)
    add_no_bf16(p)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``dinov2 fit-pca`` and ``dinov2 picture`` (options: the spec's,
    :data:`nova_infant.specs.dinov2_pca.SPEC`) and the alias ``dinov2 extract`` (``run dinov2-pca``).

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``nova-infant`` sub-command collection.
    """
    top = sub.add_parser("dinov2", help="DINOv2-PCA tools: fit-pca (a dataset basis), picture (a frame's components); "
                                        "extraction: run dinov2-pca")
    cmds = top.add_subparsers(dest="dinov2_command", required=True)

    p = cmds.add_parser("fit-pca", help="fit one PCA of patch tokens over many videos (bounded memory) and save it (a saved-model folder)")
    p.add_argument("out", help="PCA basis folder to write")
    p.add_argument("videos", nargs="+", help="video files to fit on (e.g. the training sessions)")
    _common(p, fit=True)
    p.set_defaults(func=_fit_pca)

    p = cmds.add_parser("picture", help="render a frame's first PCA components as RGB/CMYK next to the frame (PNG)")
    p.add_argument("video")
    p.add_argument("out", help="PNG file to write")
    _common(p)
    add_option_flags(p, PICTURE)
    p.set_defaults(func=_picture)

    add_dinov2_extract(cmds)


def _parsed(args) -> dict:
    """Every option of the spec parsed once from the flags (``--no-bf16`` folded into ``precision``)."""
    if not hasattr(args, "_parsed"):
        args._parsed = options_from_args(SPEC, args, fixed_bf16(args))
    return args._parsed


def _options(args) -> dict:
    """The keyword arguments of the feature functions (size, k, pca_fit_frames, framing, frame_step,
    batch_size), parsed from the flags."""
    o = _parsed(args)
    return {key: o[key] for key in ("size", "k", "pca_fit_frames", "framing", "frame_step", "batch_size")}


def _load(args):

    o = _parsed(args)
    return load_dinov2(o["model"], device=o["device"], precision=o["precision"])


def _basis_path(args, backbone) -> Path:

    if _parsed(args)["pca_basis"]:
        return Path(_parsed(args)["pca_basis"])
    folder = dataset_dir_of([args.video])
    o = _parsed(args)
    return default_basis_path(folder, DinoV2Encoder(backbone, o["size"], o["framing"]), backbone.name, o["k"])


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



    o, own = _parsed(args), options_from_args(PICTURE, args)
    mode = own["mode"]
    source = VideoSource(args.video)
    time_ms = source.info.duration_ms / 2 if own["time_ms"] is None else own["time_ms"]
    if not 0 <= time_ms < source.info.duration_ms:
        raise OptionError(f"{args.video}: --time-ms {time_ms} is outside the video (0 to {source.info.duration_ms:.0f} ms)")
    frame_index = int(source.info.frame_at_ms([time_ms])[0])
    options, backbone = {**_options(args), "k": max(o["k"], 4 if mode == "cmyk" else 3)}, _load(args)
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
    print(pca_picture(frame[0], grid, args.out, mode, title))
    return 0
