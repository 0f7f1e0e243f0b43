"""Atomic writing of every output, and the locks and recovery behind it: the write path of the package.

Data safety rules (docs/troubleshooting.md, "Outputs and paths"):

- every name that becomes part of a path passes :func:`safe_name`;
- a folder output (model bundle, tagger head) carries the marker file ``MARKER``; a folder without it is never
  replaced or deleted (:func:`atomic_dir`, :func:`check_replaceable`, :func:`verify_folder`);
- a header + data pair (``x.stream`` + ``x.stream~``, ``x.annotation`` + ``x.annotation~``) is staged beside the
  target, the old pair is hard-linked into a journal folder ``.x.stream.prev``, then data and header are renamed
  over the old ones; an interrupted replacement is rolled back from the journal by the next writer or reader
  (:func:`save_atomic`, :func:`replace_pair`, :func:`recover_output`);
- the header's ``<meta data_check="<bytes>:<sha256>">`` fingerprints its data file (size + SHA-256 of the first and
  last MiB: cheap for GB-sized streams), so a reader detects a mismatched pair (:func:`check_pair`);
- writers of one output hold an ``fcntl`` lock on ``.x.stream.lock`` (concurrent runs are serialised:
  :func:`output_lock`); single files go through :func:`atomic_file` (and :func:`save_figure`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from nova_infant import __version__
from nova_infant.core.continuous import is_continuous_annotation, write_continuous_rows
from nova_infant.core.errors import OutputError, PathError, StreamError

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


def _output_error(path, exc: OSError):
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
    folder beside the target, a continuous annotation's rows are rewritten by NOVA's gap rule
    (:mod:`nova_infant.core.continuous`: missing = ``NaN`` score with conf 0, conf finite), the header gets the data
    file's fingerprint (``<meta data_check=...>``), and the pair
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

                    # the library's own writer, also when core.du_save has wrapped it (no second staging)
                    getattr(FileHandler.save, "_nova_infant_original", FileHandler.save)(FileHandler(), data, tmp)
                else:
                    writer(data, tmp)
                if is_continuous_annotation(data) and Path(str(tmp) + "~").is_file():
                    # NOVA reads `NaN` (not savetxt's `nan`) as a gap, and needs finite confidences
                    write_continuous_rows(data, Path(str(tmp) + "~"))
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
