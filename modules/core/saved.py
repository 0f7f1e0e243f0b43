"""One folder format for everything this package fits (ICEP-R bundles, tagger heads, DINOv2 PCA bases).

A saved model is a folder that can be read without our code::

    <folder>/config.json        {"kind", "format", "format_version", "nova_infant_version", "created_utc",
                                 "config": <what the caller saved>}
    <folder>/model.safetensors  tensors (weights) and arrays (standardisers, PCA components): safetensors, no pickle
    <folder>/<extra files>      optional, e.g. ``metrics.json``, ``normaliser.json``, ``NOTICE.md``
    <folder>/README.md          generated: what it is, how it was trained, how to load it
    <folder>/checksums          SHA-256 of every file above (``sha256sum -c checksums`` checks it), verified on load
    <folder>/.nova-infant.json  marker of :func:`nova_infant.core.atomic.atomic_dir`: this package wrote the folder

:func:`save_model` writes the folder atomically through :func:`nova_infant.core.atomic.atomic_dir` (a kill or a full
disk leaves the previous folder intact); :func:`load_model` verifies it and returns ``(config, tensors)``. Every
problem is one :class:`~nova_infant.core.errors.SavedModelError` whose one-line message names the file.
Folders written before this format (config.json + model.safetensors without ``checksums``) are refused with a line
saying how to convert them: ``python -m nova_infant.core.saved <folder>`` (:func:`convert_legacy`).
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from nova_infant import __version__
from nova_infant.core.atomic import _recover_if_needed, atomic_dir, check_digests, file_sha256, verify_folder
from nova_infant.core.errors import NovaInfantError, SavedModelError
from nova_infant.core.write_policy import register_input

FORMAT = "nova-infant-saved-model"
FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
CHECKSUMS = "checksums"
README = "README.md"
#: What each kind is, for the generated README.
KIND_TITLES = {"icep-bundle": "ICEP-R predictor (nova-infant)", "tagger-head": "Tagger head (nova-infant)",
               "dinov2-pca-basis": "DINOv2 patch-token PCA basis (nova-infant)",
               "cry-reason-model": "Cry-reason model (nova-infant, seed 003)"}
_MARKER = ".nova-infant.json"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _readme(kind: str, folder: Path, text: str, tensors: Mapping[str, Any], extra: list[str]) -> str:
    shapes = ", ".join(f"`{k}` {tuple(getattr(v, 'shape', ()))}" for k, v in list(tensors.items())[:6])
    if len(tensors) > 6:
        shapes += f" and {len(tensors) - 6} more"
    files = [f"- `{CONFIG}`: kind `{kind}`, format `{FORMAT}` v{FORMAT_VERSION}, the configuration under `config`"]
    if tensors:
        files.append(f"- `{WEIGHTS}`: {len(tensors)} tensors ({shapes})")
    files += [f"- `{name}`" for name in extra]
    files.append(f"- `{CHECKSUMS}`: SHA-256 of every file (`sha256sum -c {CHECKSUMS}`)")
    return "\n".join([
        f"# {KIND_TITLES.get(kind, kind)}: {folder.name}", "", text.strip() or f"A fitted `{kind}`.", "",
        "## Files", *files, "",
        "## How to load", "```python", "from nova_infant.core.saved import load_model", "",
        f"config, tensors = load_model({folder.name!r}, kind={kind!r})  # checks the SHA-256 sums", "```",
        "Without nova-infant: `json.load(open('config.json'))['config']` and "
        "`safetensors.numpy.load_file('model.safetensors')`.", "",
        f"Written by nova-infant {__version__}.", ""])


def _as_numpy(tensors: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for name, value in tensors.items():
        if hasattr(value, "detach"):  # torch.Tensor
            value = value.detach().cpu().contiguous().numpy()
        out[str(name)] = np.ascontiguousarray(value)
    return out


def save_model(folder: str | os.PathLike, kind: str, config: Mapping[str, Any],
               tensors: Mapping[str, Any] | None = None, readme: str = "",
               files: Mapping[str, str | bytes] | None = None) -> Path:
    """Save a fitted thing as one saved-model folder, atomically.

    Parameters
    ----------
    folder : path
        Folder to write; an existing one is replaced only if this package created it.
    kind : str
        What it is (``icep-bundle``, ``tagger-head``, ``dinov2-pca-basis``); :func:`load_model` can insist on it.
    config : mapping
        JSON-serialisable configuration (architecture, options, provenance), stored under ``config``.
    tensors : mapping of str -> numpy array or torch.Tensor, optional
        Weights and arrays, any shape and numeric dtype, written to ``model.safetensors`` (torch tensors are
        moved to the CPU; bfloat16 is not supported).
    readme : str
        A few lines for ``README.md``: what it is and how it was trained (data, method, source).
    files : mapping of file name -> text or bytes, optional
        Extra files (``metrics.json``, ``NOTICE.md``...), covered by the checksums.

    Returns
    -------
    Path of the folder.

    Raises
    ------
    SavedModelError
        If ``config`` is not JSON-serialisable or a file name is unsafe.
    PathError
        If ``folder`` exists and is not a folder this package created (it is never replaced).
    OutputError
        If the folder cannot be written (full disk, read-only); the previous folder is kept.
    """
    folder = Path(folder)
    tensors = _as_numpy(tensors or {})
    extra = dict(files or {})
    reserved = {CONFIG, WEIGHTS, CHECKSUMS, README, _MARKER}
    for name in extra:
        if name in reserved or "/" in name or "\\" in name or name.startswith("."):
            raise SavedModelError(f"{folder / name}: not a file name a saved model may hold")
    doc = {"kind": str(kind), "format": FORMAT, "format_version": FORMAT_VERSION,
           "nova_infant_version": __version__,
           "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "config": config}
    try:
        text = json.dumps(doc, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SavedModelError(f"{folder / CONFIG}: configuration cannot be saved as JSON ({_first_line(exc)})") from None
    with atomic_dir(folder, str(kind)) as tmp:
        (tmp / CONFIG).write_text(text)
        if tensors:
            from safetensors.numpy import save_file

            save_file(tensors, str(tmp / WEIGHTS), metadata={"kind": str(kind), "format": FORMAT})
        for name, content in extra.items():
            (tmp / name).write_bytes(content.encode() if isinstance(content, str) else bytes(content))
        (tmp / README).write_text(_readme(kind, folder, readme, tensors, sorted(extra)))
        names = sorted(p.name for p in tmp.iterdir() if p.is_file() and p.name not in (CHECKSUMS, _MARKER))
        (tmp / CHECKSUMS).write_text("".join(f"{file_sha256(tmp / n)}  {n}\n" for n in names))
    return folder


def verify_checksums(folder: str | os.PathLike) -> dict[str, str]:
    """Check every file listed in ``<folder>/checksums`` against its SHA-256.

    Returns
    -------
    dict of file name -> hex digest.

    Raises
    ------
    SavedModelError
        Naming the file: ``checksums`` missing or malformed, a listed file missing or changed.
    """
    folder = Path(folder)
    path = folder / CHECKSUMS
    if not path.is_file():
        raise SavedModelError(f"{path}: missing (incomplete or damaged saved model)")
    sums = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name or "/" in name or name.startswith(".."):
            raise SavedModelError(f"{path}: line {number} is not '<sha256>  <file>'")
        sums[name] = digest
    check_digests(folder, sums, SavedModelError, f"listed in {CHECKSUMS}")
    return sums


def read_config(folder: str | os.PathLike, kind: str | None = None) -> dict:
    """The whole ``config.json`` document of a saved model (kind, format, version, config), checked but without
    verifying checksums or reading tensors (cheap, e.g. to list a bundle's label map).

    Raises
    ------
    SavedModelError
        Folder or ``config.json`` missing or unreadable, an older layout, another format version, or another kind.
    """
    folder = Path(folder)
    register_input(folder)  # an output of this job may never replace it
    if not folder.is_dir():
        raise SavedModelError(f"{folder}: no such saved-model folder")
    path = folder / CONFIG
    if not path.is_file():
        raise SavedModelError(f"{path}: missing (incomplete or damaged saved model)")
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SavedModelError(f"{path}: unreadable ({type(exc).__name__}: {_first_line(exc)})") from None
    if not isinstance(doc, dict):
        raise SavedModelError(f"{path}: unreadable (not a JSON object)")
    if doc.get("format") != FORMAT:
        if not (folder / CHECKSUMS).exists():
            raise SavedModelError(f"{path}: saved by an older nova-infant (no {CHECKSUMS}); convert it in place "
                                  f"with: python -m nova_infant.core.saved {folder}")
        raise SavedModelError(f"{path}: not a nova-infant saved model (format {doc.get('format')!r})")
    if int(doc.get("format_version", 0)) > FORMAT_VERSION:
        raise SavedModelError(f"{path}: format version {doc.get('format_version')} is newer than this nova-infant "
                              f"reads ({FORMAT_VERSION}); upgrade nova-infant")
    if kind is not None and doc.get("kind") != kind:
        raise SavedModelError(f"{folder}: holds a {doc.get('kind')}, not a {kind}")
    if not isinstance(doc.get("config"), dict):
        raise SavedModelError(f"{path}: unreadable (no 'config' object)")
    return doc


def load_model(folder: str | os.PathLike, kind: str | None = None, framework: str = "numpy",
               required: tuple[str, ...] = (WEIGHTS,)) -> tuple[dict, dict]:
    """Load a folder written by :func:`save_model`, after verifying its checksums.

    Parameters
    ----------
    folder : path
    kind : str, optional
        Refuse a folder of another kind.
    framework : "numpy" | "pt"
        Tensors as numpy arrays or torch tensors (CPU).
    required : tuple of str
        Files that must exist (default ``model.safetensors``; ``()`` for a config-only model).

    Returns
    -------
    config : dict
        What was saved as ``config``.
    tensors : dict of str -> ndarray or torch.Tensor
        Contents of ``model.safetensors`` (empty when there is none).

    Raises
    ------
    SavedModelError
        One line naming the file: missing folder/file, older layout, other kind, changed content, unreadable
        tensors.
    """
    folder = Path(folder)
    register_input(folder)
    if (folder / CHECKSUMS).is_file():  # content first: an edited file is named as edited, not as unreadable
        verify_checksums(folder)
    doc = read_config(folder, kind)
    for name in required:
        if not (folder / name).is_file():
            raise SavedModelError(f"{folder / name}: missing (incomplete or damaged saved model)")
    tensors: dict = {}
    if (folder / WEIGHTS).is_file():
        try:
            if framework == "pt":
                from safetensors.torch import load_file
            else:
                from safetensors.numpy import load_file
            tensors = load_file(str(folder / WEIGHTS))
        except Exception as exc:  # safetensors raises SafetensorError / OSError on damaged files
            raise SavedModelError(f"{folder / WEIGHTS}: unreadable tensors ({_first_line(exc)})") from None
    return doc["config"], tensors


def extra_file(folder: str | os.PathLike, name: str) -> Path:
    """Path of an extra file of a saved model; ``SavedModelError`` naming it if it is missing."""
    path = Path(folder) / name
    if not path.is_file():
        raise SavedModelError(f"{path}: missing (incomplete or damaged saved model)")
    return path


def convert_legacy(folder: str | os.PathLike, kind: str | None = None) -> Path:
    """Re-save, in place and atomically, a folder written before this format (``config.json`` +
    ``model.safetensors`` + extra files, as ICEP-R bundles and tagger heads were): the old ``config.json`` becomes
    ``config``; the other files are kept.

    Parameters
    ----------
    folder : path
    kind : str, optional
        Default: ``icep-bundle`` if the old config says ``nova-infant-icep-bundle/1``, else ``tagger-head``.

    Raises
    ------
    SavedModelError
        If the folder is already in this format, or its files are unreadable or differ from the SHA-256 sums of
        its marker.
    """
    folder = Path(folder)
    if (folder / CHECKSUMS).exists():
        raise SavedModelError(f"{folder}: already a saved model of format {FORMAT}")
    verify_folder(folder, SavedModelError, required=(CONFIG,))
    try:
        config = json.loads((folder / CONFIG).read_text())
        tensors = {}
        if (folder / WEIGHTS).is_file():
            from safetensors.numpy import load_file

            tensors = load_file(str(folder / WEIGHTS))
    except Exception as exc:
        raise SavedModelError(f"{folder}: cannot convert ({type(exc).__name__}: {_first_line(exc)})") from None
    if kind is None:
        kind = "icep-bundle" if str(config.get("format", "")).startswith("nova-infant-icep-bundle") else "tagger-head"
    extra = {p.name: p.read_bytes() for p in folder.iterdir()
             if p.is_file() and p.name not in (CONFIG, WEIGHTS, README, CHECKSUMS, _MARKER)}
    readme = ""
    if (folder / README).is_file():
        readme = (folder / README).read_text()
    return save_model(folder, kind, config, tensors, readme=readme or "Converted from an older nova-infant folder.",
                      files=extra)


def main(argv: list[str] | None = None) -> int:
    """``python -m nova_infant.core.saved FOLDER...``: convert older ICEP-R bundles / tagger heads in place."""
    import sys

    code = 0
    for folder in (argv if argv is not None else sys.argv[1:]):
        try:
            print(f"{convert_legacy(folder)}: converted to {FORMAT} v{FORMAT_VERSION}")
        except NovaInfantError as exc:
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            code = 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
