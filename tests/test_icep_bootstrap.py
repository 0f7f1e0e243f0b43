"""ICEP-R statistics that can fail for the right reason: the bootstrap resamples dyads (groups) when they are given
and says so; copies of a session inside its dyad add no evidence; a session coded with one class has no κ (null, not
0); the bundle keeps the smoothing its CV evaluated and its predictor applies it by default."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from nova_infant.icep.agreement import bootstrap_draws, bootstrap_units, session_kappa
from nova_infant.icep.report import CVResult, FoldResult

CLASSES = ["neg", "neu", "pos"]


def _session(rng, n=300, flip=0.3, classes=3):
    gold = rng.integers(0, classes, n)
    pred = np.where(rng.random(n) < flip, rng.integers(0, 3, n), gold)
    return gold.astype(np.int64), pred.astype(np.int64)


def _cv(predictions: dict, groups: dict, seed=0) -> CVResult:
    fold = FoldResult(0, [], [], list(predictions), {}, None, {}, predictions,
                      variants={n: {"majority": np.zeros_like(g)} for n, (g, _) in predictions.items()})
    return CVResult([fold], {}, CLASSES, groups, {}, 0.0, "infant", "", 0, seed)


def _dyads(seed=0, n_dyads=6, per_dyad=2):
    rng = np.random.default_rng(seed)
    preds, groups = {}, {}
    for d in range(n_dyads):
        flip = rng.uniform(0.1, 0.9)  # dyads differ: that is what the interval must carry
        for e in range(per_dyad):
            name = f"D{d}_E{e}"
            preds[name], groups[name] = _session(rng, flip=flip), f"D{d}"
    return preds, groups


def test_units_are_groups_when_given_and_sessions_otherwise():
    names = ["A1", "A2", "B1", "C1"]
    unit, units, members = bootstrap_units(names, {"A1": "A", "A2": "A", "B1": "B", "C1": "C"})
    assert unit == "group" and units == ["A", "B", "C"] and [m.tolist() for m in members] == [[0, 1], [2], [3]]
    assert bootstrap_units(names, None)[0] == "session" and len(bootstrap_units(names, None)[1]) == 4
    assert bootstrap_units(names, {n: n for n in names})[0] == "session"
    assert bootstrap_draws(3, 50, seed=1).shape == (50, 3) and bootstrap_draws(3, 50, 1).max() <= 2


def test_report_names_the_resampling_unit():
    preds, groups = _dyads()
    report = _cv(preds, groups).report()
    assert report["bootstrap"]["unit"] == "group" and report["bootstrap"]["n_units"] == 6
    assert "bootstrap over 6 groups" in report["summary"]
    alone = _cv(preds, {n: n for n in preds}).report()
    assert alone["bootstrap"]["unit"] == "session" and "bootstrap over 12 sessions" in alone["summary"]


def test_duplicating_sessions_within_their_groups_leaves_the_group_interval_unchanged():
    preds, groups = _dyads(per_dyad=1)
    doubled, doubled_groups = dict(preds), dict(groups)
    for name in preds:  # a repeated FFSF episode that is a copy: no new evidence about the dyad
        doubled[name + "_copy"], doubled_groups[name + "_copy"] = preds[name], groups[name]
    base = _cv(preds, groups, seed=3).summary["agreement"]["model"]
    grouped = _cv(doubled, doubled_groups, seed=3).summary["agreement"]["model"]
    np.testing.assert_allclose(grouped["kappa_ci95"], base["kappa_ci95"], rtol=0, atol=1e-12)
    assert grouped["kappa"] == pytest.approx(base["kappa"])
    # what the old session bootstrap did with the same copies: an interval narrower than the evidence allows
    naive = _cv(doubled, {n: n for n in doubled}, seed=3).summary["agreement"]["model"]
    assert np.diff(naive["kappa_ci95"])[0] < 0.85 * np.diff(base["kappa_ci95"])[0]


def test_paired_test_uses_the_group_draws():
    preds, groups = _dyads()
    beats = _cv(preds, groups).summary["versus_baselines"]["majority"]
    assert beats["beats"] and beats["ci95"][0] > 0  # a model well above a constant class, whatever the unit


def test_session_with_one_coded_class_has_null_kappa_left_out_of_the_mean():
    rng = np.random.default_rng(0)
    preds = {"S1": _session(rng, flip=0.2), "S2": _session(rng, flip=0.2)}
    gold = np.ones(200, np.int64)  # the coder saw only "neu" in this session
    preds["S3"] = (gold, np.where(rng.random(200) < 0.2, 0, 1).astype(np.int64))
    cv = _cv(preds, {n: n for n in preds})
    assert cv.summary["per_session"]["S3"]["model"]["kappa"] is None
    spread = cv.summary["agreement"]["model"]["kappa_per_session"]
    both = [cv.summary["per_session"][n]["model"]["kappa"] for n in ("S1", "S2")]
    assert spread["n_undefined"] == 1 and spread["n_sessions"] == 3
    assert spread["mean"] == pytest.approx(np.mean(both))
    assert "1 test session with one coded class" in cv.summary["line"]
    json.dumps(cv.report())  # null is valid JSON
    assert session_kappa(np.zeros((3, 3))) is None


def test_bundle_records_the_cv_smoothing_and_its_predictor_applies_it_by_default(tmp_path):
    from nova_infant.icep import dataset, schemes, training
    from nova_infant.icep.bundle import feature_spec, load_bundle, save_bundle, write_predictor_trainer
    from nova_infant.icep.predict import predict_session
    from nova_infant.icep.synthetic import context_task, write_session

    rng = np.random.default_rng(1)
    x, y = context_task(600, 6, rng, cue=0.5)
    write_session(tmp_path, "syn", "S00", {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)
    lmap = schemes.label_map("merged", "infant")
    spec = dataset.SessionSpec(["infant.feat"], ("infant", "ICEP-R-infant", "gold"))
    session = dataset.load_session(tmp_path / "syn" / "S00", spec, lmap)
    fitted = training.fit([session], [], lmap.n_classes, training.TrainConfig(model="mlp", mlp_hidden=(4,),
                                                                               max_epochs=1))
    bundle = load_bundle(save_bundle(tmp_path / "b", fitted, lmap, feature_spec(session), min_dur_ms=2000))
    assert bundle.min_dur_ms == 2000
    default = predict_session(bundle, session)
    np.testing.assert_array_equal(default.labels, predict_session(bundle, session, 2000).labels)
    raw = predict_session(bundle, session, 0)
    runs = lambda labels: np.flatnonzero(np.diff(labels)) + 1  # noqa: E731
    assert len(runs(default.labels)) < len(runs(raw.labels))  # smoothing applied unless asked not to
    from nova_infant.specs.icep import predictor_options

    trainer = write_predictor_trainer(tmp_path / "b", options=predictor_options()).read_text()
    assert re.search(r"min_dur_ms:STRING:2000\b", trainer), trainer


def test_cv_report_names_the_sessions_the_pca_basis_was_fitted_on(tmp_path):
    from nova_infant.icep import dataset
    from nova_infant.icep.pipeline import pca_fit_sessions
    from nova_infant.icep.synthetic import write_session

    meta = {"pca_mode": "dataset", "pca_basis": "abc123", "pca_k": "4", "pca_model": "x"}
    for name in ("P1", "P2", "P3"):
        write_session(tmp_path, "ds", name, {"infant.dinov2": (np.zeros((50, 4), np.float32), 25.0,
                                                              "feature;video;dinov2", meta)}, None, 40.0)
    basis = tmp_path / "ds" / "dinov2_pca_basis" / "m-k4"
    basis.mkdir(parents=True)
    videos = [str(tmp_path / "ds" / n / "infant.video.mp4") for n in ("P1", "P2")]
    (basis / "config.json").write_text(json.dumps({"config": {"basis_hash": "abc123", "sources": videos}}))
    sessions = [dataset.load_session(tmp_path / "ds" / n, dataset.SessionSpec(["infant.dinov2"]))
                for n in ("P1", "P2", "P3")]
    [entry] = pca_fit_sessions(sessions, ["P2", "P3"])
    assert entry["pca_basis"] == "abc123" and entry["basis_folder"] == str(basis)
    assert entry["fitted_on"] == ["P1", "P2"] and entry["test_sessions_in_fit"] == ["P2"]
    (basis / "config.json").unlink()
    assert pca_fit_sessions(sessions)[0]["fitted_on"] is None  # not found: said, not guessed
