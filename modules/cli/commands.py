"""General sub-commands: weights export, stand-in checkpoints, sample sessions, NOVA schemes, the .trainer files."""

from __future__ import annotations

import argparse
from pathlib import Path

from nova_infant.core.backbones import export_weights, save_standin
from nova_infant.core.errors import OptionError, TrainerFileError
from nova_infant.core.nova_db import connect
from nova_infant.core.package_data import checkout_root, repo_copy_differences, write_repo_copies
from nova_infant.core.sample_media import build_session
from nova_infant.core.trainer_files import read_trainer
from nova_infant.specs.cli import add_option_flags, checked_names, optional_number, options_from_args, tool_spec
from nova_infant.specs.options import Option


#: options of ``sample-session``, parsed and checked as a module's (:func:`nova_infant.specs.cli.tool_spec`)
SAMPLE_SESSION = tool_spec("sample-session", (
    Option("fps", "str", "", "video frame rate, frames/s; unset: the clip's own 29.97 fps",
           check=optional_number(1.0, 240.0)),
    Option("audio_rate", "int", 16000, "audio sample rate, Hz", minimum=4000, maximum=384000),
    Option("channels", "int", 1, "audio channels", minimum=1, maximum=8),
    Option("repeat", "int", 1, "loop the 4 s clip this many times", minimum=1, maximum=1000)))


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``export-weights``, ``make-standin``, ``sample-session``, ``import-schemes``, ``check-trainers``,
    ``write-package-copies`` and ``write-trainers``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``nova-infant`` sub-command collection.
    """
    p = sub.add_parser("export-weights", help="save a DINOv2 / W2V-BERT / VideoMAE checkpoint into a folder an air-gapped lab can copy")
    p.add_argument("model", help="hub id (e.g. facebook/dinov2-large, facebook/w2v-bert-2.0) or a local directory")
    p.add_argument("out_dir", help="folder to write config.json, model.safetensors and the processor files into")
    p.add_argument("--kind", choices=["dinov2", "w2v-bert", "videomae"], help="checkpoint kind (guessed from the name if omitted)")
    p.set_defaults(func=_export_weights)

    p = sub.add_parser("make-standin", help="save an UNTRAINED random checkpoint of the real architecture (tests, demos, benchmarks)")
    p.add_argument("kind", choices=["dinov2", "w2v-bert", "videomae"])
    p.add_argument("out_dir")
    p.add_argument("--size", default="tiny", help="tiny (default); dinov2: small|base|large|giant; w2v-bert: full; videomae: small|base")
    p.set_defaults(func=_make_standin)

    p = sub.add_parser("sample-session", help="build a real file-mode session (carphone face + LibriVox speech) in NOVA's layout")
    p.add_argument("root", help="NOVA data dir; the session goes to <root>/<dataset>/<session>/")
    p.add_argument("--dataset", default="demo")
    p.add_argument("--session", default="carphone01")
    add_option_flags(p, SAMPLE_SESSION)
    p.set_defaults(func=_sample_session)

    p = sub.add_parser("import-schemes", help="create or update every scheme our modules write (discrete and continuous) "
                                              "in a NOVA database: run once per database before any job")
    p.add_argument("--db", required=True, help="NOVA MongoDB, mongodb://[user:password@]host[:port]")
    p.add_argument("--dataset", required=True, help="NOVA dataset (= MongoDB database)")
    p.set_defaults(func=_import_schemes)

    p = sub.add_parser("check-trainers", help="parse .trainer files as du-process does; one line per malformed file")
    p.add_argument("paths", nargs="+", help=".trainer files or CML folders (every *.trainer below them)")
    p.set_defaults(func=_check_trainers)

    p = sub.add_parser("write-package-copies", help="copy the package's schemes and CML folder into a checkout's "
                                                    "top-level schemes/ and trainers/nova_infant/")
    p.add_argument("repo", nargs="?", default=None, help="checkout root (default: the checkout this package runs from)")
    p.set_defaults(func=_write_package_copies)

    p = sub.add_parser("write-trainers", help="(re)write every .trainer, DISCOVER script and README.md generated from "
                                             "the module specs into a DISCOVER CML folder")
    p.add_argument("out_dir", nargs="?", default=None, help="default: the package's CML folder and its copy "
                                                             "trainers/nova_infant of this checkout")
    p.set_defaults(func=_write_trainers)


def _export_weights(args) -> int:

    out = export_weights(args.model, args.out_dir, kind=args.kind)
    print(f"saved {args.model} to {out}; copy this folder and pass it as the model option")
    return 0


def _make_standin(args) -> int:

    sizes = {"dinov2": ("tiny", "small", "base", "large", "giant"), "w2v-bert": ("tiny", "full"),
             "videomae": ("tiny", "small", "base")}[args.kind]
    if args.size not in sizes:  # before the folder is made
        raise OptionError(f"option size: unknown {args.kind} size {args.size!r}: {', '.join(sizes)}")

    out = save_standin(args.kind, args.out_dir, size=args.size)
    print(f"saved an UNTRAINED stand-in {args.kind} ({args.size}) to {out}")
    return 0


def _sample_session(args) -> int:

    o = options_from_args(SAMPLE_SESSION, args)
    checked_names(dataset=args.dataset, session=args.session)
    paths = build_session(args.root, args.dataset, args.session, fps=o["fps"], audio_rate=o["audio_rate"],
                          channels=o["channels"], repeat=o["repeat"])
    for key, value in paths.items():
        print(f"{key}: {value}")
    return 0


def _write_trainers(args) -> int:
    """``nova-infant write-trainers``: every file generated from the module specs (``<name>.trainer``, the DISCOVER
    script ``<name>.py``, ``README.md``; :func:`nova_infant.discover.registry.write_all_trainers`), each replaced
    atomically; prints the ``.trainer`` paths.

    Returns
    -------
    int
        0; a folder that cannot be written is an ``OutputError`` (one line, exit code 2).
    """
    from nova_infant.discover.registry import write_all_trainers  # loads torch: imported on use

    for path in write_all_trainers(args.out_dir):
        print(path)
    return 0


def _write_package_copies(args) -> int:
    """``nova-infant write-package-copies``: :func:`nova_infant.core.package_data.write_repo_copies`."""
    root = args.repo or checkout_root()
    if root is None or not (Path(root) / "setup.cfg").is_file():
        raise OptionError(f"repo: {root or 'this installed package'} is not a nova-infant checkout (no setup.cfg)")
    written = write_repo_copies(root)
    print(f"{root}: {len(written)} files of schemes/ and trainers/nova_infant/ written from the package data")
    for line in repo_copy_differences(root):
        print(f"note: {line}")
    return 0


def _import_schemes(args) -> int:
    """``nova-infant import-schemes``: :func:`nova_infant.specs.registry.import_package_schemes` into one NOVA
    database."""
    from nova_infant.specs.registry import import_package_schemes  # loads torch: imported on use

    checked_names(dataset=args.dataset)
    names = import_package_schemes(connect(args.db), args.dataset)
    print(f"{args.dataset}: {len(names)} schemes created or updated: {', '.join(names)}")
    return 0


def _check_trainers(args) -> int:
    """Parse every ``.trainer`` with discover-utils' parser (``trainer_files.read_trainer``): du-process itself stops
    with a raw XML traceback on a truncated or malformed one before any module code runs. Exit 0 all good, 1 some bad, 2
    all bad or none found."""
    import sys
    from pathlib import Path


    files = []
    for given in args.paths:
        path = Path(given)
        if path.is_dir():
            files += sorted(path.rglob("*.trainer"))
        else:
            files.append(path)
    if not files:
        raise TrainerFileError(f"{', '.join(args.paths)}: no .trainer file found")
    bad = 0
    for path in files:
        try:
            trainer = read_trainer(path)
            print(f"{path}: ok ({trainer.model_create} in {trainer.model_script_path})")
        except TrainerFileError as exc:
            bad += 1
            print(f"error: {exc}", file=sys.stderr)
    return 0 if not bad else (2 if bad == len(files) else 1)
