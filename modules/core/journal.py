"""Journals of header + data pair replacements (:func:`nova_infant.core.atomic.save_atomic`): the old pair is
hard-linked into ``.<name>.prev/`` with a plan that records the identity (size, mtime_ns, SHA-256) of every new file
moved in, so the next writer rolls an interrupted replacement back only while the output is still what the killed
writer left (issue #21: a coder's later save is never rolled back). Only the journal's own files are removed, by exact
name."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from nova_infant.core.errors import PathError
from nova_infant.core.fileid import file_sha256


def _journal(path: Path) -> Path:
    return path.parent / f".{path.name}.prev"


def _pair(path: Path) -> list[Path]:
    """Data file first, header last: the order files are renamed into place."""
    return [Path(str(path) + "~"), path]


JOURNAL_FORMAT = "nova-infant-journal/2"


def _identity(path: Path) -> dict | None:
    """``{size, mtime_ns, sha256}`` of a file (None when absent): what a journal records of each file it may
    restore or remove, so a file changed since (a coder's later save) is never rolled back."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": file_sha256(path)}


def _same_identity(path: Path, ident: dict | None) -> bool:
    if ident is None:
        return False
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    if st.st_size != ident.get("size") or st.st_mtime_ns != ident.get("mtime_ns"):
        return False
    return file_sha256(path) == ident.get("sha256")


def _read_plan(journal: Path, name: str = "journal.json") -> dict | None:
    """The journal's plan when it is one this package wrote (``format`` = ``JOURNAL_FORMAT``), else None."""
    try:
        doc = json.loads((journal / name).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != JOURNAL_FORMAT:
        return None
    return doc


def recover_output(path: str | os.PathLike) -> bool:
    """Roll back an interrupted replacement of the pair ``path`` + ``path~`` (see module notes). Call with
    :func:`output_lock` held, from a writer only (readers never write).

    The journal ``.<name>.prev/journal.json`` lists the old files (hard-linked beside it) and the identity (size,
    mtime_ns, SHA-256) of each new file that was being moved in. A target is restored only while it is still the
    old or our new file; if any target changed since (a coder saved a newer version), the journal is discarded and
    nothing is restored. Only the journal's own files are removed, by exact name; a folder of that name that this
    package did not write is left alone (:func:`replace_pair` then refuses).

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
    if not journal.is_dir() or journal.is_symlink():
        return False
    plan = _read_plan(journal)
    done = _read_plan(journal, ".journal.json.done")
    if plan is None and done is not None:  # killed after the commit: only the clean-up was left
        _drop_journal(journal, list(done.get("saved", [])), ".journal.json.done")
        return False
    if plan is None:
        partial = journal / ".journal.json.partial"
        try:  # killed before the plan was committed: no target was touched yet
            doc = json.loads(partial.read_text()) if partial.is_file() else None
        except (OSError, ValueError):
            doc = None
        if isinstance(doc, dict) and doc.get("format") == JOURNAL_FORMAT:
            os.unlink(partial)
        try:
            os.rmdir(journal)  # only when empty
        except OSError:
            pass
        return False
    saved, absent, new = list(plan.get("saved", [])), list(plan.get("absent", [])), dict(plan.get("new", {}))
    names = {target.name for target in _pair(path)}
    if not set(saved + absent) <= names:
        return False  # not a journal of this pair
    actions, consistent = [], True
    for name in saved:
        target, kept = path.parent / name, journal / name
        if kept.is_file():
            if target.exists() and os.path.samestat(os.stat(target), os.stat(kept)):
                continue  # still the old file
            if _same_identity(target, new.get(name)):
                actions.append(("restore", name))
            else:
                consistent = False
        elif _same_identity(target, new.get(name)):
            consistent = False  # the old copy is gone: nothing to restore
    for name in absent:
        target = path.parent / name
        if not target.exists():
            continue
        if _same_identity(target, new.get(name)):
            actions.append(("remove", name))
        else:
            consistent = False
    rolled = False
    if consistent:
        for action, name in actions:
            if action == "restore":
                os.replace(journal / name, path.parent / name)
            else:
                os.unlink(path.parent / name)
            rolled = True
    _drop_journal(journal, saved, "journal.json")
    return rolled


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
    try:
        journal.mkdir()
    except FileExistsError:
        raise PathError(f"{journal}: exists and is not a journal nova-infant can use; move it away, then run "
                        f"again") from None
    saved, absent, new = [], [], {}
    for target in _pair(path):
        new[target.name] = _identity(staged.parent / (staged.name + target.name[len(path.name):]))
        (saved if target.exists() else absent).append(target.name)
    tmp_plan = journal / ".journal.json.partial"
    tmp_plan.write_text(json.dumps({"format": JOURNAL_FORMAT, "saved": saved, "absent": absent, "new": new}))
    os.replace(tmp_plan, journal / "journal.json")  # from here on a crash is rolled back (or discarded)
    for name in saved:
        try:
            os.link(path.parent / name, journal / name)  # a second name, no copy: the old data stays readable
        except OSError:
            shutil.copy2(path.parent / name, journal / name)
    for target in _pair(path):
        os.replace(staged.parent / (staged.name + target.name[len(path.name):]), target)
    os.replace(journal / "journal.json", journal / ".journal.json.done")  # committed
    _drop_journal(journal, saved, ".journal.json.done")
    return path


def _drop_journal(journal: Path, saved: list, plan_name: str) -> None:
    """Remove a journal's own files by exact name (the old files' second names, then its plan) and the folder when
    that leaves it empty."""
    for name in saved:
        try:
            os.unlink(journal / name)
        except FileNotFoundError:
            pass
    try:
        os.unlink(journal / plan_name)
    except FileNotFoundError:
        pass
    try:
        os.rmdir(journal)
    except OSError:
        pass  # something else was put there: left as it is
