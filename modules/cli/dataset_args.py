"""The flags of the commands that work over a NOVA dataset folder (``icep cv``, ``icep train``, ``icep predict``):
``--root``, ``--dataset``, ``--sessions``, ``--streams``, ``--role``, and the session folders they name (every name
through :func:`nova_infant.core.atomic.safe_name`)."""

from __future__ import annotations

from pathlib import Path

from nova_infant.core.atomic import safe_name
from nova_infant.core.errors import OptionError
from nova_infant.icep.dataset import list_sessions


def session_args(p, streams_required: bool = True, role: bool = True) -> None:
    """Add ``--root``, ``--dataset``, ``--sessions``, ``--streams`` and (with ``role``) ``--role`` to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
    streams_required : bool
        ``--streams`` must be given (``icep predict`` takes them from the bundle).
    role : bool
        Add ``--role`` (``icep cv``/``icep train`` take it from the training options instead).
    """
    p.add_argument("--root", required=True, help="NOVA data folder")
    p.add_argument("--dataset", required=True)
    p.add_argument("--sessions", nargs="*", default=None, help="session names (default: every session folder)")
    p.add_argument("--streams", nargs="+", required=streams_required,
                   help="feature streams '<role>.<name>' fused in this order (predict: default from the bundle)")
    if role:
        p.add_argument("--role", default="infant", choices=["infant", "caregiver"], help="coded role (ICEP-R scheme)")


def session_dirs(args) -> list[Path]:
    """The session folders of ``--root``/``--dataset``/``--sessions`` (every session folder by default).

    Parameters
    ----------
    args : argparse.Namespace
        With ``root``, ``dataset``, ``sessions``.

    Returns
    -------
    list of Path

    Raises
    ------
    PathError, OptionError
        A dataset or session that is not a plain name; no such dataset folder.
    """
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
