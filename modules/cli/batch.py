"""``nova-infant batch``: one module over a dataset's sessions, locally or on Slurm (see :mod:`nova_infant.core.batch`)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from nova_infant.core.batch import ModuleJob, build_request, format_table, run_batch
from nova_infant.core.dataset_sessions import sessions_in_db, sessions_in_file, sessions_in_root
from nova_infant.core.errors import BatchError, OptionError
from nova_infant.core.package_data import TRAINER_DIR, checkout_root
from nova_infant.specs.dinov2_pca import fit_batch_basis
from nova_infant.specs.cli import add_option_flags, checked_names, optional_number, options_from_args, tool_spec
from nova_infant.specs.options import Option

#: ``batch``'s numbers, parsed and checked as module options (:func:`nova_infant.specs.cli.tool_spec`)
BATCH = tool_spec("batch", (
    Option("workers", "int", 1, "local worker processes, one model load each", minimum=1, maximum=1024),
    Option("threads_per_worker", "int", 0, "torch threads per worker (0: torch's default)", minimum=0,
           maximum=1024),
    Option("retries", "int", 1, "extra attempts for a failed session", minimum=0, maximum=100),
    Option("gpus", "str", "", "Slurm GPUs per session (unset: per module)", check=optional_number(0, 64, True)),
    Option("mem_gb", "str", "", "Slurm memory per session, GB (unset: per module)",
           check=optional_number(0.001, None)),
    Option("time_min", "str", "", "Slurm time limit per session, minutes", check=optional_number(1, None, True)),
    Option("cpus_per_task", "str", "", "Slurm CPUs per session (unset: 1)", check=optional_number(1, 4096, True)),
    Option("max_parallel", "str", "", "Slurm: most array tasks running at once",
           check=optional_number(1, None, True))))


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``batch`` sub-command."""
    p = sub.add_parser("batch", help="run a module (extractor, tagger, ICEP-R predictor) over many sessions; skips "
                                     "up-to-date sessions; local process pool or Slurm job array",
                       description="Run a module over a dataset's sessions. See docs/cluster.md.")
    p.add_argument("trainer", help="trainer name in trainers/nova_infant (e.g. dinov2_pca, w2v_bert, audio_events, "
                                   "emotion_tagger, icep_predict) or a path to a .trainer file")
    p.add_argument("--root", required=True, help="NOVA data root; sessions are <root>/<dataset>/<session>/")
    p.add_argument("--dataset", required=True, help="NOVA dataset")
    p.add_argument("--sessions-file", help="text file with one session per line (default: every session folder)")
    p.add_argument("--db", default=None, metavar="mongodb://[USER:PASSWORD@]HOST[:PORT]",
                   help="list the sessions of --dataset from this NOVA database (their files are read and written in "
                        "file mode under --root, NOVA's data folder); the password may come from $NOVA_DB_PASSWORD")
    p.add_argument("--session-pattern", default=None, metavar="GLOB",
                   help="with --db: only sessions whose name matches this shell-style pattern, e.g. 'P0*'")
    p.add_argument("--role", default="infant", help="role in default file names <role>.<io default><ext>")
    p.add_argument("--io", action="append", default=[], metavar="ID=FILE",
                   help="file of an io in the session folder (or an absolute template with {dataset}/{session}); "
                        "FILE 'off' leaves an output inactive; repeatable")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE", help="module option; repeatable")
    p.add_argument("--options", default=None, help="module options as a JSON object (as du-process --options)")
    p.add_argument("--executor", choices=["local", "slurm"], default="local")
    p.add_argument("--local-gpus", default="", help="local: GPU ids, e.g. 0,1; worker i uses GPU i mod n (default: as is)")
    p.add_argument("--force", action="store_true", help="run every session even if up to date")
    p.add_argument("--state-dir", default=None, help="provenance records and Slurm logs (default <root>/.nova-infant-batch)")
    p.add_argument("--partition", default=None, help="Slurm partition")
    add_option_flags(p, BATCH)
    p.add_argument("--cml-dir", default=None, help="folder of the .trainer files (default: this checkout's trainers/nova_infant, "
                                                  "else the installed package's copy)")
    p.set_defaults(func=run)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise OptionError(f"{what}: expected NAME=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def _db_uri(uri: str) -> str:
    """``uri`` with the password of ``$NOVA_DB_PASSWORD`` added when it names a user but no password (so that the
    password stays out of the shell history and ``ps``)."""
    from urllib.parse import quote, urlsplit

    password = os.environ.get("NOVA_DB_PASSWORD")
    parts = urlsplit(uri)
    if password and parts.username and parts.password is None and parts.scheme == "mongodb":
        return uri.replace(f"{parts.username}@", f"{parts.username}:{quote(password, safe='')}@", 1)
    return uri


def run(args) -> int:
    """``nova-infant batch``; prints the final table; returns 0 when no session failed, else 1."""
    from nova_infant.discover.registry import REPO_TRAINER_DIR  # loads torch: imported on use

    trainer = Path(args.trainer)
    if trainer.suffix != ".trainer":
        default = REPO_TRAINER_DIR if checkout_root() is not None else TRAINER_DIR
        trainer = Path(args.cml_dir or default) / f"{args.trainer}.trainer"
    if not trainer.is_file():
        raise BatchError(f"{trainer}: no such trainer file")
    options = {}
    if args.options:
        try:
            options = json.loads(args.options)
        except ValueError as exc:
            raise OptionError(f"--options: not JSON ({exc})") from None
    options.update(_pairs(args.option, "--option"))
    n = options_from_args(BATCH, args)
    checked_names(dataset=args.dataset, role=args.role)
    if args.db and args.sessions_file:
        raise OptionError("--db and --sessions-file: give one source of sessions")
    if args.session_pattern and not args.db:
        raise OptionError("--session-pattern: needs --db (a session list file or the data root lists every name)")
    if args.db:
        sessions = sessions_in_db(_db_uri(args.db), args.dataset, args.session_pattern)
    elif args.sessions_file:
        sessions = sessions_in_file(args.sessions_file)
    else:
        sessions = sessions_in_root(args.root, args.dataset)
    state_dir = Path(args.state_dir or Path(args.root) / ".nova-infant-batch").resolve()
    job = ModuleJob(str(trainer.resolve()), args.dataset, build_request(trainer, args.root, args.role,
                                                                        _pairs(args.io, "--io")),
                    options, str(state_dir), threads=n["threads_per_worker"])
    prepare_job(job, sessions, Path(args.root) / args.dataset)
    resources = {key: n[key] for key in ("gpus", "mem_gb", "time_min", "cpus_per_task", "max_parallel")}
    resources["partition"] = args.partition
    results = run_batch(job, sessions, executor=args.executor, workers=n["workers"], retries=n["retries"],
                        force=args.force, resources=resources,
                        gpus=[g.strip() for g in args.local_gpus.split(",") if g.strip()])
    print(format_table(results))
    if any(r.status == "interrupted" for r in results):
        return 130  # Ctrl-C (128 + SIGINT), as a shell reports it
    return 1 if any(r.status == "failed" for r in results) else 0


def prepare_job(job, sessions: list[str], dataset_dir: Path) -> None:
    """What must exist once for the whole job before any worker starts, made here in the parent process: the
    DINOv2-PCA extractor's dataset basis (``pca=dataset`` without an existing basis) is fitted once on the job's
    sessions' videos (or option ``pca_fit_sessions``) and named in the job's option ``pca_basis``, so that every
    worker reads the same basis (else each would fit its own on whichever session it picked first).

    Parameters
    ----------
    job : nova_infant.core.batch.ModuleJob
        Its ``options`` gain ``pca_basis`` (the fingerprint then includes the basis's content).
    sessions : list of str
    dataset_dir : Path
        ``<root>/<dataset>``: where the default basis folder lives.

    Raises
    ------
    OptionError, SavedModelError, VideoDecodeError, WeightsUnavailableError
        One line: a bad option, an existing folder that is not a basis, no decodable fit video, missing weights.
    """
    from discover_utils.utils import ssi_xml_utils

    from nova_infant.specs.registry import SPECS

    trainer = ssi_xml_utils.Trainer()
    trainer.load_from_file(Path(job.trainer_path))
    spec = next((s for s in SPECS.values() if s.create == trainer.model_create), None)
    if spec is None or spec.name != "dinov2_pca":
        return
    video = next((e for e in job.data if e["id"] == "video"), None)
    if video is None:
        return
    videos = {s: Path(video["uri_template"].format(dataset=job.dataset, session=s)) for s in sessions}
    job.options.update(fit_batch_basis(spec, job.options, videos, dataset_dir))
