"""``nova-infant`` command line: one sub-command per job, for engineers and batch use.

Each feature module registers its own sub-commands through a ``register(subparsers)`` function listed in
``COMMAND_MODULES``. Errors of this package, usage errors and
OS errors (read-only folder, full disk) print as one line (``error: <file>: <problem>``) with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
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


COMMAND_MODULES = [
    "nova_infant.cli.commands",
    "nova_infant.cli.icep",
    "nova_infant.cli.review",
    "nova_infant.cli.taggers",
    "nova_infant.cli.dinov2",
    "nova_infant.cli.demo",
    "nova_infant.cli.w2v_bert",
    "nova_infant.cli.batch",
    "nova_infant.specs.cli",
]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all registered sub-commands)."""
    parser = OneLineParser(prog="nova-infant", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"nova-infant {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``nova-infant``; returns the exit code (0 ok, 2 on a reported error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("ffmpegio").setLevel(logging.WARNING)  # it announces every plugin at INFO
    try:
        return int(args.func(args) or 0)
    except NovaInfantError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # read-only folder, full disk, permission: name the path, no traceback
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
