"""End-to-end checks of infant facial valence (seed 004), both ``slow``:

- learnability: a tiny VideoMAE trained with SSTS on synthetic drawn faces (mouth curvature = valence; each subject
  with its own face, skin and background) reaches CCC > 0.5 on held-out subjects, above a mean predictor;
- NOVA/DISCOVER: du-process runs ``valence_train`` on two real-media sessions (the carphone face video with a coded
  continuous valence annotation), which writes a model and a ``trained="true"`` predictor ``.trainer``; du-process
  runs that predictor on a session and writes a continuous ``infant_valence`` annotation NOVA loads.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest



def _tiny_model(folder) -> str:
    """A small random VideoMAE (real class, saved and loaded through from_pretrained): 32 px, patch 8, 2 layers."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    import torch

    torch.manual_seed(0)
    config = VideoMAEConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                            image_size=32, patch_size=8, num_frames=4, tubelet_size=2, use_mean_pooling=True,
                            num_labels=1)
    VideoMAEForVideoClassification(config).save_pretrained(folder)
    return str(folder)


@pytest.mark.slow
def test_tiny_model_learns_drawn_face_valence_on_held_out_subjects(tmp_path, one_torch_thread):
    from nova_infant.core.grid import frame_grid
    from nova_infant.core.metrics import ccc, rmse
    from nova_infant.valence.clips import plan_clips
    from nova_infant.valence.synthetic import known_face_track, write_subject
    from nova_infant.valence.training import ValenceConfig, ValenceSession, fit, predict_plan

    seconds, fps = 12, 8
    sessions = []
    for k in range(10):
        video, values = write_subject(tmp_path / f"s{k}", seconds, fps, 64, seed=k)
        plan = plan_clips(known_face_track(str(video)), frame_grid(seconds * 1000, 1000), 1000, 0.8, fps, values)
        assert len(plan.clips) == seconds
        sessions.append(ValenceSession(f"s{k}", f"subject{k}", str(video), plan))
    train, test = sessions[:7], sessions[7:]
    config = ValenceConfig(model=_tiny_model(tmp_path / "vm"), stride=4, clip_frames=8, epochs=30, batch_size=8,
                           lr=2e-3, ema=0.0, augment=False, device="cpu", precision="fp32")
    fitted = fit(train, config, progress=False)
    ref, pred = [], []
    for s in test:
        values, conf = predict_plan(fitted, s.plan)
        assert np.all(conf == 1.0)
        ref += [c.target for c in s.plan.clips]
        pred += [values[c.row] for c in s.plan.clips]
    ref, pred = np.array(ref), np.array(pred)
    baseline = np.full_like(ref, np.mean([c.target for s in train for c in s.plan.clips]))
    print(f"held-out CCC {ccc(ref, pred):.3f} RMSE {rmse(ref, pred):.1f}; mean predictor RMSE {rmse(ref, baseline):.1f}")
    assert ccc(ref, pred) > 0.5, (ccc(ref, pred), rmse(ref, pred))
    assert rmse(ref, pred) < rmse(ref, baseline)


def _annotate(folder: Path, values, name: str) -> Path:
    from nova_infant.core.annotations import write_annotation
    from nova_infant.taggers.outputs import continuous_annotation

    anno = continuous_annotation(np.asarray(values, np.float32), np.ones(len(values), np.float32), 1.0,
                                 "infant_valence", -100, 100, role="infant", annotator="coder", session=name,
                                 dataset="demo")
    return write_annotation(anno, folder / "infant.infant_valence.coder.annotation")


def _du(cml: Path, trainer: str, base: Path, sessions, data, options):
    cmd = [os.path.join(os.path.dirname(sys.executable), "du-process"), "--trainer_file_path",
           f"nova_infant\\{trainer}", "--cml_dir", str(cml), "--cache_dir", str(base / "c"), "--tmp_dir",
           str(base / "t"), "--log_dir", str(base / "l"), "--dataset", "demo", "--sessions", json.dumps(sessions),
           "--data", json.dumps(data), "--options", json.dumps(options)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=base)


@pytest.mark.slow
def test_du_process_trains_then_predicts_a_continuous_valence_track(tmp_path):
    from nova_infant.core.backbones import save_standin
    from nova_infant.core.annotations import read_annotation
    from nova_infant.core.sample_media import build_session

    root = tmp_path / "data"
    for name, values in (("carphone01", [20, -40, 60, 10]), ("carphone02", [-80, 30, 5, 70])):
        _annotate(build_session(root, "demo", name)["dir"], values, name)
    cml = tmp_path / "cml"
    from nova_infant.core.package_data import TRAINER_DIR

    shutil.copytree(TRAINER_DIR, cml / "nova_infant")
    standin = save_standin("videomae", tmp_path / "videomae")
    tpl = f"{root}/{{dataset}}/{{session}}/"
    video = {"id": "video", "type": "input", "src": "file:stream:video", "uri_template": tpl + "infant.video.mp4"}
    labels = {"id": "labels", "type": "input", "src": "file:annotation:continuous",
              "uri_template": tpl + "infant.infant_valence.coder.annotation"}
    result = _du(cml, "valence_train.trainer", tmp_path, ["carphone01", "carphone02"], [video, labels],
                 {"model": str(standin), "model_name": "tiny", "epochs": "1", "batch_size": "4", "device": "cpu",
                  "precision": "bf16"})
    model = cml / "nova_infant" / "valence_models" / "tiny"
    assert (model / "checksums").is_file(), result.stderr[-3000:]
    saved = json.loads((model / "config.json").read_text())
    assert saved["kind"] == "valence-model"
    assert saved["config"]["training"]["clips"] == {"carphone01": 4, "carphone02": 4}
    predictor = cml / "nova_infant" / "valence_tiny.trainer"
    text = predictor.read_text()
    assert 'trained="true"' in text and "valence_models/tiny" in text and 'create="ValencePredictor"' in text

    out = {"id": "valence", "type": "output", "src": "file:annotation:continuous",
           "uri_template": tpl + "out/infant.valence.annotation"}
    result = _du(cml, "valence_tiny.trainer", tmp_path, ["carphone01"], [video, out], {"device": "cpu"})
    path = root / "demo" / "carphone01" / "out" / "infant.valence.annotation"
    assert path.is_file(), result.stderr[-3000:]
    anno = read_annotation(path)
    assert anno.annotation_scheme.name == "infant_valence" and anno.annotation_scheme.sample_rate == 1.0
    assert (anno.annotation_scheme.min_val, anno.annotation_scheme.max_val) == (-100.0, 100.0)
    assert len(anno.data) == 4 and np.isfinite(anno.data["score"]).all() and np.all(anno.data["conf"] == 1.0)
    assert np.all(np.abs(anno.data["score"]) <= 100)
    from nova_rules import check_annotation  # NOVA's reader: gaps spelled NaN with conf 0, finite confidences

    assert check_annotation(path) == []
