"""Saved affect model: one saved-model folder (:mod:`nova_infant.core.saved`, kind ``affect-model``) with
``config.json`` (architecture under ``model``, classes, training info and CV report under ``info``),
``model.safetensors`` (weights), checksums, a README and the CV figure ``cv_scores.png`` when one was drawn.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from nova_infant.core.errors import SavedModelError
from nova_infant.core.saved import load_model, save_model

KIND = "affect-model"


def _finite(value):
    """``value`` with every NaN/inf float replaced by None (strict JSON, as :func:`core.saved.save_model` writes)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy / torch scalars
        return _finite(value.item())
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def save_affect_model(out_dir, model, info: dict | None = None, extra=None) -> Path:
    """Write ``model`` (:class:`~nova_infant.affect.model.AffectModel`) and ``info`` as one saved-model folder.

    Parameters
    ----------
    out_dir : path
        The folder (replaced atomically; the previous one is kept on any failure).
    model : AffectModel
        Its ``cfg`` and ``state_dict()`` (float32 tensors) are saved.
    info : dict, optional
        Training provenance and CV report (non-finite numbers are stored as null).
    extra : callable, optional
        ``extra(folder)`` writes extra files (e.g. the CV figure) into a scratch folder; they are stored in the
        saved model and covered by its checksums.

    Returns
    -------
    Path of the folder.

    Raises
    ------
    PathError, OutputError, SavedModelError
        ``out_dir`` exists and is not ours, cannot be written, or the info cannot be stored.
    """
    files = {}
    if extra is not None:
        with tempfile.TemporaryDirectory(prefix="nova-infant-affect-") as scratch:
            extra(Path(scratch))
            files = {p.name: p.read_bytes() for p in Path(scratch).iterdir()
                     if p.is_file() and not p.name.startswith(".")}  # not the scratch folder's file record
    state = {k: v.detach().cpu().float().contiguous() for k, v in model.state_dict().items()}
    readme = ("Facial affect model (seed 002: MobileNetV4-Conv-Small backbone + three-level 3D MLP-Mixer temporal "
              f"aggregation), tasks {', '.join(model.cfg.tasks)}. Load with "
              "`nova_infant.affect.bundle.load_affect_model(folder)`.")
    return save_model(out_dir, KIND, {"model": model.cfg.to_dict(), "info": _finite(info or {})}, state,
                      readme=readme, files=files)


def load_affect_model(folder):
    """The :class:`~nova_infant.affect.model.AffectModel` saved in ``folder`` (eval mode, CPU) and its info dict.

    Parameters
    ----------
    folder : path
        A folder written by :func:`save_affect_model`.

    Returns
    -------
    (AffectModel, dict)

    Raises
    ------
    SavedModelError
        Missing folder/files, changed content, a folder of another kind, or weights that do not fit the saved
        architecture (one line naming the folder).
    """
    from nova_infant.affect.model import AffectConfig, AffectModel  # loads torch: imported on use

    folder = Path(folder)
    config, tensors = load_model(folder, KIND, framework="pt")
    model = AffectModel(AffectConfig(**config["model"]))
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise SavedModelError(f"{folder}: weights do not fit the saved architecture "
                              f"({str(exc).splitlines()[0]})") from None
    return model.eval(), config.get("info", {})
