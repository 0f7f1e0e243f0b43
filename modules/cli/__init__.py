"""``nova-infant`` command line: one sub-command per job, for engineers and batch use.

Every module runs as ``nova-infant run <module>``, generated from its spec (:mod:`nova_infant.specs.cli`): the one
command surface of the modules, with the flags, help and checks the spec declares. The tools that are not modules
(demo, batch, review, icep cv/train, schemes, weights, trainers, ...) are hand-written here, one file per group,
each registering its sub-commands through ``register(subparsers)`` (listed by explicit import in
``COMMAND_MODULES``); they parse module options with the spec's :class:`~nova_infant.specs.options.Option` and route
names through :func:`nova_infant.core.atomic.safe_name`. Old per-module command lines (``dinov2 extract``,
``w2v-bert``, ``taggers audio-events|emotion``, ``icep predict``) are aliases of ``run <module>``
(:mod:`nova_infant.cli.aliases`). Errors of this package, usage errors and OS errors (read-only folder, full disk)
print as one line (``error: <file>: <problem>``) with exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from nova_infant import __version__
from nova_infant.core.errors import NovaInfantError
from nova_infant.core.validation import one_line

class OneLineParser(argparse.ArgumentParser):
    """argparse parser whose usage errors print as one line (``error: <command>: <problem>``, exit code 2) instead
    of the usage block; every sub-command parser inherits it."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


from nova_infant.cli import aliases, batch, commands, demo, dinov2_tools, icep_tools, review, tagger_tools  # noqa: E402
from nova_infant.specs import cli as spec_commands  # noqa: E402
from nova_infant.core import write_policy

#: every file adding sub-commands, in ``--help`` order: the modules (``run``) first, then the tools
COMMAND_MODULES = [spec_commands, demo, batch, commands, icep_tools, review, tagger_tools, dinov2_tools]

#: alias top-level commands of old command lines, not listed in ``--help``
HIDDEN = (aliases.add_w2v_bert,)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all registered sub-commands)."""
    parser = OneLineParser(prog="nova-infant", description=__doc__.splitlines()[0],
                           epilog=spec_commands.modules_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"nova-infant {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    for add in HIDDEN:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``nova-infant``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0 ok, 1 some items of a batch failed (commands that say so), 2 on a reported error (one line
        ``error: <file>: <problem>`` on stderr).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("ffmpegio").setLevel(logging.WARNING)  # it announces every plugin at INFO
    command = " ".join(str(getattr(args, key)) for key in ("command", "module", "icep_command", "review_command",
                                                           "taggers_command", "dinov2_command")
                       if isinstance(getattr(args, key, None), str))
    try:
        with write_policy.job(command or "nova-infant"):  # readers register inputs, writers check against them
            write_policy.check_args(args, command)
            return int(args.func(args) or 0)
    except NovaInfantError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # read-only folder, full disk, permission: name the path, no traceback
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line; outputs are replaced atomically, so each is the old or the new one
        print("interrupted: stopped by Ctrl-C; every output is the old or the new file, never a part; re-run the "
              "same command to go on", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
