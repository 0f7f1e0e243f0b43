"""Every DISCOVER module of this package and its ``.trainer``, as the older code and tests address them.

The modules are the specs of :data:`nova_infant.specs.registry.SPECS`; this module keeps the names the rest of the
package used before the specs (``TRAINERS``, :func:`trainer_specs`, :func:`write_all_trainers`,
``REPO_TRAINER_DIR``). ``trainers/nova_infant/`` is one folder (one DISCOVER virtual environment for all our
modules, see docs/discover.md).
"""

from __future__ import annotations

from pathlib import Path

from nova_infant.core.atomic import atomic_file
from nova_infant.core.package_data import TRAINER_DIR, checkout_root, write_repo_copies
from nova_infant.core.trainer_files import TrainerSpec
from nova_infant.specs.registry import SPECS, generated_files

#: ``{file stem: python module}`` of every ``.trainer`` this package ships (all of them specs now).
TRAINERS: dict[str, str] = {name: "nova_infant.specs.registry" for name in SPECS}

#: the checkout's copy of the package's CML folder (what a lab's DISCOVER points at); generated from TRAINER_DIR
REPO_TRAINER_DIR = Path(__file__).resolve().parents[2] / "trainers" / "nova_infant"


def trainer_specs() -> dict[str, TrainerSpec]:
    """``{file stem: TrainerSpec}`` of every ``.trainer`` this package ships.

    Returns
    -------
    dict
    """
    return {stem: SPECS[stem].trainer_spec() for stem in TRAINERS}


def write_all_trainers(out_dir=None) -> list[Path]:
    """Write every ``<stem>.trainer`` into ``out_dir``, together with the specs' generated scripts and README
    (:func:`nova_infant.specs.registry.generated_files`).

    Parameters
    ----------
    out_dir : path, optional
        Default: the package's CML folder (``nova_infant/data/trainers/nova_infant``, see
        :mod:`nova_infant.core.package_data`) and, in a checkout, its copy ``trainers/nova_infant``.

    Returns
    -------
    list of Path
        The ``.trainer`` files written (scripts and README are written too, not listed; each replaced atomically).

    Raises
    ------
    TrainerFileError, OutputError
    """
    out = Path(out_dir) if out_dir else TRAINER_DIR
    written = []
    for name, text in generated_files().items():
        target = out / name
        try:
            same = target.is_file() and not target.is_symlink() and target.read_text(encoding="utf-8") == text
        except (OSError, UnicodeDecodeError):
            same = False
        if not same:  # refused over a file nova-infant did not write or that was edited (core.write_policy)
            with atomic_file(target) as staged:
                Path(staged).write_text(text, encoding="utf-8")
        if name.endswith(".trainer"):
            written.append(out / name)
    if not out_dir and checkout_root() is not None:
        write_repo_copies(checkout_root())
    return written
