"""cry_reason_train knows its own worth: a recorder-grouped CV by default (balanced accuracy, macro-F1, majority
baseline on the same folds) stored in the saved model and printed; a model that does not beat chance says so in the
one line and in the predictor's description NOVA shows. Paper-class mapping checked against Table 1's counts."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nova_rules

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def speech_wavs(tmp_path_factory):
    """Per recorder one session: 4 s of LibriVox speech then 4 s of the same speech an octave up (real audio)."""
    from nova_infant.core.media import resample
    from nova_infant.core.sample_media import librivox_speech, write_wav

    folder = tmp_path_factory.mktemp("cry-cv")
    speech = librivox_speech(40.0, 16000)
    high = resample(speech, 32000, 16000)[:len(speech)]
    paths = []
    for r in range(4):
        part = slice(r * 4 * 16000, (r + 1) * 4 * 16000)
        paths.append(write_wav(folder / f"rec{r}.wav", np.concatenate([speech[part], high[part]]), 16000))
    return paths


def _items(paths, learnable: bool):
    from nova_infant.cry.session import training_item

    items = []
    for r, path in enumerate(paths):
        if learnable:  # the reason is in the sound: low speech vs high speech
            segments = [(0, 4000, "low"), (4000, 8000, "high")]
        else:  # the same low speech under both reasons: nothing to learn
            segments = [(0, 2000, "low"), (2000, 4000, "high")]
        items.append(training_item(f"rec{r}", path, segments, ["high", "low"]))
    return items


def _options(**kw):
    from nova_infant.specs.cry_reason import TRAIN_SPEC

    o = {opt.name: opt.default for opt in TRAIN_SPEC.options}
    o.update(epochs_ae=2, epochs=25, epochs_fusion=25, model_name="lab", **kw)
    return o


def _train(tmp_path, items, **kw):
    from nova_infant.core.package_data import TRAINER_DIR
    from nova_infant.specs.module_spec import TrainContext
    from nova_infant.specs.cry_reason import train_fit

    cml = tmp_path / "cml"
    cml.mkdir()
    for name in ("cry_reason_predict.py",):
        (cml / name).write_text((TRAINER_DIR / name).read_text())
    return train_fit(items, _options(**kw), TrainContext(cml, "demo", [it.session for it in items]))


def test_default_cv_is_recorder_grouped_stored_printed_and_shown_in_nova(tmp_path, speech_wavs, capsys):
    result = _train(tmp_path, _items(speech_wavs, learnable=True))
    ev = json.loads((result.model_dir / "config.json").read_text())["config"]["evaluation"]
    assert ev["folds"] == 4 and ev["n_recorders"] == 4 and ev["n_segments"] == 8  # capped at the recorders
    assert ev["model"]["balanced_accuracy"] == 1.0 and ev["majority"]["balanced_accuracy"] == 0.5
    assert {"macro_f1", "fold_balanced_accuracy", "balanced_accuracy_ci95"} <= set(ev["model"])
    assert ev["beats_chance"] and ev["chance"] == 0.5
    assert ev["line"] in capsys.readouterr().out
    trainer = result.trainer_path
    assert nova_rules.check_trainer(trainer) == []
    description = nova_rules.cml_info_json(trainer)["meta_description"]
    assert "balanced accuracy 1.00" in description and "beats chance" in description and "NOT" not in description
    assert "beats chance" in (result.model_dir / "NOTICE.md").read_text()


def test_a_model_that_does_not_beat_chance_says_so(tmp_path, speech_wavs, capsys):
    result = _train(tmp_path, _items(speech_wavs, learnable=False))
    ev = json.loads((result.model_dir / "config.json").read_text())["config"]["evaluation"]
    assert not ev["beats_chance"] and ev["model"]["balanced_accuracy_ci95"][0] <= 0.5
    out = capsys.readouterr().out
    assert "does NOT beat chance" in out and len([ln for ln in out.splitlines() if "NOT beat" in ln]) == 1
    assert "does NOT beat chance" in nova_rules.cml_info_json(result.trainer_path)["meta_description"]


def test_cv_can_be_skipped_and_the_groups_merge_sessions_of_one_recorder(tmp_path, speech_wavs, capsys):
    from nova_infant.cry.trainer_cv import recorder_cv

    items = _items(speech_wavs, learnable=True)
    result = _train(tmp_path, items, cv_folds=0)
    ev = json.loads((result.model_dir / "config.json").read_text())["config"]["evaluation"]
    assert "skipped" in ev and "not cross-validated" in nova_rules.cml_info_json(result.trainer_path)["meta_description"]
    merged = recorder_cv(items, {"rec0": "A", "rec1": "A", "rec2": "B", "rec3": "B"}, 5, 1, 5, 5)
    assert merged["n_recorders"] == 2 and merged["folds"] == 2


def test_paper_classes_map_to_the_folders_whose_counts_match_table_1():
    from nova_infant.cry.evaluation import PAPER_GUESSES, PAPER_TABLE1, SETTINGS

    # Table 1 "Original Data #" against the full cleaned Donate-a-cry corpus (belly_pain 16, burping 8,
    # discomfort 27, hungry 382, tired 24): three exact matches, Pain (38) matches no folder
    corpus = {"belly_pain": 16, "burping": 8, "discomfort": 27, "hungry": 382, "tired": 24}
    for paper, (count, folder) in PAPER_TABLE1.items():
        assert (folder is None) == (count not in corpus.values()), paper
        assert folder is None or corpus[folder] == count
    mapped = {f for _, f in PAPER_TABLE1.values() if f} | set(PAPER_GUESSES.values())
    assert sorted(mapped) == SETTINGS["paper4"] and PAPER_GUESSES == {"Pain": "burping"}
