"""A trained ICEP-R model as one saved-model folder (:mod:`nova_infant.core.saved`, kind ``icep-bundle``),
readable without our code (docs/icep.md, docs/saved-models.md)::

    <bundle>/config.json        kind/format/version, and under ``config``: architecture, training config, label
                                map, feature spec (streams, dims, rate, PCA basis hashes)
    <bundle>/model.safetensors  weights (no pickle)
    <bundle>/normaliser.json    per-feature mean/scale fitted on the training sessions only
    <bundle>/metrics.json       cross-validation report, when one was run
    <bundle>/README.md          generated: what it is, how it was trained, how to load it
    <bundle>/checksums          SHA-256 of every file above, checked on load
    <bundle>/predictor.trainer  only when the bundle is not inside a DISCOVER CML folder (see write_predictor_trainer)
    <bundle>/.nova-infant.json  marker: this package wrote the folder (only such a folder is ever replaced)

Inside a CML folder the predictor ``.trainer`` sits next to ``icep_predict.py`` instead (``<cml>/icep_<name>.trainer``
with ``path=`` pointing at the bundle), because DISCOVER lists every ``*.trainer`` below the CML folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from nova_infant.core.errors import SavedModelError, StreamError, TrainerFileError
from nova_infant.core.saved import extra_file, load_model, read_config, save_model
from nova_infant.core.trainer_files import TrainerIO, TrainerSpec, write_trainer
from nova_infant.icep.dataset import SessionData
from nova_infant.icep.models import build_model
from nova_infant.icep.schemes import LabelMap
from nova_infant.icep.training import FitResult, Normaliser, TrainConfig

FORMAT = "nova-infant-icep-bundle/1"


def feature_spec(session: SessionData) -> dict:
    """``{"step_ms", "streams": [{"name", "dim", "sample_rate_hz", "media_type"[, "pca_basis"]}]}`` of a session's
    fused streams (``pca_basis``: hash of a DINOv2-PCA stream's basis, from its header)."""
    streams = []
    for s in session.streams:
        basis = str((getattr(s, "meta", None) or {}).get("pca_basis", ""))
        streams.append({"name": s.name, "dim": int(s.dim), "sample_rate_hz": float(s.sample_rate_hz),
                        "media_type": s.media_type, **({"pca_basis": basis} if basis else {})})
    return {"step_ms": session.step_ms, "dim": session.dim, "streams": streams}


def _media(media_type: str) -> tuple[str, ...]:
    """A stream's media type (header meta ``type``, e.g. ``feature;video;dinov2``) as lower-case parts."""
    return tuple(p.strip().lower() for p in str(media_type).split(";") if p.strip())


def check_session(spec: dict, session: SessionData, bundle: str = "") -> None:
    """Raise ``StreamError`` naming the session if its streams do not match the bundle's feature spec: number of
    streams, dimension of each, media type where both record one (``feature;video;dinov2`` vs
    ``feature;audio;w2vbert``: same width, other meaning), the PCA basis (a basis on one side only, or another
    basis), frame rate."""
    want = spec["streams"]
    if len(want) != len(session.streams):
        raise StreamError(f"session {session.name}: {len(session.streams)} feature streams given, model {bundle} "
                          f"was trained on {len(want)} ({', '.join(w['name'] for w in want)})")
    for w, s in zip(want, session.streams):
        if int(w["dim"]) != s.dim:
            raise StreamError(f"session {session.name}: stream {s.name} has {s.dim} dims, model {bundle} expects "
                              f"{w['dim']} (stream {w['name']})")
        trained, given = _media(w.get("media_type", "")), _media(getattr(s, "media_type", "") or "")
        if trained and given and trained != given:
            raise StreamError(f"session {session.name}: stream {s.name} is {';'.join(given)}, model {bundle} was "
                              f"trained on {';'.join(trained)} (stream {w['name']}); give the stream it was trained on")
        basis = str((getattr(s, "meta", None) or {}).get("pca_basis", ""))
        if w.get("pca_basis") and basis and basis != w["pca_basis"]:
            raise StreamError(f"session {session.name}: stream {s.name} was extracted with PCA basis {basis}, model "
                              f"{bundle} was trained on basis {w['pca_basis']}; re-extract it with the training "
                              f"basis file (option pca_basis)")
        if bool(w.get("pca_basis")) != bool(basis):
            has, lacks = (f"model {bundle}", f"stream {s.name}") if w.get("pca_basis") else (f"stream {s.name}",
                                                                                         f"model {bundle}")
            raise StreamError(f"session {session.name}: {has} records a PCA basis "
                              f"({w.get('pca_basis') or basis}) and {lacks} none: the stream is not of the kind the "
                              f"model was trained on; give a stream extracted like the training streams")
    if abs(session.step_ms - spec["step_ms"]) > 1e-3:
        raise StreamError(f"session {session.name}: frame step {session.step_ms:.3f} ms, model {bundle} was trained "
                          f"at {spec['step_ms']:.3f} ms")


@dataclass
class Bundle:
    """A loaded bundle: ``model`` (eval mode, CPU), ``arch``, ``config`` (TrainConfig), ``normaliser``,
    ``label_map``, ``features`` (feature spec), ``path``, ``min_dur_ms`` (the smoothing its cross-validation
    evaluated, which its predictor applies by default; 0 for bundles written before it was recorded),
    ``temperature`` (probability scaling fitted on held-out frames at training time,
    :mod:`nova_infant.icep.calibration`; 1.0 for bundles written before calibration)."""

    model: torch.nn.Module
    arch: dict
    config: TrainConfig
    normaliser: Normaliser
    label_map: LabelMap
    features: dict
    path: Path
    min_dur_ms: float = 0.0
    temperature: float = 1.0


def save_bundle(out_dir: str | os.PathLike, fitted: FitResult, lmap: LabelMap, features: dict,
                metrics: dict | None = None, training: dict | None = None, min_dur_ms: float = 0.0) -> Path:
    """Write a bundle folder atomically (:func:`nova_infant.core.saved.save_model`, kind ``icep-bundle``; an
    existing bundle is replaced).

    Parameters
    ----------
    out_dir : path
    fitted : FitResult
        The trained model, its config, normaliser (fitted on training sessions only), class weights and history.
    lmap : LabelMap
        Source codes -> output scheme.
    features : dict
        :func:`feature_spec` of the training sessions.
    metrics : dict, optional
        Cross-validation report (``metrics.json``).
    training : dict, optional
        Free provenance (sessions, scheme, annotator), stored in the config.
    min_dur_ms : float
        Smoothing (shortest segment kept, ms) the cross-validation evaluated; stored as ``config["smoothing"]``
        and applied by the bundle's predictor by default (:func:`nova_infant.icep.predict.predict_session`).

    Raises
    ------
    PathError
        If ``out_dir`` exists and is not a folder this package created (it is never replaced).
    OutputError
        If the folder cannot be written (full disk, read-only); a previous bundle there is kept.
    """
    config = {"format": FORMAT, "architecture": fitted.arch, "training_config": fitted.config.to_dict(),
              "best_epoch": fitted.best_epoch, "history": fitted.history,
              "class_weights": fitted.class_weights.tolist(), "label_map": lmap.to_json(),
              "feature_spec": features, "training": training or {},
              "smoothing": {"min_dur_ms": float(min_dur_ms),
                            "note": ("the smoothing the cross-validation evaluated (model_smoothed in metrics.json)"
                                     if metrics is not None else "the training option min_dur_ms (no "
                                     "cross-validation ran)")
                                    + "; the predictor applies it unless option min_dur_ms is given"},
              "calibration": {"temperature": float(fitted.temperature), **fitted.calibration}}
    files = {"normaliser.json": json.dumps(fitted.normaliser.to_json())}
    if metrics is not None:
        files["metrics.json"] = json.dumps(metrics, indent=2)
    streams = ", ".join(f"{s['name']} ({s['dim']}-d)" for s in features.get("streams", []))
    info = training or {}
    readme = (f"ICEP-R {lmap.target.role} predictor: a {fitted.arch.get('model', 'model')} model "
              f"over {streams} at {features.get('step_ms', 0):g} ms per row, classes "
              f"{', '.join(lmap.target.names)} (scheme {lmap.target.name}). Trained by nova-infant icep train "
              f"(ICMI'24 ICEP-R paper, section 4.3; nova_infant.icep.training) on "
              f"{len(info.get('sessions', [])) or 'the given'} sessions; best epoch {fitted.best_epoch}; per-feature "
              f"standardiser fitted on the training sessions only (normaliser.json)"
              + ("; cross-validation report in metrics.json." if metrics is not None else ".")
              + " Use it with `nova-infant icep predict --bundle <folder>` or its predictor .trainer in DISCOVER.")
    return save_model(out_dir, "icep-bundle", config, fitted.model.state_dict(), readme=readme, files=files)


def load_bundle(path: str | os.PathLike, device: str = "cpu") -> Bundle:
    """Load a bundle folder and check it before use.

    Checks: ``config.json``, ``normaliser.json`` and ``model.safetensors`` exist; every file matches the SHA-256
    recorded at save time (``checksums``); the normaliser is finite with a positive scale and one value per input
    feature; the label map has one class per model output (so no id outside the output scheme is ever written);
    window, stride and batch size are >= 1; the weights fit the architecture exactly.

    Parameters
    ----------
    path : path
    device : str
        Torch device the model is moved to.

    Returns
    -------
    Bundle

    Raises
    ------
    SavedModelError
        One line naming the file and the problem (a bundle of an older layout: how to convert it).
    """
    path = Path(path)
    config, state = load_model(path, kind="icep-bundle", framework="pt")
    where = path / "config.json"
    try:
        arch, cfg, lmap = config["architecture"], dict(config["training_config"]), LabelMap.from_json(config["label_map"])
        cfg["mlp_hidden"] = tuple(cfg["mlp_hidden"])
        cfg.setdefault("normalise", "fold")  # bundles written before per-session standardisation existed
        train_config, features = TrainConfig(**cfg), config["feature_spec"]
        in_dim, n_classes = int(arch["in_dim"]), int(arch["n_classes"])
        temperature = float(config.get("calibration", {}).get("temperature", 1.0))
        if not (temperature > 0 and temperature < float("inf")):
            raise ValueError(f"calibration temperature must be > 0, got {temperature}")
        where = extra_file(path, "normaliser.json")
        normaliser = Normaliser.from_json(json.loads(where.read_text()))
    except SavedModelError:
        raise
    except Exception as exc:
        raise SavedModelError(f"{where}: unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    _check_bundle(path, train_config, features, lmap, normaliser, in_dim, n_classes)
    where = path / "model.safetensors"
    try:
        model = build_model(arch)
        model.load_state_dict(state)
    except Exception as exc:
        raise SavedModelError(f"{where}: weights do not fit the architecture in config.json "
                              f"({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})") from None
    model.to(device).eval()
    smoothing = float((config.get("smoothing") or {}).get("min_dur_ms", 0.0))
    return Bundle(model, arch, train_config, normaliser, lmap, features, path, smoothing, temperature)


def _check_bundle(path: Path, config: TrainConfig, features: dict, lmap: LabelMap, normaliser: Normaliser,
                  in_dim: int, n_classes: int) -> None:
    """The consistency checks of :func:`load_bundle` (one ``SavedModelError`` naming the file)."""
    import numpy as np

    cfg_file, norm_file = path / "config.json", path / "normaliser.json"
    if int(config.window) < 1 or int(config.stride) < 1 or int(config.batch_size) < 1:
        raise SavedModelError(f"{cfg_file}: window {config.window}, stride {config.stride} and batch size "
                               f"{config.batch_size} must be >= 1")
    if in_dim != int(features.get("dim", in_dim)) or in_dim != sum(int(s["dim"]) for s in features["streams"]):
        raise SavedModelError(f"{cfg_file}: the model takes {in_dim} features, the feature spec lists "
                               f"{sum(int(s['dim']) for s in features['streams'])}")
    if lmap.n_classes != n_classes:
        raise SavedModelError(f"{cfg_file}: label map has {lmap.n_classes} classes ({', '.join(lmap.target.names)}), "
                               f"the model outputs {n_classes}")
    if len(set(lmap.target.names)) != lmap.n_classes:
        raise SavedModelError(f"{cfg_file}: label map repeats a class name ({', '.join(lmap.target.names)})")
    for name, values in (("mean", normaliser.mean), ("scale", normaliser.scale)):
        if values.ndim != 1 or len(values) != in_dim:
            raise SavedModelError(f"{norm_file}: {name} has {values.size} values, the model takes {in_dim} features")
        if not np.isfinite(values).all():
            raise SavedModelError(f"{norm_file}: {name} holds NaN or inf values")
    if (normaliser.scale <= 0).any():
        raise SavedModelError(f"{norm_file}: scale must be > 0")


def _token(media_type: str) -> str:
    parts = [p for p in (media_type or "").split(";") if p]
    return parts[-1] if parts else ""


def predictor_spec(features: dict, lmap: LabelMap, weights_path: str, name: str, options: list[tuple[str, str, str]],
                   script: str = "icep_predict.py") -> TrainerSpec:
    """The ``.trainer`` of a trained predictor: one input per feature stream (ids ``feature_0``...), output
    ``annotation`` (discrete, the label map's scheme) and per-class probability tracks ``prob_<class>`` (off).

    ``options`` are its ``(name, TYPE, default)`` option entries: the ``icep_predict`` spec's, less ``bundle``
    (:func:`nova_infant.specs.icep.predictor_options`), passed in because the specs sit above this package."""
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
                       options=list(options),
                       frame_step_ms=features["step_ms"], weights_path=weights_path, trained=True)


def write_predictor_trainer(bundle_dir: str | os.PathLike, cml_dir: str | os.PathLike | None = None, *,
                            options: list[tuple[str, str, str]]) -> Path:
    """Write the predictor ``.trainer`` for a saved bundle.

    With ``cml_dir`` (the folder holding ``icep_predict.py``; the one DISCOVER serves): ``<cml_dir>/icep_<name>.trainer``
    with ``path=`` relative to it. Without: ``<bundle>/predictor.trainer`` (``path="."``; copy it with the scripts).
    ``options``: the predictor's option entries (see :func:`predictor_spec`); ``min_dur_ms`` is set to the
    bundle's smoothing (``config.json`` -> ``smoothing``).
    """
    bundle_dir = Path(bundle_dir)
    doc = read_config(bundle_dir, "icep-bundle")["config"]
    lmap, features, name = LabelMap.from_json(doc["label_map"]), doc["feature_spec"], bundle_dir.name
    # the predictor's min_dur_ms shows (and defaults to) the smoothing the bundle records
    min_dur_ms = float((doc.get("smoothing") or {}).get("min_dur_ms", 0.0))
    options = [(n, t, f"{min_dur_ms:g}" if n == "min_dur_ms" else d) for n, t, d in options]
    if cml_dir is not None:
        cml_dir = Path(cml_dir)
        if not (cml_dir / "icep_predict.py").is_file():
            raise TrainerFileError(f"{cml_dir}: no icep_predict.py here; give the nova_infant trainers folder")
        rel = os.path.relpath(bundle_dir.resolve(), cml_dir.resolve()).replace(os.sep, "/")
        return write_trainer(cml_dir / f"icep_{name}.trainer", predictor_spec(features, lmap, rel, name, options))
    return write_trainer(bundle_dir / "predictor.trainer", predictor_spec(features, lmap, ".", name, options))
