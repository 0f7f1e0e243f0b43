"""Old command lines of the modules, kept as aliases of ``nova-infant run <module>`` (README, "Command line").

Each alias only maps its flags onto the module's spec and runs :func:`nova_infant.specs.cli.run_sessions`: the
options, their checks, the module code and the writer are the spec's, exactly as ``nova-infant run`` and DISCOVER
use them. The aliases do not show in ``nova-infant --help``.

=====================================================  ==================================================
old command line                                       runs
=====================================================  ==================================================
``dinov2 extract VIDEO... [--out-dir D]``              ``run dinov2-pca --video VIDEO --out D`` per video
``w2v-bert AUDIO OUT.stream``                          ``run w2v-bert --audio AUDIO`` into ``OUT.stream``
``taggers audio-events AUDIO --out PREFIX``            ``run audio-events --audio AUDIO``, ``PREFIX.*``
``taggers emotion VIDEO --out PREFIX``                 ``run emotion-tagger --video VIDEO``, ``PREFIX.*``
``icep predict --root R --dataset D --bundle B``       ``run icep-predict --feature-0 ...`` per session
=====================================================  ==================================================
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from nova_infant.cli.dataset_args import session_args, session_dirs
from nova_infant.specs.audio_events import SPEC as AUDIO_EVENTS
from nova_infant.specs.cli import add_option_flags, checked_names, options_from_args, run_sessions
from nova_infant.specs.dinov2_pca import SPEC as DINOV2_PCA
from nova_infant.specs.emotion_tagger import SPEC as EMOTION
from nova_infant.specs.icep import PREDICT, load_bundle_of
from nova_infant.specs.sessions import FileSession
from nova_infant.specs.w2v_bert import SPEC as W2V_BERT

RUN = "alias of 'nova-infant run {}' (kept for old command lines)"


def add_no_bf16(p: argparse.ArgumentParser) -> None:
    """Add the deprecated ``--no-bf16`` flag (``args.bf16``: ``"False"`` when given, else None).

    Parameters
    ----------
    p : argparse.ArgumentParser
    """
    p.add_argument("--no-bf16", dest="bf16", action="store_const", const="False", default=None,
                   help="deprecated: same as --precision fp32")


def fixed_bf16(args) -> dict | None:
    """``{"bf16": "False"}`` where ``--no-bf16`` was given (folded into ``precision`` by the spec), else None."""
    return {"bf16": args.bf16} if getattr(args, "bf16", None) is not None else None


# ---------------------------------------------------------------- dinov2 extract


def add_dinov2_extract(cmds: argparse._SubParsersAction) -> None:
    """Add ``dinov2 extract`` (alias of ``run dinov2-pca``) to the ``dinov2`` group.

    Parameters
    ----------
    cmds : argparse._SubParsersAction
        The ``dinov2`` sub-command collection.
    """
    p = cmds.add_parser("extract", help=RUN.format("dinov2-pca") + ", one session per video",
                        description="Write <role>.dinov2.stream (PCA grid) and/or <role>.dinov2cls.stream (CLS) per "
                                    "video: " + RUN.format("dinov2-pca") + ".")
    p.add_argument("videos", nargs="+", help="video files (NOVA layout <session>/<role>.video.mp4 or any name)")
    p.add_argument("--out-dir", default=None, help="folder for the streams (default: beside each video)")
    p.add_argument("--picture", action="store_true",
                   help="also save <session>.dinov2_pca.png of the middle row in the output folder (the option "
                        "picture_dir set to it)")
    p.add_argument("--pca-fit-videos", nargs="+", default=None,
                   help="videos to fit a missing basis on (default: all videos given; give the training "
                        "sessions only to keep test sessions out of the basis; the option pca_fit_sessions)")
    add_option_flags(p, DINOV2_PCA, skip=("pca_fit_sessions",))
    add_no_bf16(p)
    p.set_defaults(func=_dinov2_extract)


def _video_role(video: str) -> str:
    """``<role>`` of ``<role>.<name>.<ext>``, else the file's stem (the old command's output names)."""
    name = os.path.basename(video)
    return name.split(".")[0] if name.count(".") >= 2 else os.path.splitext(name)[0]


def _dinov2_extract(args) -> int:
    """``dinov2 extract``: one ``run dinov2-pca`` session per video, one model load and one dataset basis for all.

    Returns
    -------
    int
        0 all written, 1 some videos failed (one line each), 2 all failed.
    """
    fixed = dict(fixed_bf16(args) or {})
    extra = {}
    if args.pca_fit_videos:
        extra = {f"fit:{i}": {"video": v} for i, v in enumerate(args.pca_fit_videos)}
        fixed["pca_fit_sessions"] = ",".join(extra)
    sessions = []
    for video in args.videos:
        out = Path(args.out_dir or os.path.dirname(os.path.abspath(video)))
        sessions.append({"inputs": {"video": video}, "out": out, "role": _video_role(video),
                         "options": {"picture_dir": str(out)} if args.picture and args.picture_dir is None else {}})
    return run_sessions(DINOV2_PCA, sessions, options_from_args(DINOV2_PCA, args, fixed or None), extra_inputs=extra)


# ---------------------------------------------------------------- w2v-bert


def add_w2v_bert(sub: argparse._SubParsersAction) -> None:
    """Add the top-level ``w2v-bert AUDIO OUT`` (alias of ``run w2v-bert``); not listed in ``--help``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``nova-infant`` sub-command collection.
    """
    p = sub.add_parser("w2v-bert", description="Extract Wav2Vec2-BERT features of an audio/video file onto a frame "
                                               "grid: " + RUN.format("w2v-bert") + ".")
    p.add_argument("audio", help="audio file (wav/flac/..., any rate, mono or multi-channel) or a video with audio")
    p.add_argument("out", help="output .stream path (plus its data file <out>~)")
    p.add_argument("--reference", default=None, help="video/audio/.stream of the session whose duration fixes the grid")
    add_option_flags(p, W2V_BERT)
    add_no_bf16(p)
    p.set_defaults(func=_w2v_bert)


def _w2v_bert(args) -> int:
    """``w2v-bert AUDIO OUT``: ``run w2v-bert`` written to ``OUT`` (role ``session``)."""
    options = options_from_args(W2V_BERT, args, fixed_bf16(args))
    out = Path(args.out)
    return run_sessions(W2V_BERT, [{"inputs": {"audio": args.audio, "reference": args.reference},
                                    "out": out.parent, "files": {"w2v_bert": out}, "role": "session"}], options)


# ---------------------------------------------------------------- taggers audio-events / emotion


def add_tagger_aliases(cmds: argparse._SubParsersAction) -> None:
    """Add ``taggers audio-events`` and ``taggers emotion`` (aliases of ``run audio-events`` and
    ``run emotion-tagger``) to the ``taggers`` group.

    Parameters
    ----------
    cmds : argparse._SubParsersAction
        The ``taggers`` sub-command collection.
    """
    s = cmds.add_parser("audio-events", help=RUN.format("audio-events"),
                        description="Tag audio events; writes <prefix>.audio_events.stream and one "
                                    "<prefix>.audio_event_<class>.annotation per class the model can produce: "
                                    + RUN.format("audio-events") + ".")
    s.add_argument("audio", help="audio file (.wav/.flac) or a video with an audio track")
    s.add_argument("--out", required=True, help="output prefix, e.g. data/demo/s01/session")
    add_option_flags(s, AUDIO_EVENTS)
    s.set_defaults(func=_audio_events)

    s = cmds.add_parser("emotion", help=RUN.format("emotion-tagger"),
                        description="Tag infant emotion; writes <prefix>.emotion.annotation, <prefix>.face_box.stream "
                                    "and <prefix>.valence.annotation: " + RUN.format("emotion-tagger") + ".")
    s.add_argument("video")
    s.add_argument("--out", required=True, help="output prefix, e.g. data/demo/s01/infant")
    add_option_flags(s, EMOTION)
    s.set_defaults(func=_emotion)


def _prefixed(spec, prefix: str) -> dict:
    """``{port id: <prefix>.<port default><ext>}`` of every output of ``spec``."""
    return {p.id: Path(f"{prefix}.{p.default}{p.extension}") for p in spec.outputs}


def _audio_events(args) -> int:
    """``taggers audio-events AUDIO --out PREFIX``: ``run audio-events`` written to ``PREFIX.*`` (role
    ``session``)."""

    options = options_from_args(AUDIO_EVENTS, args)
    return run_sessions(AUDIO_EVENTS, [{"inputs": {"audio": args.audio}, "out": Path(args.out).parent,
                                        "files": _prefixed(AUDIO_EVENTS, args.out), "role": "session"}], options)


def _emotion(args) -> int:
    """``taggers emotion VIDEO --out PREFIX``: ``run emotion-tagger`` written to ``PREFIX.*`` (role ``infant``)."""
    options = options_from_args(EMOTION, args)
    return run_sessions(EMOTION, [{"inputs": {"video": args.video}, "out": Path(args.out).parent,
                                   "files": _prefixed(EMOTION, args.out), "role": "infant"}], options)


# ---------------------------------------------------------------- icep predict


def add_icep_predict(cmds: argparse._SubParsersAction) -> None:
    """Add ``icep predict`` (alias of ``run icep-predict``, one session per folder of a NOVA dataset; the dataset
    flags are ``icep cv``'s, :func:`nova_infant.cli.dataset_args.session_args`).

    Parameters
    ----------
    cmds : argparse._SubParsersAction
        The ``icep`` sub-command collection.
    """
    p = cmds.add_parser("predict", help=RUN.format("icep-predict") + " over a dataset's session folders",
                        description="Predict ICEP-R annotations for the sessions of a NOVA dataset with a bundle; "
                                    "writes <role>.<scheme>.<annotator>.annotation beside each session's streams: "
                                    + RUN.format("icep-predict") + ".")
    session_args(p, streams_required=False)
    p.add_argument("--bundle", required=True, help="model bundle folder (option bundle)")
    p.add_argument("--annotator", default="icep")
    add_option_flags(p, PREDICT, skip=("bundle",))
    p.add_argument("--probabilities", action="store_true", help="also write one continuous track per class")
    p.set_defaults(func=_icep_predict)


def _icep_predict(args) -> int:
    """``icep predict``: ``run icep-predict`` on every session folder (streams ``<folder>/<role>.<name>.stream``),
    written as ``<role>.<scheme>.<annotator>.annotation`` (and ``<role>.<scheme>-p<class>.<annotator>.annotation``
    with ``--probabilities``) beside them.

    Returns
    -------
    int
        0 all written, 1 some sessions failed (one line each), 2 all failed.
    """
    checked_names(role=args.role, annotator=args.annotator, dataset=args.dataset)
    for stream in args.streams or []:
        checked_names(streams=stream)
    options = options_from_args(PREDICT, args, {"bundle": args.bundle})
    job = {"progress": True}
    bundle = load_bundle_of(FileSession({}, ".", job=job), options)  # once, before any session is read
    streams = args.streams or [s["name"] for s in bundle.features["streams"]]
    scheme, classes = bundle.label_map.target.name, bundle.label_map.target.names
    sessions = []
    for folder in session_dirs(args):
        files = {"annotation": folder / f"{args.role}.{scheme}.{args.annotator}.annotation"}
        if args.probabilities:
            files.update({f"prob_{c}": folder / f"{args.role}.{scheme}-p{c}.{args.annotator}.annotation"
                          for c in classes})
        sessions.append({"inputs": {f"feature_{i}": folder / f"{s}.stream" for i, s in enumerate(streams)},
                         "out": folder, "name": folder.name, "role": args.role, "annotator": args.annotator,
                         "files": files, "outputs": list(files)})
    return run_sessions(PREDICT, sessions, options, args.dataset, job)
