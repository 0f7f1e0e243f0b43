"""``nova-infant review …``: review helpers for coders (docs/review.md).

- ``review timeline``     PNG and/or self-contained HTML timeline of a session's streams and annotations
- ``review agreement``    Cohen's κ, per-class F1 and confusion matrix between annotation pairs, per session + pooled
- ``review export-elan``  NOVA annotations → ELAN ``.eaf`` (one tier each)
- ``review export-csv``   NOVA annotation → CSV
- ``review import-elan``  ELAN tier → NOVA ``.annotation``
- ``review queue``        rank predicted sessions and segments by expected errors: HTML page, CSV, NOVA marks
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nova_infant.cli.batch import _db_uri
from nova_infant.core import nova_db
from nova_infant.core.errors import AnnotationError, OptionError
from nova_infant.core.validation import check_duration_ms
from nova_infant.icep.schemes import CPVC_NOTE, merged_scheme
from nova_infant.review import queue as rq
from nova_infant.review.agreement import agreement_report, plot_confusion, write_report_json
from nova_infant.review.elan import export_csv, export_elan, import_elan_tier
from nova_infant.review.timeline import build_tracks, render_html, render_png
from nova_infant.specs.cli import add_option_flags, options_from_args, tool_spec
from nova_infant.specs.options import Option

_DURATION = Option("duration_ms", "str", "", "time axis length, ms; 0 or unset: the longest track",
                   check=check_duration_ms)
#: options of the review tools, parsed and checked as a module's (:func:`nova_infant.specs.cli.tool_spec`)
TIMELINE = tool_spec("review timeline", (_DURATION,))
AGREEMENT = tool_spec("review agreement", (
    Option("step_ms", "float", 40.0, "frame grid step, ms", minimum=0, min_open=True),
    Option("duration_ms", "str", "", "session duration, ms; 0 or unset: the later annotation end",
           check=check_duration_ms)))


def cmd_timeline(args) -> int:
    """Render the timeline of the given files/session folder (``--png``/``--html``); exit code 0."""
    if not args.png and not args.html:
        raise AnnotationError("review timeline: give --png and/or --html")
    duration_ms = options_from_args(TIMELINE, args)["duration_ms"]
    tracks = build_tracks(args.inputs)
    title = args.title or ", ".join(Path(p).name for p in args.inputs)
    if args.png:
        print(render_png(tracks, args.png, duration_ms, title))
    if args.html:
        print(render_html(tracks, args.html, duration_ms, title))
    return 0


def _class_map(value) -> dict | None:
    """``--map``: a JSON object ``{"class": "compared class"}``, inline or in a file, or a label-set file with a
    ``"map"`` object (docs/icep.md, "Label sets"). None when not given.

    Raises
    ------
    OptionError
        If it is neither, or a key or value is not a string.
    """
    import json

    if not value:
        return None
    text = Path(value).read_text() if Path(value).is_file() else value
    try:
        doc = json.loads(text)
    except ValueError:
        raise OptionError(f"option --map: {value}: expected a JSON object {{\"class\": \"compared class\"}} or a "
                          f"file holding one") from None
    if isinstance(doc, dict) and isinstance(doc.get("map"), dict):
        doc = doc["map"]
    if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
        raise OptionError(f"option --map: {value}: expected a JSON object of class names to class names")
    return doc


def cmd_agreement(args) -> int:
    """Write the agreement report JSON (and confusion PNG) and print κ / macro-F1 per session and pooled."""
    o = options_from_args(AGREEMENT, args)
    refs, hyps = args.reference, args.hypothesis
    if len(refs) != len(hyps):
        raise AnnotationError(f"review agreement: {len(refs)} --reference but {len(hyps)} --hypothesis files")
    sessions = args.session or [Path(r).parent.name or Path(r).stem for r in refs]
    if len(sessions) != len(refs) or len(set(sessions)) != len(sessions):
        sessions = [f"{i}:{Path(r).parent.name}" for i, r in enumerate(refs)]
    resolved = [Path(r).resolve() for r in refs]
    twice = next((r for i, r in enumerate(refs) if resolved[i] in resolved[:i]), None)
    if twice is not None:
        raise AnnotationError(f"{twice}: --reference given twice; give each session's annotation once")
    report = agreement_report(list(zip(sessions, refs, hyps)), step_ms=o["step_ms"], duration_ms=o["duration_ms"],
                              class_map=_class_map(args.map))
    for name, entry in list(report["sessions"].items()) + [("POOLED", report["pooled"])]:
        if "error" in entry:
            print(f"{name}: {entry['error']}")
            continue
        kappa = "n/a" if entry["kappa"] is None else f"{entry['kappa']:.3f}"
        print(f"{name}: frames={entry['n_frames']} kappa={kappa} macro-F1={entry['f1_macro']:.3f} "
              f"weighted-F1={entry['f1_weighted']:.3f} accuracy={entry['accuracy']:.3f}")

    if report.get("classes") == merged_scheme("caregiver").names:  # caregiver scores: state the Cpvc decision
        report["label_set_note"] = CPVC_NOTE
        print(CPVC_NOTE)
    if args.json:
        print(write_report_json(report, args.json))
    if args.png:
        print(plot_confusion(report["pooled"], args.png, title="pooled"))
    return 0


def cmd_export_elan(args) -> int:
    """Write the annotations as tiers of one ELAN file."""
    print(export_elan(args.annotations, args.out, media=args.media, tier_names=args.tier))
    return 0


def cmd_export_csv(args) -> int:
    """Write one annotation as CSV."""
    print(export_csv(args.annotation, args.out))
    return 0


def cmd_import_elan(args) -> int:
    """Convert one ELAN tier to a NOVA annotation."""
    print(import_elan_tier(args.eaf, args.tier, args.out, scheme=args.scheme, scheme_name=args.scheme_name,
                           role=args.role, annotator=args.annotator))
    return 0


def cmd_queue(args) -> int:
    """Write the review queue (HTML, CSV, optional NOVA marks) over a data root or a NOVA database and print its
    summary and top lines (:mod:`nova_infant.review.queue`).

    Returns
    -------
    int
        0; 1 when some annotation could not be read (each named in one line, the rest queued); 2 when nothing was
        found.
    """
    out = Path(args.out)
    problems: list[str] = []
    folders: dict = {}
    if args.db:
        if not args.dataset or not args.scheme:
            raise AnnotationError("review queue --db: give --dataset and --scheme")
        ctx = nova_db.connect(_db_uri(args.db))
        items, problems = rq.collect_db(ctx, args.dataset, args.role, args.scheme, args.annotator,
                                        args.session_pattern)
        where = f"{args.db}/{args.dataset}"
    else:
        items, folders, problems = rq.collect_files(args.root, args.dataset, args.role, args.scheme, args.annotator)
        where = str(Path(args.root) / (args.dataset or ""))
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    if not items:
        print(f"error: {where}: no predicted annotation {args.role}.{args.scheme or '*'}.{args.annotator} found",
              file=sys.stderr)
        return 2
    title = args.title or f"Review queue: {where} ({args.role}, annotator {args.annotator})"
    html_path = rq.render_html(items, out / "review_queue.html", title, args.threshold)
    csv_path = rq.write_csv(items, out / "review_queue.csv")
    s = rq.summary(items)
    print(f"{len(items)} segments in {len(s['sessions'])} sessions: {s['total_expected_errors_s']:.1f} s expected "
          f"errors in {s['total_minutes']:.1f} min; review {s['minutes_for']['50%']:.1f} min for half, "
          f"{s['minutes_for']['80%']:.1f} min for 80 %")
    for row in rq.table_rows(items)[:args.top]:
        print(f"  {row['rank']:>3d}. {row['session']} {row['start_s']:8.2f}-{row['end_s']:8.2f} s  {row['code']:<6s} "
              f"conf {row['confidence']:.2f}  expected errors {row['expected_errors_s']:.2f} s")
    print(html_path)
    print(csv_path)
    if args.mark:
        if args.db:
            print("error: --mark writes NOVA annotation files: data roots only", file=sys.stderr)
            return 1
        for name, folder in folders.items():
            print(rq.write_review_marks(folder, [it for it in items if it.session == name], args.role,
                                        args.mark_annotator, args.threshold, args.dataset or ""))
    return 1 if problems else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``review`` command group."""
    review = sub.add_parser("review", help="review helpers: timeline, agreement, ELAN/CSV export and import")
    rsub = review.add_subparsers(dest="review_command", required=True)

    p = rsub.add_parser("timeline", help="PNG/HTML timeline of streams and annotations (NOVA track order)")
    p.add_argument("inputs", nargs="+", help=".stream/.annotation files, or a NOVA session folder")
    p.add_argument("--png", help="PNG to write")
    p.add_argument("--html", help="self-contained HTML page to write")
    add_option_flags(p, TIMELINE)
    p.add_argument("--title", help="heading (default: the input names)")
    p.set_defaults(func=cmd_timeline)

    p = rsub.add_parser("agreement", help="Cohen's kappa, per-class F1, confusion matrix (per session and pooled)")
    p.add_argument("--reference", action="append", required=True,
                   help="reference .annotation (e.g. the coder's); repeat once per session")
    p.add_argument("--hypothesis", action="append", required=True,
                   help="hypothesis .annotation (e.g. the model's), same order as --reference")
    p.add_argument("--session", action="append", help="session names (default: the reference files' folders)")
    p.add_argument("--map", default=None, metavar="JSON",
                   help='class correspondence when reference and hypothesis are of different schemes: '
                        '{"class": "compared class"} inline or a JSON file (a label set\'s "map" works)')
    add_option_flags(p, AGREEMENT)
    p.add_argument("--json", help="report JSON to write")
    p.add_argument("--png", help="pooled confusion-matrix PNG to write")
    p.set_defaults(func=cmd_agreement)

    p = rsub.add_parser("export-elan", help="NOVA annotations -> ELAN .eaf (one tier each)")
    p.add_argument("annotations", nargs="+", help=".annotation files (discrete or free)")
    p.add_argument("--out", required=True, help=".eaf to write")
    p.add_argument("--media", help="video/audio file to link in ELAN")
    p.add_argument("--tier", action="append", help="tier names, in input order (default: role.scheme.annotator)")
    p.set_defaults(func=cmd_export_elan)

    p = rsub.add_parser("export-csv", help="NOVA annotation -> CSV")
    p.add_argument("annotation", help=".annotation file")
    p.add_argument("--out", required=True, help=".csv to write")
    p.set_defaults(func=cmd_export_csv)

    p = rsub.add_parser("import-elan", help="ELAN tier -> NOVA discrete .annotation")
    p.add_argument("eaf", help="ELAN .eaf file")
    p.add_argument("--tier", required=True, help="tier to import")
    p.add_argument("--out", required=True, help=".annotation to write (<role>.<scheme>.<annotator>.annotation)")
    p.add_argument("--scheme", help="scheme JSON (e.g. schemes/icep_r_infant.json); values must be its classes")
    p.add_argument("--scheme-name", help="scheme name (default: the scheme's or the tier's)")
    p.add_argument("--role", default="", help="NOVA role (e.g. infant)")
    p.add_argument("--annotator", default="", help="NOVA annotator (e.g. the ELAN coder)")
    p.set_defaults(func=cmd_import_elan)

    p = rsub.add_parser("queue", help="rank predicted sessions and segments by expected errors (calibrated "
                                      "confidence): HTML page, CSV, optional NOVA review marks")
    p.add_argument("root", nargs="?", default="", help="NOVA data folder (file mode)")
    p.add_argument("--dataset", help="dataset folder under root / NOVA database dataset")
    p.add_argument("--db", help="NOVA database mongodb://user@host:port (password from NOVA_DB_PASSWORD)")
    p.add_argument("--session-pattern", help="database: sessions matching this pattern only")
    p.add_argument("--role", default="infant", help="role of the predicted annotations (default: %(default)s)")
    p.add_argument("--scheme", help="scheme of the predictions (file mode default: any)")
    p.add_argument("--annotator", default="icep", help="annotator of the predictions (default: %(default)s)")
    p.add_argument("--threshold", type=float, default=0.7, help="NOVA's correction certainty level (default: "
                                                                 "%(default)s)")
    p.add_argument("--out", required=True, help="folder for review_queue.html and review_queue.csv")
    p.add_argument("--top", type=int, default=10, help="queue lines printed (default: %(default)s)")
    p.add_argument("--title", help="page heading")
    p.add_argument("--mark", action="store_true", help="also write <role>.review.<mark-annotator>.annotation per "
                                                       "session marking the segments below the threshold")
    p.add_argument("--mark-annotator", default="review", help="annotator of those marks (default: %(default)s)")
    p.set_defaults(func=cmd_queue)
