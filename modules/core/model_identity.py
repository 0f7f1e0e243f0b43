"""What a model file or folder is, for ``nova-infant batch``'s up-to-date rule (:mod:`nova_infant.core.batch`): the
files and folders a module reads besides a session's inputs (its ``.trainer``'s model path and every option that
names an existing path), and their content identity (names, sizes, mtimes; small files by SHA-256), so that a
retrained bundle or a replaced basis makes every session that used the old one out of date.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path


def trainer_optstr(trainer_text: str) -> str:
    """The ``optstr`` attribute of a ``.trainer``'s ``<model>`` element (``{name:TYPE:default};...``), or ""."""
    match = re.search(r"<model\b[^>]*\boptstr=\"([^\"]*)\"", trainer_text)
    return match.group(1) if match else ""


#: files up to this size are hashed in a model's content identity (configs, checksums, label maps); larger ones
#: (weights) are identified by size and mtime, which an atomic replacement always changes
_HASH_BYTES = 1 << 20


def content_identity(path: str | os.PathLike) -> list:
    """What a model file or folder is, cheaply: per file (a folder: every file below it, sorted) its relative name,
    size, mtime (ns) and, for files up to 1 MiB, SHA-256.

    Parameters
    ----------
    path : path
        A model file or folder.

    Returns
    -------
    list
        ``[[relative name, size, mtime_ns, sha256 or ""], ...]``; ``[]`` when it cannot be read.
    """
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    out = []
    for f in files:
        try:
            st = f.stat()
            digest = hashlib.sha256(f.read_bytes()).hexdigest() if st.st_size <= _HASH_BYTES else ""
        except OSError:
            continue
        out.append([str(f.relative_to(path)) if f != path else f.name, st.st_size, st.st_mtime_ns, digest])
    return out


def model_paths(trainer_path: str | os.PathLike, options: dict) -> list[Path]:
    """Existing files and folders a module reads besides the session's inputs: the ``.trainer``'s
    ``<model path>`` and every option value (given, else the ``.trainer``'s default) that names an existing
    path, absolute or relative to the ``.trainer``'s folder (du-process's base) or the working folder.

    Parameters
    ----------
    trainer_path : path
        The ``.trainer`` file.
    options : dict
        The job's options (they override the ``.trainer``'s defaults).

    Returns
    -------
    list of pathlib.Path
        Resolved, without duplicates, in option order; never the ``.trainer`` itself or a folder holding it.
    """
    text = Path(trainer_path).read_text(errors="replace")
    values = dict(re.findall(r"\{([^:{}]+):[^:{}]*:([^{}]*)\}", trainer_optstr(text)))
    values.update({k: v for k, v in options.items() if v not in (None, "")})
    weights = re.search(r"<model\b[^>]*\bpath=\"([^\"]*)\"", text)
    candidates = ([weights.group(1)] if weights and weights.group(1) else []) + [str(v) for v in values.values()]
    base = Path(trainer_path).resolve().parent
    out: list[Path] = []
    for value in candidates:
        value = value.strip()
        if not value or len(value) > 4096 or "\n" in value:
            continue
        for path in ([Path(value)] if os.path.isabs(value) else [base / value, Path(value)]):
            try:
                if path.exists():
                    resolved = path.resolve()
                    holds_trainer = resolved == base or resolved in base.parents  # ".", "..": not a model
                    if resolved not in out and resolved != Path(trainer_path).resolve() and not holds_trainer:
                        out.append(resolved)
                    break
            except OSError:
                continue
    return out

