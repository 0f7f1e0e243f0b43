"""Which sessions a batch runs over: the session folders of a dataset folder (NOVA file mode; hidden folders and the
dataset's model folders are not sessions), a text file of names, or a NOVA database; every name a plain folder name.
"""

from __future__ import annotations

import os
from pathlib import Path

from nova_infant.core import nova_db
from nova_infant.core.atomic import safe_name
from nova_infant.core.errors import BatchError, NovaInfantError


#: folders a dataset folder holds that are not sessions (models fitted on the dataset, e.g. the DINOv2-PCA basis:
#: :data:`nova_infant.features.dinov2_basis.BASIS_FOLDER`)
NOT_SESSIONS = frozenset({"dinov2_pca_basis"})


def is_session_folder(path: str | os.PathLike) -> bool:
    """Whether a folder of a dataset folder is a session: not hidden, not one of :data:`NOT_SESSIONS`.

    Parameters
    ----------
    path : path

    Returns
    -------
    bool
    """
    path = Path(path)
    return path.is_dir() and not path.name.startswith(".") and path.name not in NOT_SESSIONS


def check_session_name(session: str) -> str:
    """A session name that is a plain folder name (:func:`nova_infant.core.atomic.safe_name`).

    Parameters
    ----------
    session : str

    Returns
    -------
    str
        ``session`` unchanged.

    Raises
    ------
    PathError
        When the name could point outside ``<root>/<dataset>`` (``..``, ``/``, ...).
    """
    return safe_name(session, "session")


def sessions_in_root(root: str | os.PathLike, dataset: str) -> list[str]:
    """Session folders ``<root>/<dataset>/<session>/`` (NOVA file mode), sorted; hidden folders and the dataset's
    model folders (:data:`NOT_SESSIONS`, e.g. ``dinov2_pca_basis``) left out.

    Raises
    ------
    BatchError
        ``<root>/<dataset>`` is not a folder or holds no session.
    """
    folder = Path(root) / dataset
    if not folder.is_dir():
        raise BatchError(f"{folder}: no such dataset folder")
    names = sorted(p.name for p in folder.iterdir() if is_session_folder(p))
    if not names:
        raise BatchError(f"{folder}: no session folders")
    return names


def sessions_in_file(path: str | os.PathLike) -> list[str]:
    """Session names from a text file, one per line (blank lines and ``#`` comments ignored; order kept).

    Raises
    ------
    BatchError
        The file cannot be read or names no session.
    """
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise BatchError(f"{path}: {exc.strerror or exc}") from None
    names = [line.split("#", 1)[0].strip() for line in lines]
    names = list(dict.fromkeys(n for n in names if n))
    if not names:
        raise BatchError(f"{path}: names no session")
    return _checked_names(names, str(path))


def sessions_in_db(uri: str, dataset: str, pattern: str | None = None) -> list[str]:
    """Session names of a NOVA database (:func:`nova_infant.core.nova_db.list_sessions`), for a batch that runs them in
    file mode on their files in NOVA's data folder (``--root``).

    Parameters
    ----------
    uri : str
        ``mongodb://[user:password@]host[:port]`` of the NOVA MongoDB.
    dataset : str
        NOVA dataset (= MongoDB database).
    pattern : str or None
        Shell-style session-name pattern (``P0*``); None: every valid session.

    Returns
    -------
    list of str
        Sorted session names.

    Raises
    ------
    BatchError
        The server does not answer, the dataset has no (matching) session, or a session name is not a plain folder
        name (it could point outside the data root).
    """
    try:
        names = nova_db.list_sessions(nova_db.connect(uri), dataset, pattern)
    except nova_db.NovaDatabaseError as exc:
        raise BatchError(str(exc)) from None
    return _checked_names(names, f"NOVA database {dataset}")


def _checked_names(names: list[str], where: str) -> list[str]:
    """``names`` after :func:`check_session_name` on each; BatchError ``"<where>: ..."`` for the first bad one."""
    for name in names:
        try:
            check_session_name(name)
        except NovaInfantError as exc:
            raise BatchError(f"{where}: {exc}") from None
    return names
