"""ICEP-R jobs end to end: the command line over a folder of sessions, and du-process with our trainer modules
(file mode), including the predictor .trainer that training writes."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from nova_infant.cli import main
from nova_infant.icep.synthetic import CONTEXT_CLASSES as CONTEXT_CLASSES_INFANT, context_task, write_session

REPO_TRAINERS = Path(__file__).resolve().parents[1] / "trainers" / "nova_infant"
ANNO = "infant.ICEP-R-infant.gold.annotation"


def _sessions(root, names, n_frames=240, seed=0, dim=8):
    rng = np.random.default_rng(seed)
    for name in names:
        x, y = context_task(n_frames, dim, rng, cue=0.5)
        write_session(root, "ffsf", name, {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def cml_dir(tmp_path):
    """A DISCOVER CML folder: a copy of trainers/nova_infant (so trained models do not land in the checkout)."""
    from nova_infant.specs.icep import PREDICT, TRAIN_SPECS
    from nova_infant.core.trainer_files import write_trainer

    target = tmp_path / "cml" / "nova_infant"
    shutil.copytree(REPO_TRAINERS, target, ignore=shutil.ignore_patterns("icep_models", "icep_*-*.trainer"))
    write_trainer(target / "icep_train_infant_dinov2.trainer", TRAIN_SPECS["icep_train_infant_dinov2"].trainer_spec())
    write_trainer(target / "icep_predict.trainer", PREDICT.trainer_spec())
    return target


def test_cli_trains_despite_a_bad_session_and_predicts_the_rest(tmp_path, cml_dir, capsys):
    root = tmp_path / "data"
    _sessions(root, ["P001", "P002", "P003", "P004", "P005"])
    (root / "ffsf" / "P003" / ANNO).unlink()                      # not coded
    bundle = tmp_path / "models" / "icep-infant-mlp"
    code = main(["icep", "train", "--root", str(root), "--dataset", "ffsf", "--sessions", "P001", "P002", "P003",
                 "P004", "--streams", "infant.feat", "--model", "mlp", "--hidden", "8", "--epochs", "3",
                 "--folds", "2", "--out", str(bundle), "--cml-dir", str(cml_dir)])
    err = capsys.readouterr().err
    assert code == 1 and "P003/infant.ICEP-R-infant.gold.annotation: no such annotation" in err
    config = json.loads((bundle / "config.json").read_text())["config"]
    assert config["training"]["sessions"] == ["P001", "P002", "P004"]
    assert config["feature_spec"]["streams"][0] == {"name": "infant.feat", "dim": 8, "sample_rate_hz": 25.0,
                                                    "media_type": "feature;video;syn"}
    metrics = json.loads((bundle / "metrics.json").read_text())
    assert len(metrics["folds"]) == 2 and "kappa" in metrics["pooled"]
    assert (bundle / "evaluation" / "confusion_pooled.png").stat().st_size > 1000
    assert (cml_dir / "icep_icep-infant-mlp.trainer").is_file()

    # predict: one session has features of another width -> reported, the others are written
    x = np.zeros((240, 5), np.float32)
    write_session(root, "ffsf", "P006", {"infant.feat": (x, 25.0, "feature;video;syn")}, None, 40.0)
    code = main(["icep", "predict", "--root", str(root), "--dataset", "ffsf", "--sessions", "P005", "P006",
                 "--bundle", str(bundle), "--min-dur-ms", "400"])
    err = capsys.readouterr().err
    assert code == 1 and "P006" in err and "has 5 dims" in err
    assert (root / "ffsf" / "P005" / "infant.ICEP-R-infant-merged.icep.annotation").is_file()
    assert not (root / "ffsf" / "P006" / "infant.ICEP-R-infant-merged.icep.annotation").exists()


def test_cli_cv_writes_report_and_pictures(tmp_path, capsys):
    root = tmp_path / "data"
    _sessions(root, ["A1", "A2", "A3"], n_frames=120)
    out = tmp_path / "cv"
    assert main(["icep", "cv", "--root", str(root), "--dataset", "ffsf", "--streams", "infant.feat", "--model", "mlp",
                 "--epochs", "2", "--folds", "3", "--grid", '[{"lr": 0.001}, {"lr": 0.01}]', "--out", str(out)]) == 0
    report = json.loads((out / "cv_report.json").read_text())
    assert [f["test_sessions"] for f in report["folds"]] and len(report["folds"]) == 3
    assert {f["chosen"]["lr"] for f in report["folds"]} <= {0.001, 0.01}
    assert all(len(f["selection"]) == 2 for f in report["folds"])          # both grid points scored per fold
    assert sorted(report["per_session"]) == ["A1", "A2", "A3"]
    assert {"kappa", "f1_macro"} <= set(report["per_session"]["A2"]["model"])
    for variant in ("model", "model_smoothed", "majority", "logreg"):
        lo, hi = report["agreement"][variant]["kappa_ci95"]
        assert lo <= report["agreement"][variant]["kappa"] <= hi
    assert report["human_reference"]["kappa_range"] == [0.73, 0.82]
    assert sorted(p.name for p in out.glob("timeline_*.png")) == ["timeline_A1.png", "timeline_A2.png", "timeline_A3.png"]
    assert (out / "kappa_per_session.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "macro-F1" in printed and "per-frame logistic regression" in printed and report["summary"] in printed
    assert "A1: 0% of 120 frames masked" in printed


def _du(args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["du-process", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def test_du_process_trains_and_the_written_predictor_runs_unedited(tmp_path, cml_dir):
    root = tmp_path / "data"
    _sessions(root, ["S1", "S2", "S3", "S4"], seed=3)
    (root / "ffsf" / "S3" / ANNO).unlink()  # the job's last session is not coded: du-process fails it, we train anyway
    common = ["--cml_dir", str(cml_dir.parent), "--cache_dir", str(tmp_path / "c"), "--tmp_dir", str(tmp_path / "t"),
              "--log_dir", str(tmp_path / "l"), "--dataset", "ffsf"]
    feature = {"id": "feature_0", "type": "input", "src": "file:stream:ssistream",
               "uri_template": f"{root}/{{dataset}}/{{session}}/infant.feat.stream"}
    labels = {"id": "labels", "type": "input", "src": "file:annotation:discrete",
              "uri_template": f"{root}/{{dataset}}/{{session}}/{ANNO}"}
    from nova_rules import nova_request

    request = nova_request(cml_dir / "icep_train_infant_dinov2.trainer",  # every input, active, as NOVA sends them
                           {"feature_0": {k: feature[k] for k in ("src", "uri_template")},
                            "labels": {k: labels[k] for k in ("src", "uri_template")}})
    train = _du(["--trainer_file_path", "nova_infant\\icep_train_infant_dinov2.trainer", *common, "--sessions", '["S1","S2","S3"]',
                 "--data", json.dumps(request),
                 "--options", json.dumps({"model_name": "ffsf-infant", "model": "mlp", "hidden": 8, "epochs": 3})],
                tmp_path)
    assert "S3/infant.ICEP-R-infant.gold.annotation" in train.stdout + train.stderr
    config = json.loads((cml_dir / "icep_models" / "ffsf-infant" / "config.json").read_text())["config"]
    assert config["training"]["sessions"] == ["S1", "S2"], train.stdout[-2000:] + train.stderr[-2000:]
    trainer = cml_dir / "icep_ffsf-infant.trainer"
    assert 'trained="true"' in trainer.read_text() and 'path="icep_models/ffsf-infant"' in trainer.read_text()

    out = {"id": "annotation", "type": "output", "src": "file:annotation:discrete",
           "uri_template": f"{root}/{{dataset}}/{{session}}/infant.ICEP-R-infant-merged.icep.annotation"}
    request = nova_request(trainer, {"feature_0": {k: feature[k] for k in ("src", "uri_template")},
                                     "annotation": {k: out[k] for k in ("src", "uri_template")}})
    pred = _du(["--trainer_file_path", "nova_infant\\icep_ffsf-infant.trainer", *common, "--sessions", '["S4"]',
                "--data", json.dumps(request)], tmp_path)
    assert pred.returncode == 0, pred.stdout[-2000:] + pred.stderr[-2000:]
    from discover_utils.data.handler.file_handler import FileHandler

    anno = FileHandler().load(root / "ffsf" / "S4" / "infant.ICEP-R-infant-merged.icep.annotation")
    assert anno.annotation_scheme.name == "ICEP-R-infant-merged"
    assert len(anno.data) >= 1 and anno.data["to"][-1] == pytest.approx(240 * 40, abs=10)
    # NOVA labels a file's tier from its header: role and annotator of NOVA's file name, not empty / the module's
    import xml.etree.ElementTree as ET

    meta = ET.parse(root / "ffsf" / "S4" / "infant.ICEP-R-infant-merged.icep.annotation").getroot().find("meta")
    assert (meta.get("role"), meta.get("annotator")) == ("infant", "icep")


@pytest.mark.slow
@pytest.mark.parametrize("trainer_name", sorted(p.name for p in REPO_TRAINERS.glob("icep_train_*.trainer")))
def test_every_committed_training_trainer_trains_through_du_process_with_novas_default_request(
        trainer_name, tmp_path, cml_dir):
    """Each per-role/per-feature-set training trainer, sent exactly as NOVA sends it (every input active, its own
    option defaults but a small MLP), trains a bundle for its role on all of its feature streams."""
    from nova_rules import nova_request

    role = "caregiver" if "caregiver" in trainer_name else "infant"
    classes = ("Cneu", "Cpos", "Cneg") if role == "caregiver" else CONTEXT_CLASSES_INFANT
    n_features = (cml_dir / trainer_name).read_text().count('id="feature_')  # e.g. dinov2 + people/pose/hands: 4
    root, rng = tmp_path / "data", np.random.default_rng(7)
    for name in ("S1", "S2"):
        x, y = context_task(240, 8, rng, cue=0.5)
        streams = {f"{role}.feat{i}": (x + i, 25.0, "feature;syn") for i in range(n_features)}
        write_session(root, "ffsf", name, streams, y, 40.0, role=role, class_names=classes)
    entries = {f"feature_{i}": {"src": "file:stream:ssistream",
                                "uri_template": f"{root}/{{dataset}}/{{session}}/{role}.feat{i}.stream"}
               for i in range(n_features)}
    entries["labels"] = {"src": "file:annotation:discrete",
                         "uri_template": f"{root}/{{dataset}}/{{session}}/{role}.ICEP-R-{role}.gold.annotation"}
    request = nova_request(cml_dir / trainer_name, entries)
    common = ["--cml_dir", str(cml_dir.parent), "--cache_dir", str(tmp_path / "c"), "--tmp_dir", str(tmp_path / "t"),
              "--log_dir", str(tmp_path / "l"), "--dataset", "ffsf"]
    train = _du(["--trainer_file_path", f"nova_infant\\{trainer_name}", *common, "--sessions", '["S1","S2"]',
                 "--data", json.dumps(request),
                 "--options", json.dumps({"model_name": "m", "model": "mlp", "hidden": 8, "epochs": 2})], tmp_path)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-2000:]
    config = json.loads((cml_dir / "icep_models" / "m" / "config.json").read_text())["config"]
    assert config["training"]["sessions"] == ["S1", "S2"]
    assert [s["dim"] for s in config["feature_spec"]["streams"]] == [8] * n_features
    assert config["label_map"]["role"] == role and config["label_map"]["target_scheme"] == f"ICEP-R-{role}-merged"
