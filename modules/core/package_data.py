"""Files shipped inside the package (``nova_infant/data/``) and the checkout's copies of them.

The package reads data only from inside itself, so a plain ``pip install .`` (not editable) runs every module:

- ``data/schemes/``: the NOVA annotation schemes our modules write and read (``*.json``), and ``nova/``: the same
  ICEP-R schemes as empty file-mode annotations (``<scheme>.annotation`` header + ``<scheme>.annotation~`` data
  file; NOVA's ASCII annotation format is always this pair, the ``~`` file holds the rows and discover-utils'
  ``FileHandler`` refuses a header without it) and as NOVA database documents (``Schemes.mongo.json``).
- ``data/trainers/nova_infant/``: a DISCOVER CML folder (every ``.trainer``, the scripts they name, ``bootstrap``,
  ``version.py``, ``requirements.txt``), used by ``nova-infant demo`` and ``nova-infant batch`` when no CML folder
  is given.

The design card's top-level ``schemes/`` (what NOVA users import) and ``trainers/nova_infant/`` (what a lab's
DISCOVER points at) are generated copies of these folders: :func:`write_repo_copies` (``nova-infant
write-package-copies``) writes them, :func:`repo_copy_differences` (a test) keeps them equal.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path
from nova_infant.core.atomic import atomic_file

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
SCHEME_DIR = DATA_DIR / "schemes"
TRAINER_DIR = DATA_DIR / "trainers" / "nova_infant"

#: package folder -> its copy, relative to a checkout's root
REPO_COPIES = {SCHEME_DIR: Path("schemes"), TRAINER_DIR: Path("trainers") / "nova_infant"}

#: files a user's own runs leave in the checkout's trainer folder (trained models and their trainers): not copies
_RUN_OUTPUTS = ("icep_models", "__pycache__", "icep_*-*.trainer", "valence_models", "valence_*-*.trainer",
                ".nova-infant-files.json")  # the last: each folder's own record of the files nova-infant wrote


def checkout_root() -> Path | None:
    """The checkout this package was imported from (editable install), or None when it is installed.

    Returns
    -------
    pathlib.Path or None
        The folder holding ``setup.cfg`` and ``modules/`` (the parent of the package folder), if both exist.
    """
    root = DATA_DIR.parents[1]
    return root if (root / "setup.cfg").is_file() and (root / "modules").is_dir() else None


def _files(folder: Path) -> list[Path]:
    """Data files below ``folder``, relative to it, sorted; run outputs and caches left out."""
    if not folder.is_dir():
        return []
    ignore = shutil.ignore_patterns(*_RUN_OUTPUTS)
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        skipped = ignore(dirpath, dirnames + filenames)
        dirnames[:] = [d for d in dirnames if d not in skipped]
        out += [Path(dirpath, f).relative_to(folder) for f in filenames if f not in skipped]
    return sorted(out)


def repo_copy_differences(repo_root: str | os.PathLike) -> list[str]:
    """Where the checkout's copies differ from the package data.

    Parameters
    ----------
    repo_root : path
        A checkout's root (the folder of ``setup.cfg``).

    Returns
    -------
    list of str
        One line per missing, extra or differing file (``"schemes/emotion.json: differs"``); empty when equal.
    """
    problems = []
    for source, rel in REPO_COPIES.items():
        copy = Path(repo_root) / rel
        ours, theirs = set(_files(source)), set(_files(copy))
        problems += [f"{rel / f}: missing (in {source})" for f in sorted(ours - theirs)]
        problems += [f"{rel / f}: not in the package data ({source})" for f in sorted(theirs - ours)]
        problems += [f"{rel / f}: differs" for f in sorted(ours & theirs)
                     if not filecmp.cmp(source / f, copy / f, shallow=False)]
    return problems


def write_repo_copies(repo_root: str | os.PathLike) -> list[Path]:
    """Copy the package data into a checkout's top-level ``schemes/`` and ``trainers/nova_infant/``.

    Files of the copies that the package data does not hold (other than a user's run outputs, which are left
    alone) are reported by :func:`repo_copy_differences`, never deleted: nothing we did not create is removed.

    Parameters
    ----------
    repo_root : path
        A checkout's root.

    Returns
    -------
    list of pathlib.Path
        The files written (each replaced atomically through :func:`nova_infant.core.atomic.atomic_file`, which refuses a file nova-infant did not write; equal files are left as they are).
    """
    written = []
    for source, rel in REPO_COPIES.items():
        for f in _files(source):
            target = Path(repo_root) / rel / f
            if target.is_file() and not target.is_symlink() and filecmp.cmp(source / f, target, shallow=False):
                written.append(target)  # already equal: nothing to replace
                continue
            # staged, renamed; refused over a file nova-infant did not write or that was edited since
            # (core.write_policy)
            with atomic_file(target, target.suffix) as staged:
                shutil.copyfile(source / f, staged)
            written.append(target)
    return written
