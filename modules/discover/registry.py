"""Every DISCOVER module of this package and its ``.trainer``: the single source the committed files come from.

``trainers/nova_infant/`` is one folder (one DISCOVER virtual environment for all our modules, see
docs/discover.md). Each entry maps a ``.trainer`` file name to the adapter module defining its ``TrainerSpec``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from nova_infant.core.nova_io import write_trainer

# "<file stem>": "<python module defining TRAINER_SPEC>"
TRAINERS: dict[str, str] = {
    **{stem: "nova_infant.discover.icep_train_module" for stem in (
        "icep_train_infant_dinov2", "icep_train_infant_dinov2_w2vbert", "icep_train_caregiver_dinov2",
        "icep_train_caregiver_dinov2_w2vbert")},
    "icep_predict": "nova_infant.discover.icep_predict_module",
    "w2v_bert": "nova_infant.discover.w2v_bert_module",
    "audio_events": "nova_infant.discover.audio_events_module",
    "emotion_tagger": "nova_infant.discover.emotion_module",
    "dinov2_pca": "nova_infant.discover.dinov2_module",
}

REPO_TRAINER_DIR = Path(__file__).resolve().parents[2] / "trainers" / "nova_infant"


def trainer_specs() -> dict:
    """``{file stem: TrainerSpec}`` for every registered trainer (a module with several trainers defines
    ``TRAINER_SPECS = {stem: spec}``, the others ``TRAINER_SPEC``)."""
    specs = {}
    for stem, name in TRAINERS.items():
        module = importlib.import_module(name)
        specs[stem] = module.TRAINER_SPECS[stem] if hasattr(module, "TRAINER_SPECS") else module.TRAINER_SPEC
    return specs


def write_all_trainers(out_dir=None) -> list[Path]:
    """Write ``<stem>.trainer`` for every module into ``out_dir`` (default: the checkout's trainers folder)."""
    out = Path(out_dir) if out_dir else REPO_TRAINER_DIR
    return [write_trainer(out / f"{stem}.trainer", spec) for stem, spec in trainer_specs().items()]
