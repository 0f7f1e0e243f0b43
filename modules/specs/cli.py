"""The command-line side of the specs: ``nova-infant run <module> --<input> PATH ... --out DIR --<option> VALUE``
for every registered spec, and the option flags of the existing per-module commands, both built from the spec (an
option is declared once: flags carry no default and no type; :meth:`ModuleSpec.parse_options` fills and checks).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Iterable

from nova_infant.core.errors import NovaInfantError, OptionError
from nova_infant.core.validation import one_line
from nova_infant.specs.module_spec import ModuleSpec, TrainContext
from nova_infant.specs.sessions import FileSession
from nova_infant.specs.writing import say_notes, write_files

log = logging.getLogger("nova_infant")


def option_help(opt) -> str:
    """``--help`` text of an option.

    Parameters
    ----------
    opt : nova_infant.specs.options.Option

    Returns
    -------
    str
        Its help, range or choices, and default (``%`` escaped for argparse).
    """
    text = opt.help.replace("%", "%%")
    rng = opt.range_text().replace("\\|", "|")
    default = opt.nova_entry()[2]
    if opt.kind in ("choice", "device", "precision"):
        default = default.split(",")[0]
    return f"{text}{f'; {rng}' if rng else ''} (default: {default or 'unset'})"


def add_option_flags(parser: argparse.ArgumentParser, spec: ModuleSpec, names: Iterable[str] | None = None,
                     skip: Iterable[str] = ()) -> None:
    """Add ``--<option>`` (and the option's ``cli_flags``) for the spec's options to ``parser``.

    Flags store the raw text under ``dest=<option name>`` with default None ("not given"), so the spec's default
    and checks apply (:func:`options_from_args`). Hidden (deprecated) options get no flag.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    spec : ModuleSpec
    names : iterable of str, optional
        Only these options (in spec order); default: all.
    skip : iterable of str
        Options left out (a command that fixes them).
    """
    wanted = None if names is None else set(names)
    for opt in spec.options:
        if opt.hidden or opt.name in set(skip) or (wanted is not None and opt.name not in wanted):
            continue
        kwargs = {"choices": list(opt.choices)} if opt.kind == "choice" else {}
        parser.add_argument(opt.flag, *opt.cli_flags, dest=opt.name, default=None, metavar=opt.name.upper(),
                            help=option_help(opt), **kwargs)


def options_from_args(spec: ModuleSpec, args: argparse.Namespace, fixed: dict | None = None) -> dict:
    """Parse the spec's options from an argparse namespace (flags not given -> defaults).

    Parameters
    ----------
    spec : ModuleSpec
    args : argparse.Namespace
    fixed : dict, optional
        Values a command sets itself (override the flags).

    Returns
    -------
    dict
        Parsed options (:meth:`ModuleSpec.parse_options`).

    Raises
    ------
    OptionError
        One line naming the option.
    """
    import re

    given = {o.name: getattr(args, o.name) for o in spec.options if getattr(args, o.name, None) is not None}
    given.update(fixed or {})
    try:
        return spec.parse_options(given)
    except OptionError as exc:  # name the flag the user typed beside the option's NOVA name
        match = re.match(r"option (\w+): ", str(exc))
        names = {o.name: (o.cli_flags or (o.flag,))[0] for o in spec.options}
        if match and match.group(1) in names:
            raise OptionError(f"option {match.group(1)} ({names[match.group(1)]}): {str(exc)[match.end():]}") from None
        raise


def _port_flag(port) -> str:
    return "--" + port.id.replace("_", "-")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``run`` with one sub-command per registered spec.

    Each gets ``--<input id>`` per input (required unless optional; a training module takes one path per session),
    ``--out DIR``, ``--role``, ``--session``, ``--dataset`` and one flag per option.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The ``nova-infant`` sub-command collection.
    """
    from nova_infant.specs.registry import SPECS  # loads torch: imported on use

    top = sub.add_parser("run", help="run one module (as DISCOVER would) on files: nova-infant run <module> --help")
    cmds = top.add_subparsers(dest="module", required=True, metavar="MODULE")
    for spec in SPECS.values():
        p = cmds.add_parser(spec.command, help=spec.description, description=f"{spec.description}. "
                            f"Writes <out>/<role>.<name>.stream|annotation per output (NOVA's file layout).")
        for port in spec.inputs:
            p.add_argument(_port_flag(port), dest=f"in_{port.id}", required=not port.optional,
                           nargs="+" if spec.trains else None, metavar="PATH",
                           help=f"{port.help} ({port.data})" + ("; one per session" if spec.trains else ""))
        p.add_argument("--out", required=True, help="output folder (created if missing)")
        if "role" not in {o.name for o in spec.options}:  # else the module's own role option names it
            p.add_argument("--role", default=None, help="role written into the outputs and their file names "
                                                        "(default: from the first input's name <role>.<name>.<ext>)")
        p.add_argument("--session", default=None, help="session name (default: the first input's folder)")
        p.add_argument("--dataset", default="", help="dataset name written into the outputs")
        add_option_flags(p, spec)
        p.set_defaults(func=run_command, spec_name=spec.name)


def _role_of(path: Path) -> str:
    parts = path.name.split(".")
    return parts[0] if len(parts) >= 3 else "session"


def run_command(args) -> int:
    """``nova-infant run <module>``: parse options once, run the module on the given files, write its outputs.

    Returns
    -------
    int
        0; errors are ``NovaInfantError`` (one line, exit code 2).
    """
    from nova_infant.specs.registry import SPECS  # loads torch: imported on use

    spec = SPECS[args.spec_name]
    options = options_from_args(spec, args)
    inputs = {p.id: getattr(args, f"in_{p.id}") for p in spec.inputs}
    job: dict = {"progress": True}
    if spec.trains:
        return _train(spec, inputs, options, args, job)
    first = next((Path(v) for v in inputs.values() if v), Path(args.out))
    session = FileSession(inputs, args.out, name=args.session, dataset=args.dataset,
                          role=args.role or _role_of(first), job=job)
    result = spec.run(session, options)
    say_notes(spec, session, result)
    for note in result.notes:
        print(f"{session.name}: {note}")
    for path in write_files(spec, result, session):
        print(path)
    return 0


def check_session_pairing(sessions: list[dict], where: str) -> None:
    """Every session of a training request is one folder: the i-th path of every input lies in the same session
    folder, and no session folder is given twice.

    Parameters
    ----------
    sessions : list of dict
        Per session ``{input id: path}`` as given on the command line.
    where : str
        The command named in errors.

    Raises
    ------
    OptionError
        ``<where>: session <i>: --<a> <path> and --<b> <path> are in different session folders`` (features of one
        session would be trained on the labels of another), or ``session folder <dir> is given twice``.
    """
    seen: dict[Path, int] = {}
    for i, paths in enumerate(sessions, 1):
        folders = {k: Path(v).resolve().parent for k, v in paths.items()}
        (a, fa), *rest = folders.items()
        for b, fb in rest:
            if fb != fa:
                raise OptionError(f"{where}: session {i}: --{a.replace('_', '-')} {paths[a]} and "
                                  f"--{b.replace('_', '-')} {paths[b]} are in different session folders; give the "
                                  f"files of one session in the same position of every input")
        if fa in seen:
            raise OptionError(f"{where}: session folder {fa} is given twice (sessions {seen[fa]} and {i}); give each "
                              f"session once")
        seen[fa] = i


def _train(spec: ModuleSpec, inputs: dict, options: dict, args, job: dict) -> int:
    """A training module from files: one item per session (the i-th path of every input), then ``fit`` once;
    a session that cannot be read is reported in one line and skipped."""
    counts = {k: len(v) for k, v in inputs.items() if v}
    if len(set(counts.values())) > 1:
        raise OptionError(f"run {spec.command}: give one path per session for every input, got {counts}")
    n = next(iter(counts.values()), 0)
    check_session_pairing([{k: v[i] for k, v in inputs.items() if v} for i in range(n)], f"run {spec.command}")
    items, names, skipped = [], [], []
    for i in range(n):
        paths = {k: v[i] for k, v in inputs.items() if v}
        first = Path(next(iter(paths.values())))
        session = FileSession(paths, args.out, name=first.resolve().parent.name, dataset=args.dataset,
                              role=args.role or _role_of(first), job=job)
        session.trainer_dir = Path(args.out)
        try:
            items.append(spec.run(session, options))
            names.append(session.name)
        except (NovaInfantError, OSError) as exc:
            print(f"error: session {session.name}: skipped: {one_line(exc)}", file=sys.stderr)
            skipped.append((session.name, one_line(exc)))
    if not items:
        raise OptionError(f"run {spec.command}: none of the {n} sessions could be read: nothing trained")
    result = spec.fit(items, options, TrainContext(Path(args.out), args.dataset, names, skipped))
    print(result.model_dir)
    if result.trainer_path:
        print(result.trainer_path)
    return 1 if skipped else 0
