"""File identities and plain names, below :mod:`nova_infant.core.atomic` and :mod:`nova_infant.core.write_policy`:
the one ``safe_name`` check, SHA-256 of files, the ``data_check`` fingerprint of stream/annotation data files and the
folder marker's name."""

from __future__ import annotations

import hashlib
import os

from nova_infant.core.errors import PathError

MARKER = ".nova-infant.json"
MARKER_FORMAT = "nova-infant-folder/1"
_BAD_NAME_CHARS = set('/\\:\0') | {chr(c) for c in range(32)}


def safe_name(value, what: str = "name") -> str:
    """Check one name that becomes a single path component (session, role, annotator, scheme, stream, model name).

    Parameters
    ----------
    value : str
        The name as the user or NOVA gave it.
    what : str
        What the name is, for the message (e.g. ``"option model_name"``, ``"session"``).

    Returns
    -------
    str
        ``value`` unchanged.

    Raises
    ------
    PathError
        If the name is empty, ``.`` or ``..``, or holds a path separator (``/``, ``\\``), a drive colon, or a
        control character: it could point outside the folder it is meant for.
    """
    text = "" if value is None else str(value)
    if not text.strip():
        raise PathError(f"{what}: empty name")
    if text in (".", "..") or text != text.strip() or any(ch in _BAD_NAME_CHARS for ch in text):
        raise PathError(f"{what} {text!r}: not a plain name (no '/', '\\', ':', '..', control characters or "
                        f"leading/trailing spaces); it would point outside its folder")
    return text


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in blocks (``hashlib``).

    Parameters
    ----------
    path : str or path
    chunk : int
        Block size in bytes.

    Returns
    -------
    str
        Lower-case hex digest, 64 characters.

    Raises
    ------
    OSError
        The file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _data_check(path: str | os.PathLike, ends: int = 1 << 20) -> str:
    """``"<bytes>:<sha256>"`` of a data file: its size and the SHA-256 of its first and last ``ends`` bytes (the
    whole file when it is at most 2 MiB). Reading 2 MiB, not the whole stream, keeps opening a long session cheap;
    two different writes of one output differ within their first rows in practice."""
    size = os.path.getsize(path)
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(ends))
        if size > ends:
            handle.seek(max(ends, size - ends))
            digest.update(handle.read())
    return f"{size}:{digest.hexdigest()}"


def _default_mode(kind: int) -> int:
    """The permission bits ``open``/``mkdir`` would give under the process umask (``kind`` 0o666 for files, 0o777
    for folders): ``mkstemp``/``mkdtemp`` stage with 0o600/0o700, which would hide outputs from a lab's other
    accounts once renamed into place."""
    mask = os.umask(0)
    os.umask(mask)
    return kind & ~mask


def nova_file_names(path) -> tuple[str | None, str | None, str | None]:
    """Role, scheme (or stream name) and annotator that NOVA's file layout puts in a file name.

    Parameters
    ----------
    path : str or os.PathLike
        ``<role>.<scheme>.<annotator>.annotation`` or ``<role>.<name>.stream`` (NOVA's data folder layout).

    Returns
    -------
    (role, scheme or name, annotator)
        Each None where the name does not follow that layout (a stream has no annotator).
    """
    name = os.path.basename(os.fspath(path))
    for suffix, least in ((".annotation", 3), (".stream", 2)):
        if name.endswith(suffix):
            parts = name[: -len(suffix)].split(".")
            if len(parts) >= least and all(parts):
                return (parts[0], ".".join(parts[1:-1]), parts[-1]) if least == 3 else \
                    (parts[0], ".".join(parts[1:]), None)
    return None, None, None
