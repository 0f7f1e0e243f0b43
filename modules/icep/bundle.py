"""A trained ICEP-R model as one folder, readable without our code (docs/STYLE.md, "A model bundle")::

    <bundle>/config.json        architecture, training config, label map, feature spec (streams, dims, rate)
    <bundle>/model.safetensors  weights (no pickle)
    <bundle>/normaliser.json    per-feature mean/scale fitted on the training sessions only
    <bundle>/metrics.json       cross-validation report, when one was run
    <bundle>/predictor.trainer  only when the bundle is not inside a DISCOVER CML folder (see write_predictor_trainer)

Inside a CML folder the predictor ``.trainer`` sits next to ``icep_predict.py`` instead (``<cml>/icep_<name>.trainer``
with ``path=`` pointing at the bundle), because DISCOVER lists every ``*.trainer`` below the CML folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import StreamError, TrainerFileError
from ..nova_io import TrainerIO, TrainerSpec, atomic_dir, write_trainer
from .dataset import SessionData
from .models import build_model
from .schemes import LabelMap
from .training import FitResult, Normaliser, TrainConfig

FORMAT = "nova-infant-icep-bundle/1"


def feature_spec(session: SessionData) -> dict:
    """``{"step_ms", "streams": [{"name", "dim", "sample_rate_hz", "media_type"}]}`` of a session's fused streams."""
    return {"step_ms": session.step_ms, "dim": session.dim,
            "streams": [{"name": s.name, "dim": int(s.dim), "sample_rate_hz": float(s.sample_rate_hz),
                         "media_type": s.media_type} for s in session.streams]}


def check_session(spec: dict, session: SessionData, bundle: str = "") -> None:
    """Raise ``StreamError`` naming the session if its streams do not match the bundle's feature spec
    (number of streams, dimension of each, frame rate)."""
    want = spec["streams"]
    if len(want) != len(session.streams):
        raise StreamError(f"session {session.name}: {len(session.streams)} feature streams given, model {bundle} "
                          f"was trained on {len(want)} ({', '.join(w['name'] for w in want)})")
    for w, s in zip(want, session.streams):
        if int(w["dim"]) != s.dim:
            raise StreamError(f"session {session.name}: stream {s.name} has {s.dim} dims, model {bundle} expects "
                              f"{w['dim']} (stream {w['name']})")
    if abs(session.step_ms - spec["step_ms"]) > 1e-3:
        raise StreamError(f"session {session.name}: frame step {session.step_ms:.3f} ms, model {bundle} was trained "
                          f"at {spec['step_ms']:.3f} ms")


@dataclass
class Bundle:
    """A loaded bundle: ``model`` (eval mode, CPU), ``arch``, ``config`` (TrainConfig), ``normaliser``,
    ``label_map``, ``features`` (feature spec), ``path``."""

    model: torch.nn.Module
    arch: dict
    config: TrainConfig
    normaliser: Normaliser
    label_map: LabelMap
    features: dict
    path: Path


def save_bundle(out_dir: str | os.PathLike, fitted: FitResult, lmap: LabelMap, features: dict,
                metrics: dict | None = None, training: dict | None = None) -> Path:
    """Write a bundle folder atomically (written beside, then renamed; an existing bundle is replaced).

    ``training`` is free provenance (sessions, scheme, annotator) stored in config.json.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        config = {"format": FORMAT, "architecture": fitted.arch, "training_config": fitted.config.to_dict(),
                  "best_epoch": fitted.best_epoch, "history": fitted.history,
                  "class_weights": fitted.class_weights.tolist(), "label_map": lmap.to_json(),
                  "feature_spec": features, "training": training or {}}
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        state = {k: v.detach().cpu().contiguous() for k, v in fitted.model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"))
        (tmp / "normaliser.json").write_text(json.dumps(fitted.normaliser.to_json()))
        if metrics is not None:
            (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return out


def load_bundle(path: str | os.PathLike, device: str = "cpu") -> Bundle:
    """Load a bundle folder.

    Raises
    ------
    TrainerFileError
        If a file is missing or malformed, or the weights do not fit the architecture.
    """
    from safetensors.torch import load_file

    path = Path(path)
    try:
        config = json.loads((path / "config.json").read_text())
        normaliser = Normaliser.from_json(json.loads((path / "normaliser.json").read_text()))
        model = build_model(config["architecture"])
        model.load_state_dict(load_file(str(path / "model.safetensors")))
    except FileNotFoundError as exc:
        raise TrainerFileError(f"{path}: not a complete ICEP-R model bundle ({Path(exc.filename).name} missing)") from None
    except Exception as exc:
        raise TrainerFileError(f"{path}: unreadable ICEP-R model bundle ({str(exc).splitlines()[0]})") from None
    cfg = dict(config["training_config"])
    cfg["mlp_hidden"] = tuple(cfg["mlp_hidden"])
    model.to(device).eval()
    return Bundle(model, config["architecture"], TrainConfig(**cfg), normaliser,
                  LabelMap.from_json(config["label_map"]), config["feature_spec"], path)


def _token(media_type: str) -> str:
    parts = [p for p in (media_type or "").split(";") if p]
    return parts[-1] if parts else ""


def predictor_spec(features: dict, lmap: LabelMap, weights_path: str, name: str, script: str = "icep_predict.py") -> TrainerSpec:
    """The ``.trainer`` of a trained predictor: one input per feature stream (ids ``feature_0``...), output
    ``annotation`` (discrete, the label map's scheme) and per-class probability tracks ``prob_<class>`` (off)."""
    io = []
    for i, s in enumerate(features["streams"]):
        token = _token(s.get("media_type", ""))
        data = f"stream:SSIStream:{token}" if token else "stream:SSIStream"
        io.append(TrainerIO("input", f"feature_{i}", data, s["name"].split(".", 1)[-1]))
    io.append(TrainerIO("output", "annotation", "annotation:Discrete", lmap.target.name))
    for c in lmap.target.names:
        io.append(TrainerIO("output", f"prob_{c}", "annotation:Continuous", f"{lmap.target.name}-p{c}", False))
    return TrainerSpec(script=script, create="ICEPPredictor",
                       description=f"ICEP-R {lmap.target.role} predictor '{name}' ({', '.join(lmap.target.names)})",
                       category="ICEP-R", io=io,
                       options=[("min_dur_ms", "STRING", "0"), ("device", "LIST", "auto,cpu,cuda"),
                                ("batch_size", "STRING", "64")],
                       frame_step_ms=features["step_ms"], weights_path=weights_path, trained=True)


def write_predictor_trainer(bundle_dir: str | os.PathLike, cml_dir: str | os.PathLike | None = None) -> Path:
    """Write the predictor ``.trainer`` for a saved bundle.

    With ``cml_dir`` (the folder holding ``icep_predict.py``; the one DISCOVER serves): ``<cml_dir>/icep_<name>.trainer``
    with ``path=`` relative to it. Without: ``<bundle>/predictor.trainer`` (``path="."``; copy it with the scripts).
    """
    bundle_dir = Path(bundle_dir)
    doc = json.loads((bundle_dir / "config.json").read_text())
    lmap, features, name = LabelMap.from_json(doc["label_map"]), doc["feature_spec"], bundle_dir.name
    if cml_dir is not None:
        cml_dir = Path(cml_dir)
        if not (cml_dir / "icep_predict.py").is_file():
            raise TrainerFileError(f"{cml_dir}: no icep_predict.py here; give the nova_infant trainers folder")
        rel = os.path.relpath(bundle_dir.resolve(), cml_dir.resolve()).replace(os.sep, "/")
        return write_trainer(cml_dir / f"icep_{name}.trainer", predictor_spec(features, lmap, rel, name))
    return write_trainer(bundle_dir / "predictor.trainer", predictor_spec(features, lmap, ".", name))
