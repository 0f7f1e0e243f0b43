"""Cry-reason analysis (seed 003): features, models, saved model, prediction on real audio (LibriVox speech and
Donate-a-cry cries), recorder-grouped evaluation on the corpus. docs/cry-reason.md."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from nova_infant.core.errors import OptionError, SavedModelError, WeightsUnavailableError
from nova_infant.cry import features as F
from nova_infant.cry import models as M

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def speech_8k():
    from nova_infant.core.sample_media import librivox_speech

    return librivox_speech(6.0, F.SAMPLE_RATE)


def test_window_features_follow_the_documented_parameters(speech_8k):
    """6 s of speech at 8 kHz: 10 ms frames, 1 s windows every 500 ms -> 11 windows; MFCC 2x20, STFT 2x129."""
    frames = F.frame_features(speech_8k, "mfcc")
    assert frames.shape == (601, 20)  # centred frames: 1 + 48000 / 80
    for kind, dim in (("mfcc", 40), ("stft", 258)):
        x, starts = F.window_features(speech_8k, kind)
        assert x.shape == (11, dim) == (len(starts), F.feature_dim(kind))
        assert np.allclose(starts, np.arange(11) * 500.0)
    # window 2 is the mean / std of frames 100..200 (1000-2000 ms)
    x, _ = F.window_features(speech_8k, "mfcc")
    assert np.allclose(x[2, :20], frames[100:201].mean(0), atol=1e-4)
    part, starts = F.window_features(speech_8k, "stft", 1200.0, 1500.0)  # shorter than a window: one window
    assert part.shape == (1, 258) and starts.tolist() == [1200.0]
    assert F.window_features(speech_8k, "stft", 1200.0, 1400.0)[0].shape == (0, 258)  # < 250 ms: none
    with pytest.raises(OptionError, match="feature kind"):
        F.frame_features(speech_8k, "plp")


def test_paper_scaling_is_fitted_on_training_windows_only(speech_8k):
    x, _ = F.window_features(speech_8k, "stft")
    scaler = F.make_scaler().fit(x[:6])
    train = scaler.transform(x[:6])
    assert train.min() == pytest.approx(0.0, abs=1e-6) and train.max() == pytest.approx(1.0, abs=1e-6)
    arrays = F.scaler_arrays(scaler)
    assert np.allclose(F.apply_scaler_arrays(x[6:], arrays), scaler.transform(x[6:]), atol=1e-4)


def test_rolling_average_is_the_mean_of_the_last_predictions():
    p = np.array([[1, 0], [0, 1], [0, 1], [1, 0]], np.float32)
    assert np.allclose(M.rolling_average(p, 2), [[1, 0], [0.5, 0.5], [0, 1], [0.5, 0.5]])
    assert np.allclose(M.rolling_average(p, 0)[-1], [0.5, 0.5])  # 0 = everything so far
    with pytest.raises(OptionError):
        M.rolling_average(p, -1)


def test_class_weights_are_balanced_and_zero_for_absent_classes():
    w = M.class_weights(np.array([0, 0, 0, 1]), 3)
    assert w.tolist() == pytest.approx([4 / 6, 2.0, 0.0])


def test_denoising_pretraining_learns_to_reconstruct_real_features(speech_8k):
    x, _ = F.window_features(speech_8k, "mfcc", hop_ms=200.0)
    xs = F.make_scaler().fit_transform(x).astype(np.float32)
    ae = M.build_autoencoder(xs.shape[1])
    losses = M.pretrain_autoencoder(ae, xs, epochs=40, seed=0, batch=8)
    assert losses[-1] < 0.5 * losses[0]


def _two_reason_items():
    """Two 'reasons' the model can learn from real audio: LibriVox speech vs the same speech an octave up."""
    from nova_infant.core.media import resample
    from nova_infant.core.sample_media import librivox_speech
    from nova_infant.cry.session import TrainingItem

    speech = librivox_speech(20.0, 16000)
    high = resample(speech, 32000, 16000)[:len(speech)]  # played twice as fast: higher pitch
    feats = {}
    items = []
    for name, sig in (("low", speech), ("high", high)):
        x8 = resample(sig, 16000, F.SAMPLE_RATE)
        feats = {k: F.window_features(x8, k)[0] for k in F.KINDS}
        items.append(TrainingItem(name, feats, [name] * len(feats["mfcc"]), ["high", "low"]))
    return items, speech, high


def test_model_learns_saves_and_loads_with_identical_predictions(tmp_path):
    from nova_infant.cry.session import load_cry_model, save_cry_model, train_model

    items, _, _ = _two_reason_items()
    model = train_model(items, epochs_ae=5, epochs=30, epochs_fusion=30, seed=0)
    feats = {k: np.concatenate([it.features[k] for it in items]) for k in F.KINDS}
    gold = np.concatenate([[0 if it.session == "high" else 1] * len(it.labels) for it in items])
    proba = model.window_proba(feats)
    assert (proba.argmax(1) == gold).mean() >= 0.9
    save_cry_model(model, tmp_path / "m", "test data: LibriVox (public domain)")
    again = load_cry_model(tmp_path / "m")
    assert again.classes == ["high", "low"]
    assert np.allclose(again.window_proba(feats), proba, atol=1e-6)
    (tmp_path / "m" / "model.safetensors").write_bytes(b"broken")
    with pytest.raises(SavedModelError, match="model.safetensors"):
        load_cry_model(tmp_path / "m")
    with pytest.raises(SavedModelError, match="nothing"):
        load_cry_model(tmp_path / "nothing")


def test_training_refuses_one_reason_and_mixed_schemes():
    from nova_infant.cry.session import TrainingItem, train_model

    items, _, _ = _two_reason_items()
    with pytest.raises(OptionError, match=r"only class .* occurs in the training labels"):
        train_model(items[:1], 1, 1, 1)
    other = TrainingItem("x", items[1].features, items[1].labels, ["low", "high", "pain"])
    with pytest.raises(OptionError, match="differ"):
        train_model([items[0], other], 1, 1, 1)
    with pytest.raises(OptionError, match="no usable session"):
        train_model([], 1, 1, 1)


def test_predictor_labels_each_crying_segment_and_notes_an_empty_track(tmp_path):
    from nova_infant.core.sample_media import write_wav
    from nova_infant.cry.session import predict_reasons, train_model

    items, speech, high = _two_reason_items()
    model = train_model(items, epochs_ae=5, epochs=30, epochs_fusion=30, seed=0)
    wav = write_wav(tmp_path / "s.wav", np.concatenate([speech[:16000 * 4], high[:16000 * 4]]), 16000)
    rows, notes = predict_reasons(model, wav, [(500.0, 3500.0), (4500.0, 7500.0), (7900.0, 8000.0)])
    assert [model.classes[i] for i in rows["id"]] == ["low", "high"]
    assert rows["from"].tolist() == [500, 4500] and rows["to"].tolist() == [3500, 7500]
    assert ((rows["conf"] > 0.5) & (rows["conf"] <= 1)).all()
    assert any("1 crying segment" in n for n in notes)  # the 100 ms one
    empty, notes = predict_reasons(model, wav, [])
    assert len(empty) == 0 and "no crying segment" in notes[0]
    # a deque of 1 window: labels per window, runs merged; still two runs here
    rows1, _ = predict_reasons(model, wav, [(0.0, 8000.0)], smooth_windows=1)
    assert rows1["from"][0] == 0 and rows1["to"][-1] == 8000 and len(rows1) >= 2
    assert model.classes[rows1["id"][0]] == "low" and model.classes[rows1["id"][-1]] == "high"


def test_face_branch_runs_a_frozen_resnet_standin_through_the_pretrained_path(tmp_path):
    """Tiny random ``ResNetModel`` saved and loaded like the real microsoft/resnet-50; its feature maps feed the
    paper's pooling/dense head; another architecture's checkpoint is refused."""
    import torch

    from nova_infant.core.backbones import save_standin
    from nova_infant.core.sample_media import carphone_frames

    folder = save_standin("resnet", tmp_path / "resnet")
    model, standin = M.load_resnet50(str(folder))
    assert standin and not any(p.requires_grad for p in model.parameters())
    frames = carphone_frames()[:4]
    maps = M.face_feature_maps(model, frames)
    assert maps.shape[:2] == (4, model.config.hidden_sizes[-1]) and maps.shape[2:] == (7, 7)
    head = M.build_face_head(maps.shape[1], 3)
    y = np.array([0, 1, 2, 0])
    losses = M.train_classifier(head, maps, y, 3, epochs=30, seed=0, batch=4)
    assert losses[-1] < losses[0]
    assert M.predict_proba(head, maps).shape == (4, 3)
    fusion = M.build_fusion(3, 3)
    assert fusion(torch.zeros(2, 3, 3)).shape == (2, 3)
    save_standin("dinov2", tmp_path / "dino")
    with pytest.raises(WeightsUnavailableError, match="expected resnet"):
        M.load_resnet50(str(tmp_path / "dino"))


def test_cross_validation_on_donateacry_is_recorder_grouped_with_baselines(donateacry):
    """CI trains and evaluates the audio models on the real corpus (paper's 4 reasons, few epochs): folds never
    share a recorder, every method of the comparison is scored on the same clips, figures are in range."""
    from nova_infant.cry.evaluation import METHODS, corpus_clips, cross_validate, format_table, make_splits

    clips = corpus_clips(donateacry, ["belly_pain", "burping", "discomfort", "tired"])
    y = np.array([c.reason for c in clips])
    for tr, te in make_splits(y, [c.recorder for c in clips], 5, 0):
        assert not {clips[i].recorder for i in tr} & {clips[i].recorder for i in te}
    t0 = time.time()
    r = cross_validate("paper4", donateacry, 5, epochs_ae=3, epochs=10, epochs_fusion=10, yamnet=False,
                       progress=False)
    assert time.time() - t0 < 120
    assert r["n_clips"] == len(clips) == sum(r["counts"].values()) and r["n_recorders"] >= 5
    assert set(r["methods"]) == set(METHODS) - {"yamnet"}
    for m, s in r["methods"].items():
        assert np.asarray(s["confusion"]).sum() == len(clips)  # every clip predicted exactly once
        assert 0 <= s["balanced_accuracy"] <= 1 and len(s["fold_balanced_accuracy"]) == 5
    assert r["methods"]["majority"]["balanced_accuracy"] == pytest.approx(0.25)
    assert "| AE+DNN, STFT |" in format_table(r)


def test_comparison_table_with_paper_table2_is_in_the_docs():
    text = (REPO / "docs" / "cry-reason.md").read_text()
    assert "Table 2" in text and "85.6" in text and "balanced" in text
    assert "scripts/cry_reason_cv.py" in text


def test_cli_trains_and_predicts_with_the_face_branch_from_the_session_video(tmp_path, capsys):
    """``nova-infant run cry-reason-train/-predict`` with ``--video`` and a tiny ResNet stand-in: the saved model
    has a face head and a 3-input fusion; the predictor refuses such a model without the video."""
    import json

    from discover_utils.utils.type_definitions import LabelDType

    from nova_infant.cli import main
    from nova_infant.core.backbones import save_standin
    from nova_infant.core.annotations import read_annotation, write_annotation
    from nova_infant.core.sample_media import build_session
    from nova_infant.taggers.outputs import discrete_annotation

    resnet = save_standin("resnet", tmp_path / "resnet")
    paths = build_session(tmp_path / "data", "demo", "s1")  # carphone face + LibriVox speech, 4 s
    classes = ["hungry", "tired"]
    seg = np.array([(0, 2000, 0, 1.0), (2000, 4000, 1, 1.0)], dtype=LabelDType.DISCRETE.value)
    reasons = write_annotation(discrete_annotation(seg, classes, "cry_reason"), paths["dir"] / "session.cry_reason.annotation")
    crying = write_annotation(discrete_annotation(seg[:1].copy(), ["baby_crying"], "audio_event_baby_crying"),
                              paths["dir"] / "session.audio_event_baby_crying.annotation")
    out = tmp_path / "models"
    assert main(["run", "cry-reason-train", "--audio", str(paths["audio"]), "--reasons", str(reasons), "--video",
                 str(paths["video"]), "--face-model", str(resnet), "--out", str(out), "--model-name", "lab",
                 "--epochs-ae", "1", "--epochs", "2", "--epochs-fusion", "2", "--epochs-face", "2"]) == 0
    config = json.loads((out / "cry_reason_models" / "lab" / "config.json").read_text())["config"]
    assert config["face"]["channels"] == 32 and config["face"]["backbone"] == str(resnet)
    assert (out / "cry_reason_lab.trainer").is_file()
    model = str(out / "cry_reason_models" / "lab")
    assert main(["run", "cry-reason-predict", "--audio", str(paths["audio"]), "--crying", str(crying), "--video",
                 str(paths["video"]), "--model", model, "--out", str(tmp_path / "pred")]) == 0
    [written] = list((tmp_path / "pred").glob("*.annotation"))
    anno = read_annotation(written)
    assert len(anno.data) >= 1 and anno.data["from"][0] == 0 and anno.data["to"][-1] == 2000
    assert main(["run", "cry-reason-predict", "--audio", str(paths["audio"]), "--crying", str(crying),
                 "--model", model, "--out", str(tmp_path / "pred2")]) == 2
    assert "trained with the face video" in capsys.readouterr().err
