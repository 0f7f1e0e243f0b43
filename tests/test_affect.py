"""Facial affect (seed 002): MobileNetV4-Conv-Small layout, the TAM against a hand-written reference, losses and
masks, CCC, training on drawn faces with held-out subjects, and the spec pair through du-process on carphone."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nova_infant.affect.mobilenetv4 import MobileNetV4ConvSmall, create_backbone
from nova_infant.affect.model import AU_NAMES, AffectConfig, AffectModel, MLPMixer3D
from nova_infant.affect.training import (AffectSession, TrainOptions, ccc_loss, fit, predict_frames, task_losses,
                                         window_starts)
from nova_infant.core.metrics import ccc

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REPO_TRAINERS = Path(__file__).resolve().parents[1] / "trainers" / "nova_infant"


def test_backbone_maps_and_timm_parameter_layout(tmp_path):
    net = MobileNetV4ConvSmall(out_indices=(0, 1, 2, 3, 4)).eval()
    with torch.no_grad():
        at112 = [tuple(f.shape[1:]) for f in net(torch.zeros(1, 3, 112, 112))]
        at224 = [tuple(f.shape[1:]) for f in net(torch.zeros(1, 3, 224, 224))]
    # timm features_only of mobilenetv4_conv_small at 224 px: 32@112, 32@56, 64@28, 96@14, 960@7
    assert at224 == [(32, 112, 112), (32, 56, 56), (64, 28, 28), (96, 14, 14), (960, 7, 7)]
    assert at112[1:4] == [(32, 28, 28), (64, 14, 14), (96, 7, 7)]           # the TAM's 28/14/7 at 112 px
    # 3.77 M parameters for timm's full model = this feature extractor + conv_head 960x1280 + classifier 1280x1000
    assert sum(p.numel() for p in net.parameters()) + 960 * 1280 + 1280 * 1000 + 1000 == 3_771_464
    keys = set(net.state_dict())
    for key in ("conv_stem.weight", "bn1.running_var", "blocks.0.0.conv.weight", "blocks.0.1.bn1.weight",
                "blocks.2.0.dw_start.conv.weight", "blocks.2.0.dw_mid.bn.bias", "blocks.2.1.pw_exp.conv.weight",
                "blocks.2.5.dw_start.conv.weight", "blocks.3.5.pw_proj.bn.running_mean", "blocks.4.0.conv.weight"):
        assert key in keys, key
    assert "blocks.2.1.dw_start.conv.weight" not in keys                    # IB: no start depthwise conv
    assert "blocks.2.5.dw_mid.conv.weight" not in keys                      # ConvNext: no middle depthwise conv
    assert net.blocks[2][0].dw_mid.conv.stride == (2, 2) and net.blocks[2][0].dw_start.conv.stride == (1, 1)
    from safetensors.torch import save_file

    save_file({k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v
               for k, v in net.state_dict().items()}, str(tmp_path / "mnv4.safetensors"))
    loaded = create_backbone((1, 2, 3), str(tmp_path / "mnv4.safetensors"), use_timm=False)  # strict=True
    assert torch.equal(loaded.state_dict()["blocks.3.0.pw_exp.conv.weight"],
                       __import__("safetensors.torch").torch.load_file(str(tmp_path / "mnv4.safetensors"))[
                           "blocks.3.0.pw_exp.conv.weight"])
    with pytest.raises(RuntimeError):
        create_backbone((1, 2, 3), str(tmp_path / "mnv4.safetensors"), width=0.5, use_timm=False)
    (tmp_path / "dir").mkdir()
    shutil.copy(tmp_path / "mnv4.safetensors", tmp_path / "dir" / "model.safetensors")   # a local folder
    create_backbone((1, 2, 3), str(tmp_path / "dir"), use_timm=False)
    from nova_infant.core.errors import WeightsUnavailableError

    with pytest.raises(WeightsUnavailableError, match="timm cannot be imported"):
        create_backbone((1, 2, 3), "timm:mobilenetv4_conv_small.e2400_r224_in1k", use_timm=False)
    with pytest.raises(WeightsUnavailableError, match="no such"):
        create_backbone((1, 2, 3), str(tmp_path / "missing.safetensors"), use_timm=False)


def _reference_mixer(mixer: MLPMixer3D, x: torch.Tensor) -> torch.Tensor:
    """The 3D Mixer written out with loops over tokens (seed 002 §2.2, MLP-Mixer: Tolstikhin et al. 2021)."""
    b_n, t_n, c_n, h_n, w_n = x.shape
    p, g = mixer.patch, mixer.grid
    out = torch.zeros(b_n, t_n, mixer.out.out_features)
    for b in range(b_n):
        tokens = []
        for t in range(t_n):
            for r in range(g):
                for c in range(g):
                    vec = [x[b, t, ch, r * p + i, c * p + j] for i in range(p) for j in range(p) for ch in range(c_n)]
                    tokens.append(torch.stack(vec))
        z = torch.stack(tokens) @ mixer.embed.weight.T + mixer.embed.bias          # (N, dim)
        for block in mixer.blocks:
            tok, chan = block[0], block[1]
            y = torch.nn.functional.layer_norm(z, z.shape[-1:], tok.norm.weight, tok.norm.bias)
            hidden = torch.nn.functional.gelu(y.T @ tok.fn.fc1.weight.T + tok.fn.fc1.bias)   # (dim, hidden)
            z = z + (hidden @ tok.fn.fc2.weight.T + tok.fn.fc2.bias).T                    # mixes all T*g*g tokens
            y = torch.nn.functional.layer_norm(z, z.shape[-1:], chan.norm.weight, chan.norm.bias)
            z = z + chan.fn(y)
        z = torch.nn.functional.layer_norm(z, z.shape[-1:], mixer.norm.weight, mixer.norm.bias)
        per_frame = torch.stack([z[t * g * g:(t + 1) * g * g].mean(0) for t in range(t_n)])
        out[b] = per_frame @ mixer.out.weight.T + mixer.out.bias
    return out


def test_tam_mixer_equals_the_hand_written_reference_and_mixes_across_time():
    torch.manual_seed(0)
    mixer = MLPMixer3D(channels=3, size=4, seq_len=2, patch=2, dim=5, depth=2, out_dim=3, token_expansion=1.5)
    x = torch.randn(2, 2, 3, 4, 4)
    with torch.no_grad():
        got = mixer(x)
        assert got.shape == (2, 2, 3)
        assert torch.allclose(got, _reference_mixer(mixer, x), atol=1e-5)
        later = x.clone()
        later[:, 1] += 1.0                                       # change frame 1 only
        assert not torch.allclose(mixer(later)[:, 0], got[:, 0])  # frame 0's output sees it (temporal mixing)
        for block in mixer.blocks:                               # without token mixing, frames are independent
            block[0].fn.fc2.weight.zero_(), block[0].fn.fc2.bias.zero_()
        assert torch.allclose(mixer(later)[:, 0], mixer(x)[:, 0], atol=1e-6)
    with pytest.raises(ValueError, match="sequences of 2 frames"):
        mixer(torch.randn(1, 3, 3, 4, 4))


def _tiny(tasks=("va", "expr", "au"), seq_len=4):
    return AffectConfig(seq_len=seq_len, dim=8, out_dim=8, backbone_width=0.25, tasks=tasks)


def test_model_heads_shapes_task_subsets_and_frozen_backbone():
    model = AffectModel(_tiny())
    out = model(torch.randn(2, 4, 3, 112, 112))
    assert out["va"].shape == (2, 4, 2) and out["expr"].shape == (2, 4, 8) and out["au"].shape == (2, 4, 12)
    assert out["va"].abs().max() <= 1
    assert model.freeze_backbone() == ["backbone.blocks.2"]
    trainable = {n.split(".")[1] + "." + n.split(".")[2] for n, p in model.named_parameters()
                 if p.requires_grad and n.startswith("backbone.")}
    assert trainable == {"blocks.2"}
    model.train()
    assert not model.backbone.bn1.training and model.backbone.blocks[2][0].pw_exp.bn.training
    only_au = AffectModel(_tiny(tasks=("au",)))
    assert set(only_au(torch.randn(1, 4, 3, 112, 112))) == {"au"}


def test_ccc_is_lins_coefficient_checked_by_hand():
    # x = 1,2,3 ; y = 2,3,4: var 2/3 each, cov 2/3, mean gap 1 -> 2(2/3) / (4/3 + 1) = 4/7
    assert ccc([1, 2, 3], [2, 3, 4]) == pytest.approx(4 / 7)
    assert ccc([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0) and ccc([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert ccc([1, 2, np.nan, 3], [2, 3, 100, 4]) == pytest.approx(4 / 7)     # NaN pairs ignored
    assert 1 - float(ccc_loss(torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[2.0], [3.0], [4.0]]))) == \
        pytest.approx(4 / 7, abs=1e-6)


def test_losses_ignore_frames_without_a_face_or_a_label():
    out = {"va": torch.tensor([[[0.1, 0.2], [0.3, 0.1], [0.9, -0.9]]]),
           "expr": torch.zeros(1, 3, 8), "au": torch.zeros(1, 3, 12)}
    batch = {"va": torch.tensor([[[0.1, 0.2], [0.3, 0.1], [float("nan")] * 2]]),
             "expr": torch.tensor([[1, -1, -1]]), "au": torch.full((1, 3, 12), float("nan"))}
    losses = task_losses(out, batch, ("va", "expr", "au"), va_loss="mse")
    assert float(losses["va"]) == pytest.approx(0.0)        # the unlabelled third frame is not scored
    assert float(losses["expr"]) == pytest.approx(np.log(8), rel=1e-5)
    assert "au" not in losses                                # no AU label in the batch


def test_prediction_windows_cover_the_session_and_mark_frames_without_a_face():
    assert window_starts(10, 4, 2).tolist() == [0, 2, 4, 6] and window_starts(3, 4, 2).tolist() == [0]
    model = AffectModel(_tiny()).eval()
    has = np.array([True, True, False, True, True, True, False])
    crops = np.random.default_rng(0).integers(0, 255, (7, 112, 112, 3), dtype=np.uint8)
    pred = predict_frames(model, crops, has, batch_size=2)
    assert pred["va"].shape == (7, 2) and pred["expr"].shape == (7, 8) and pred["au"].shape == (7, 12)
    assert np.isnan(pred["va"][~has]).all() and np.isfinite(pred["va"][has]).all()
    assert np.allclose(pred["expr"][has].sum(1), 1, atol=1e-5)


def test_bf16_autocast_training_step_runs_on_cpu():
    from nova_infant.affect.synthetic import synthetic_clip

    c = synthetic_clip(8, seed=1)
    s = AffectSession("s", "a", c["crops"], c["has_face"], c["va"], c["expr"], c["au"])
    model, info = fit([s], _tiny(), TrainOptions(epochs=1, batch_size=2, device="cpu", precision="bf16"),
                      progress=False)
    assert info["precision"] == "bf16" and np.isfinite(info["losses"]).all()
    pred = predict_frames(model, c["crops"], c["has_face"], precision="bf16")
    assert np.isfinite(pred["va"]).all()


def _drawn_sessions(n_subjects, n_frames, first=0):
    from nova_infant.affect.synthetic import make_subject, synthetic_clip

    out = []
    for k in range(first, first + n_subjects):
        c = synthetic_clip(n_frames, seed=100 * k, subject=make_subject(np.random.default_rng(1000 + k)),
                           no_face_every=17)
        out.append(AffectSession(f"s{k}", f"subject{k}", c["crops"], c["has_face"], c["va"], c["expr"], c["au"]))
    return out


def test_cross_validation_is_subject_grouped_with_baselines_per_fold_and_pooled():
    from nova_infant.affect.evaluation import cross_validate
    from nova_infant.core.errors import OptionError

    sessions = _drawn_sessions(4, 16)
    sessions.append(AffectSession("s0b", "subject0", sessions[0].crops, sessions[0].has_face, sessions[0].va,
                                  sessions[0].expr, sessions[0].au))
    report = cross_validate(sessions, _tiny(), TrainOptions(epochs=1, batch_size=4, device="cpu",
                                                            precision="fp32"), folds=2)
    assert len(report["folds"]) == 2
    held = [set(f["test_subjects"]) for f in report["folds"]]
    assert held[0].isdisjoint(held[1]) and held[0] | held[1] == {f"subject{k}" for k in range(4)}
    for part in report["folds"] + [report["pooled"]]:
        assert {"ccc_va", "expr_f1_macro", "au_f1"} <= set(part["model"])
        assert "au_f1" in part["baselines"]["all AUs on"]
    for fold in report["folds"]:  # a constant (training-mean) prediction has CCC 0 within a fold
        assert fold["baselines"]["mean/majority"]["ccc_va"] == pytest.approx(0.0, abs=1e-6)
    assert set(report["spread"]) == {"ccc_va", "expr_f1_macro", "au_f1"}
    with pytest.raises(OptionError, match="subjects"):
        cross_validate(sessions[:2], _tiny(), TrainOptions(epochs=1), folds=3)


def test_drawn_faces_valence_arousal_and_aus_are_learned_for_held_out_subjects():
    """27-50 s on one thread (under 60 s: in the default suite): 12 training subjects, 3 unseen ones; mouth
    curvature/opening set VA, brows/mouth set the AUs."""
    from nova_infant.affect.evaluation import _labels, baseline_predictions, score

    train, test = _drawn_sessions(12, 48), _drawn_sessions(3, 48, first=12)
    cfg = AffectConfig(seq_len=8, dim=32, out_dim=32, backbone_width=0.25)
    # a random stand-in backbone has nothing worth freezing: train all of it (the paper freezes pretrained layers)
    model, _ = fit(train, cfg, TrainOptions(epochs=12, batch_size=8, lr=3e-3, backbone="all", device="cpu",
                                            precision="fp32", stride=8), progress=False)
    preds = [predict_frames(model, s.crops, s.has_face) for s in test]
    truth = _labels(test, 12)
    got = score(truth, {k: np.concatenate([p[k] for p in preds]) for k in preds[0]}, cfg.expr_classes, AU_NAMES)
    base = baseline_predictions(train, truth, 8, 12)
    floor = score(truth, base["all AUs on"], cfg.expr_classes, AU_NAMES)["au_f1"]
    assert got["ccc_va"] > 0.5 and got["ccc_valence"] > 0.3 and got["ccc_arousal"] > 0.3, got
    assert got["au_f1"] > 0.6 and got["au_f1"] > floor + 0.1, (got, floor)


def _write_va_annotations(folder: Path, n_rows: int):
    from nova_infant.core.annotations import write_annotation
    from nova_infant.taggers.outputs import continuous_annotation

    t = np.linspace(0, 1, n_rows, dtype=np.float32)
    for name, values in (("valence", np.sin(6 * t)), ("arousal", t * 2 - 1)):
        write_annotation(continuous_annotation(values, np.ones(n_rows, np.float32), 25.0, name, -1, 1, "infant",
                                               "coder"), folder / f"infant.{name}.coder.annotation")


def _du(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    du_process = os.path.join(os.path.dirname(sys.executable), "du-process")
    return subprocess.run([du_process, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_du_process_trains_on_carphone_then_the_written_predictor_writes_tracks_nova_loads(carphone_session, tmp_path):
    from nova_rules import nova_request

    from nova_infant.core.annotations import read_annotation
    from nova_infant.core.streams import load_ssi_stream

    root, sess = Path(carphone_session["root"]), Path(carphone_session["dir"])
    _write_va_annotations(sess, 100)
    cml = tmp_path / "cml" / "nova_infant"
    shutil.copytree(REPO_TRAINERS, cml, ignore=shutil.ignore_patterns("affect_models", "affect_*-*.trainer"))
    common = ["--cml_dir", str(cml.parent), "--cache_dir", str(tmp_path / "c"), "--tmp_dir", str(tmp_path / "t"),
              "--log_dir", str(tmp_path / "l"), "--dataset", "demo", "--sessions", '["carphone01"]']
    tpl = f"{root}/{{dataset}}/{{session}}"
    request = nova_request(cml / "affect_train.trainer", {
        "video": {"src": "file:stream:video", "uri_template": f"{tpl}/infant.video.mp4"},
        "valence": {"src": "file:annotation:continuous", "uri_template": f"{tpl}/infant.valence.coder.annotation"},
        "arousal": {"src": "file:annotation:continuous", "uri_template": f"{tpl}/infant.arousal.coder.annotation"}})
    train = _du(["--trainer_file_path", "nova_infant\\affect_train.trainer", *common, "--data", json.dumps(request),
                 "--options", json.dumps({"model_name": "carphone-va", "seq_len": 8, "dim": 8, "epochs": 1,
                                          "backbone_width": 0.25, "tasks": "va", "device": "cpu"})], tmp_path)
    model_dir = cml / "affect_models" / "carphone-va"
    assert (model_dir / "model.safetensors").is_file(), train.stdout[-3000:] + train.stderr[-3000:]
    trainer = cml / "affect_carphone-va.trainer"
    assert 'trained="true"' in trainer.read_text() and "affect_models/carphone-va" in trainer.read_text()

    # the predictor declares exactly the model's heads (va): NOVA requests every declared output
    from nova_rules import cml_info_json

    ios = json.loads(cml_info_json(trainer)["meta_io"]) if isinstance(cml_info_json(trainer)["meta_io"], str) \
        else cml_info_json(trainer)["meta_io"]
    assert sorted(io["id"] for io in ios if io["type"] == "output") == ["arousal", "va_stream", "valence"]
    outs = {"valence": "annotation:continuous", "arousal": "annotation:continuous", "va_stream": "stream:ssistream"}
    entries = {"video": {"src": "file:stream:video", "uri_template": f"{tpl}/infant.video.mp4"}}
    for key, src in outs.items():
        ext = "stream" if src.startswith("stream") else "annotation"
        entries[key] = {"src": f"file:{src}", "uri_template": f"{tpl}/infant.{key}.affect.{ext}"}
    pred = _du(["--trainer_file_path", "nova_infant\\affect_carphone-va.trainer", *common,
                "--data", json.dumps(nova_request(trainer, entries))], tmp_path)
    assert pred.returncode == 0, pred.stdout[-3000:] + pred.stderr[-3000:]
    val = read_annotation(sess / "infant.valence.affect.annotation")
    assert len(val.data) == 100
    face = val.data["conf"] > 0
    assert face.mean() > 0.8 and np.isfinite(val.data["score"][face]).all()
    assert np.isnan(val.data["score"][~face]).all() and np.abs(val.data["score"][face]).max() <= 1
    from nova_rules import check_annotation  # NOVA's reader: gaps spelled NaN with conf 0, finite confidences

    for name in ("valence", "arousal"):
        path = sess / f"infant.{name}.affect.annotation"
        assert check_annotation(path) == [], path
        lines = (sess / f"infant.{name}.affect.annotation~").read_text().splitlines()
        assert [ln.startswith("NaN;") for ln in lines] == list(~face)
    assert not (sess / "infant.expression.affect.annotation").exists() and not (sess / "infant.au.affect.stream").exists()
    va = load_ssi_stream(sess / "infant.va_stream.affect.stream")
    assert va.data.shape == (100, 3) and np.array_equal(va.data[:, 2] > 0, face)


def test_predicted_va_stream_feeds_the_icep_trainer_as_an_early_fused_feature(tmp_path, capsys):
    """The predictor's va_stream (valence, arousal, face) written next to a video feature stream; the ICEP-R trainer
    takes both streams (early fusion) and its bundle records the 3 affect dimensions."""
    from nova_infant.cli import main
    from nova_infant.core.grid import frame_grid
    from nova_infant.icep.synthetic import context_task, write_session
    from nova_infant.specs.affect import predictions_result
    from nova_infant.specs.sessions import FileSession
    from nova_infant.specs.writing import write_files
    from nova_infant.specs.registry import SPECS

    rng = np.random.default_rng(0)
    grid = frame_grid(240 * 40, 40)
    for name in ("A1", "A2", "A3"):
        x, y = context_task(240, 5, rng, cue=0.5)
        write_session(tmp_path / "data", "ffsf", name, {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)
        has = rng.random(240) > 0.1
        pred = {"va": np.column_stack([np.where(y == 0, 0.5, -0.5), rng.uniform(-1, 1, 240)]).astype(np.float32)}
        result = predictions_result(pred, has, grid, _tiny(tasks=("va",)))
        assert set(result.streams) == {"va_stream"} and set(result.annotations) == {"valence", "arousal"}
        assert any("no expr head" in n for n in result.notes) and any("no au head" in n for n in result.notes)
        folder = tmp_path / "data" / "ffsf" / name
        session = FileSession({"video": folder / "infant.video.mp4"}, folder, outputs=["va_stream"], name=name,
                              role="infant")
        assert [p.name for p in write_files(SPECS["affect_predict"], result, session)] == ["infant.affect_va.stream"]
    stream_name = "infant.affect_va"
    bundle = tmp_path / "bundle"
    code = main(["icep", "train", "--root", str(tmp_path / "data"), "--dataset", "ffsf", "--sessions", "A1", "A2",
                 "A3", "--streams", "infant.feat", stream_name, "--model", "mlp", "--hidden", "8", "--epochs", "2",
                 "--out", str(bundle)])
    assert code == 0, capsys.readouterr().err
    spec = json.loads((bundle / "config.json").read_text())["config"]["feature_spec"]["streams"]
    assert [s["dim"] for s in spec] == [5, 3] and spec[1]["media_type"] == "feature;video;affect_va"


def test_cli_trains_with_expression_and_au_annotations_and_subject_cv_then_predicts(tmp_path, capsys):
    """`nova-infant run affect-train` with the inputs NOVA's trainer does not declare (expression, one AU), subject
    groups and 2-fold CV, then `nova-infant run affect-predict` with the saved model folder."""
    from nova_infant.cli import main
    from nova_infant.core.annotations import frames_to_segments, read_annotation, write_annotation
    from nova_infant.core.streams import load_ssi_stream
    from nova_infant.core.sample_media import build_session
    from nova_infant.taggers.outputs import discrete_annotation

    files = {k: [] for k in ("video", "valence", "arousal", "expression", "au")}
    for name in ("c1", "c2"):
        folder = Path(build_session(tmp_path / "data", session=name)["dir"])
        _write_va_annotations(folder, 100)
        ids = (np.arange(100) >= 50).astype(int)
        write_annotation(discrete_annotation(frames_to_segments(ids, 40.0), ["Neutral", "Happiness"], "expression",
                                             "infant", "coder"), folder / "infant.expression.coder.annotation")
        write_annotation(discrete_annotation(frames_to_segments(ids, 40.0, skip_ids=(0,)), ["absent", "present"],
                                             "AU12", "infant", "coder"), folder / "infant.AU12.coder.annotation")
        for key, stem in (("video", "infant.video.mp4"), ("valence", "infant.valence.coder.annotation"),
                          ("arousal", "infant.arousal.coder.annotation"),
                          ("expression", "infant.expression.coder.annotation"), ("au", "infant.AU12.coder.annotation")):
            files[key].append(str(folder / stem))
    out = tmp_path / "models"
    assert main(["run", "affect-train", "--video", *files["video"], "--valence", *files["valence"], "--arousal",
                 *files["arousal"], "--expression", *files["expression"], "--au-AU12", *files["au"], "--out", str(out),
                 "--tasks", "va,expr,au", "--seq-len", "8", "--dim", "8", "--epochs", "1", "--cv-folds", "2",
                 "--groups", '{"c1": "mother A", "c2": "mother B"}', "--device", "cpu", "--model-name", "lab"]) == 0
    doc = json.loads((out / "affect_models" / "lab" / "config.json").read_text())
    assert doc["kind"] == "affect-model" and "model.safetensors" in (out / "affect_models" / "lab" / "checksums").read_text()
    cv = doc["config"]["info"]["cv"]
    assert sorted(f["test_subjects"][0] for f in cv["folds"]) == ["mother A", "mother B"]
    assert set(cv["pooled"]["model"]["au_f1_per_au"]) == {"AU12"}             # only the coded AU is scored
    assert cv["pooled"]["model"]["n_frames_expr"] > 150 and "expr_f1_macro" in cv["pooled"]["baselines"]["mean/majority"]
    assert (out / "affect_lab.trainer").is_file()
    assert (out / "affect_models" / "lab" / "cv_scores.png").stat().st_size > 5000   # folds vs baselines figure
    pred_out = tmp_path / "pred"
    assert main(["run", "affect-predict", "--video", files["video"][0], "--model", str(out / "affect_models" / "lab"),
                 "--out", str(pred_out), "--device", "cpu"]) == 0
    assert len(read_annotation(pred_out / "infant.valence.annotation").data) == 100
    assert load_ssi_stream(pred_out / "infant.affect_au.stream").data.shape == (100, 13)
