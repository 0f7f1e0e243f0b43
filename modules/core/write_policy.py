"""THE write policy: what every output of the package must satisfy before it replaces anything (issue #21).

Every writer of the package ends in one of the low-level functions of :mod:`nova_infant.core.atomic`
(``save_atomic`` for header + data pairs, ``atomic_file`` for one file, ``atomic_dir`` for a folder) or in
:func:`nova_infant.core.nova_db.save_annotation`; each of them calls this module first, so a new command is covered
without code of its own. The rules (docs/troubleshooting.md, "Outputs and paths"):

1. **An output never resolves to an input of the same job.** A job (:class:`WriteJob`, a context variable) is opened
   by each entry point (``nova-infant`` command, a batch worker's session, a du-process request); every reader of
   ``core`` registers the files it opens (:func:`register_input`) and the annotators it reads
   (:func:`register_annotator`); the CLI also registers every path-like argument that is not an output. An output
   equal to one of them by path, by inode (``os.stat``) or through a symlink is refused.
2. **An existing file or folder is replaced only when this package wrote it and it is of the same kind.** Streams
   and annotations carry a provenance mark in their header's ``<meta>`` (``generator="nova-infant"``,
   ``generator_version``, ``generator_module``, ``generator_kind``; NOVA ignores further ``<meta>`` attributes:
   docs/nova-client.md) and the ``data_check`` fingerprint of their data file (a pair edited by another program no
   longer matches it). Other single files (JSON, CSV, PNG, ``.trainer``, README, scripts, videos) are recorded, with
   their SHA-256, in the folder's ``.nova-infant-files.json``; a file is ours while its bytes equal the recorded ones.
   Folders carry ``.nova-infant.json`` with their kind and every file's SHA-256 (:mod:`nova_infant.core.saved`).
   Anything else (a coder's annotation, a raw recording, a lab-edited ``.trainer`` or README, real weights) is never
   replaced: one line says how to write elsewhere.
3. **Predictions never take a human annotator's name.** An annotation written by a job whose annotator equals an
   annotator that job read is refused (file and NOVA-database mode); with rule 2, an annotation file or database
   annotation of that name that this package did not write is never replaced either. We refuse rather than rename:
   the output name stays the one the user typed, and the message says to choose another ``--annotator``.
4. **Names.** Every name that becomes a path component passes :func:`nova_infant.core.fileid.safe_name`;
   :func:`check_output` refuses an empty path.
5. **Staging names are the process's own.** Staging files, journals and backups are created with unique names by
   the writer, recorded in the job (:meth:`WriteJob.note_created`) and removed by exact name; nothing is deleted by
   pattern; readers never write.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from nova_infant import __version__
from nova_infant.core.errors import PathError
from nova_infant.core.fileid import MARKER, _data_check, file_sha256, safe_name

GENERATOR = "nova-infant"
#: per-folder record of the single files this package wrote (name -> sha256, kind, module)
FILES_RECORD = ".nova-infant-files.json"
FILES_FORMAT = "nova-infant-files/1"
#: ``<meta>`` attributes of the provenance mark in stream/annotation headers
MARK_KEYS = ("generator", "generator_version", "generator_module", "generator_kind")


@dataclass
class WriteJob:
    """What one job (a command, a batch session, a du-process request) reads and creates.

    Attributes
    ----------
    name : str
        The job, for messages and the provenance mark's ``generator_module`` (e.g. ``"run dinov2_pca"``).
    inputs : dict of str -> tuple or None
        Resolved path of every input read -> ``(st_dev, st_ino)`` (None where it did not exist yet).
    annotators : set of str
        Annotators of every annotation read (file headers, NOVA database requests, ``--annotator`` of readers).
    created : set of str
        Staging files/folders this process created (removed by exact name only).
    permitted : dict of str -> dict
        The one sanctioned replacement of a person's file (:func:`permit_replacing`): resolved path -> SHA-256 of
        each file of its pair when its byte-identical backup was checked.
    """

    name: str = "nova-infant"
    inputs: dict = field(default_factory=dict)
    annotators: set = field(default_factory=set)
    created: set = field(default_factory=set)
    permitted: dict = field(default_factory=dict)

    def add_input(self, path: str | os.PathLike) -> None:
        """Record ``path`` (and, for a NOVA header, its ``~`` data file) as read by this job."""
        if path is None or str(path) == "":
            return
        for item in _with_data_file(Path(path)):
            try:
                resolved = item.resolve()
            except (OSError, RuntimeError):
                continue
            try:
                st = os.stat(resolved)
                ident = (st.st_dev, st.st_ino)
            except OSError:
                ident = None
            self.inputs[str(resolved)] = ident

    def input_hit(self, path: str | os.PathLike) -> str | None:
        """The registered input ``path`` resolves to (same path, same inode, or a symlink to it), else None."""
        path = Path(path)
        try:
            resolved = str(path.resolve())
        except (OSError, RuntimeError):
            return None
        if resolved in self.inputs:
            return resolved
        try:
            st = os.stat(path)
        except OSError:
            return None
        ident = (st.st_dev, st.st_ino)
        for name, known in self.inputs.items():
            if known == ident:
                return name
        return None

    def note_created(self, path: str | os.PathLike) -> None:
        """Record a staging file or folder this process created."""
        self.created.add(str(path))


_JOB: ContextVar[WriteJob | None] = ContextVar("nova_infant_write_job", default=None)
_MODULE: ContextVar[str | None] = ContextVar("nova_infant_writing_module", default=None)


@contextmanager
def writing(module: str) -> Iterator[None]:
    """Name the module whose outputs the block writes (``generator_module`` of the provenance mark), so one
    module's outputs carry the same header from ``run <module>``, its older command, a batch and du-process.

    Parameters
    ----------
    module : str
        The module (spec) name, e.g. ``"w2v_bert"``.
    """
    token = _MODULE.set(module)
    try:
        yield
    finally:
        _MODULE.reset(token)


def current() -> WriteJob | None:
    """The job open in this context (thread / task), or None outside any entry point (library use)."""
    return _JOB.get()


@contextmanager
def job(name: str) -> Iterator[WriteJob]:
    """Open a job for the block: readers register into it, writers check against it.

    Parameters
    ----------
    name : str
        The entry point (``"run dinov2_pca"``, ``"batch worker"``, ...).

    Yields
    ------
    WriteJob
    """
    token = _JOB.set(WriteJob(name))
    try:
        yield _JOB.get()
    finally:
        _JOB.reset(token)


def open_job(name: str) -> WriteJob:
    """Open a job for the rest of this context, without a block (du-process: one request per process, its
    processor is built before any input is loaded). An open job is kept (returned as is)."""
    found = _JOB.get()
    if found is None:
        found = WriteJob(name)
        _JOB.set(found)
    return found


def note_created(path: str | os.PathLike) -> None:
    """Record a staging file or folder the current job created (removed by exact name only)."""
    found = _JOB.get()
    if found is not None:
        found.note_created(path)


def forget_created(path: str | os.PathLike) -> None:
    """Drop a staging name from the current job once it has been removed or renamed into place."""
    found = _JOB.get()
    if found is not None:
        found.created.discard(str(path))


def register_input(path: str | os.PathLike | None) -> None:
    """Record a path the current job reads (no-op outside a job). Every reader of ``core`` calls it."""
    found = _JOB.get()
    if found is not None and path is not None:
        found.add_input(path)


def register_annotator(name: str | None) -> None:
    """Record an annotator whose annotation the current job reads (no-op outside a job or for an empty name)."""
    found = _JOB.get()
    if found is not None and name:
        found.annotators.add(str(name))


def job_name() -> str:
    """The current job's name (``generator_module`` of the provenance mark), ``"nova-infant"`` outside a job."""
    found = _JOB.get()
    return found.name if found is not None else GENERATOR


# ---------------------------------------------------------------- provenance marks


def mark(kind: str) -> dict:
    """The provenance attributes written into a stream/annotation header's ``<meta>``.

    Parameters
    ----------
    kind : str
        ``"stream"`` or ``"annotation"``.

    Returns
    -------
    dict of str -> str
        ``generator``, ``generator_version``, ``generator_module``, ``generator_kind``.
    """
    module = re.sub(r'[^A-Za-z0-9_. -]', "_", _MODULE.get() or job_name())
    return {"generator": GENERATOR, "generator_version": str(__version__), "generator_module": module,
            "generator_kind": kind}


def header_mark(path: str | os.PathLike) -> dict:
    """The ``<meta>`` attributes of a NOVA header (first 8 KiB; ``{}`` for a file without them or unreadable)."""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            head = handle.read(8192)
    except OSError:
        return {}
    found = re.search(r"<meta\b([^>]*)>", head)
    if not found:
        return {}
    return dict(re.findall(r'([A-Za-z_][\w.-]*)="([^"]*)"', found.group(1)))


def _with_data_file(path: Path) -> list[Path]:
    if path.suffix in (".stream", ".annotation"):
        return [path, Path(str(path) + "~")]
    return [path]


def _plain_kind(kind) -> str | None:
    return None if kind is None else str(kind).split(":", 1)[-1]


def _kind_of(path: Path) -> str:
    """The kind of a single-file output, from its name: ``stream``, ``annotation``, else its extension."""
    if path.suffix == ".stream" or path.name.endswith(".stream~"):
        return "stream"
    if path.suffix == ".annotation" or path.name.endswith(".annotation~"):
        return "annotation"
    return path.suffix.lstrip(".").lower() or "file"


def _error(message: str):
    return PathError(message)


ELSEWHERE = "write to another file or folder (another --out, name or --annotator)"


def _check_pair_ours(path: Path, kind: str) -> None:
    """A header + ``~`` pair may be replaced: the header carries our mark of the same kind and its ``data_check``
    matches the data file."""
    data = Path(str(path) + "~")
    if not path.exists():
        if data.exists():
            raise _error(f"{data}: exists without its header and was not written by nova-infant; refusing to "
                         f"replace it: {ELSEWHERE}")
        return
    meta = header_mark(path)
    if meta.get("generator") != GENERATOR:
        raise _error(f"{path}: exists and was not written by nova-infant (no generator mark in its header: a "
                     f"coder's or another tool's file); refusing to replace it: {ELSEWHERE}")
    if meta.get("generator_kind") not in (None, kind):
        raise _error(f"{path}: a nova-infant {meta.get('generator_kind')}, not a {kind}; refusing to replace it: "
                     f"{ELSEWHERE}")
    check = meta.get("data_check")
    if data.exists() and check:
        try:
            same = _data_check(data) == check
        except OSError:
            same = False
        if not same:
            raise _error(f"{path}: its data file was changed after nova-infant wrote it (edited in NOVA or another "
                         f"tool?); refusing to replace it: {ELSEWHERE}")


def _files_record(folder: Path) -> dict:
    try:
        doc = json.loads((folder / FILES_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("format") != FILES_FORMAT or not isinstance(doc.get("files"), dict):
        return {}
    return doc["files"]


def is_recorded(path: str | os.PathLike) -> bool:
    """True when ``path`` is listed in its folder's ``FILES_RECORD`` with its current SHA-256 (we wrote it and
    nobody changed it since)."""
    path = Path(path)
    entry = _files_record(path.parent).get(path.name)
    if not isinstance(entry, dict) or not path.is_file() or path.is_symlink():
        return False
    try:
        return file_sha256(path) == entry.get("sha256")
    except OSError:
        return False


def _check_input(path: Path) -> None:
    found = _JOB.get()
    if found is None:
        return
    for item in _with_data_file(path):
        hit = found.input_hit(item)
        if hit is not None:
            raise _error(f"{item}: is an input of this job ({hit}); refusing to write over it: {ELSEWHERE}")


def permit_replacing(path: str | os.PathLike, backup: str | os.PathLike) -> None:
    """Allow this job to replace exactly one person's annotation, ``path``, because ``backup`` holds a byte-identical
    copy of it: the one place nova-infant writes into a coder's file (issue 24, completion with
    ``into_coder_tier=true``). The permission covers that path only, in the current job only, and lapses if the
    file changes before it is written (then the normal rules refuse it).

    Parameters
    ----------
    path : str or path
        The coder's annotation header (its ``~`` data file is covered with it).
    backup : str or path
        Its backup (header; the ``~`` beside it), written before this call.

    Raises
    ------
    PathError
        No job is open, or a file of the backup differs from the file it should copy.
    """
    found = _JOB.get()
    path, backup = Path(path), Path(backup)
    if found is None:
        raise _error(f"{path}: no job is open; refusing to replace a person's file outside one")
    sums = {}
    for src, dst in zip(_with_data_file(path), _with_data_file(backup)):
        try:
            same = src.is_file() and dst.is_file() and file_sha256(src) == file_sha256(dst)
        except OSError:
            same = False
        if not same:
            raise _error(f"{dst}: not a byte-identical backup of {src}; refusing to replace {src}: {ELSEWHERE}")
        sums[str(src.resolve())] = file_sha256(src)
    found.permitted[str(path.resolve())] = sums


def is_permitted(path: str | os.PathLike) -> bool:
    """True when :func:`permit_replacing` allowed ``path`` in this job and its files are unchanged since."""
    found = _JOB.get()
    if found is None:
        return False
    try:
        sums = found.permitted.get(str(Path(path).resolve()))
        return bool(sums) and all(Path(f).is_file() and file_sha256(f) == s for f, s in sums.items())
    except OSError:
        return False


def check_output(path: str | os.PathLike, kind: str | None = None) -> Path:
    """Check a single-file output (or a header + ``~`` pair) against the policy before it is staged.

    Parameters
    ----------
    path : str or path
        The output (a ``.stream``/``.annotation`` header stands for its pair).
    kind : str, optional
        ``"stream"``, ``"annotation"``, else the extension (default: from the name).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    PathError
        One line: an empty path; the output resolves to an input of the job; it exists and is a folder, or this
        package did not write it (no mark / not recorded / changed since), or it is ours of another kind.
    """
    if path is None or str(path).strip() == "":
        raise _error("output path: empty; name a file")
    path = Path(path)
    kind = kind or _kind_of(path)
    if is_permitted(path):  # the coder's own tier, backed up first (permit_replacing)
        return path
    _check_input(path)
    if path.is_dir() and not path.is_symlink():
        raise _error(f"{path}: is a folder; refusing to replace it with a file: {ELSEWHERE}")
    if kind in ("stream", "annotation"):
        if path.is_symlink():
            raise _error(f"{path}: is a symbolic link; refusing to replace it: {ELSEWHERE}")
        _check_pair_ours(path, kind)
        return path
    if path.is_symlink() or path.exists():
        if not is_recorded(path):
            raise _error(f"{path}: exists and was not written by nova-infant (or was changed since: not in "
                         f"{FILES_RECORD}); refusing to replace it: {ELSEWHERE}")
        entry = _files_record(path.parent).get(path.name, {})
        if _plain_kind(entry.get("kind")) != _plain_kind(kind):
            raise _error(f"{path}: a nova-infant {entry.get('kind')} file, not {kind}; refusing to replace it: "
                         f"{ELSEWHERE}")
    return path


def check_annotator(annotator: str | None, where: str = "") -> None:
    """Refuse a prediction written under the name of an annotator the job reads (rule 3).

    Parameters
    ----------
    annotator : str or None
        The annotator the output annotation carries.
    where : str
        The output, for the message.

    Raises
    ------
    PathError
        ``annotator`` is one the current job read (a human coder's name).
    """
    found = _JOB.get()
    if found is not None and annotator and str(annotator) in found.annotators:
        raise _error(f"{where or 'annotation'}: annotator {annotator!r} is an annotator this job reads (a coder's "
                     f"annotation); predictions never take a coder's name: choose another --annotator")


def check_folder(out: str | os.PathLike, kind: str) -> Path:
    """Check a folder output (model bundle, basis, checkpoint) against the policy before it is staged.

    Parameters
    ----------
    out : str or path
    kind : str
        The folder kind (``core.saved`` kinds such as ``icep-bundle``, ``dinov2-pca-basis``, ``checkpoint``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    PathError
        An empty path; the folder is an input of the job; it exists and is a file or link, or a non-empty folder
        without our marker, or ours of another kind, or its files changed since we wrote it.
    """
    if out is None or str(out).strip() == "":
        raise _error("output folder: empty path; name a folder")
    out = Path(out)
    _check_input(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise _error(f"{out}: exists and is not a folder nova-infant created; refusing to replace it: {ELSEWHERE}")
    if not out.is_dir() or not any(out.iterdir()):
        return out
    try:
        doc = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        raise _error(f"{out}: refusing to replace a folder nova-infant did not create (no {MARKER}): "
                     f"{ELSEWHERE}") from None
    found_kind = doc.get("kind") if isinstance(doc, dict) else None
    if found_kind != kind:
        raise _error(f"{out}: a nova-infant {found_kind or 'folder'} folder, not a {kind}; refusing to replace it: "
                     f"{ELSEWHERE}")
    sums = doc.get("sha256") if isinstance(doc.get("sha256"), dict) else {}
    present = {item.relative_to(out).as_posix() for item in out.rglob("*") if item.is_file() or item.is_symlink()}
    present.discard(MARKER)
    present.discard(FILES_RECORD)  # files this package added later (a bundle's predictor.trainer) are recorded there
    changed = sorted(name for name in present ^ set(sums) if not (name in present and is_recorded(out / name)))
    if not changed:
        changed = sorted(name for name in sums if file_sha256(out / name) != sums[name])
    if changed:
        raise _error(f"{out}: {changed[0]} was added or changed after nova-infant wrote this folder; refusing to "
                     f"replace it: {ELSEWHERE}")
    return out


# ---------------------------------------------------------------- entry points

#: argparse destinations that name an output (never registered as inputs)
OUTPUT_DESTS = frozenset({"out", "out_dir", "output", "json", "png", "html", "figure", "picture_dir", "dest",
                          "state_dir", "repo", "cache"})
#: argparse destinations whose values become path components: each passes ``safe_name``
NAME_DESTS = frozenset({"session", "sessions", "role", "dataset", "annotator", "scheme", "scheme_name",
                        "model_name", "streams"})


def safe_relative(value: str, what: str) -> str:
    """A relative path below a folder (``--io`` file names such as ``feat/infant.dinov2.stream``): every component
    passes :func:`nova_infant.core.fileid.safe_name` (no ``..``, no empty component, no backslash or colon).

    Raises
    ------
    PathError
        Naming ``what`` and the value.
    """
    text = "" if value is None else str(value)
    if not text.strip():
        raise _error(f"{what}: empty path")
    for part in text.split("/"):
        safe_name(part, f"{what} {text!r}: component")
    return text


def _values(value) -> list:
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _values(item)]
    return [value]


def check_args(args, command: str = "") -> None:
    """Apply the policy to one command line before it runs (called by ``nova-infant``'s ``main``).

    Every value of a name option (:data:`NAME_DESTS`, and both sides of ``--io ID=FILE`` except an absolute
    template) passes :func:`nova_infant.core.fileid.safe_name`; every other argument that names an existing file
    or folder, except outputs (:data:`OUTPUT_DESTS`), is registered as an input of the current job.

    Parameters
    ----------
    args : argparse.Namespace
    command : str
        The command, for messages (``"run dinov2-pca"``).

    Raises
    ------
    PathError
        One line naming the option and the value.
    """
    for dest, value in sorted(vars(args).items()):
        if dest == "func" or callable(value):
            continue
        flag = "--" + dest.replace("_", "-")
        if dest in NAME_DESTS:
            for item in _values(value):
                if dest == "scheme" and isinstance(item, str) and item.lower().endswith(".json"):
                    register_input(item)  # review import-elan --scheme: a scheme file, read
                elif isinstance(item, str) and item != "":
                    safe_name(item, flag)
            continue
        if dest == "io":
            for item in _values(value):
                key, sep, name = str(item).partition("=")
                safe_name(key.strip(), "--io id")
                if sep and not os.path.isabs(name) and name.strip().lower() != "off":
                    safe_relative(name, f"--io {key.strip()}")
            continue
        if dest in OUTPUT_DESTS:
            for item in _values(value):
                if isinstance(item, str) and item.strip() == "" :
                    raise _error(f"{flag}: empty path; name a file or folder")
            continue
        for item in _values(value):
            if isinstance(item, (str, os.PathLike)) and str(item).strip() and len(str(item)) < 4096:
                try:
                    exists = os.path.lexists(item)
                except (OSError, ValueError):
                    exists = False
                if exists:
                    register_input(item)


# ---------------------------------------------------------------- NOVA database mode


def install_db_checks() -> None:
    """Apply rules 1-3 to discover-utils' NOVA-database annotation handler, in this process (idempotent).

    ``AnnotationHandler.save`` refuses an annotator
    the job read, and an existing annotation document this package did not write (no ``generator`` field: a
    coder's annotation); after saving, the document gets ``generator="nova-infant"``, ``generator_version``,
    ``generator_module`` (NOVA ignores fields it does not know). du-process and
    :func:`nova_infant.core.nova_db.save_annotation` both save through it.

    Raises
    ------
    PathError
        (from the wrapped ``save``) one line naming the annotation.
    """
    from discover_utils.data.handler import nova_db_handler

    handler_class = nova_db_handler.AnnotationHandler
    if getattr(handler_class.save, "_nova_infant_policy", False):
        return
    original_save = handler_class.save

    def save(self, annotation, dataset=None, session=None, annotator=None, role=None, scheme=None, *args, **kwargs):
        meta = annotation.meta_data
        dataset = dataset if dataset is not None else meta.dataset
        session = session if session is not None else meta.session
        annotator = annotator if annotator is not None else meta.annotator
        role = role if role is not None else meta.role
        scheme = scheme if scheme is not None else annotation.annotation_scheme.name
        where = f"NOVA annotation {dataset}/{session} scheme={scheme} annotator={annotator} role={role}"
        check_annotator(annotator, where)
        try:
            doc = self._load_annotation(dataset, session, annotator, role, scheme,
                                        project={"_id": 1, "generator": 1})
        except Exception:  # a missing session/role/... : the library reports it
            doc = None
        if doc and doc.get("generator") != GENERATOR:
            raise _error(f"{where}: exists and was not written by nova-infant (a coder's annotation); refusing to "
                         f"replace it: choose another annotator")
        result = original_save(self, annotation, dataset, session, annotator, role, scheme, *args, **kwargs)
        try:
            found = self._load_annotation(dataset, session, annotator, role, scheme, project={"_id": 1})
            if found:
                stamp = {k: v for k, v in mark("annotation").items() if k != "generator_kind"}
                self.client[dataset][nova_db_handler.ANNOTATION_COLLECTION].update_one({"_id": found["_id"]},
                                                                                      {"$set": stamp})
        except Exception:
            pass
        return result

    save.__doc__ = original_save.__doc__
    save._nova_infant_policy = True
    handler_class.save = save

