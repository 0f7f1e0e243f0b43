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
from nova_infant.core import write_policy
from nova_infant.core.continuous import is_continuous_annotation, write_continuous_rows
from nova_infant.core.errors import OutputError, PathError, StreamError
from nova_infant.core.fileid import (MARKER, MARKER_FORMAT, _BAD_NAME_CHARS, _data_check,  # noqa: F401
                                     _default_mode, file_sha256, safe_name)
from nova_infant.core.journal import (JOURNAL_FORMAT, _drop_journal, _identity, _journal, _pair,  # noqa: F401
                                      _read_plan, _same_identity, recover_output, replace_pair)
from nova_infant.core.staging import left_by_dead_run, owner_tag, remove_stale_staging, staging_prefix
from nova_infant.core.write_policy import (ELSEWHERE, FILES_FORMAT, FILES_RECORD, _error, _files_record, _kind_of,
                                           check_folder, job_name)

LOCK_TIMEOUT_S = float(os.environ.get("NOVA_INFANT_LOCK_TIMEOUT_S", "600"))


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
    ``NOVA_INFANT_LOCK_TIMEOUT_S`` or 600 s), then fails. The lock file is removed when released; it holds its
    creator's ``<pid>-<tag>`` (:mod:`nova_infant.core.staging`), so one left by a run killed with ``kill -9`` is
    removed by the next run that holds the lock (POSIX).

    Raises
    ------
    OutputError
        If the lock is still held by another run after ``timeout_s`` seconds, or cannot be created.
    """
    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    deadline = time.monotonic() + (LOCK_TIMEOUT_S if timeout_s is None else timeout_s)
    while True:
        created = False
        try:
            try:  # our own lock file (removed at the end), or the one another run holds
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                created = True
                if os.name == "posix":  # who made it (msvcrt locks bytes: nothing written there)
                    try:
                        os.write(fd, owner_tag().encode())
                    except OSError:
                        pass  # a full disk: the lock works without it
            except FileExistsError:
                fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            continue  # removed between the two calls: try again
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
    if not created and os.name == "posix":  # a lock file left by a killed run of ours: ours to remove now
        try:
            created = left_by_dead_run(os.pread(fd, 64, 0).decode("ascii", "replace"))
        except OSError:
            pass
    try:
        yield
    finally:
        try:  # only the lock file this run created (or a killed run of ours left), and only while it is still the
            # file locked (a person's file of that name is opened, never deleted)
            if created and os.path.samestat(os.fstat(fd), os.stat(lock)):
                os.unlink(lock)
        except OSError:
            pass
        os.close(fd)


def _stamp_header(header: Path, data: Path, mark: dict | None = None) -> None:
    """Add ``data_check`` (:func:`_data_check` of the data file) and the provenance ``mark``
    (:func:`nova_infant.core.write_policy.mark`) to the header's ``<meta>`` element, in place (the staged copy)."""
    from xml.sax.saxutils import quoteattr

    mark = dict(mark or {})
    text = header.read_text(encoding="utf-8")
    for key in ("data_check", *mark):  # a re-saved stream's old ones
        text = re.sub(r'\s*' + re.escape(key) + r'="[^"]*"', "", text)
    stamp = "".join(f" {key}={quoteattr(str(value))}" for key, value in mark.items())
    stamp += f' data_check="{_data_check(data)}"'
    if re.search(r"<meta(?=[\s/>])", text):
        text = re.sub(r"<meta(?=[\s/>])", "<meta" + stamp, text, count=1)
    else:
        text = re.sub(r"(<info\b[^>]*>)", r"\1\n    <meta" + stamp + " />", text, count=1)
    header.write_text(text, encoding="utf-8")


def check_pair(path: str | os.PathLike, error=None, verify: bool = True) -> None:
    """Check that a header's recorded ``data_check`` matches its ``~`` data file (headers without it pass).

    A reader: it never writes (an interrupted replacement is rolled back by the next writer of that output, not
    here).

    Raises
    ------
    error (default ``StreamError``)
        If header and data file do not belong together (an interrupted or concurrent write by another tool).
    """
    path = Path(path)
    if not verify:
        return
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except (FileNotFoundError, IsADirectoryError):
        return
    found = re.search(r'data_check="([0-9]+:[0-9a-f]{64})"', head)
    data = Path(str(path) + "~")
    if found and data.is_file() and _data_check(data) != found.group(1):
        raise (error or StreamError)(f"{path}: header and data file {data.name} do not belong together "
                                     f"(interrupted write? run the command that wrote it again)")


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
    kind = "stream" if path.suffix == ".stream" else "annotation" if path.suffix == ".annotation" else None
    annotator = getattr(getattr(data, "meta_data", None), "annotator", None)
    write_policy.check_output(path, kind)  # before any folder is made
    if kind == "annotation" and not write_policy.is_permitted(path):
        write_policy.check_annotator(annotator, str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(path):
            recover_output(path)
            remove_stale_staging(path)  # what a run killed with kill -9 left (proven ours: core.staging)
            write_policy.check_output(path, kind)  # again under the lock
            tmp_dir = Path(tempfile.mkdtemp(prefix=staging_prefix(path.name), dir=path.parent))
            write_policy.note_created(tmp_dir)
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
                    # a one-file format: plain atomic rename, recorded as ours
                    os.replace(tmp, path)
                    record_file(path)
                else:
                    _stamp_header(tmp, Path(str(tmp) + "~"), write_policy.mark(kind or "stream"))
                    replace_pair(tmp, path)
            finally:
                _remove_staging(tmp_dir)
    except OSError as exc:
        raise _output_error(path, exc) from None
    return path


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
    kind = "file:" + (path.suffix.lstrip(".").lower() or "none")  # one file, recorded in its folder's record
    write_policy.check_output(path, kind)  # before the work, and before any folder is made
    staged = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=staging_prefix(path.name), suffix=suffix, dir=path.parent)
        os.close(fd)
        staged = Path(name)
        write_policy.note_created(staged)
        os.chmod(staged, _default_mode(0o666))
        yield staged
        with output_lock(path):
            write_policy.check_output(path, kind)  # again under the lock
            remove_stale_staging(path)
            os.replace(staged, path)
            record_file(path)
    except OSError as exc:
        raise _output_error(path, exc) from None
    finally:
        if staged is not None:
            _remove_staging(staged)


def _remove_staging(staged: Path) -> None:
    """Remove a staging file or folder this process created (by its exact name; never by pattern)."""
    try:
        if staged.is_dir() and not staged.is_symlink():
            shutil.rmtree(staged, ignore_errors=True)
        elif staged.exists() or staged.is_symlink():
            staged.unlink()
    except OSError:
        pass
    write_policy.forget_created(staged)


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


def check_replaceable(out: str | os.PathLike, kind: str | None = None) -> None:
    """Refuse an output folder this package did not create; call before long work so a wrong ``--out`` fails at once.

    Parameters
    ----------
    out : path
        The output folder.
    kind : str, optional
        The folder kind to be written: then the whole policy applies
        (:func:`nova_infant.core.write_policy.check_folder`: not an input, ours, same kind, unchanged).

    Raises
    ------
    PathError
        When ``out`` exists and is neither an empty folder nor a folder this package created (``MARKER``).
    """
    out = Path(out)
    if kind is not None:
        check_folder(out, kind)
        return
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise PathError(f"{out}: exists and is not a folder nova-infant created; refusing to replace it")
    if out.is_dir() and not _is_ours(out) and any(out.iterdir()):
        raise PathError(f"{out}: refusing to replace a folder nova-infant did not create (no {MARKER}); "
                        f"choose a new folder or remove it yourself")


def _recover_dir(out: Path) -> None:
    """Finish or roll back a folder swap a killed writer left (call from a writer, with the lock held). The old copy
    ``.<out>.old`` is used only when it carries our marker; nothing is deleted by name pattern (a killed run's
    staging folder stays, harmless, for the user to remove)."""
    aside = out.parent / f".{out.name}.old"
    if aside.is_dir() and not aside.is_symlink() and _is_ours(aside):
        if out.exists():
            _discard(aside)  # the new folder made it in: drop the old copy
        else:
            os.replace(aside, out)  # killed between the two renames: put the old folder back


def _discard(aside: Path) -> None:
    """Delete an old copy: renamed to a unique ``.deleting-`` name first, so a kill half-way through the deletion
    never leaves a half-deleted ``.old`` copy that recovery would mistake for the previous folder."""
    doomed = aside.parent / f"{aside.name[:-len('.old')]}.deleting-{owner_tag()}-{uuid.uuid4().hex[:8]}"
    os.replace(aside, doomed)
    _remove_staging(doomed)


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
    write_policy.check_folder(out, kind)
    aside = out.parent / f".{out.name}.old"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _output_error(out, exc) from None
    with output_lock(out):
        tmp = None
        try:
            _recover_dir(out)
            remove_stale_staging(out)
            write_policy.check_folder(out, kind)
            if aside.exists() or aside.is_symlink():
                raise PathError(f"{aside}: exists and is not nova-infant's; move it away, then run again")
            tmp = Path(tempfile.mkdtemp(prefix=staging_prefix(out.name), dir=out.parent))
            write_policy.note_created(tmp)
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
                _remove_staging(tmp)


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
    """Readers never write: kept for callers; an interrupted folder swap is finished by the next writer
    (:func:`atomic_dir`)."""
    return None


def record_file(path: str | os.PathLike) -> None:
    """Record ``path`` (just written by this package) with its SHA-256 in its folder's ``FILES_RECORD``, atomically
    (call with the output's lock held; the record has its own lock)."""
    path = Path(path)
    folder = path.parent
    record = folder / FILES_RECORD
    with output_lock(record):
        files = _files_record(folder)
        if record.exists() and not files and record.stat().st_size:
            raise _error(f"{record}: not a nova-infant file record; refusing to replace it: {ELSEWHERE}")
        files[path.name] = {"sha256": file_sha256(path), "kind": _kind_of(path), "module": job_name()}
        remove_stale_staging(record)
        fd, name = tempfile.mkstemp(prefix=staging_prefix(FILES_RECORD), dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"format": FILES_FORMAT, "files": dict(sorted(files.items()))}, handle, indent=1)
            os.chmod(name, _default_mode(0o666))
            os.replace(name, record)
        finally:
            if os.path.exists(name):
                os.unlink(name)


def adopt(paths) -> list[Path]:
    """Record existing files as written by nova-infant (:func:`record_file`), for a person who knows they are: the
    checkout's generated trainers and schemes after a merge regenerated them without their record. Never called
    by a command.

    Parameters
    ----------
    paths : iterable of str or path
        Files, or folders (every file below them, records left out).

    Returns
    -------
    list of pathlib.Path
        The files recorded.
    """
    done = []
    for given in paths:
        given = Path(given)
        items = sorted(p for p in given.rglob("*") if p.is_file()) if given.is_dir() else [given]
        for item in items:
            if item.name != FILES_RECORD and item.is_file() and not item.is_symlink():
                record_file(item)
                done.append(item)
    return done


if __name__ == "__main__":  # python -m nova_infant.core.atomic adopt PATH...
    import sys

    if len(sys.argv) < 3 or sys.argv[1] != "adopt":
        sys.exit("usage: python -m nova_infant.core.atomic adopt PATH...")
    print(f"{len(adopt(sys.argv[2:]))} files recorded as nova-infant's")
