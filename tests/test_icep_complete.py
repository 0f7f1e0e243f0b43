"""Complete this session (icep_complete_*): du-process with the field set NOVA's DISCOVER window sends and NOVA's
default request (file mode), the coder's tier guarded, and the calibration / completion acceptance figures on
held-out synthetic FFSF sessions (nova_infant.icep.loop_benchmark)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TRAINER = "icep_complete_infant_dinov2.trainer"
CODER = "infant.ICEP-R-infant.gold.annotation"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A NOVA file-mode session of 2 min (FFSF-like DINOv2-sized features at 25 Hz) whose first third is coded."""
    from nova_infant.discover.registry import write_all_trainers
    from nova_infant.icep.synthetic import FFSF_CLASSES, ffsf_session, write_session

    base = tmp_path_factory.mktemp("complete")
    x, y, _ = ffsf_session(3000, 16, np.random.default_rng(5))
    coded = np.full(len(y), -2)
    coded[:1000] = y[:1000]
    folder = write_session(base / "data", "demo", "s1", {"infant.dinov2": (x, 25.0, "feature;video;dinov2")},
                           coded, 40.0, class_names=FFSF_CLASSES)
    cml = base / "cml" / "nova_infant"
    shutil.copytree(REPO / "trainers" / "nova_infant", cml, ignore=shutil.ignore_patterns("icep_models", "__pycache__"))
    write_all_trainers(cml)
    return {"base": base, "folder": folder, "cml": cml, "gold": y}


def du_process(lab, output: str, options: dict):
    """NOVA's DISCOVER window: /process with jobID, trainerFilePath, dbHost..., frameSize, data, options, sessions,
    dataset (nova-client.md), i.e. du-process with the same arguments; every declared input, the output active."""
    sys.path.insert(0, str(Path(__file__).parent))
    from nova_rules import nova_request

    tpl = f"{lab['base']}/data/{{dataset}}/{{session}}"
    data = nova_request(lab["cml"] / TRAINER, {
        "feature_0": {"src": "file:stream:ssistream", "uri_template": f"{tpl}/infant.dinov2.stream"},
        "labels": {"src": "file:annotation:discrete", "uri_template": f"{tpl}/{CODER}"},
        "annotation": {"src": "file:annotation:discrete", "uri_template": f"{tpl}/{output}"}})
    exe = Path(sys.executable).parent / "du-process"
    cmd = [str(exe), "--trainer_file_path", f"nova_infant\\{TRAINER}", "--cml_dir", str(lab["cml"].parent),
           "--cache_dir", str(lab["base"] / "c"), "--tmp_dir", str(lab["base"] / "t"), "--log_dir",
           str(lab["base"] / "l"), "--dataset", "demo", "--sessions", json.dumps(["s1"]), "--data", json.dumps(data),
           "--options", json.dumps({"epochs": 8, "device": "cpu", **options}), "--frame_size", "40ms",
           "--left_context", "0", "--right_context", "0", "--job_i_d", "test"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=lab["base"])


def _rows(path: Path) -> list[str]:
    return Path(str(path) + "~").read_text().splitlines()


def test_completion_keeps_the_coded_rows_and_predicts_after_the_split_in_a_tier_of_its_own(lab):
    from nova_infant.core.annotations import read_annotation

    coder = lab["folder"] / CODER
    before = (coder.read_bytes(), Path(str(coder) + "~").read_bytes())
    run = du_process(lab, "infant.ICEP-R-infant.icep-complete.annotation", {})
    assert run.returncode == 0 and "Processor exited with error" not in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    assert (coder.read_bytes(), Path(str(coder) + "~").read_bytes()) == before  # the coder's file untouched
    out = lab["folder"] / "infant.ICEP-R-infant.icep-complete.annotation"
    coded, done = read_annotation(coder).data, read_annotation(out).data
    n = len(coded)
    assert _rows(out)[:n] == _rows(coder)                                      # coded rows byte-identical
    split = coded["to"].max()
    assert split == 40000 and (done["from"][n:] >= split).all() and done["from"][n] == split
    assert done["to"][-1] == 120000 and len(done) > n
    assert ((done["conf"] >= 0) & (done["conf"] <= 1)).all()
    assert (done["conf"][n:] < 1).all()                                        # predictions carry their own conf
    ids = {int(i) for i in done["id"][n:]}
    from nova_infant.core.annotations import discrete_segments

    names = discrete_segments(read_annotation(coder))[1]
    assert {names[i] for i in ids} <= {"Ipos", "Ineu", "Ipro"}


def test_writing_into_the_coders_tier_needs_the_option_and_keeps_a_byte_identical_backup(lab):
    from nova_infant.core.annotations import read_annotation

    coder = lab["folder"] / CODER
    before = (coder.read_bytes(), Path(str(coder) + "~").read_bytes())
    run = du_process(lab, CODER, {})
    assert "into_coder_tier" in run.stdout + run.stderr
    assert (coder.read_bytes(), Path(str(coder) + "~").read_bytes()) == before
    run = du_process(lab, CODER, {"into_coder_tier": True, "split": "0:40"})
    assert run.returncode == 0 and "Processor exited with error" not in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    backups = sorted(lab["folder"].glob("infant.ICEP-R-infant.gold-backup-*.annotation"))
    assert len(backups) == 1
    assert (backups[0].read_bytes(), Path(str(backups[0]) + "~").read_bytes()) == before
    old_rows = before[1].decode().splitlines()
    assert _rows(coder)[:len(old_rows)] == old_rows and len(_rows(coder)) > len(old_rows)
    assert read_annotation(backups[0]).data["to"].max() == 40000


@pytest.mark.slow
def test_calibration_review_and_completion_meet_the_acceptance_figures_on_held_out_sessions():
    from nova_infant.icep.loop_benchmark import run

    result = run(n_test=2, n_base=4, n_frames=3000, shares=(0.25,), progress=lambda line: None)
    cal = result["calibration"]
    assert cal["ece_after"] <= 0.05 and cal["ece_after"] <= cal["ece_before"] + 0.005
    assert cal["review"]["efficiency"] >= 1.5
    row = result["completion"]["25%"]
    assert row["scratch"]["mean"] > row["logreg"]["mean"] and row["base"]["mean"] > row["logreg"]["mean"]
    # completion with a base bundle (fine-tuned probabilities averaged with the base's own): measured ECE 0.039,
    # review efficiency 3.5 on these 2 sessions; from scratch ECE 0.13, efficiency 1.15 (the from-scratch targets
    # are not met: docs/icep.md)
    with_base = row["base_calibration"]
    assert with_base["ece_after"] <= 0.05 and with_base["review"]["efficiency"] >= 1.5
    assert row["scratch_calibration"]["ece_after"] <= 0.2


def test_completion_in_database_mode_writes_its_own_annotator_and_keeps_the_coders(tmp_path, monkeypatch):
    """The same through discover-utils' database handlers (mongomock, as tests/test_nova_db.py): the coder's
    annotation and the feature stream come from NOVA's database, the completion goes to another annotator."""
    from unittest import mock

    import mongomock
    from discover_utils.data.annotation import DiscreteAnnotation
    from discover_utils.data.handler import nova_db_handler
    from discover_utils.data.provider.data_manager import DatasetManager
    from discover_utils.utils.anno_utils import pack_remove

    from nova_infant.core import nova_db, streams
    from nova_infant.core.annotations import frames_to_segments
    from nova_infant.icep.schemes import full_scheme
    from nova_infant.icep.synthetic import FFSF_CLASSES, ffsf_session
    from nova_infant.discover.processor import processor_class

    monkeypatch.setenv("DISCOVER_USE_TLS", "false")
    x, y, _ = ffsf_session(3000, 16, np.random.default_rng(6))
    scheme = full_scheme("infant")
    ids = np.array([scheme.names.index(n) for n in FFSF_CLASSES])
    rows = frames_to_segments(ids[y[:1000]], 40.0)
    patcher = mongomock.patch(servers=(("127.0.0.1", 27017),))
    with patcher, mock.patch.object(nova_db_handler, "MongoClient", patcher.new):
        ctx = nova_db.connect("127.0.0.1", 27017, "coder", "secret", data_dir=tmp_path)
        ds_name = "loop"
        nova_db.ensure_session(ctx, ds_name, "P01", duration_ms=120000)
        nova_db.ensure_role(ctx, ds_name, "infant")
        for annotator in ("gold", "model"):
            nova_db.ensure_annotator(ctx, ds_name, annotator)
        nova_db.import_discrete_scheme(ctx, ds_name, REPO / "schemes" / "icep_r_infant.json")
        template = nova_db_handler.AnnotationHandler(**ctx).load(dataset=ds_name, scheme=scheme.name, session="P01",
                                                                 annotator="gold", role="infant", header_only=True)
        coder = DiscreteAnnotation(scheme=template.annotation_scheme, data=rows.astype(
            template.annotation_scheme.label_dtype))
        nova_db.save_annotation(ctx, coder, ds_name, "P01", "gold", "infant")
        nova_db.save_stream(ctx, streams.make_ssi_stream(x, 25.0, "feature;video;dinov2",
                                                         [f"pc{i}" for i in range(16)]), ds_name, "P01", "infant",
                            "dinov2")
        description = [
            {"id": "feature_0", "type": "input", "src": "db:stream:SSIStream:dinov2", "name": "dinov2",
             "role": "infant", "active": True},
            {"id": "labels", "type": "input", "src": "db:annotation:Discrete", "scheme": scheme.name,
             "annotator": "gold", "role": "infant", "active": True},
            {"id": "annotation", "type": "output", "src": "db:annotation:Discrete", "scheme": scheme.name,
             "annotator": "model", "role": "infant", "active": True}]
        ds = DatasetManager(description, source_context={"db": ctx}, dataset=ds_name, session_names=["P01"])
        ds.load()
        processor = processor_class("icep_complete_infant_dinov2")(model_io=[], opts={"epochs": 4, "device": "cpu"},
                                                                   trainer=None)
        out = processor.to_output(processor.process_data(ds))
        manager = ds.sessions["P01"]["manager"]
        for io_id, obj in out.items():  # what du-process does with NOVA's default (no post-processing)
            obj.data = pack_remove(obj.data, min_gap=-999999999, min_dur=-999999999)
            manager.output_data_templates[io_id] = obj
        ds.save()
        kept = nova_db.load_annotation(ctx, ds_name, "P01", scheme.name, "gold", "infant").data
        done = nova_db.load_annotation(ctx, ds_name, "P01", scheme.name, "model", "infant").data
    assert kept[["from", "to", "id"]].tolist() == rows[["from", "to", "id"]].tolist()   # the coder's, untouched
    n = len(rows)
    assert done[["from", "to", "id"]][:n].tolist() == rows[["from", "to", "id"]].tolist()
    np.testing.assert_allclose(done["conf"][:n], rows["conf"], atol=1e-6)
    assert (done["from"][n:] >= 40000).all() and done["to"][-1] == 120000 and len(done) > n
    assert ((done["conf"] >= 0) & (done["conf"] <= 1)).all()
