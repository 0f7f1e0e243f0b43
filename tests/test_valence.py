"""Infant facial valence (seed 004): CCC/RMSE, SSTS sampling statistics, the VideoMAE regression model at
T/s frames (fp32 and bf16 autocast on CPU), face-clip rules on the session grid, options, and prediction marking
rows without a face as NaN. Tiny random VideoMAE checkpoints through the real ``from_pretrained`` path."""

from __future__ import annotations

import numpy as np
import pytest

from nova_infant.core.errors import OptionError, PathError, WeightsUnavailableError
from nova_infant.core.grid import frame_grid
from nova_infant.core.metrics import ccc, rmse
from nova_infant.valence.clips import FaceTrack, plan_clips
from nova_infant.valence.ssts import check_stride, ensemble_indices, single_indices, ssts_indices


# ---------------------------------------------------------------- CCC / RMSE


def _ccc_by_hand(x, y):
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    vx = sum((a - mx) ** 2 for a in x) / n
    vy = sum((b - my) ** 2 for b in y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y)) / n
    return 2 * sxy / (vx + vy + (mx - my) ** 2)


def test_ccc_matches_a_hand_computation_and_known_values():
    x, y = [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 3.0, 4.0, 5.0, 6.0]
    # var 2, var 2, cov 2, mean shift 1: 2*2 / (2 + 2 + 1) = 0.8
    assert ccc(x, y) == pytest.approx(0.8, abs=1e-12)
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 30, 200), rng.normal(5, 20, 200) + 0.5 * rng.normal(0, 30, 200)
    assert ccc(a, b) == pytest.approx(_ccc_by_hand(list(a), list(b)), rel=1e-10)
    assert ccc(a, a) == pytest.approx(1.0)
    assert ccc(a - a.mean(), -(a - a.mean())) == pytest.approx(-1.0)
    # a constant prediction has no covariance: CCC 0 whatever its value (the mean-predictor baseline)
    assert ccc(a, np.full_like(a, a.mean())) == pytest.approx(0.0, abs=1e-12)
    # Pearson r = 1 but scaled by 2: 2*2v / (v + 4v) = 0.8 (CCC penalises scale, Pearson does not)
    assert ccc(a - a.mean(), 2 * (a - a.mean())) == pytest.approx(0.8)


def test_ccc_and_rmse_drop_nan_pairs():
    x = np.array([1.0, np.nan, 3.0, 4.0])
    y = np.array([1.0, 2.0, np.nan, 4.0])
    assert ccc(x, y) == pytest.approx(1.0)
    assert rmse([0.0, 3.0, np.nan], [4.0, 3.0, 1.0]) == pytest.approx(np.sqrt(8.0))
    assert np.isnan(ccc([1.0], [1.0]))


# ---------------------------------------------------------------- SSTS (Algorithm 1)


def test_ssts_sample_is_sorted_strided_and_the_right_length():
    rng = np.random.default_rng(0)
    for n in (24, 27, 30):
        for s in (1, 2, 3, 4, 6, 8, 12):
            idx = ssts_indices(n, s, rng)
            assert idx.shape == (24 // s,)
            assert np.all(np.diff(idx) >= s)  # s ranks apart in a sorted draw of distinct frames
            assert idx.min() >= 0 and idx.max() < n


def test_ssts_every_frame_is_equally_likely_and_the_start_is_uniform():
    rng = np.random.default_rng(1)
    n, s, draws = 30, 6, 30000
    counts = np.zeros(n)
    for _ in range(draws):
        counts[ssts_indices(n, s, rng)] += 1
    # P(frame j in a sample) = P(drawn) * P(rank = i mod s) = 24/30 * 1/6 for every j
    expected = draws * (24 / 30) / 6
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))
    # with N = T every frame is drawn, so the sample is [i, i+s, ...] and i is uniform on 0..s-1
    starts = np.array([ssts_indices(24, s, rng)[0] for _ in range(6000)])
    assert set(starts.tolist()) == set(range(s))
    assert np.all(np.abs(np.bincount(starts, minlength=s) - 1000) < 5 * np.sqrt(1000))
    sample = ssts_indices(24, s, rng)
    assert np.array_equal(sample, np.arange(sample[0], 24, s))


def test_ssts_is_stochastic_in_both_steps():
    rng = np.random.default_rng(2)
    samples = [ssts_indices(30, 6, rng) for _ in range(200)]
    assert len({tuple(x) for x in samples}) > 100  # "no stochasticity" (Table IV) would give one sample
    # the first frame is the i-th smallest of the draw: at most frame N - T + i = 6 + 5
    assert max(x[0] for x in samples) <= 11 and len({x[0] for x in samples}) > 6



def test_ensemble_samplings_cover_the_clip_once():
    for n in (24, 30):
        e = ensemble_indices(n, 6)
        assert e.shape == (6, 4)
        flat = np.sort(e.ravel())
        assert len(np.unique(flat)) == 24 and flat[0] == 0 and flat[-1] == n - 1
        assert all(np.all(np.diff(row) > 0) for row in e)
    one = single_indices(30, 6, np.random.default_rng(0))
    assert one.shape == (1, 4) and any(np.array_equal(one[0], row) for row in ensemble_indices(30, 6))


def test_stride_must_divide_clip_frames_and_clips_need_enough_frames():
    assert check_stride(6) == 4
    with pytest.raises(OptionError, match="stride"):
        check_stride(5)
    with pytest.raises(OptionError, match="23 frames"):
        ssts_indices(23, 6, np.random.default_rng(0))


# ---------------------------------------------------------------- model


@pytest.fixture(scope="module")
def tiny_videomae(tmp_path_factory):
    from nova_infant.core.backbones import save_standin

    return str(save_standin("videomae", tmp_path_factory.mktemp("videomae-tiny")))


@pytest.mark.parametrize("per_sample, model_frames", [(4, 4), (3, 4), (24, 24), (2, 2)])
def test_position_embeddings_follow_the_shorter_input(tiny_videomae, per_sample, model_frames, one_torch_thread):
    import torch

    from nova_infant.valence.model import load_valence_model, predict_batch, to_pixels

    model, info = load_valence_model(tiny_videomae, per_sample, torch.device("cpu"))
    assert info["num_frames"] == model_frames and info["checkpoint_frames"] == 16 and info["new_head"]
    tokens = (model_frames // 2) * (32 // 16) ** 2
    assert tuple(model.videomae.embeddings.position_embeddings.shape) == (1, tokens, 32)
    assert model.classifier.out_features == 1
    frames = np.random.default_rng(0).integers(0, 255, (2, per_sample, 32, 32, 3), dtype=np.uint8)
    pixels = to_pixels(frames, info["mean"], info["std"], info["num_frames"], torch.device("cpu"))
    assert tuple(pixels.shape) == (2, model_frames, 3, 32, 32)
    if per_sample < model_frames:  # tubelet padding repeats the last frame
        assert torch.equal(pixels[:, -1], pixels[:, per_sample - 1])
    with torch.no_grad():
        fp32 = predict_batch(model, pixels, "fp32")
        bf16 = predict_batch(model, pixels, "bf16")
    assert fp32.shape == (2,) and torch.isfinite(bf16).all()
    assert torch.allclose(fp32, bf16, atol=0.05)


def test_a_checkpoint_of_another_architecture_is_refused(tiny_dinov2):
    import torch

    from nova_infant.valence.model import load_valence_model

    with pytest.raises(WeightsUnavailableError, match="videomae"):
        load_valence_model(tiny_dinov2, 4, torch.device("cpu"))


# ---------------------------------------------------------------- face clips on the grid


def _track(n_frames=120, fps=30.0, scores=None):
    frame_ms = np.arange(n_frames) * 1000.0 / fps
    scores = np.full(n_frames, 0.95, np.float32) if scores is None else np.asarray(scores, np.float32)
    boxes = np.tile(np.array([10, 10, 40, 40], np.float32), (n_frames, 1))
    return FaceTrack("v.mp4", frame_ms, boxes, scores, 64, 64, fps)


def test_clips_follow_the_paper_rules_and_say_why_they_are_skipped():
    scores = np.full(120, 0.95, np.float32)
    scores[30:45] = 0.7   # second 1: 15 of 30 frames below 0.8 -> 15 valid < 24
    scores[60:90] = 0.0   # second 2: no face
    scores[90:95] = 0.79  # second 3: 25 valid >= 24
    targets = np.array([10.0, 20.0, 30.0, 40.0])
    plan = plan_clips(_track(scores=scores), frame_grid(4000, 1000), 1000, 0.8, 24, targets)
    assert [c.row for c in plan.clips] == [0, 3]
    assert plan.clips[0].target == 10.0 and len(plan.clips[0].frames) == 30
    assert len(plan.clips[1].frames) == 25 and plan.clips[1].face_fraction == pytest.approx(25 / 30)
    assert plan.clips[1].frames.min() == 95
    reasons = dict(plan.skipped)
    assert reasons[1].startswith("too few face frames: 15 of 30") and reasons[2].startswith("no face")
    assert "2 of 4 clips usable" in plan.skip_summary()


def test_clips_follow_the_annotation_rate_and_skip_garbage_and_missing_labels():
    # 2 Hz annotation: 1-s clips centred on each 500 ms row; the first row's clip starts before the video
    targets = np.array([np.nan, 5.0, 6.0, 7.0, 8.0, 9.0])
    plan = plan_clips(_track(), frame_grid(4000, 500), 1000, 0.8, 12, targets)
    assert plan.grid.n_frames == 8
    reasons = dict(plan.skipped)
    assert reasons[0].startswith("annotation garbage")
    assert reasons[6].startswith("no annotation") and reasons[7].startswith("no annotation")
    row1 = next(c for c in plan.clips if c.row == 1)
    assert (row1.start_ms, row1.end_ms) == (250.0, 1250.0) and row1.frames[0] == 8  # 266.7 ms is frame 8
    # the last full-second clip of a 4-s video is usable, none past its end
    plan = plan_clips(_track(), frame_grid(5000, 1000), 1000, 0.8, 24)
    assert [c.row for c in plan.clips] == [0, 1, 2, 3] and dict(plan.skipped)[4].startswith("outside the video")


def test_spec_options_are_checked_once_with_one_line_errors():
    from nova_infant.specs.registry import SPECS

    train, predict = SPECS["valence_train"], SPECS["valence_predict"]
    o = train.parse_options({"stride": "4", "epochs": "2"})
    assert o["stride"] == 4 and o["model_name"] == "valence-s4" and o["augment"] is True
    for bad, word in (({"stride": "5"}, "stride"), ({"min_face_frames": "10"}, "min_face_frames"),
                      ({"face_threshold": "1.5"}, "face_threshold"), ({"cv_folds": "1"}, "cv_folds"),
                      ({"precision": "int8"}, "precision")):
        with pytest.raises(OptionError, match=word):
            train.parse_options(bad)
    with pytest.raises(PathError, match="model_name"):
        train.parse_options({"model_name": "../x"})
    assert predict.parse_options({"ensemble": "False"})["ensemble"] is False
    assert train.trainer_spec().category == "Affect" and [p.id for p in predict.outputs] == ["valence"]


# ---------------------------------------------------------------- prediction, saved model


def test_rows_without_a_face_are_nan_and_the_saved_model_predicts_the_same(tmp_path, tiny_videomae, one_torch_thread):
    from nova_infant.valence.synthetic import known_face_track, write_subject
    from nova_infant.valence.training import ValenceConfig, ValenceSession, fit, load_model, predict_plan, save_model

    video, values = write_subject(tmp_path / "s0", 3, 8, 64, seed=0)
    track = known_face_track(str(video))
    track.scores[8:16] = 0.0  # second 1: no face
    plan = plan_clips(track, frame_grid(3000, 1000), 1000, 0.8, 8, values)
    config = ValenceConfig(model=tiny_videomae, stride=2, clip_frames=8, epochs=1, batch_size=2, augment=True,
                           device="cpu", precision="bf16")
    fitted = fit([ValenceSession("s0", "a", str(video), plan)], config, progress=False)
    v, conf = predict_plan(fitted, plan)
    assert np.isnan(v[1]) and conf[1] == 0 and np.isfinite(v[[0, 2]]).all() and np.all(conf[[0, 2]] == 1.0)
    single, _ = predict_plan(fitted, plan, ensemble=False)
    assert np.isfinite(single[[0, 2]]).all()
    folder = save_model(tmp_path / "model", fitted, {"name": "infant_valence", "sr": 1.0, "min": -100.0,
                                                     "max": 100.0}, {"face": "largest"})
    loaded, meta = load_model(folder, device="cpu", precision="bf16")
    assert meta["config"]["stride"] == 2 and loaded.info["num_frames"] == 4 and not loaded.info["new_head"]
    v2, _ = predict_plan(loaded, plan)
    np.testing.assert_allclose(v2, v, atol=1e-4)


def test_export_weights_keeps_the_published_videomae_checkpoint(tmp_path, tiny_videomae):
    import json

    import torch

    from nova_infant.core.backbones import export_weights
    from nova_infant.valence.model import load_valence_model

    out = export_weights(tiny_videomae, tmp_path / "exported")  # kind guessed from "videomae" in the folder name
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "videomae" and len(config["id2label"]) == 174  # its own head, not ours
    assert (out / "preprocessor_config.json").is_file()
    _, info = load_valence_model(str(out), 4, torch.device("cpu"))
    assert info["source"] == "local directory" and info["new_head"]
