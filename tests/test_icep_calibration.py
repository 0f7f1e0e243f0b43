"""Calibration of ICEP-R confidence (nova_infant.icep.calibration): temperature scaling, ECE, confidence segments
split at NOVA's review threshold, review efficiency, and the temperature travelling from fit to bundle to predictor."""

import numpy as np
import pytest

from nova_infant.icep import calibration as cal


def _overconfident(n=20000, k=3, t_true=2.5, seed=0):
    """Frames whose true class probabilities are softmax(z); the model reports softmax(z * t_true) (overconfident)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k)) * 1.5
    p_true = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=p) for p in p_true])
    reported = np.exp(z * t_true) / np.exp(z * t_true).sum(1, keepdims=True)
    return reported, y


def test_temperature_scaling_recovers_the_overconfidence_and_lowers_ece():
    probs, y = _overconfident()
    t = cal.fit_temperature(probs[:10000], y[:10000])
    assert t == pytest.approx(2.5, rel=0.1)
    before = cal.expected_calibration_error(probs[10000:], y[10000:])
    after = cal.expected_calibration_error(cal.scale_probs(probs[10000:], t), y[10000:])
    assert before > 0.08 and after < 0.02
    assert (cal.scale_probs(probs, t).argmax(1) == probs.argmax(1)).all()  # the predicted class never changes
    with pytest.raises(ValueError, match="temperature must be"):
        cal.scale_probs(probs, 0)


def test_segments_split_where_confidence_crosses_the_threshold_and_nowhere_else():
    labels = np.array([0] * 10 + [1] * 10)
    conf = np.array([0.9] * 4 + [0.5] * 3 + [0.9] * 3 + [0.8] * 10)
    segs = cal.confidence_segments(labels, conf, 40.0, 0.7)
    assert segs[["from", "to", "id"]].tolist() == [(0, 160, 0), (160, 280, 0), (280, 400, 0), (400, 800, 1)]
    assert segs["conf"][1] == pytest.approx(0.5) and segs["conf"][0] == pytest.approx(0.9)
    # a dip shorter than the shortest segment is joined: one segment, mean conf, not hatched
    joined = cal.confidence_segments(labels, conf, 40.0, 0.7, min_frames=5)
    assert joined[["from", "to", "id"]].tolist() == [(0, 400, 0), (400, 800, 1)]
    assert joined["conf"][0] == pytest.approx(conf[:10].mean(), abs=1e-6)
    plain = cal.confidence_segments(labels, conf, 40.0, 0.0)
    assert len(plain) == 2


def test_review_efficiency_counts_errors_inside_low_confidence_segments():
    pred = np.zeros(100, np.int64)
    gold = np.zeros(100, np.int64)
    gold[10:20] = 1  # 10 errors, all inside the low stretch
    gold[60] = 1     # one error in the confident part
    conf = np.full(100, 0.95)
    conf[5:25] = 0.4
    counts = cal.ReviewCounts.of(pred, gold, conf, 0.7)
    assert counts.share_time_below == pytest.approx(0.2) and counts.share_errors_below == pytest.approx(10 / 11)
    assert counts.efficiency == pytest.approx((10 / 11) / 0.2)
    pooled = cal.pool([cal.CalibrationCounts.of(np.eye(2)[pred] * 0.9 + 0.05, gold, 1.0).to_json()] * 2)
    assert pooled.before.count.sum() == 200


def test_fit_calibrates_on_validation_sessions_and_the_bundle_applies_it(tmp_path):
    from nova_infant.icep import training
    from nova_infant.icep.bundle import feature_spec, load_bundle, save_bundle
    from nova_infant.icep.loop_benchmark import make_sessions
    from nova_infant.icep.predict import predict_session
    from nova_infant.icep.schemes import label_map

    sessions = make_sessions(3, 1500, 8, seed=3)
    lmap = label_map("merged", "infant")  # 4 classes; the synthetic labels use ids 0..2
    cfg = training.TrainConfig(hidden=8, layers=1, window=25, stride=25, max_epochs=3, device="cpu")
    fitted = training.fit(sessions[:2], sessions[2:], lmap.n_classes, cfg)
    assert fitted.temperature != 1.0 and fitted.calibration["frames"] == 1500
    assert fitted.calibration["ece_after"] <= fitted.calibration["ece_before"] + 1e-6
    bundle = load_bundle(save_bundle(tmp_path / "b", fitted, lmap, feature_spec(sessions[0])))
    assert bundle.temperature == pytest.approx(fitted.temperature)
    pred = predict_session(bundle, sessions[2], threshold=0.7)
    np.testing.assert_allclose(pred.probs, training.predict_fitted(fitted, sessions[2]), atol=1e-5)
    raw = training.predict_fitted(fitted, sessions[2], calibrated=False)
    assert not np.allclose(pred.probs, raw, atol=1e-3)  # the scaling is applied
    segs = pred.segments()
    hatched = segs["conf"] < 0.7
    same = segs["id"][1:] == segs["id"][:-1]
    assert (hatched[1:] != hatched[:-1])[same].all()
