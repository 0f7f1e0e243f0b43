"""ICEP-R models: temporal context, leak-free nested CV, overlap-averaged scoring, bundles and prediction."""

import numpy as np
import pytest
import torch

from nova_infant.core.errors import StreamError
from nova_infant.icep import dataset, evaluation, schemes, training
from nova_infant.icep.bundle import feature_spec, load_bundle, save_bundle, write_predictor_trainer
from nova_infant.icep.predict import predict_session, smooth_min_duration, write_prediction
from nova_infant.icep.synthetic import context_task, write_session
from nova_infant.specs.icep import predictor_options

SPEC = dataset.SessionSpec(["infant.feat"], ("infant", "ICEP-R-infant", "gold"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _context_sessions(root, n_sessions, n_frames, seed=0, dim=8, offsets=None):
    rng = np.random.default_rng(seed)
    for i in range(n_sessions):
        x, y = context_task(n_frames, dim, rng, cue=0.5)
        if offsets is not None:
            x = x + offsets[i]
        write_session(root, "syn", f"S{i:02d}", {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)
    lmap = schemes.label_map("merged", "infant")
    return [dataset.load_session(p, SPEC, lmap) for p in dataset.list_sessions(root, "syn")], lmap


@pytest.fixture(scope="module")
def context_data(tmp_path_factory):
    return _context_sessions(tmp_path_factory.mktemp("icep-context"), 6, 1000)


def test_bilstm_beats_per_frame_mlp_when_classes_need_temporal_context(context_data):
    torch.set_num_threads(1)
    sessions, lmap = context_data
    results = {}
    for model in ("bilstm", "mlp"):
        cfg = training.TrainConfig(model=model, hidden=16, mlp_hidden=(32, 16), lr=1e-2, batch_size=16,
                                   max_epochs=40, patience=5)
        results[model] = evaluation.cross_validate(sessions, lmap.target.names, cfg, folds=3).pooled
    chance_f1 = 1 / 3  # three classes present
    assert results["mlp"]["f1_macro"] > chance_f1 + 0.04 and results["mlp"]["kappa"] > 0.05
    assert results["bilstm"]["f1_macro"] > results["mlp"]["f1_macro"] + 0.15
    assert results["bilstm"]["kappa"] > results["mlp"]["kappa"] + 0.2


def test_normaliser_and_class_weights_never_see_test_sessions(tmp_path):
    # every session has its own offset and label mix: any leak changes the fitted values
    sessions, lmap = _context_sessions(tmp_path, 5, 200, seed=1, dim=6, offsets=[0, 100, 300, 700, 1500])
    cfg = training.TrainConfig(model="mlp", mlp_hidden=(8,), max_epochs=1, batch_size=16, normalise="fold")
    result = evaluation.cross_validate(sessions, lmap.target.names, cfg, folds=5, baselines=False)
    by_name = {s.name: s for s in sessions}
    for fold in result.folds:
        assert not set(fold.test) & (set(fold.train) | set(fold.val))
        train = [by_name[n] for n in fold.train]
        np.testing.assert_allclose(fold.fitted.normaliser.mean, training.Normaliser.fit(train).mean, rtol=1e-5)
        leaked = training.Normaliser.fit(train + [by_name[n] for n in fold.test]).mean  # what a leak would give
        assert not np.allclose(fold.fitted.normaliser.mean, leaked, atol=1.0)
        np.testing.assert_allclose(fold.fitted.class_weights, training.class_weights(train, lmap.n_classes))


def test_every_labelled_frame_is_scored_exactly_once(tmp_path):
    sessions, lmap = _context_sessions(tmp_path, 3, 237, seed=2, dim=6)
    cfg = training.TrainConfig(model="mlp", mlp_hidden=(8,), max_epochs=1, window=50, stride=20)
    result = evaluation.cross_validate(sessions, lmap.target.names, cfg, folds=3)
    assert sorted(n for f in result.folds for n in f.test) == [s.name for s in sessions]
    for fold in result.folds:
        for name, (gold, pred) in fold.predictions.items():
            assert len(gold) == len(pred) == 237
    assert result.pooled["n_frames"] == sum(int((s.labels >= 0).sum()) for s in sessions)
    assert np.sum(result.pooled["confusion_matrix"]) == result.pooled["n_frames"]


class _PositionModel(torch.nn.Module):
    """Logit of class 0 = position inside the window: averaging is visible in the output."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        t = torch.arange(x.shape[1], dtype=torch.float32).expand(x.shape[0], -1)
        return torch.stack([t * 0.1, torch.zeros_like(t)], dim=-1) + self.p


def test_overlapping_windows_are_averaged_per_frame(tmp_path):
    rows = dataset.ArrayRows(np.zeros((9, 2), np.float32), 25.0, "x")
    session = dataset.SessionData("s", [rows], 40.0, 9, None, [None])
    norm = training.Normaliser(np.zeros(2, np.float32), np.ones(2, np.float32))
    probs = training.predict_proba(_PositionModel(), norm, session, window=4, stride=2)
    assert training.window_starts(9, 4, 2).tolist() == [0, 2, 4, 5]
    p = lambda t: 1 / (1 + np.exp(-0.1 * t))  # softmax([0.1 t, 0])[0]
    np.testing.assert_allclose(probs[0, 0], p(0), rtol=1e-5)
    np.testing.assert_allclose(probs[2, 0], (p(2) + p(0)) / 2, rtol=1e-5)
    np.testing.assert_allclose(probs[5, 0], (p(3) + p(1) + p(0)) / 3, rtol=1e-5)  # windows at 2, 4, 5
    np.testing.assert_allclose(probs[8, 0], p(3), rtol=1e-5)


def test_short_segments_are_smoothed_into_the_likelier_neighbour():
    labels = np.array([0] * 10 + [1] * 2 + [2] * 10 + [0] * 1)
    probs = np.full((23, 3), 0.1)
    probs[10:12, 2] = 0.6
    out = smooth_min_duration(labels, probs, 3)
    np.testing.assert_array_equal(out, [0] * 10 + [2] * 13)


def test_model_trained_on_sessions_predicts_another_as_nova_annotation(tmp_path, context_data):
    from discover_utils.data.handler.file_handler import FileHandler

    sessions, lmap = context_data
    cfg = training.TrainConfig(hidden=8, lr=1e-2, batch_size=16, max_epochs=8, patience=3)
    fitted = training.fit(sessions[:3], sessions[3:4], lmap.n_classes, cfg)
    bundle_dir = save_bundle(tmp_path / "icep-infant-bilstm", fitted, lmap, feature_spec(sessions[0]))
    trainer = write_predictor_trainer(bundle_dir, options=predictor_options())
    bundle = load_bundle(bundle_dir)
    target = sessions[5]
    pred = predict_session(bundle, target, min_dur_ms=200)
    direct = training.predict_fitted(fitted, target)  # its own window, stride and normalisation
    np.testing.assert_allclose(pred.probs, direct, atol=1e-5)  # the bundle is the fitted model
    out = tmp_path / "pred" / target.name
    paths = write_prediction(out, bundle, pred, "infant", "icep", probabilities=True)
    anno = FileHandler().load(paths[0])
    names = {int(k): v["name"] for k, v in anno.annotation_scheme.classes.items()}
    assert anno.annotation_scheme.name == "ICEP-R-infant-merged"
    assert names == {0: "Ineg", 1: "Inon", 2: "Ineu", 3: "Ipos"}
    data = anno.data
    assert len(data) == len(pred.segments()) < target.n_frames / 5           # merged, not one row per frame
    same = data["id"][1:] == data["id"][:-1]                                  # a class split in two ...
    hatched = data["conf"] < 0.7
    assert (hatched[1:] != hatched[:-1])[same].all()                          # ... only where NOVA's hatching changes
    assert data["from"][0] == 0 and abs(data["to"][-1] - target.n_frames * 40) <= 10
    assert ((data["to"] - data["from"]) >= 200 - 10).all()                  # smoothing: min duration
    assert ((data["conf"] > 0) & (data["conf"] <= 1)).all()
    prob = FileHandler().load(paths[1])
    assert len(prob.data) == target.n_frames and prob.annotation_scheme.sample_rate == pytest.approx(25.0)
    assert 'trained="true"' in trainer.read_text() and 'path="."' in trainer.read_text()


def test_bundle_refuses_a_session_with_other_feature_dims(tmp_path, context_data):
    sessions, lmap = context_data
    fitted = training.fit(sessions[:1], [], lmap.n_classes, training.TrainConfig(model="mlp", mlp_hidden=(4,), max_epochs=1))
    bundle = load_bundle(save_bundle(tmp_path / "b", fitted, lmap, feature_spec(sessions[0])))
    x = np.zeros((100, 5), np.float32)
    write_session(tmp_path, "other", "P099", {"infant.feat": (x, 25.0, "feature;video;syn")}, None, 40.0)
    other = dataset.load_session(tmp_path / "other" / "P099", dataset.SessionSpec(["infant.feat"]))
    with pytest.raises(StreamError, match="session P099: stream infant.feat has 5 dims, model .* expects 8"):
        predict_session(bundle, other)


def test_session_standardisation_uses_each_sessions_own_frames_only(tmp_path):
    sessions, lmap = _context_sessions(tmp_path, 3, 200, seed=4, dim=6, offsets=[0, 50, -80])
    for s in sessions:
        wrapped = training.StandardisedSession(s)
        x = wrapped.features(0, s.n_frames)
        np.testing.assert_allclose(x.mean(0), 0, atol=1e-3)   # its own statistics, whatever its offset
        np.testing.assert_allclose(x.std(0), 1, atol=1e-3)
        raw = s.features(0, s.n_frames)
        np.testing.assert_allclose(wrapped.mean, raw.mean(0), rtol=1e-4, atol=1e-3)
    cfg = training.TrainConfig(model="mlp", mlp_hidden=(8,), max_epochs=2, batch_size=16)
    assert cfg.normalise == "session"
    fitted = training.fit(sessions[:2], [], lmap.n_classes, cfg)
    # prediction standardises the new session the same way: an offset added to it changes nothing
    shifted = dataset.SessionData(sessions[2].name, [dataset.ArrayRows(sessions[2].features(0, 200) + 1000.0, 25.0,
                                                                       "infant.feat")], 40.0, 200, None, [None])
    np.testing.assert_allclose(training.predict_fitted(fitted, shifted), training.predict_fitted(fitted, sessions[2]),
                               atol=1e-4)


def test_grid_point_is_scored_and_shipped_with_its_own_window(tmp_path, monkeypatch):
    from nova_infant.icep.pipeline import train_bundle

    rng = np.random.default_rng(5)
    for i in range(6):
        x, y = context_task(200, 6, rng, cue=3.0)  # a strong per-frame cue: many small steps win
        write_session(tmp_path, "syn", f"S{i:02d}", {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)
    lmap = schemes.label_map("merged", "infant")
    sessions = [dataset.load_session(p, SPEC, lmap) for p in dataset.list_sessions(tmp_path, "syn")]
    scored = []
    real = training.predict_proba

    def spy(model, normaliser, session, window, stride, *args, **kwargs):
        scored.append(window)
        return real(model, normaliser, session, window, stride, *args, **kwargs)

    monkeypatch.setattr(training, "predict_proba", spy)
    # window 100 = one optimiser step per epoch on these sessions, window 10 = many: the short window wins
    base = training.TrainConfig(model="mlp", mlp_hidden=(16,), window=50, stride=25, lr=3e-3, batch_size=16,
                                max_epochs=3, patience=10)
    grid = [{"window": 10, "stride": 10}, {"window": 100, "stride": 100}]
    bundle_dir, _, _ = train_bundle(sessions, lmap, base, tmp_path / "bundle", grid=grid, inner_folds=3,
                                    predictor_options=predictor_options())
    config = load_bundle(bundle_dir).config
    assert config.window == 10 and config.stride == 10                  # shipped with the CV's choice
    assert scored and set(scored) == {10, 100} and 50 not in scored       # each point scored with its own window
    import json

    info = json.loads((bundle_dir / "config.json").read_text())["config"]["training"]["selection"]
    assert info["chosen"] == {"window": 10, "stride": 10}
    assert [row["scored_with"]["window"] for row in info["table"]] == [10, 100]
    assert info["table"][0]["f1_macro"] > info["table"][1]["f1_macro"]


def test_sessions_of_one_group_never_sit_on_both_sides_of_any_split(tmp_path, monkeypatch):
    sessions, lmap = _context_sessions(tmp_path, 8, 120, seed=6, dim=6)
    # S00/S01 form dyad D0, S02/S03 dyad D1, ...: FFSF episodes of one dyad
    groups = evaluation.parse_groups(r"S0(?P<group>[0-7])", [s.name for s in sessions])
    groups = {n: f"D{int(g) // 2}" for n, g in groups.items()}
    fits = []
    real_fit = evaluation.fit

    def spy(train, val, *args, **kwargs):
        fits.append(({groups[s.name] for s in train}, {groups[s.name] for s in val}))
        return real_fit(train, val, *args, **kwargs)

    monkeypatch.setattr(evaluation, "fit", spy)
    cfg = training.TrainConfig(model="mlp", mlp_hidden=(4,), max_epochs=1, batch_size=16, window=20, stride=20)
    result = evaluation.cross_validate(sessions, lmap.target.names, cfg, folds=4, grid=[{"lr": 1e-3}, {"lr": 1e-2}],
                                       inner_folds=2, groups=groups, baselines=False)
    assert len(fits) == 4 * (2 * 2 + 1)                       # inner fits for both points + the fold's own fit
    for train_groups, val_groups in fits:
        assert not train_groups & val_groups                  # early-stopping split is group-wise
    for fold in result.folds:
        test_groups = {groups[n] for n in fold.test}
        assert not test_groups & {groups[n] for n in fold.train + fold.val}
    assert result.report()["groups"]["S03"] == "D1"
    with pytest.raises(Exception, match="does not match session"):
        evaluation.parse_groups(r"^P\d+", ["P01_a", "X02"])


def test_csv_groups_file_maps_sessions_and_names_a_missing_one(tmp_path):
    from nova_infant.core.errors import OptionError

    path = tmp_path / "dyads.csv"
    path.write_text("session,group\nP01_ffsf1,D01\nP01_ffsf2,D01\nP02_ffsf1,D02\n")
    assert evaluation.parse_groups(str(path), ["P01_ffsf1", "P01_ffsf2", "P02_ffsf1"]) == {
        "P01_ffsf1": "D01", "P01_ffsf2": "D01", "P02_ffsf1": "D02"}
    with pytest.raises(OptionError, match="dyads.csv: session P03 has no group"):
        evaluation.parse_groups(str(path), ["P01_ffsf1", "P03"])


def _drifting_sessions(root, n_sessions, n_frames, seed):
    """Context-task sessions plus a per-session offset and a slow linear drift on every feature (other room,
    camera, light): per frame, the class evidence is weak next to the session shift."""
    rng = np.random.default_rng(seed)
    for i in range(n_sessions):
        x, y = context_task(n_frames, 8, rng, cue=0.5)
        offset = rng.normal(0, 3.0, 8)
        drift = np.linspace(0, 1, n_frames)[:, None] * rng.normal(0, 2.0, 8)
        write_session(root, "syn", f"S{i:02d}", {"infant.feat": ((x + offset + drift).astype(np.float32), 25.0,
                                                                  "feature;video;syn")}, y, 40.0)
    lmap = schemes.label_map("merged", "infant")
    return [dataset.load_session(p, SPEC, lmap) for p in dataset.list_sessions(root, "syn")], lmap


def test_default_model_beats_the_per_frame_baseline_on_shifted_sessions_and_the_report_shows_both(tmp_path):
    sessions, lmap = _drifting_sessions(tmp_path, 6, 800, seed=7)
    cfg = training.TrainConfig(hidden=32, lr=1e-2, max_epochs=30)   # defaults otherwise (normalise, window, ...)
    result = evaluation.cross_validate(sessions, lmap.target.names, cfg, folds=3, role="infant")
    report = result.report()
    agree = report["agreement"]
    assert set(agree) == {"model", "model_smoothed", "majority", "logreg"}
    assert agree["model"]["kappa"] > agree["logreg"]["kappa"] + 0.1
    assert report["versus_baselines"]["logreg"]["beats"] and report["versus_baselines"]["majority"]["beats"]
    lo, hi = agree["model"]["kappa_ci95"]
    assert lo < agree["model"]["kappa"] < hi and hi - lo > 0
    assert agree["majority"]["kappa"] == pytest.approx(0.0)
    assert set(report["per_session"]) == {s.name for s in sessions}
    row = report["per_session"]["S00"]
    assert {"model", "model_smoothed", "logreg", "majority"} <= set(row) and 0 <= row["masked"]["masked"] <= 1
    assert "beats per-frame logistic regression" in report["summary"] and "0.73-0.82" in report["summary"]
