"""``nova-infant w2v-bert``: W2V-BERT features of one audio (or video) file written as an SSI ``.stream``.

The options and their checks are the module spec's (:data:`nova_infant.specs.w2v_bert.SPEC`); the command runs the
spec's ``run`` and its one writer, as ``nova-infant run w2v-bert`` and DISCOVER do.
"""

from __future__ import annotations

import argparse
import logging

from nova_infant.specs.cli import add_option_flags, options_from_args
from nova_infant.specs.sessions import FileSession
from nova_infant.specs.w2v_bert import SPEC
from nova_infant.specs.writing import write_files

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``w2v-bert`` sub-command (options: :data:`nova_infant.specs.w2v_bert.SPEC`).

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``nova-infant`` sub-command collection.
    """
    p = sub.add_parser("w2v-bert", help="extract Wav2Vec2-BERT features of an audio/video file onto a frame grid")
    p.add_argument("audio", help="audio file (wav/flac/..., any rate, mono or multi-channel) or a video with audio")
    p.add_argument("out", help="output .stream path (plus its data file <out>~)")
    add_option_flags(p, SPEC)
    p.add_argument("--no-bf16", dest="bf16", action="store_const", const="False", default=None,
                   help="deprecated: same as --precision fp32")
    p.add_argument("--reference", default=None, help="video/audio/.stream of the session whose duration fixes the grid")
    p.set_defaults(func=run)


def run(args) -> int:
    """Extract, then write the stream atomically; prints ``<path>: <rows> rows x <dims> dims at <rate> Hz``.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``w2v-bert`` arguments.

    Returns
    -------
    int
        0. Errors are ``NovaInfantError`` (one line naming the file, exit code 2).
    """
    from pathlib import Path

    options = options_from_args(SPEC, args, {"bf16": args.bf16} if args.bf16 is not None else None)
    out = Path(args.out)
    session = FileSession({"audio": args.audio, "reference": args.reference}, out.parent, files={"w2v_bert": out},
                          job={"progress": True})
    result = SPEC.run(session, options)
    for path in write_files(SPEC, result, session):
        print(f"{path}: {result.notes[0]}")
    return 0
