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
    from nova_infant.core.nova_io import read_annotation

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
    from nova_infant.core.nova_io import read_annotation

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
