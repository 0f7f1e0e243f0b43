"""Saved affect model: one folder with ``config.json`` (architecture, classes, training info, CV report),
``model.safetensors`` (weights) and the package's integrity marker, written atomically.

The project's common saved-model format (``core.saved.save_model``/``load_model``, issue 11) was not on main when
this was written: :func:`save_affect_model` / :func:`load_affect_model` are the only two places to switch.
"""

from __future__ import annotations

import json
from pathlib import Path

from nova_infant.core.errors import TrainerFileError

KIND = "affect-model"


def save_affect_model(out_dir, model, info: dict | None = None, extra=None) -> Path:
    """Write ``model`` (:class:`~nova_infant.affect.model.AffectModel`) and ``info`` into ``out_dir`` atomically;
    ``extra(folder)`` may add files (e.g. the CV figure) to the staged folder before it replaces ``out_dir``.

    Raises
    ------
    PathError, OutputError
        ``out_dir`` exists and is not ours, or cannot be written (the previous folder is kept).
    """
    from safetensors.torch import save_file

    from nova_infant.core.nova_io import atomic_dir

    out = Path(out_dir)
    with atomic_dir(out, KIND) as tmp:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(Path(tmp) / "model.safetensors"))
        doc = {"kind": KIND, "config": model.cfg.to_dict(), "info": info or {}}
        (Path(tmp) / "config.json").write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
        if extra is not None:
            extra(Path(tmp))
    return out


def load_affect_model(folder):
    """The :class:`~nova_infant.affect.model.AffectModel` saved in ``folder`` (eval mode, CPU) and its info dict.

    Raises
    ------
    TrainerFileError
        Missing folder/files, a folder of another kind, or weights that do not fit the saved architecture.
    """
    from safetensors.torch import load_file

    from nova_infant.affect.model import AffectConfig, AffectModel
    from nova_infant.core.nova_io import verify_folder

    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise TrainerFileError(f"{folder}: not an affect model folder (config.json and model.safetensors needed)")
    verify_folder(folder, TrainerFileError, required=("config.json", "model.safetensors"))
    doc = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if doc.get("kind") != KIND:
        raise TrainerFileError(f"{folder}: a {doc.get('kind')!r} folder, not an affect model")
    cfg = AffectConfig(**doc["config"])
    model = AffectModel(cfg)
    try:
        model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    except RuntimeError as exc:
        raise TrainerFileError(f"{folder}: weights do not fit the saved architecture ({str(exc).splitlines()[0]})") from None
    return model.eval(), doc.get("info", {})
