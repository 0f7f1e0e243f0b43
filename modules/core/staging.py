"""Staging names that say who made them, so a run killed with ``kill -9`` leaves nothing for good.

Every staging file or folder is named ``.<output>.partial-<pid>-<tag>-<random>`` (an old folder being deleted
``.<output>.deleting-<pid>-<tag>-<random>``): ``pid`` is the writing process,
``tag`` the first 10 hex digits of SHA-256 over ``nova-infant-staging|<host name>|<pid>``. A later writer of the same
output (holding its lock) removes such an entry only when all of these hold: the tag is the one this host computes
for that pid, the pid is not running, and the entry is a plain file or folder (never a symlink). A person's file
that merely looks like ours (``.x.partial-keep``, a wrong tag, a pid that runs, another host's tag on a shared
disk) is never touched. An output's lock file ``.<output>.lock`` carries the same ``<pid>-<tag>``, so a lock file
left by a killed run is removed by the next run that holds that lock.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
from pathlib import Path

_OWNER = re.compile(r"(\d+)-([0-9a-f]{10})")


def owner_tag(pid: int | None = None) -> str:
    """``<pid>-<tag>`` of a writing process on this host (default: this one); see the module docstring."""
    pid = os.getpid() if pid is None else int(pid)
    digest = hashlib.sha256(f"nova-infant-staging|{socket.gethostname()}|{pid}".encode()).hexdigest()[:10]
    return f"{pid}-{digest}"


def staging_prefix(name: str) -> str:
    """Prefix of this process's staging entries for output file name ``name`` (``tempfile`` adds the random part)."""
    return f".{name}.partial-{owner_tag()}-"


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or unknown: treat as running
    return True


def left_by_dead_run(owner: str) -> bool:
    """True when ``owner`` (``<pid>-<tag>``) is a tag this host made for a process that no longer runs."""
    found = _OWNER.fullmatch(owner.strip())
    return bool(found) and owner_tag(int(found[1])) == found[0] and not _running(int(found[1]))


def remove_stale_staging(path: str | os.PathLike) -> list[Path]:
    """Remove the staging entries (``.partial-``, ``.deleting-``) of output ``path`` that killed runs of this package
    left (see the module docstring for the proof of ownership). Call it while holding the output's lock.

    Parameters
    ----------
    path : str or os.PathLike
        The output (stream/annotation header, file or folder).

    Returns
    -------
    list of pathlib.Path
        The entries removed. Errors (unreadable folder, an entry that vanished) are ignored: this is tidying.
    """
    path = Path(path)
    prefixes = (f".{path.name}.partial-", f".{path.name}.deleting-")
    removed = []
    try:
        entries = [e for e in os.scandir(path.parent) if e.name.startswith(prefixes)]
    except OSError:
        return removed
    for entry in entries:
        rest = entry.name[len(prefixes[0] if entry.name.startswith(prefixes[0]) else prefixes[1]):]
        owner = _OWNER.match(rest)
        if owner is None or rest[owner.end():owner.end() + 1] != "-" or not left_by_dead_run(owner[0]):
            continue
        target = Path(entry.path)
        try:
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(target)
            else:
                target.unlink()
            removed.append(target)
        except OSError:
            pass
    return removed
