"""The command-line side of the specs: ``nova-infant run <module> --<input> PATH ... --out DIR --<option> VALUE``
for every registered spec: the one command surface of the modules (an option is declared once: flags carry no
default and no type; :meth:`ModuleSpec.parse_options` fills and checks). The kept old command lines
(:mod:`nova_infant.cli.aliases`) and the hand-written tools reuse :func:`add_option_flags`,
:func:`options_from_args` and :func:`run_sessions`, so every path through the command line has the same flags,
checks and writer.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Iterable

from nova_infant.core.errors import NovaInfantError, OptionError
from nova_infant.core.atomic import safe_name
from nova_infant.core.validation import float_option, int_option, one_line
from nova_infant.core.write_policy import check_output
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


def tool_spec(name: str, options, check=None) -> ModuleSpec:
    """The options of a hand-written tool (not a module) declared like a module's, so its flags, ``--help``,
    parsing and checks are the spec options' (:func:`add_option_flags`, :func:`options_from_args`,
    :meth:`~nova_infant.specs.options.Option.parse`).

    Parameters
    ----------
    name : str
        The tool's command, for messages (``sample-session``).
    options : sequence of Option
    check : callable, optional
        Cross-option check ``check(parsed) -> parsed`` (as :attr:`ModuleSpec.check`).

    Returns
    -------
    ModuleSpec
        With no ports and no ``run``: never registered, never written into a ``.trainer``.
    """
    return ModuleSpec(name=name, create="", category="tool", description=name, inputs=(), outputs=(),
                      options=tuple(options), run=lambda session, options: None, check=check)


def optional_number(minimum: float, maximum: float | None = None, integer: bool = False):
    """An :attr:`Option.check` for a ``str`` option holding an optional number: ``""`` -> None, else the number
    checked against ``[minimum, maximum]`` (:func:`nova_infant.core.validation.float_option` / ``int_option``).

    Returns
    -------
    callable
        ``check(value, name) -> float | int | None``.
    """
    def check(value, name):
        if value is None or str(value).strip() in ("", "None"):
            return None
        return int_option(value, name, minimum, maximum) if integer else float_option(value, name, minimum, maximum)

    return check


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

    top = sub.add_parser("run", help="run one module (as DISCOVER would) on files: nova-infant run MODULE --help "
                                     "(the modules are listed below)",
                         description="Run one module on files, with the flags, help and checks of its spec.")
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


def modules_epilog(width: int = 100) -> str:
    """The ``nova-infant --help`` list of modules: one line per module command (``run <module>``).

    Parameters
    ----------
    width : int
        Line width the descriptions are cut to.

    Returns
    -------
    str
    """
    from nova_infant.specs.registry import SPECS  # loads torch: imported on use

    lines = ["modules (one command each, from its spec; nova-infant run MODULE --help):"]
    pad = max(len(spec.command) for spec in SPECS.values()) + 6
    for spec in SPECS.values():
        text = spec.description
        if len(text) + pad > width:
            text = text[:width - pad - 3].rstrip() + "..."
        lines.append(f"  run {spec.command:<{pad - 6}}  {text}")
    return "\n".join(lines)


def _role_of(path: Path) -> str:
    parts = path.name.split(".")
    return parts[0] if len(parts) >= 3 else "session"


def checked_names(**names) -> None:
    """Route every name that becomes part of an output path through the one name check
    (:func:`nova_infant.core.atomic.safe_name`): ``checked_names(role=..., session=...)``; None is skipped.

    Raises
    ------
    PathError
        ``../x``, ``a/b``, empty names (one line naming the flag).
    """
    for flag, value in names.items():
        if value is not None:
            safe_name(value, f"--{flag.replace('_', '-')}")


class JobFileSession(FileSession):
    """A :class:`~nova_infant.specs.sessions.FileSession` that knows the other sessions of its command-line job
    (``job["file_sessions"]``: ``{key: {port id: path}}``, ``job["file_session_names"]``: the keys run), so a
    module that looks across the job (DINOv2-PCA's dataset basis) sees every file given, as in DISCOVER."""

    def job_session_names(self) -> list[str]:
        """Keys of the job's sessions (this one alone where unknown); see :meth:`Session.job_session_names`."""
        return list(self.job.get("file_session_names") or [self.name])

    def path_in(self, port_id: str, session_name: str) -> Path | None:
        """Input ``port_id`` of the job's session ``session_name``; see :meth:`Session.path_in`."""
        entry = (self.job.get("file_sessions") or {}).get(session_name)
        if entry is None:
            return super().path_in(port_id, session_name)
        value = entry.get(port_id)
        return None if value is None or str(value) == "" else Path(value)


def run_sessions(spec: ModuleSpec, sessions: list[dict], options: dict, dataset: str = "",
                 job: dict | None = None, extra_inputs: dict | None = None) -> int:
    """Run a (non-training) module on one or more command-line sessions and write each one's outputs with the
    one writer (:func:`~nova_infant.specs.writing.write_files`); models load once per job (``job``).

    Prints ``<session>: <note>`` per note and every path written; a session that fails is reported in one line
    (``error: <file>: <problem>``) and the others go on.

    Parameters
    ----------
    spec : ModuleSpec
    sessions : list of dict
        One per session: ``inputs`` (``{port id: path}``), ``out`` (folder), and optionally ``role``, ``name``,
        ``files`` (``{port id: path}`` overriding an output's file), ``outputs`` (ports to write), ``annotator``,
        ``options`` (parsed values that differ for this session, e.g. a picture folder beside its video).
    options : dict
        Parsed options (:func:`options_from_args`).
    dataset : str
        Dataset name written into the outputs.
    job : dict, optional
        Shared job state (loaded models); default a new one with progress bars on.
    extra_inputs : dict, optional
        ``{key: {port id: path}}`` of files the module may look at across the job (e.g. videos to fit a dataset
        basis on) without being run.

    Returns
    -------
    int
        0 all written, 1 some sessions failed, 2 all failed.

    Raises
    ------
    PathError
        A role, session, dataset or annotator that is not a plain name (before any work).
    """
    job = {"progress": True} if job is None else job
    for entry in sessions:
        checked_names(role=entry.get("role"), session=entry.get("name"), annotator=entry.get("annotator"))
    if dataset:
        checked_names(dataset=dataset)
    made = []
    for entry in sessions:
        first = next((Path(v) for v in entry["inputs"].values() if v), Path(entry["out"]) / "x")
        name = entry.get("name") or Path(os.path.abspath(first)).parent.name  # the folder as named, links kept
        made.append(JobFileSession(entry["inputs"], entry["out"], outputs=entry.get("outputs"),
                                   files=entry.get("files"), name=name, dataset=dataset,
                                   role=entry.get("role") or _role_of(first), job=job,
                                   annotator=entry.get("annotator")))
    keys = []
    for i, session in enumerate(made):
        keys.append(session.name if [m.name for m in made].count(session.name) == 1 else f"{session.name}#{i}")
    job["file_sessions"] = {**dict(zip(keys, (s.inputs for s in made))), **(extra_inputs or {})}
    job["file_session_names"] = keys
    refused = {}  # the write policy, before any work: an output over an input, a person's file, another kind
    for i, session in enumerate(made):
        for port in spec.outputs:
            if session.is_active_output(port.id):
                try:
                    check_output(session.output_path(port), "stream" if port.is_stream else "annotation")
                except NovaInfantError as exc:
                    refused.setdefault(i, exc)
    if made and len(refused) == len(made):
        raise refused[0]  # e.g. icep predict --annotator gold beside every coder's annotation: one line
    failed = 0
    for i, (entry, session) in enumerate(zip(sessions, made)):
        if i in refused:
            print(f"error: {one_line(refused[i])}", file=sys.stderr)
            failed += 1
            continue
        try:
            result = spec.run(session, {**options, **(entry.get("options") or {})})
            say_notes(spec, session, result)
            for note in result.notes:
                print(f"{session.name}: {note}")
            for path in write_files(spec, result, session):
                print(path)
        except (NovaInfantError, OSError) as exc:  # OSError: read-only folder, full disk; go on with the rest
            print(f"error: {one_line(exc)}", file=sys.stderr)
            failed += 1
    return 0 if not failed else (2 if failed == len(made) else 1)


def run_command(args) -> int:
    """``nova-infant run <module>``: parse options once, run the module on the given files, write its outputs.

    Returns
    -------
    int
        0 written, 2 failed (one line ``error: <file>: <problem>``); a training module: 1 when some sessions
        were skipped.
    """
    from nova_infant.specs.registry import SPECS  # loads torch: imported on use

    spec = SPECS[args.spec_name]
    options = options_from_args(spec, args)
    inputs = {p.id: getattr(args, f"in_{p.id}") for p in spec.inputs}
    checked_names(role=args.role, session=args.session, dataset=args.dataset or None)
    job: dict = {"progress": True}
    if spec.trains:
        return _train(spec, inputs, options, args, job)
    return run_sessions(spec, [{"inputs": inputs, "out": args.out, "role": args.role, "name": args.session}],
                        options, args.dataset, job)


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
