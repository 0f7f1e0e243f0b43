"""``nova-infant w2v-bert``: W2V-BERT features of one audio (or video) file written as an SSI ``.stream``."""

from __future__ import annotations

import argparse
import logging

from nova_infant.core.backbones import DEFAULT_W2V_BERT

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``w2v-bert`` sub-command (options as in the DISCOVER module ``w2v_bert.trainer``)."""
    p = sub.add_parser("w2v-bert", help="extract Wav2Vec2-BERT features of an audio/video file onto a frame grid")
    p.add_argument("audio", help="audio file (wav/flac/..., any rate, mono or multi-channel) or a video with audio")
    p.add_argument("out", help="output .stream path (plus its data file <out>~)")
    p.add_argument("--model", default=DEFAULT_W2V_BERT, help="hub id or local checkpoint dir (default: %(default)s)")
    p.add_argument("--frame-step", default="40ms", help="output frame step: 40ms, 0.04s, 25fps (default: %(default)s)")
    p.add_argument("--left-context", type=float, default=50.0, help="ms before each frame pooled into it (default: 50)")
    p.add_argument("--right-context", type=float, default=50.0, help="ms after each frame pooled into it (default: 50)")
    p.add_argument("--layer", type=int, default=-1, help="-1 = last hidden state, else index into hidden_states")
    p.add_argument("--chunk-s", type=float, default=30.0, help="encoder chunk kept per window, s (default: 30)")
    p.add_argument("--overlap-s", type=float, default=3.0, help="context added on each side of a chunk, s (default: 3)")
    p.add_argument("--batch-size", type=int, default=2, help="encoder windows per forward call (default: 2)")
    p.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "int8"],
                   help="auto (default: bf16 on a GPU or on a CPU with avx512_bf16/AMX, else fp32) | fp32 | bf16 | "
                        "int8 (CPU only); do not mix precisions within one dataset")
    p.add_argument("--no-bf16", dest="bf16", action="store_const", const=False, default=None,
                   help="deprecated: same as --precision fp32")
    p.add_argument("--duration-ms", type=float, default=0.0, help="session duration fixing the grid, ms (0 = unset)")
    p.add_argument("--reference", default=None, help="video/audio/.stream of the session whose duration fixes the grid")
    p.set_defaults(func=run)


def run(args) -> int:
    """Extract, then write the stream atomically; returns 0. Errors are ``NovaInfantError`` (one line, exit 2)."""
    from nova_infant.core.media import media_duration_ms
    from nova_infant.core.nova_io import write_ssi_stream
    from nova_infant.core.validation import check_w2v_bert_options
    from nova_infant.features.w2v_bert import extract_w2v_bert, to_stream

    check_w2v_bert_options(args.frame_step, args.left_context, args.right_context, args.layer, args.chunk_s,
                           args.overlap_s, args.batch_size, args.duration_ms, args.device, args.precision)
    reference_ms = media_duration_ms(args.reference) if args.reference else None
    features, grid, metadata = extract_w2v_bert(
        args.audio, args.model, step=args.frame_step, left_ms=args.left_context, right_ms=args.right_context,
        layer=args.layer, chunk_s=args.chunk_s, overlap_s=args.overlap_s, batch_size=args.batch_size,
        device=args.device, bf16=args.bf16, precision=args.precision, duration_ms=args.duration_ms,
        reference_duration_ms=reference_ms,
        progress=True)
    path = write_ssi_stream(to_stream(features, grid, metadata), args.out)
    print(f"{path}: {grid.n_frames} rows x {features.shape[1]} dims at {grid.sample_rate_hz:g} Hz "
          f"({metadata['weights']} {metadata['model']}, {metadata['precision']})")
    return 0
