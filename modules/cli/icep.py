"""``nova-infant icep ...``: ICEP-R schemes, cross-validation, training and prediction over NOVA file-mode sessions.

Sessions live in NOVA's layout ``<root>/<dataset>/<session>/`` with feature streams ``<role>.<stream>.stream`` and
annotations ``<role>.<scheme>.<annotator>.annotation``. A bad session in a batch is reported on one line and
skipped; the exit code is then 1 (2 when nothing usable is left).
"""

from __future__ import annotations

import sys
from pathlib import Path

from nova_infant.core.errors import NovaInfantError, OptionError


def register(subparsers) -> None:
    """Add ``icep`` with sub-commands import-schemes, write-schemes, cv, train, predict."""
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
        _session_args(p)
        p.add_argument("--scheme", default=None, help="scheme of the label annotation (default ICEP-R-<role>)")
        p.add_argument("--annotator", default="gold")
        p.add_argument("--label-set", default="merged",
                       help="merged | merged-no-cpvc (caregiver: Cpvc masked instead of joining Cneu) | full | JSON "
                            "file with a map and an exclude list")
        _train_args(p)
        p.add_argument("--folds", type=int, default=5 if name == "cv" else 0, help="outer folds (0 = no CV)")
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
    p.add_argument("--min-dur-ms", type=float, default=0.0, help="smoothing: shortest segment kept (ms)")
    p.add_argument("--probabilities", action="store_true", help="also write one continuous track per class")
    p.set_defaults(func=cmd_predict)


def _session_args(p, streams_required=True):
    p.add_argument("--root", required=True, help="NOVA data folder")
    p.add_argument("--dataset", required=True)
    p.add_argument("--sessions", nargs="*", default=None, help="session names (default: every session folder)")
    p.add_argument("--streams", nargs="+", required=streams_required,
                   help="feature streams '<role>.<name>' fused in this order (predict: default from the bundle)")
    p.add_argument("--role", default="infant", choices=["infant", "caregiver"], help="coded role (ICEP-R scheme)")


def _train_args(p):
    p.add_argument("--model", default="bilstm", choices=["bilstm", "mlp"])
    p.add_argument("--window", type=int, default=50, help="frames per window")
    p.add_argument("--stride", type=int, default=25, help="frames between window starts")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.25)
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=100, help="maximum epochs")
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--normalise", default="session", choices=["session", "fold"],
                   help="session: standardise each session with its own statistics (default, chosen by nested CV: "
                        "docs/icep.md) then fold-level; fold: fold-level standardisation only")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of training groups held out for early stopping (inside every fit)")
    p.add_argument("--grid", default=None, help='JSON list of overrides, e.g. \'[{"window":25},{"window":100}]\'; '
                                                'each point is chosen by the inner K-fold with its own configuration')
    p.add_argument("--inner-folds", type=int, default=3, help="folds of the group-wise inner model-selection CV "
                                                                "(used with two or more grid points; default 3)")
    p.add_argument("--groups", default=None, help="CSV with columns session,group, or a regular expression on the "
                                                  "session name (named group 'group' or first capture group) mapping "
                                                  "sessions to dyads/participants; every split keeps a group together")
    p.add_argument("--min-dur-ms", type=float, default=400.0,
                   help="smoothing evaluated in CV beside the raw predictions (shortest segment kept, ms)")


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
    """Every training option of ``icep cv``/``icep train`` checked up front (nova_infant.core.validation), before any
    session is read or anything written: the values of a ``TrainConfig`` plus ``folds``, ``val_fraction`` and the
    parsed ``grid``. Raises ``OptionError`` (one line)."""
    from nova_infant.core.validation import (check_folds, check_inner_folds, check_train_config, check_val_fraction, float_option,
                             parse_grid)

    values = check_train_config(dict(model=args.model, window=args.window, stride=args.stride, hidden=args.hidden,
                                     layers=args.layers, dropout=args.dropout, optimizer=args.optimizer, lr=args.lr,
                                     batch_size=args.batch_size, max_epochs=args.epochs, patience=args.patience,
                                     seed=args.seed, device=args.device, normalise=args.normalise))
    folds = check_folds(args.folds)
    cml_dir = getattr(args, "cml_dir", None)
    if cml_dir and not (Path(cml_dir) / "icep_predict.py").is_file():
        raise OptionError(f"{cml_dir}: option cml-dir: no icep_predict.py here; give the nova_infant trainers folder")
    if args.func is cmd_cv and folds < 2:
        raise OptionError(f"option folds: cross-validation needs >= 2 folds, got {args.folds}")
    return {"config": values, "folds": folds, "val_fraction": check_val_fraction(args.val_fraction),
            "grid": parse_grid(args.grid, values), "inner_folds": check_inner_folds(args.inner_folds),
            "min_dur_ms": float_option(args.min_dur_ms, "min_dur_ms", 0.0)}


def _config(args):
    from nova_infant.icep.training import TrainConfig

    return TrainConfig(**args.checked["config"])


def _session_dirs(args) -> list[Path]:
    from nova_infant.icep.dataset import list_sessions

    from nova_infant.core.nova_io import safe_name

    base = Path(args.root) / safe_name(args.dataset, "--dataset")
    for name in args.sessions or []:
        safe_name(name, "--sessions")
    if not base.is_dir():
        raise OptionError(f"{base}: no such dataset folder")
    if args.sessions:
        return [base / s for s in args.sessions]
    return list_sessions(args.root, args.dataset)


def _check_names(args) -> None:
    """Every name that becomes part of a file name: ``PathError`` for ``../x``, ``a/b``, empty names."""
    from nova_infant.core.nova_io import safe_name

    for flag in ("role", "annotator", "scheme"):
        if getattr(args, flag, None) is not None:
            safe_name(getattr(args, flag), f"--{flag}")
    for stream in getattr(args, "streams", None) or []:
        safe_name(stream, "--streams")


def _report_failures(failures) -> None:
    for where, message in failures:
        print(f"error: {where}: {message}", file=sys.stderr)


def _labelled(args):
    from nova_infant.icep.dataset import SessionSpec
    from nova_infant.icep.pipeline import load_sessions
    from nova_infant.icep.schemes import label_map
    from nova_infant.core.validation import folds_for, usable_training_sessions

    from nova_infant.core.nova_io import check_replaceable, safe_name

    args.checked = _checked(args)
    _check_names(args)
    if args.func is cmd_train:
        check_replaceable(args.out)  # before hours of training, not after
    lmap = label_map(args.label_set, args.role)
    scheme = safe_name(args.scheme or f"ICEP-R-{args.role}", "--scheme")
    spec = SessionSpec(list(args.streams), (args.role, scheme, args.annotator))
    sessions, failures = load_sessions(_session_dirs(args), spec, lmap, args.checked["config"]["window"])
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
    from nova_infant.icep.evaluation import parse_groups

    return parse_groups(args.groups, [s.name for s in sessions])


def _print_masked(sessions) -> None:
    """One line per session: share of frames masked (gaps, garbage, excluded codes)."""
    for s in sessions:
        m = s.masked
        print(f"{s.name}: {m['masked']:.0%} of {m['frames']} frames masked (gap {m['gap']:.0%}, garbage "
              f"{m['garbage']:.0%}, excluded codes {m['excluded']:.0%})")


def cmd_cv(args) -> int:
    """Cross-validate and write ``<out>/cv_report.json`` + PNGs; prints pooled macro-F1 and kappa."""
    from nova_infant.icep.pipeline import evaluate

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
    result = evaluate(sessions, lmap, _config(args), args.out, c["folds"], grid, c["val_fraction"], args.seed,
                      c["inner_folds"], _groups(args, sessions), c["min_dur_ms"], executor=args.executor,
                      workers=args.workers, resources=resources, retries=args.retries,
                      progress=args.executor != "inline", threads=threads or 1)
    print(f"{len(sessions)} sessions, {len(result.folds)} folds: accuracy {result.pooled['accuracy']:.3f}, "
          f"macro-F1 {result.pooled['f1_macro']:.3f} -> {args.out}")
    print(result.summary["line"])
    return 1 if failures else 0


def cmd_train(args) -> int:
    """Train (optionally cross-validate first) and save the bundle + predictor ``.trainer``."""
    from nova_infant.icep.pipeline import train_bundle

    lmap, spec, sessions, failures, grid = _labelled(args)
    info = {"dataset": args.dataset, "streams": spec.streams, "label": list(spec.label), "label_set": args.label_set}
    c = args.checked
    bundle, trainer, report = train_bundle(sessions, lmap, _config(args), args.out, args.cml_dir, c["folds"],
                                           c["val_fraction"], grid, info, c["inner_folds"], _groups(args, sessions),
                                           c["min_dur_ms"])
    print(f"bundle {bundle}, predictor {trainer}")
    if report:
        print(f"CV: {report['summary']}")
    elif lmap.note:
        print(lmap.note)
    return 1 if failures else 0


def cmd_predict(args) -> int:
    """Predict every session; a bad one is reported and skipped (exit code 1; 2 when no session could be predicted)."""
    from nova_infant.icep.bundle import load_bundle
    from nova_infant.icep.dataset import SessionSpec, load_session
    from nova_infant.icep.predict import predict_session, write_prediction
    from nova_infant.core.validation import float_option, one_line

    _check_names(args)
    float_option(args.min_dur_ms, "min-dur-ms", 0.0)
    bundle = load_bundle(args.bundle)
    streams = args.streams or [s["name"] for s in bundle.features["streams"]]
    failed, folders = 0, _session_dirs(args)
    for folder in folders:
        try:
            session = load_session(folder, SessionSpec(streams))
            pred = predict_session(bundle, session, args.min_dur_ms, bundle.config.batch_size)
            paths = write_prediction(folder, bundle, pred, args.role, args.annotator, args.probabilities, args.dataset)
            print(f"{folder.name}: {len(pred.segments())} segments -> {paths[0]}")
        except (NovaInfantError, OSError) as exc:  # OSError: read-only folder, full disk; go on with the rest
            failed += 1
            print(f"error: {folder}: {one_line(exc)}", file=sys.stderr)
    return 0 if not failed else (2 if failed == len(folders) else 1)


def cmd_import_schemes(args) -> int:
    """Insert the schemes into the dataset's MongoDB database (pymongo; NOVA production runs MongoDB 3.6)."""
    import pymongo

    from nova_infant.icep.schemes import import_schemes
    from nova_infant.core.validation import int_option

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
    from nova_infant.icep.schemes import write_scheme_templates

    for path in write_scheme_templates(args.out_dir):
        print(path)
    return 0
