"""``nova-infant icep ...``: ICEP-R schemes, cross-validation, training and prediction over NOVA file-mode sessions.

Sessions live in NOVA's layout ``<root>/<dataset>/<session>/`` with feature streams ``<role>.<stream>.stream`` and
annotations ``<role>.<scheme>.<annotator>.annotation``. A bad session in a batch is reported on one line and
skipped; the exit code is then 1 (2 when nothing usable is left).
"""

from __future__ import annotations

import sys
from pathlib import Path

from nova_infant.core.atomic import check_replaceable, safe_name
from nova_infant.core.errors import NovaInfantError, OptionError
from nova_infant.core.validation import folds_for, int_option, one_line, usable_training_sessions
from nova_infant.icep.dataset import SessionSpec, list_sessions, load_session
from nova_infant.icep.schemes import import_schemes, label_map, write_scheme_templates
from nova_infant.specs.cli import add_option_flags, options_from_args
from nova_infant.specs.icep import PREDICT, TRAIN_OPTIONS, check_training, predictor_options, train_config
from nova_infant.specs.module_spec import ModuleSpec

#: the training options as one spec (role offers both roles here; the NOVA modules fix theirs)
TRAIN = ModuleSpec(name="icep", create="", category="ICEP-R", description="icep cv/train", inputs=(), outputs=(),
                   options=TRAIN_OPTIONS, run=lambda session, options: None, check=check_training)


def register(subparsers) -> None:
    """Add ``icep`` with sub-commands import-schemes, write-schemes, cv, train, predict (training and prediction
    options: the specs', :mod:`nova_infant.specs.icep`).

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The ``nova-infant`` sub-command collection.
    """
    icep = subparsers.add_parser("icep", help="ICEP-R engagement phases: schemes, training, evaluation, prediction")
    sub = icep.add_subparsers(dest="icep_command", required=True)

    p = sub.add_parser("import-schemes", help="insert the ICEP-R schemes (full and merged) into a NOVA database")
    p.add_argument("--db-host", default="127.0.0.1")
    p.add_argument("--db-port", type=int, default=37317)
    p.add_argument("--db-user", default=None)
    p.add_argument("--db-password", default=None)
    p.add_argument("--dataset", required=True, help="NOVA dataset (= MongoDB database)")
    p.add_argument("--replace", action="store_true", help="overwrite schemes of the same name")
    p.set_defaults(func=cmd_import_schemes)

    p = sub.add_parser("write-schemes", help="write empty file-mode .annotation templates of every ICEP-R scheme")
    p.add_argument("out_dir")
    p.set_defaults(func=cmd_write_schemes)

    for name, func, text in (("cv", cmd_cv, "nested session-grouped cross-validation (report + pictures)"),
                             ("train", cmd_train, "train a model bundle and its predictor .trainer")):
        p = sub.add_parser(name, help=text)
        _session_args(p, role=False)
        p.add_argument("--scheme", default=None, help="scheme of the label annotation (default ICEP-R-<role>)")
        p.add_argument("--annotator", default="gold")
        add_option_flags(p, TRAIN, skip=("model_name",))
        p.add_argument("--out", required=True, help="report folder (cv) or bundle folder (train)")
        if name == "train":
            p.add_argument("--cml-dir", default=None, help="DISCOVER folder holding icep_predict.py: the predictor "
                                                           ".trainer is written there")
        else:
            _executor_args(p)
        p.set_defaults(func=func)

    p = sub.add_parser("predict", help="predict ICEP-R annotations for sessions with a bundle")
    _session_args(p, streams_required=False)
    p.add_argument("--bundle", required=True)
    p.add_argument("--annotator", default="icep")
    add_option_flags(p, PREDICT, names=("min_dur_ms",))
    p.add_argument("--probabilities", action="store_true", help="also write one continuous track per class")
    p.set_defaults(func=cmd_predict)


def _session_args(p, streams_required=True, role=True):
    p.add_argument("--root", required=True, help="NOVA data folder")
    p.add_argument("--dataset", required=True)
    p.add_argument("--sessions", nargs="*", default=None, help="session names (default: every session folder)")
    p.add_argument("--streams", nargs="+", required=streams_required,
                   help="feature streams '<role>.<name>' fused in this order (predict: default from the bundle)")
    if role:  # icep cv/train: the training option role (nova_infant.specs.icep.TRAIN_OPTIONS)
        p.add_argument("--role", default="infant", choices=["infant", "caregiver"], help="coded role (ICEP-R scheme)")


def _executor_args(p):
    """``icep cv``: where the outer folds run (docs/cluster.md, "ICEP-R cross-validation as a job array")."""
    p.add_argument("--executor", choices=["inline", "local", "slurm"], default="inline",
                   help="inline: the folds one after the other in this process (default); local: a process pool; "
                        "slurm: one job array, a task per fold. local/slurm keep <out>/folds/ (plan + one file per "
                        "fold) and a re-run runs only the folds still missing")
    p.add_argument("--workers", type=int, default=1, help="local: fold processes at once (default 1)")
    p.add_argument("--threads-per-worker", type=int, default=None,
                   help="torch threads per fold job (local/slurm; default 1); with inline, the threads of this "
                        "process (default: torch's). Same count on CPU -> bit-identical reports across executors")
    p.add_argument("--retries", type=int, default=1, help="local/slurm: extra attempts of a failed fold (default 1)")
    p.add_argument("--partition", default=None, help="Slurm partition")
    p.add_argument("--gpus", type=int, default=None, help="Slurm GPUs per fold (default 1)")
    p.add_argument("--mem-gb", type=float, default=None, help="Slurm memory per fold in GB (default 32)")
    p.add_argument("--time-min", type=int, default=None, help="Slurm time limit per fold in minutes (default 480)")
    p.add_argument("--cpus-per-task", type=int, default=None, help="Slurm CPUs per fold (default 1)")
    p.add_argument("--max-parallel", type=int, default=None, help="Slurm: most folds running at once")


def _checked(args) -> dict:
    """Every training option of ``icep cv``/``icep train`` parsed once from the spec's flags
    (:data:`nova_infant.specs.icep.TRAIN_OPTIONS`), before any session is read or anything written.

    Returns
    -------
    dict
        ``options`` (all parsed), ``config`` (:func:`nova_infant.specs.icep.train_config`), ``folds``,
        ``val_fraction``, ``grid``, ``inner_folds``, ``min_dur_ms``.

    Raises
    ------
    OptionError
        One line naming the option and its flag.
    """
    fixed = {"cv_folds": 5} if args.func is cmd_cv and args.cv_folds is None else None
    o = options_from_args(TRAIN, args, fixed)
    cml_dir = getattr(args, "cml_dir", None)
    if cml_dir and not (Path(cml_dir) / "icep_predict.py").is_file():
        raise OptionError(f"{cml_dir}: option cml-dir: no icep_predict.py here; give the nova_infant trainers folder")
    if args.func is cmd_cv and o["cv_folds"] < 2:
        raise OptionError(f"option folds: cross-validation needs >= 2 folds, got {o['cv_folds']}")
    return {"options": o, "config": train_config(o), "folds": o["cv_folds"], "val_fraction": o["val_fraction"],
            "grid": o["grid"], "inner_folds": o["inner_folds"], "min_dur_ms": o["min_dur_ms"]}


def _config(args):
    """The ``TrainConfig`` parsed once by :func:`_checked`."""
    return args.checked["config"]


def _session_dirs(args) -> list[Path]:
    base = Path(args.root) / safe_name(args.dataset, "--dataset")
    for name in args.sessions or []:
        safe_name(name, "--sessions")
    twice = sorted({n for n in args.sessions or [] if args.sessions.count(n) > 1})
    if twice:
        raise OptionError(f"--sessions: session {twice[0]} is given twice; give each session once")
    if not base.is_dir():
        raise OptionError(f"{base}: no such dataset folder")
    if args.sessions:
        return [base / s for s in args.sessions]
    return list_sessions(args.root, args.dataset)


def _check_names(args) -> None:
    """Every name that becomes part of a file name: ``PathError`` for ``../x``, ``a/b``, empty names."""
    for flag in ("role", "annotator", "scheme"):
        if getattr(args, flag, None) is not None:
            safe_name(getattr(args, flag), f"--{flag}")
    for stream in getattr(args, "streams", None) or []:
        safe_name(stream, "--streams")


def _report_failures(failures) -> None:
    for where, message in failures:
        print(f"error: {where}: {message}", file=sys.stderr)


def _labelled(args):
    from nova_infant.icep.pipeline import load_sessions  # loads torch: imported on use

    args.checked = _checked(args)
    _check_names(args)
    if args.func is cmd_train:
        check_replaceable(args.out)  # before hours of training, not after
    o = args.checked["options"]
    lmap = label_map(o["label_set"], o["role"])
    scheme = safe_name(args.scheme or f"ICEP-R-{o['role']}", "--scheme")
    spec = SessionSpec(list(args.streams), (o["role"], scheme, args.annotator))
    sessions, failures = load_sessions(_session_dirs(args), spec, lmap, args.checked["config"].window)
    sessions, skipped = usable_training_sessions(sessions)
    failures = list(failures) + [(Path(args.root) / args.dataset / name, reason) for name, reason in skipped]
    where = str(Path(args.root) / args.dataset)
    if not sessions and len(failures) == 1:  # one line says it all
        raise OptionError(f"{failures[0][0]}: {failures[0][1]} (no usable session left)")
    if not sessions:
        _report_failures(failures)
        raise OptionError(f"{where}: no usable session to train on ({len(failures)} skipped)")
    _report_failures(failures)
    args.checked["folds"] = folds_for(args.checked["folds"], len(sessions), where)
    _print_masked(sessions)
    return lmap, spec, sessions, failures, args.checked["grid"]


def _groups(args, sessions):
    from nova_infant.icep.evaluation import parse_groups  # loads torch: imported on use

    return parse_groups(args.checked["options"]["groups"] or None, [s.name for s in sessions])


def _print_masked(sessions) -> None:
    """One line per session: share of frames masked (gaps, garbage, excluded codes)."""
    for s in sessions:
        m = s.masked
        print(f"{s.name}: {m['masked']:.0%} of {m['frames']} frames masked (gap {m['gap']:.0%}, garbage "
              f"{m['garbage']:.0%}, excluded codes {m['excluded']:.0%})")


def cmd_cv(args) -> int:
    """Cross-validate and write ``<out>/cv_report.json`` + PNGs; prints pooled macro-F1 and kappa.

    Method: session-grouped nested cross-validation (docs/icep.md; ICMI'24 ICEP-R paper, §4), baselines on the
    same folds.

    Returns
    -------
    int
        0, or 1 when some sessions were skipped (each reported in one line).

    Raises
    ------
    OptionError
        A bad option (before any session is read), or no usable session.
    """
    from nova_infant.icep.pipeline import evaluate  # loads torch: imported on use

    lmap, _, sessions, failures, grid = _labelled(args)
    c = args.checked
    threads = 1 if args.threads_per_worker is None and args.executor != "inline" else args.threads_per_worker
    if args.workers < 1 or (threads is not None and threads < 1):
        raise OptionError(f"option workers / threads-per-worker: expected >= 1, got {args.workers} / {threads}")
    if threads is not None and args.executor == "inline":
        import torch

        torch.set_num_threads(threads)
    resources = {"gpus": args.gpus, "mem_gb": args.mem_gb, "time_min": args.time_min,
                 "cpus_per_task": args.cpus_per_task, "partition": args.partition, "max_parallel": args.max_parallel}
    result = evaluate(sessions, lmap, _config(args), args.out, c["folds"], grid, c["val_fraction"], c["options"]["seed"],
                      c["inner_folds"], _groups(args, sessions), c["min_dur_ms"], executor=args.executor,
                      workers=args.workers, resources=resources, retries=args.retries,
                      progress=args.executor != "inline", threads=threads or 1)
    print(f"{len(sessions)} sessions, {len(result.folds)} folds: accuracy {result.pooled['accuracy']:.3f}, "
          f"macro-F1 {result.pooled['f1_macro']:.3f} -> {args.out}")
    print(result.summary["line"])
    return 1 if failures else 0


def cmd_train(args) -> int:
    """Train (optionally cross-validate first) and save the bundle + predictor ``.trainer``.

    Returns
    -------
    int
        0, or 1 when some sessions were skipped (each reported in one line).

    Raises
    ------
    OptionError, PathError
        A bad option or an output folder this package did not create, before any training.
    """
    from nova_infant.icep.pipeline import train_bundle  # loads torch: imported on use

    lmap, spec, sessions, failures, grid = _labelled(args)
    info = {"dataset": args.dataset, "streams": spec.streams, "label": list(spec.label),
            "label_set": args.checked["options"]["label_set"]}
    c = args.checked
    bundle, trainer, report = train_bundle(sessions, lmap, _config(args), args.out, args.cml_dir, c["folds"],
                                           c["val_fraction"], grid, info, c["inner_folds"], _groups(args, sessions),
                                           c["min_dur_ms"], predictor_options=predictor_options())
    print(f"bundle {bundle}, predictor {trainer}")
    if report:
        print(f"CV: {report['summary']}")
    elif lmap.note:
        print(lmap.note)
    return 1 if failures else 0


def cmd_predict(args) -> int:
    """Predict every session and write ``<role>.ICEP-R-<role>-merged.<annotator>.annotation`` beside its streams.

    Returns
    -------
    int
        0; 1 when some sessions failed (each reported in one line and skipped); 2 when none could be predicted.

    Raises
    ------
    OptionError, BundleError
        A bad option or an unreadable bundle, before any session is read.
    """
    from nova_infant.icep.bundle import load_bundle  # loads torch: imported on use
    from nova_infant.icep.predict import predict_session, write_prediction  # loads torch: imported on use

    _check_names(args)
    min_dur_ms = options_from_args(PREDICT, args)["min_dur_ms"]
    bundle = load_bundle(args.bundle)
    streams = args.streams or [s["name"] for s in bundle.features["streams"]]
    failed, folders = 0, _session_dirs(args)
    for folder in folders:
        try:
            session = load_session(folder, SessionSpec(streams))
            pred = predict_session(bundle, session, min_dur_ms, bundle.config.batch_size)
            paths = write_prediction(folder, bundle, pred, args.role, args.annotator, args.probabilities, args.dataset)
            print(f"{folder.name}: {len(pred.segments())} segments -> {paths[0]}")
        except (NovaInfantError, OSError) as exc:  # OSError: read-only folder, full disk; go on with the rest
            failed += 1
            print(f"error: {folder}: {one_line(exc)}", file=sys.stderr)
    return 0 if not failed else (2 if failed == len(folders) else 1)


def cmd_import_schemes(args) -> int:
    """Insert the schemes into the dataset's MongoDB database (pymongo; NOVA production runs MongoDB 3.6)."""
    import pymongo

    int_option(args.db_port, "db-port", 1, 65535)

    client = pymongo.MongoClient(host=args.db_host, port=args.db_port, username=args.db_user,
                                 password=args.db_password, serverSelectionTimeoutMS=3000)
    try:
        written = import_schemes(client[args.dataset], replace=args.replace)
    except pymongo.errors.PyMongoError as exc:
        raise OptionError(f"mongodb://{args.db_host}:{args.db_port}: {str(exc).splitlines()[0]}") from None
    print(f"{args.dataset}: wrote {', '.join(written) or 'nothing (schemes exist; use --replace)'}")
    return 0


def cmd_write_schemes(args) -> int:
    """Write ``<out_dir>/<scheme>.annotation`` templates."""
    for path in write_scheme_templates(args.out_dir):
        print(path)
    return 0
