"""DISCOVER adapter of ICEP-R training (:func:`nova_infant.icep.pipeline.train_bundle`) and its trainer.

DISCOVER's ``/train`` is broken upstream, so training runs as a ``/process`` job of this module: du-process calls
``process_data`` once per selected session; the module collects the sessions and, after the last one named in
du-process's ``--sessions``, fits the model and writes the bundle into ``<trainer folder>/icep_models/<model_name>/``
plus a ``trained="true"`` predictor ``icep_<model_name>.trainer`` beside this module's trainer, so the model appears
in NOVA. Inputs: ``feature_0``, ``feature_1``, ... (feature streams, early-fused in that order) and ``labels`` (the
coder's discrete ICEP-R annotation). No outputs. One trainer per role and feature set (``TRAINER_SPECS``:
``icep_train_<role>_dinov2``, ``icep_train_<role>_dinov2_w2vbert``) because NOVA sends every declared input.
Options: docs/icep.md.
"""

from __future__ import annotations

import atexit
import json
import logging
import sys
from pathlib import Path, PureWindowsPath

from discover_utils.interfaces.server_module import Processor

from nova_infant.core.errors import AnnotationError, NovaInfantError, OptionError
from nova_infant.core.nova_io import TrainerIO, TrainerSpec
from nova_infant.discover.common import SessionIO, merge_options, refuse_bad_options, trainer_defaults

log = logging.getLogger("nova_infant")

DEFAULTS = {"model_name": "", "model": "bilstm", "role": "infant", "label_set": "merged", "window": 50,
            "stride": 25, "hidden": 128, "layers": 2, "dropout": 0.25, "optimizer": "adam", "lr": 0.001,
            "batch_size": 64, "epochs": 100, "patience": 5, "seed": 0, "device": "auto", "val_fraction": 0.2,
            "cv_folds": 0, "normalise": "session", "grid": "", "inner_folds": 3, "groups": "", "min_dur_ms": 400}

# NOVA sends every declared input (it has no on/off control for inputs), so each feature combination and role is
# its own trainer: "<role>" x "dinov2" | "dinov2 + w2vbert" (docs/nova-guide.md).
FEATURE_SETS = {"dinov2": ["dinov2"], "dinov2_w2vbert": ["dinov2", "w2vbert"]}
ROLES = ("infant", "caregiver")
_OPTIONS = [("model_name", "STRING", ""), ("model", "LIST", "bilstm,mlp"), ("label_set", "STRING", "merged"),
            ("window", "STRING", "50"), ("stride", "STRING", "25"), ("hidden", "STRING", "128"),
            ("layers", "STRING", "2"), ("dropout", "STRING", "0.25"), ("optimizer", "LIST", "adam,sgd"),
            ("lr", "STRING", "0.001"), ("batch_size", "STRING", "64"), ("epochs", "STRING", "100"),
            ("patience", "STRING", "5"), ("seed", "STRING", "0"), ("device", "LIST", "auto,cpu,cuda"),
            ("val_fraction", "STRING", "0.2"), ("cv_folds", "STRING", "0"), ("normalise", "LIST", "session,fold"),
            ("grid", "STRING", ""), ("inner_folds", "STRING", "3"), ("groups", "STRING", ""),
            ("min_dur_ms", "STRING", "400")]


def train_spec(role: str, features: list[str]) -> TrainerSpec:
    """The training ``.trainer`` for one coded role and one list of feature streams (stream types ``dinov2``,
    ``w2vbert``; fused in that order as ``feature_0``, ``feature_1``, ...). Its ``role`` option has that role only."""
    return TrainerSpec(
        script="icep_train.py", create="ICEPTrainer", category="ICEP-R",
        description=f"Train an ICEP-R {role} model (bi-LSTM or MLP) on {' + '.join(features)} features of the selected "
                    "coded sessions; writes a predictor trainer",
        io=[TrainerIO("input", f"feature_{i}", f"stream:SSIStream:{f}", f) for i, f in enumerate(features)]
        + [TrainerIO("input", "labels", "annotation:Discrete", f"ICEP-R-{role}")],
        options=_OPTIONS[:2] + [("role", "LIST", role)] + _OPTIONS[2:])


TRAINER_SPECS = {f"icep_train_{role}_{key}": train_spec(role, feats)
                 for role in ROLES for key, feats in FEATURE_SETS.items()}
TRAINER_SPEC = TRAINER_SPECS["icep_train_infant_dinov2"]


def _argv(flag: str):
    """Value of ``--flag`` in du-process's command line (None if absent)."""
    args = sys.argv[1:]
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def trainer_dir() -> Path:
    """Folder of the ``.trainer`` du-process runs (``--cml_dir`` / parent of ``--trainer_file_path``)."""
    cml, tfp = _argv("--cml_dir") or ".", _argv("--trainer_file_path") or "x"
    return Path(cml) / Path(*PureWindowsPath(tfp).parent.parts)


def _last_loadable(session: SessionIO, names: list[str]) -> str:
    """Last session of the job whose file-mode inputs all exist (du-process fails the others before
    ``process_data``); database-mode inputs are assumed present."""
    from discover_utils.data.provider.data_manager import resolve_file_uri

    inputs = [d for d in session.manager.data_description or []
              if d.get("type") == "input" and d.get("src", "").lower().startswith("file")]
    for name in reversed(names):
        if all(Path(resolve_file_uri(d, session.dataset, name)).exists() for d in inputs):
            return name
    return names[-1]


class ICEPTrainer(Processor):
    """DISCOVER ``Processor`` (``is_iterable="False"``) collecting coded sessions, then training once."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.options = merge_options({**DEFAULTS, **trainer_defaults(self.trainer)}, self.options)
        self.checked = refuse_bad_options(self._check_options, "icep_train")
        self.sessions, self.trained, self.dataset = [], False, ""
        self.job_sessions = json.loads(_argv("--sessions") or "[]")
        # fallback if the job's last session fails to load before process_data (torch imports lazily: not at exit)
        import torch._dynamo  # noqa: F401

        atexit.register(self._train_if_pending)

    def _train_if_pending(self):
        if self.sessions and not self.trained:
            try:
                self._train()
            except NovaInfantError as exc:
                log.error("training failed: %s: %s", type(exc).__name__, exc)

    def _check_options(self) -> dict:
        """Every option checked once, before any session is read (nova_infant.core.validation)."""
        from nova_infant.icep.schemes import label_map
        from nova_infant.core.validation import (check_folds, check_inner_folds, check_train_config, check_val_fraction,
                                  choice_option, float_option, parse_grid)

        o = self.options
        config = check_train_config(dict(
            model=o["model"], window=o["window"], stride=o["stride"], hidden=o["hidden"], layers=o["layers"],
            dropout=o["dropout"], optimizer=o["optimizer"], lr=o["lr"], batch_size=o["batch_size"],
            max_epochs=o["epochs"], patience=o["patience"], seed=o["seed"], device=o["device"],
            normalise=o["normalise"]))
        role = choice_option(o["role"], "role", ("infant", "caregiver"))
        # NOVA's option string cannot hold ';' or ':' -- a grid is given as JSON with those escaped by NOVA
        return {"config": config, "folds": check_folds(o["cv_folds"], "cv_folds"), "role": role,
                "val_fraction": check_val_fraction(o["val_fraction"]), "label_map": label_map(str(o["label_set"]), role),
                "grid": parse_grid(o["grid"], config), "inner_folds": check_inner_folds(o["inner_folds"]),
                "groups": str(o["groups"]).strip() or None,
                "min_dur_ms": float_option(o["min_dur_ms"], "min_dur_ms", 0.0)}

    def _train(self):
        from nova_infant.icep.evaluation import parse_groups
        from nova_infant.icep.pipeline import train_bundle
        from nova_infant.core.validation import folds_for, usable_training_sessions

        o, config = self.options, self._config()
        self.trained = True
        sessions, _ = usable_training_sessions(self.sessions, "icep_train")
        if not sessions:
            raise OptionError(f"icep_train: none of the {len(self.sessions)} loaded sessions is usable: nothing trained")
        folder, out = trainer_dir(), self._bundle_dir()
        folds = folds_for(self.checked["folds"], len(sessions), "icep_train", "cv_folds")
        lmap = self.checked["label_map"]
        bundle, trainer, report = train_bundle(
            sessions, lmap, config, out, folder, folds, self.checked["val_fraction"], self.checked["grid"],
            {"dataset": self.dataset, "label_set": str(o["label_set"])}, self.checked["inner_folds"],
            parse_groups(self.checked["groups"], [s.name for s in sessions]), self.checked["min_dur_ms"])
        log.info("trained on %d sessions: bundle %s, predictor %s", len(sessions), bundle, trainer)
        if report:
            log.info("cross-validation: %s", report["summary"])
        elif lmap.note:
            log.info("%s", lmap.note)

    def _bundle_dir(self) -> Path:
        """``<trainer folder>/icep_models/<model_name>``; ``PathError`` for a model name that is not a plain name
        or a folder there that this package did not create."""
        from nova_infant.core.nova_io import check_replaceable, safe_name

        o = self.options
        name = safe_name(str(o["model_name"]).strip() or f"icep-{o['role']}-{o['model']}", "option model_name")
        out = trainer_dir() / "icep_models" / name
        check_replaceable(out)
        return out

    def _config(self):
        from nova_infant.icep.training import TrainConfig

        return TrainConfig(**self.checked["config"])

    def process_data(self, ds):
        from nova_infant.icep.pipeline import session_from_discover
        from nova_infant.icep.training import window_starts

        session, error = SessionIO.from_provider(ds), None
        self.dataset = session.dataset
        try:
            self._bundle_dir()  # a bad model name fails every session before any work
            data = session_from_discover(session, self.checked["label_map"], "labels")
            window_starts(data.n_frames, self._config().window, 1, data.name)
            if not (data.labels >= 0).any():
                raise AnnotationError(f"session {session.name}: the label annotation has no labelled frame (every "
                                      f"segment is garbage or outside the label set): not trained on")
            self.sessions.append(data)
        except NovaInfantError as exc:  # report, keep training on the other sessions
            log.error("session %s: skipped: %s: %s", session.name, type(exc).__name__, exc)
            error = exc
        if self.sessions and (not self.job_sessions or session.name == _last_loadable(session, self.job_sessions)):
            try:
                self._train()  # last session of the job (an unknown session list: after every session)
            except NovaInfantError as exc:  # e.g. streams of different PCA bases: say it in one line first
                log.error("training failed: %s: %s", type(exc).__name__, exc)
                raise
        if error is not None:
            raise error
        return {}

    def to_output(self, data) -> dict:
        return {}
