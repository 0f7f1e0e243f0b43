"""NOVA I/O shared by every module, on top of discover-utils (hcai-discover-utils 1.2.1).

- SSI feature streams: build (float32, true rate, ``media_type``, ``dim_labels``), write atomically, open lazily
  (memory-mapped) and load back through discover-utils.
- Discrete annotations: frame labels -> merged segments in ms with ``conf``.
- ``.trainer`` files: written by hand (discover-utils' writer loses ``rightContext``/``is_iterable``, and NOVA
  hides any trainer without ``trained="true"``; see docs/discover-integration notes) and read back with
  discover-utils' parser.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from nova_infant.core.errors import StreamError, TrainerFileError

# ---------------------------------------------------------------- streams


def dim_labels(names: Sequence[str]) -> list[dict]:
    """Dimension labels of a stream as discover-utils and NOVA expect them for ``SSIStream.dim_labels``.

    Parameters
    ----------
    names : sequence of str
        One name per column.

    Returns
    -------
    list of dict
        ``[{"id": i, "name": name}, ...]``.
    """
    return [{"id": i, "name": str(n)} for i, n in enumerate(names)]


def make_ssi_stream(data: np.ndarray, sample_rate_hz: float, media_type: str, dim_names: Sequence[str],
                    name: str | None = None, role: str | None = None, session: str | None = None,
                    dataset: str | None = None, custom_meta: dict | None = None):
    """Build a discover-utils ``SSIStream`` that NOVA can list and plot.

    Parameters
    ----------
    data : array-like of shape (n_rows, dim)
        Cast to float32 (the header says FLOAT; the writer dumps the array's bytes as they are).
    sample_rate_hz : float
        True row rate in Hz (e.g. 25.0, or 29.97 for every frame of a 29.97 fps video).
    media_type : str
        NOVA stream type, e.g. ``"feature;video;dinov2"``; NOVA matches trainer inputs against its last token.
    dim_names : sequence of str, length dim
    custom_meta : dict of str -> str, optional
        Extra attributes of the header's ``<meta>`` element (e.g. ``weights="stand-in"``). NOVA reads ``size`` as
        ``W:H`` and reserves ``name`` and ``type``.

    Raises
    ------
    StreamError
        If ``data`` is not 2-D, is empty, has NaN/inf values, ``dim_names`` does not match its width, or
        ``custom_meta`` uses a key NOVA interprets with another meaning.
    """
    from discover_utils.data.stream import SSIStream

    array = np.ascontiguousarray(data, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] == 0:
        raise StreamError(f"stream {name or ''}: expected a 2-D (rows, dim) array, got shape {array.shape}")
    if array.shape[0] == 0:
        raise StreamError(f"stream {name or ''}: no rows (NOVA rejects empty streams)")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise StreamError(f"stream {name or ''}: {bad} rows hold NaN or inf values")
    if len(dim_names) != array.shape[1]:
        raise StreamError(f"stream {name or ''}: {len(dim_names)} dimension names for {array.shape[1]} columns")
    meta = {str(k): str(v) for k, v in (custom_meta or {}).items()}
    _check_meta(meta, name)
    return SSIStream(array, float(sample_rate_hz), dim_labels=dim_labels(dim_names), media_type=media_type,
                     custom_meta=meta, dtype=np.float32, name=name, role=role, session=session, dataset=dataset)


def _check_meta(meta: dict, name: str | None) -> None:
    """NOVA gives some ``<meta>`` keys a meaning of its own (hcmlab/nova Controls/MainHandlerFile.cs): ``size`` is
    split as ``W:H`` (a bare "224" throws and the session's streams are skipped), ``name`` selects face/skeleton
    overlays, ``type`` is the media type. Raises ``StreamError`` for such a key used otherwise."""
    if "size" in meta and not re.fullmatch(r"\d+:\d+", meta["size"]):
        raise StreamError(f"stream {name or ''}: <meta size={meta['size']!r}> must be W:H (NOVA parses it so)")
    for key in ("name", "type"):
        if key in meta:
            raise StreamError(f"stream {name or ''}: <meta {key}> is reserved by NOVA; use another key")


# ---------------------------------------------------------------- safe names, locks, atomic replacement
#
# Data safety rules (docs/troubleshooting.md, "Outputs and paths"):
# - every name that becomes part of a path passes :func:`safe_name`;
# - a folder output (model bundle, tagger head) carries the marker file ``MARKER``; a folder without it is never
#   replaced or deleted;
# - a header + data pair (``x.stream`` + ``x.stream~``, ``x.annotation`` + ``x.annotation~``) is staged beside the
#   target, the old pair is hard-linked into a journal folder ``.x.stream.prev``, then data and header are renamed
#   over the old ones; an interrupted replacement is rolled back from the journal by the next writer or reader;
# - the header's ``<meta data_check="<bytes>:<sha256>">`` fingerprints its data file (size + SHA-256 of the first and
#   last MiB: cheap for GB-sized streams), so a reader detects a mismatched pair;
# - writers of one output hold an ``fcntl`` lock on ``.x.stream.lock`` (concurrent runs are serialised).

MARKER = ".nova-infant.json"
MARKER_FORMAT = "nova-infant-folder/1"
LOCK_TIMEOUT_S = float(os.environ.get("NOVA_INFANT_LOCK_TIMEOUT_S", "600"))
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
    from nova_infant.core.errors import PathError

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
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _data_check(path: str | os.PathLike, ends: int = 1 << 20) -> str:
    """``"<bytes>:<sha256>"`` of a data file: its size and the SHA-256 of its first and last ``ends`` bytes (the
    whole file when it is at most 2 MiB). Reading 2 MiB, not the whole stream, keeps opening a long session cheap;
    two different writes of one output differ within their first rows in practice."""
    import hashlib

    size = os.path.getsize(path)
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(ends))
        if size > ends:
            handle.seek(max(ends, size - ends))
            digest.update(handle.read())
    return f"{size}:{digest.hexdigest()}"


def _output_error(path, exc: OSError):
    from nova_infant.core.errors import OutputError

    reason = exc.strerror or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    folder = Path(path).parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:  # numpy's writer reports a full disk as "N requested and M written": say how much room is left
        reason += f", {shutil.disk_usage(folder).free / 1e6:.1f} MB free there"
    except OSError:
        pass
    return OutputError(f"{path}: cannot write ({reason}); the previous version is kept")


def _try_lock(fd: int) -> None:
    """Exclusive, non-blocking lock of an open file; ``BlockingIOError`` when another process holds it
    (``fcntl.flock`` on POSIX, ``msvcrt.locking`` of the first byte on Windows)."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            raise BlockingIOError from None
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


@contextmanager
def output_lock(path: str | os.PathLike, timeout_s: float | None = None) -> Iterator[None]:
    """Hold an exclusive lock (``fcntl.flock``; ``msvcrt.locking`` on Windows) on ``<folder>/.<name>.lock`` while
    one output is replaced.

    Two runs writing the same output are serialised: the second waits (up to ``timeout_s``, default
    ``NOVA_INFANT_LOCK_TIMEOUT_S`` or 600 s), then fails. The lock file is removed when released.

    Raises
    ------
    OutputError
        If the lock is still held by another run after ``timeout_s`` seconds, or cannot be created.
    """
    import time

    from nova_infant.core.errors import OutputError

    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    deadline = time.monotonic() + (LOCK_TIMEOUT_S if timeout_s is None else timeout_s)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _output_error(path, exc) from None
        while True:
            try:
                _try_lock(fd)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise OutputError(f"{path}: another run is writing this output (lock {lock.name}); "
                                      f"run again when it has finished") from None
                time.sleep(0.05)
        try:  # the previous holder may have removed the lock file: lock the file that is there now
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(lock)
        except OSError:
            pass
        os.close(fd)


def _journal(path: Path) -> Path:
    return path.parent / f".{path.name}.prev"


def _pair(path: Path) -> list[Path]:
    """Data file first, header last: the order files are renamed into place."""
    return [Path(str(path) + "~"), path]


def recover_output(path: str | os.PathLike) -> bool:
    """Roll back an interrupted replacement of the pair ``path`` + ``path~`` (see module notes) and remove staging
    folders a killed writer left behind. Call with :func:`output_lock` held.

    Parameters
    ----------
    path : path
        The header of the pair.

    Returns
    -------
    bool
        True if it rolled back.
    """
    path = Path(path)
    journal = _journal(path)
    rolled = False
    if journal.is_dir():
        plan = journal / "journal.json"
        if plan.is_file():  # the replacement had started: put the previous pair back
            import json

            doc = json.loads(plan.read_text())
            for name in doc.get("saved", []):
                if (journal / name).exists():  # absent: already moved back by an interrupted recovery
                    os.replace(journal / name, path.parent / name)
            for name in doc.get("absent", []):
                try:
                    os.unlink(path.parent / name)
                except FileNotFoundError:
                    pass
            os.unlink(plan)
            rolled = True
        shutil.rmtree(journal)
    for stale in path.parent.glob(f".{path.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return rolled


def _stamp_header(header: Path, data: Path) -> None:
    """Add ``data_check`` (:func:`_data_check` of the data file) to the header's ``<meta>`` element, in place (the
    staged copy)."""
    import re

    text = re.sub(r'\s*data_check="[^"]*"', "", header.read_text(encoding="utf-8"))  # a re-saved stream's old one
    stamp = f' data_check="{_data_check(data)}"'
    if re.search(r"<meta(?=[\s/>])", text):
        text = re.sub(r"<meta(?=[\s/>])", "<meta" + stamp, text, count=1)
    else:
        text = re.sub(r"(<info\b[^>]*>)", r"\1\n    <meta" + stamp + " />", text, count=1)
    header.write_text(text, encoding="utf-8")


def check_pair(path: str | os.PathLike, error=None, verify: bool = True) -> None:
    """Check that a header's recorded ``data_check`` matches its ``~`` data file (headers without it pass).

    Rolls back an interrupted replacement first (:func:`recover_output`), if its journal is there.

    Raises
    ------
    error (default ``StreamError``)
        If header and data file do not belong together (an interrupted or concurrent write by another tool).
    """
    import re

    from nova_infant.core.errors import OutputError

    path = Path(path)
    if _journal(path).is_dir():
        try:
            with output_lock(path, timeout_s=30):
                recover_output(path)
        except (OutputError, OSError):  # read-only place or busy: check the pair as it is
            pass
    if not verify:
        return
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except FileNotFoundError:
        return
    found = re.search(r'data_check="([0-9]+:[0-9a-f]{64})"', head)
    data = Path(str(path) + "~")
    if found and data.is_file() and _data_check(data) != found.group(1):
        raise (error or StreamError)(f"{path}: header and data file {data.name} do not belong together "
                                     f"(interrupted write?)")


def replace_pair(staged: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Move a staged header + ``~`` data pair over ``path`` + ``path~`` as described in the module notes (journal,
    data first, header last). Call with :func:`output_lock` held, after :func:`recover_output`.

    Parameters
    ----------
    staged : path
        The staged header (its ``~`` data file beside it).
    path : path
        The output header.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import json

    staged, path = Path(staged), Path(path)
    journal = _journal(path)
    journal.mkdir()
    saved, absent = [], []
    for target in _pair(path):
        if target.exists():
            try:
                os.link(target, journal / target.name)  # a second name, no copy: the old data stays readable
            except OSError:
                shutil.copy2(target, journal / target.name)
            saved.append(target.name)
        else:
            absent.append(target.name)
    tmp_plan = journal / ".journal.json.partial"
    tmp_plan.write_text(json.dumps({"saved": saved, "absent": absent}))
    os.replace(tmp_plan, journal / "journal.json")  # from here on a crash is rolled back
    for target in _pair(path):
        os.replace(staged.parent / (staged.name + target.name[len(path.name):]), target)
    os.unlink(journal / "journal.json")  # committed
    shutil.rmtree(journal, ignore_errors=True)
    return path


def save_atomic(data, path: str | os.PathLike, writer=None) -> Path:
    """Save a discover-utils object that has a header file and a ``<path>~`` data file (SSI stream, annotation).

    Both files are written (discover-utils' ``FileHandler``, or ``writer(data, staged_path)``) into a staging
    folder beside the target, the header gets the data file's fingerprint (``<meta data_check=...>``), and the pair
    replaces the old one under a lock (:func:`replace_pair`): a kill or a full disk at any point leaves the previous
    pair intact (or rolled back by the next run), and two runs writing the same output take turns. Missing parent
    folders are created.

    Raises
    ------
    OutputError
        If the folder cannot be written (full disk, read-only, no permission) or another run holds the lock too
        long; the previous output is then unchanged.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(path):
            recover_output(path)
            tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
            try:
                tmp = tmp_dir / path.name
                if writer is None:
                    from discover_utils.data.handler.file_handler import FileHandler

                    # the library's own writer, also when discover.common has wrapped it (no second staging)
                    getattr(FileHandler.save, "_nova_infant_original", FileHandler.save)(FileHandler(), data, tmp)
                else:
                    writer(data, tmp)
                if not Path(str(tmp) + "~").is_file():
                    # a one-file format: plain atomic rename
                    os.replace(tmp, path)
                else:
                    _stamp_header(tmp, Path(str(tmp) + "~"))
                    replace_pair(tmp, path)
            finally:
                shutil.rmtree(tmp_dir, ignore_errors=True)
    except OSError as exc:
        raise _output_error(path, exc) from None
    return path


def _default_mode(kind: int) -> int:
    """The permission bits ``open``/``mkdir`` would give under the process umask (``kind`` 0o666 for files, 0o777
    for folders): ``mkstemp``/``mkdtemp`` stage with 0o600/0o700, which would hide outputs from a lab's other
    accounts once renamed into place."""
    mask = os.umask(0)
    os.umask(mask)
    return kind & ~mask


@contextmanager
def atomic_file(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Write one file atomically: yields a unique staging path beside ``path`` (ending in ``suffix``, e.g. ``.png``
    for writers that pick the format from the name); when the block ends without error it is renamed over ``path``
    under :func:`output_lock`, otherwise deleted. Missing parent folders are created.

    Raises
    ------
    OutputError
        If the file cannot be written (full disk, read-only folder) or another run holds the lock too long; the
        previous file is then unchanged.
    """
    path = Path(path)
    staged = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.partial-", suffix=suffix, dir=path.parent)
        os.close(fd)
        staged = Path(name)
        os.chmod(staged, _default_mode(0o666))
        yield staged
        with output_lock(path):
            os.replace(staged, path)
    except OSError as exc:
        raise _output_error(path, exc) from None
    finally:
        if staged is not None and staged.exists():
            staged.unlink()


def save_figure(fig, path: str | os.PathLike, dpi: float | None = 100) -> Path:
    """Write a matplotlib figure as PNG through :func:`atomic_file` (a kill or full disk leaves the previous picture)
    and close it, whether or not the write succeeded.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : the PNG path; missing parent folders are created.
    dpi : dots per inch (None: matplotlib's default).

    Returns
    -------
    Path, the written PNG.

    Raises
    ------
    OutputError
        As :func:`atomic_file`.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_file(path, ".png") as staged:
            fig.savefig(staged, format="png", **({} if dpi is None else {"dpi": dpi}))
    finally:
        plt.close(fig)
    return path


def _is_ours(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def _folder_manifest(folder: Path, kind: str) -> dict:
    import datetime
    import json

    from nova_infant import __version__

    files = {}
    for item in sorted(folder.rglob("*")):
        if item.is_file() and item.name != MARKER:
            files[item.relative_to(folder).as_posix()] = file_sha256(item)
    doc = {"format": MARKER_FORMAT, "kind": kind, "created_by": f"nova-infant {__version__}",
           "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "sha256": files}
    (folder / MARKER).write_text(json.dumps(doc, indent=2))
    return doc


def check_replaceable(out: str | os.PathLike) -> None:
    """Refuse an output folder this package did not create; call before long work so a wrong ``--out`` fails at once.

    Parameters
    ----------
    out : path
        The output folder.

    Raises
    ------
    PathError
        When ``out`` exists and is neither an empty folder nor a folder this package created (``MARKER``).
    """
    from nova_infant.core.errors import PathError

    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise PathError(f"{out}: exists and is not a folder nova-infant created; refusing to replace it")
    if out.is_dir() and not _is_ours(out) and any(out.iterdir()):
        raise PathError(f"{out}: refusing to replace a folder nova-infant did not create (no {MARKER}); "
                        f"choose a new folder or remove it yourself")


def _recover_dir(out: Path) -> None:
    aside = out.parent / f".{out.name}.old"
    if aside.is_dir() and (_is_ours(aside) or not any(aside.iterdir())):
        if out.exists():
            _discard(aside)  # the new folder made it in: drop the old copy
        else:
            os.replace(aside, out)  # killed between the two renames: put the old folder back
    # old copies being deleted and staging folders of a killed run: ours by name, never the output itself
    for stale in [*out.parent.glob(f".{out.name}.deleting-*"), *out.parent.glob(f".{out.name}.partial-*")]:
        shutil.rmtree(stale, ignore_errors=True)


def _discard(aside: Path) -> None:
    """Delete an old copy: renamed to a unique ``.deleting-`` name first, so a kill half-way through the deletion
    never leaves a half-deleted ``.old`` copy that recovery would mistake for the previous folder."""
    import uuid

    doomed = aside.parent / f"{aside.name[:-len('.old')]}.deleting-{uuid.uuid4().hex[:8]}"
    os.replace(aside, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


@contextmanager
def atomic_dir(out_dir: str | os.PathLike, kind: str = "folder") -> Iterator[Path]:
    """Write a folder (model bundle, tagger head) atomically.

    Yields a staging folder beside ``out_dir``. When the block ends without error, the marker file ``MARKER``
    (kind, version, SHA-256 of every file) is written into it, an existing ``out_dir`` is renamed aside, the new
    folder renamed in, and only then the old one deleted; an interrupted swap is finished or rolled back by the
    next run. On error the staging folder is deleted and ``out_dir`` is untouched. Writers are serialised by a lock.

    Raises
    ------
    PathError
        If ``out_dir`` exists and was not created by this package (see :func:`check_replaceable`).
    OutputError
        If the folder cannot be written (full disk, read-only) or another run holds the lock too long.
    """
    out = Path(out_dir)
    check_replaceable(out)
    aside = out.parent / f".{out.name}.old"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _output_error(out, exc) from None
    with output_lock(out):
        tmp = None
        try:
            _recover_dir(out)
            check_replaceable(out)
            tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
            os.chmod(tmp, _default_mode(0o777))
            yield tmp
            _folder_manifest(tmp, kind)
            if out.exists():
                os.replace(out, aside)
            os.replace(tmp, out)
            if aside.exists():
                _discard(aside)
        except OSError as exc:
            raise _output_error(out, exc) from None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)


def verify_folder(folder: str | os.PathLike, error=None, required: Sequence[str] = ()) -> dict | None:
    """Check a folder written by :func:`atomic_dir` against the SHA-256 sums in its ``MARKER``.

    ``required`` files must exist whether or not a marker is present. Returns the marker document, or None for a
    folder saved before markers existed (then only ``required`` is checked).

    Raises
    ------
    error (default ``StreamError``)
        Naming the file: a required or recorded file is missing, or its content differs from the recorded sum.
    """
    import json

    error = error or StreamError
    folder = Path(folder)
    _recover_if_needed(folder)
    if not folder.is_dir():
        raise error(f"{folder}: no such folder")
    for name in required:
        if not (folder / name).is_file():
            raise error(f"{folder / name}: missing (incomplete or damaged folder)")
    if not _is_ours(folder):
        return None
    try:
        doc = json.loads((folder / MARKER).read_text())
        sums = dict(doc["sha256"])
    except (ValueError, KeyError, TypeError):
        raise error(f"{folder / MARKER}: unreadable checksum list") from None
    check_digests(folder, sums, error, f"recorded in {MARKER}")
    return doc


def check_digests(folder: str | os.PathLike, sums: dict, error, listed: str) -> None:
    """Check that every file of ``sums`` exists under ``folder`` with its recorded SHA-256.

    Parameters
    ----------
    folder : str or path
        Folder the names are relative to.
    sums : dict of str -> str
        File name -> lower-case hex SHA-256 digest (64 characters).
    error : type of Exception
        Raised with a one-line message naming the file.
    listed : str
        Where the sums come from, for the message (e.g. ``"listed in checksums"``).

    Raises
    ------
    error
        A listed file is missing, or its content differs from its digest (``hashlib.sha256``).
    """
    for name, digest in sums.items():
        item = Path(folder) / name
        if not item.is_file():
            raise error(f"{item}: missing ({listed})")
        if file_sha256(item) != digest:
            raise error(f"{item}: content differs from its recorded SHA-256 (edited or corrupt)")


def _recover_if_needed(folder: Path) -> None:
    aside = folder.parent / f".{folder.name}.old"
    if aside.is_dir():
        try:
            with output_lock(folder, timeout_s=5):
                _recover_dir(folder)
        except Exception:  # read-only place or busy: the folder as it is will be checked
            pass


def write_ssi_stream(stream, path: str | os.PathLike) -> Path:
    """Write an ``SSIStream`` as ``path`` (XML header) + ``path~`` (binary float32), atomically (:func:`save_atomic`).

    Parameters
    ----------
    stream : discover_utils.data.stream.SSIStream
    path : path
        ``.stream`` is appended if missing.

    Returns
    -------
    pathlib.Path
        The header path.

    Raises
    ------
    OutputError
        If the folder cannot be written; the previous output is then unchanged.
    """
    path = Path(path)
    if path.suffix != ".stream":
        path = path.with_name(path.name + ".stream")
    return save_atomic(stream, path)


def write_annotation(annotation, path: str | os.PathLike) -> Path:
    """Write a discover-utils annotation as an ASCII NOVA ``.annotation`` (+ ``~`` data file), atomically
    (discover-utils' BINARY writer is broken: never used).

    Parameters
    ----------
    annotation : discover-utils ``DiscreteAnnotation``, ``ContinuousAnnotation`` or ``FreeAnnotation``
    path : path
        ``.annotation`` is appended if missing.

    Returns
    -------
    pathlib.Path
        ``path`` with its suffix; the rows are in ``<path>~``.

    Raises
    ------
    OutputError
        Folder not writable (full disk, read-only, lock held too long): an existing annotation is kept as it was.
    """
    path = Path(path)
    if path.suffix != ".annotation":
        path = path.with_name(path.name + ".annotation")
    return save_atomic(annotation, path)


@dataclass
class StreamView:
    """A feature stream opened lazily (:func:`open_ssi_stream`).

    Attributes
    ----------
    path : pathlib.Path
    data : numpy.memmap, shape (n_rows, dim)
        Read-only; float32 for our streams (the header's ``type``).
    sample_rate_hz : float
    media_type : str
        The header's ``type`` attribute (e.g. ``feature;video;dinov2``).
    meta : dict
        Every ``<meta>`` attribute of the header.
    """

    path: Path
    data: np.ndarray
    sample_rate_hz: float
    media_type: str
    meta: dict = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Number of rows (frames) of the stream."""
        return int(self.data.shape[0])

    @property
    def dim(self) -> int:
        """Number of values per row (the stream's ``dim``)."""
        return int(self.data.shape[1])

    @property
    def duration_ms(self) -> float:
        """Length of the stream in ms: ``n_rows * 1000 / sample_rate_hz``."""
        return self.n_rows * 1000.0 / self.sample_rate_hz


_SSI_TYPES = {"FLOAT": np.float32, "DOUBLE": np.float64, "SHORT": np.int16, "USHORT": np.uint16,
              "INT": np.int32, "UINT": np.uint32, "LONG": np.int64, "ULONG": np.uint64}


def open_ssi_stream(path: str | os.PathLike) -> StreamView:
    """Open an SSI stream (BINARY) without reading its data into memory.

    Raises
    ------
    StreamError
        If the header is missing or malformed, the type is not numeric, the data file's size does not match
        the header (rows x dim x bytes), or it does not match the header's ``data_check`` fingerprint.
    """
    path = Path(path)
    data_path = Path(str(path) + "~")
    check_pair(path, verify=False)  # roll back an interrupted write first
    try:
        root = ET.parse(path).getroot()
        info = root.find("info")
        sr = float(info.get("sr"))
        dim = int(info.get("dim"))
        ftype = info.get("ftype", "BINARY").upper()
        dtype = _SSI_TYPES[info.get("type", "FLOAT").upper()]
    except FileNotFoundError:
        raise StreamError(f"{path}: no such stream file") from None
    except Exception as exc:
        raise StreamError(f"{path}: malformed stream header ({exc})") from None
    meta_el = root.find("meta")
    meta = dict(meta_el.attrib) if meta_el is not None else {}
    n_rows = sum(int(c.get("num", 0)) for c in root.findall("chunk"))
    if not data_path.is_file():
        raise StreamError(f"{data_path}: stream data file is missing")
    if ftype == "ASCII":
        array = np.loadtxt(data_path, dtype=np.float64, delimiter=(info.get("delim") or " ").strip() or None,
                           ndmin=2).astype(np.float32)
    else:
        expected = n_rows * dim * np.dtype(dtype).itemsize
        actual = data_path.stat().st_size
        if actual != expected:
            raise StreamError(f"{data_path}: holds {actual} bytes, header announces {n_rows} rows x {dim} dims "
                              f"({expected} bytes)")
        check_pair(path)
        array = np.memmap(data_path, dtype=dtype, mode="r", shape=(n_rows, dim)) if n_rows else np.zeros((0, dim), dtype)
    if sr <= 0:
        raise StreamError(f"{path}: non-positive sample rate {sr}")
    return StreamView(path, array, sr, meta.get("type", ""), meta)


def load_ssi_stream(path: str | os.PathLike):
    """Load a stream back through discover-utils' ``FileHandler`` (the path NOVA-side tools take).

    Parameters
    ----------
    path : path
        The ``.stream`` header.

    Returns
    -------
    discover_utils.data.stream.SSIStream
        ``data`` of shape (n_rows, dim); ``meta_data.sample_rate`` in Hz.
    """
    from discover_utils.data.handler.file_handler import FileHandler

    return FileHandler().load(Path(path))


# ---------------------------------------------------------------- discrete annotations


def frames_to_segments(labels: np.ndarray, step_ms: float, conf: np.ndarray | None = None,
                       skip_ids: Iterable[int] = (), offset_ms: float = 0.0) -> np.ndarray:
    """Merge consecutive equal frame labels into segments (NOVA ``LabelDType.DISCRETE``: ms, id, conf).

    Parameters
    ----------
    labels : int array of shape (n_frames,)
        Class id per frame; frame k covers ``[offset + k*step, offset + (k+1)*step)`` ms.
    conf : float array of shape (n_frames,), optional
        Per-frame confidence; a segment's ``conf`` is the mean over its frames (1.0 if omitted).
    skip_ids : ids that produce no segment (e.g. REST, or -1 for "no prediction").

    Returns
    -------
    structured ndarray with fields ``from``, ``to`` (int32 ms), ``id`` (int32), ``conf`` (float32)
    """
    from discover_utils.utils.type_definitions import LabelDType

    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    conf = np.ones(len(labels), np.float32) if conf is None else np.asarray(conf, np.float32).reshape(-1)
    if len(labels) == 0:
        return np.zeros(0, dtype=LabelDType.DISCRETE.value)
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(labels)]])
    keep = ~np.isin(labels[starts], list(skip_ids))
    starts, ends = starts[keep], ends[keep]
    csum = np.concatenate([[0.0], np.cumsum(conf, dtype=np.float64)])
    sums = csum[ends] - csum[starts]
    out = np.zeros(len(starts), dtype=LabelDType.DISCRETE.value)
    out["from"] = np.round(offset_ms + starts * step_ms).astype(np.int32)
    out["to"] = np.round(offset_ms + ends * step_ms).astype(np.int32)
    out["id"] = labels[starts]
    out["conf"] = (sums / np.maximum(ends - starts, 1)).astype(np.float32)
    return out


# ---------------------------------------------------------------- .trainer files


@dataclass
class TrainerIO:
    """One ``<io>`` entry of a ``.trainer``.

    Attributes
    ----------
    type : str
        ``"input"`` or ``"output"``.
    id : str
        The key of the module's data dict (du-process ``--data`` id).
    data : str
        NOVA io type, e.g. ``stream:Video``, ``stream:SSIStream:dinov2``, ``annotation:Discrete``.
    default_value : str
        Stream or scheme name NOVA preselects.
    default_active : bool
    """

    type: str
    id: str
    data: str
    default_value: str = ""
    default_active: bool = True


@dataclass
class TrainerSpec:
    """What a ``.trainer`` holds (see :func:`write_trainer`).

    Attributes
    ----------
    script, create : str
        The DISCOVER script file and the Processor class it defines.
    description, category : str
        Shown in NOVA.
    io : list of TrainerIO
    options : list of (name, TYPE, default)
        TYPE in STRING, BOOL, LIST (a LIST default is the comma-separated choices, the first being the default).
    frame_step_ms, left_context_ms, right_context_ms : float
        In ms.
    is_iterable, trained, enable_post_process, is_trainable : bool
        The ``<info>``/``<meta>`` flags du-process and NOVA read.
    weights_path : str
        ``<model path=...>`` of a trained model.
    """

    script: str
    create: str
    description: str
    category: str
    io: list[TrainerIO]
    options: list[tuple[str, str, str]] = field(default_factory=list)
    frame_step_ms: float = 0
    left_context_ms: float = 0
    right_context_ms: float = 0
    is_iterable: bool = False
    weights_path: str = ""
    trained: bool = True
    enable_post_process: bool = False
    is_trainable: bool = False


def option_string(options: Sequence[tuple[str, str, str]]) -> str:
    """``{name:TYPE:default};...`` as NOVA parses it.

    Raises
    ------
    TrainerFileError
        If a name or default contains ``:``, ``;``, ``{`` or ``}`` (NOVA splits on them).
    """
    parts = []
    for name, kind, default in options:
        text = str(default)
        if kind == "BOOL":
            text = "True" if str(default).lower() in ("1", "true", "yes") else "False"
        if any(ch in str(name) + text for ch in ":;{}"):
            raise TrainerFileError(f"option {name!r}: NOVA cannot parse ':', ';', '{{' or '}}' in {text!r}")
        parts.append(f"{{{name}:{kind}:{text}}}")
    return ";".join(parts)


def _ms(value: float) -> str:
    # DISCOVER parses frame step and contexts to integer ms ("40ms" -> 40).
    return f"{int(round(float(value)))}ms"


def write_trainer(path: str | os.PathLike, spec: TrainerSpec) -> Path:
    """Write a ``.trainer`` XML that NOVA lists and ``du-process`` runs; written atomically.

    Layout follows DISCOVER 1.1 / discover-utils 1.2.1 (``<trainer ssi-v="5"><info trained="true"/><meta …><io/>
    </meta><model create script optstr path/></trainer>``). Frame step and contexts are written as integer ms.

    Raises
    ------
    TrainerFileError
        For an option string NOVA could not parse.
    """
    path = Path(path)
    root = ET.Element("trainer", {"ssi-v": "5"})
    ET.SubElement(root, "info", {"trained": "true" if spec.trained else "false", "seed": "1234"})
    meta = ET.SubElement(root, "meta", {
        "backend": "nova-server",
        "category": spec.category,
        "description": spec.description,
        "frameStep": _ms(spec.frame_step_ms),
        "leftContext": _ms(spec.left_context_ms),
        "rightContext": _ms(spec.right_context_ms),
        "is_iterable": "True" if spec.is_iterable else "False",
        "is_trainable": "True" if spec.is_trainable else "False",
        "enable_post_process": "True" if spec.enable_post_process else "False",
    })
    for io in spec.io:
        ET.SubElement(meta, "io", {"type": io.type, "id": io.id, "data": io.data, "default_value": io.default_value,
                                   "default_active": "True" if io.default_active else "False"})
    ET.SubElement(root, "model", {"create": spec.create, "script": spec.script,
                                  "optstr": option_string(spec.options), "path": spec.weights_path})
    tree = ET.ElementTree(root)
    ET.indent(tree, space="    ")
    return save_atomic(tree, path, writer=lambda doc, staged: doc.write(staged, encoding="utf-8",
                                                                        xml_declaration=True))


def read_trainer(path: str | os.PathLike):
    """Parse a ``.trainer`` with discover-utils' own parser (what ``du-process``/DISCOVER use).

    Raises
    ------
    TrainerFileError
        If the file is missing, is not XML, or lacks ``<model create script>``.
    """
    from discover_utils.utils.ssi_xml_utils import Trainer

    path = Path(path)
    if not path.is_file():
        raise TrainerFileError(f"{path}: no such .trainer file")
    try:
        model = ET.parse(path).getroot().find("model")
        trainer = Trainer()
        trainer.load_from_file(path)
    except Exception as exc:
        raise TrainerFileError(f"{path}: malformed .trainer ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    # discover-utils fills in create="PythonModel" when the attribute is absent: check the file itself
    if model is None or not model.get("create") or not model.get("script"):
        raise TrainerFileError(f"{path}: <model> needs 'create' and 'script' attributes")
    return trainer


# THE annotation reader lives in core.annotations; re-exported here for callers of nova_io.read_annotation.
from nova_infant.core.annotations import read_annotation  # noqa: E402,F401
