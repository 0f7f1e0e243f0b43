"""``nova-infant batch --executor slurm`` on a real Slurm: one submitit job array over three real sessions.

CI starts a one-node Slurm first (``scripts/slurm-test-cluster.sh``, called by ``.ci/run``). Elsewhere the test
skips, saying how to start one; on CI (``CI=true``) a Slurm that does not answer fails the test instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from nova_infant.core import batch
from nova_infant.core.batch import ModuleJob, build_request, run_batch
from nova_infant.discover.registry import REPO_TRAINER_DIR
from nova_infant.core.streams import load_ssi_stream

pytestmark = pytest.mark.slow


def _slurm_or_skip() -> None:
    why = None
    if not shutil.which("sbatch") or not shutil.which("sinfo"):
        why = "no sbatch/sinfo on PATH"
    else:
        # "completing": the node still cleans up the previous test's array; jobs queue and start after it
        usable = ("idle", "mixed", "allocated", "completing")
        for _ in range(10):  # a node between states (e.g. just restarted) answers within seconds
            probe = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
            if probe.returncode == 0 and any(s.rstrip("*~#") in usable for s in probe.stdout.split()):
                break
            time.sleep(2)
        else:
            why = f"Slurm does not answer with a usable node (sinfo: {(probe.stderr or probe.stdout).strip()[:200]!r})"
    if why is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must have Slurm (scripts/slurm-test-cluster.sh): {why}")
    pytest.skip(f"{why}; start a one-node Slurm with `sudo bash scripts/slurm-test-cluster.sh`")


def test_slurm_job_array_processes_every_session_and_a_rerun_submits_nothing(tmp_path, carphone_session,
                                                                                tiny_w2v_bert, monkeypatch):
    _slurm_or_skip()
    root = tmp_path / "data"
    for name in ("s1", "s2", "s3"):
        shutil.copytree(carphone_session["dir"], root / "ds" / name)
    trainer = str(REPO_TRAINER_DIR / "w2v_bert.trainer")
    job = ModuleJob(trainer, "ds", build_request(trainer, root, role="session"),
                    {"model": tiny_w2v_bert, "device": "cpu", "frame_step": "40ms"}, str(tmp_path / "state"),
                    threads=1)
    resources = {"gpus": 0, "mem_gb": 2, "time_min": 10, "cpus_per_task": 1}
    results = run_batch(job, ["s1", "s2", "s3"], executor="slurm", retries=0, resources=resources, progress=False)
    assert [r.status for r in results] == ["done"] * 3, batch.format_table(results)
    for name in ("s1", "s2", "s3"):
        stream = load_ssi_stream(root / "ds" / name / "session.w2vbert.stream")
        assert stream.data.shape[0] == 100 and np.isfinite(stream.data).all()
        assert stream.meta_data.sample_rate == pytest.approx(25.0)
        assert batch.up_to_date(job, name)[0]
    logs = sorted(p.name for p in (tmp_path / "state" / "slurm" / "w2v_bert").rglob("*_log.out"))
    assert len(logs) == 3, logs  # one log per session (array task)

    def must_not_submit(*args, **kwargs):
        raise AssertionError("a re-run after completion submitted jobs")

    monkeypatch.setattr(batch, "_run_slurm", must_not_submit)
    again = run_batch(job, ["s1", "s2", "s3"], executor="slurm", resources=resources, progress=False)
    assert [r.status for r in again] == ["skipped"] * 3


def test_slurm_reports_a_failed_session_and_completes_the_rest(tmp_path, carphone_session, tiny_w2v_bert):
    _slurm_or_skip()
    root = tmp_path / "data"
    for name in ("ok", "broken"):
        shutil.copytree(carphone_session["dir"], root / "ds" / name)
    (root / "ds" / "broken" / "session.audio.wav").write_bytes(b"not a wav file")
    trainer = str(REPO_TRAINER_DIR / "w2v_bert.trainer")
    job = ModuleJob(trainer, "ds", build_request(trainer, root, role="session"),
                    {"model": tiny_w2v_bert, "device": "cpu"}, str(tmp_path / "state"), threads=1)
    results = run_batch(job, ["broken", "ok"], executor="slurm", retries=1,
                        resources={"gpus": 0, "mem_gb": 2, "time_min": 10}, progress=False)
    by_name = {r.session: r for r in results}
    assert by_name["ok"].status == "done"
    assert by_name["broken"].status == "failed" and "session.audio.wav" in by_name["broken"].reason
    assert by_name["broken"].log.endswith("_log.out")
    assert not job.record_path("broken").exists()


def test_icep_cv_folds_as_a_slurm_job_array_give_the_in_process_report(tmp_path, one_torch_thread):
    """``icep cv --executor slurm``: one array task per outer fold, fold files, the report of the in-process CV."""
    _slurm_or_skip()
    from nova_infant.icep import pipeline
    from nova_infant.icep.dataset import SessionSpec
    from nova_infant.icep.evaluation import parse_groups
    from nova_infant.icep.schemes import label_map
    from nova_infant.icep.synthetic import context_task, write_session
    from nova_infant.icep.training import TrainConfig

    rng = np.random.default_rng(0)
    names = ["P01_a", "P01_b", "P02_a", "P03_a"]
    for name in names:
        x, y = context_task(120, 8, rng, cue=0.5)
        write_session(tmp_path / "data", "ds", name, {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)
    lmap = label_map("merged", "infant")
    sessions, failures = pipeline.load_sessions([tmp_path / "data" / "ds" / n for n in names],
                                                SessionSpec(["infant.feat"], ("infant", "ICEP-R-infant", "gold")), lmap)
    assert not failures
    config = TrainConfig(model="mlp", hidden=8, window=20, stride=10, max_epochs=2, patience=1, device="cpu")
    common = dict(folds=3, grid=[{"lr": 1e-3}, {"lr": 1e-2}], val_fraction=0.3, seed=1, inner_folds=2,
                  groups=parse_groups(r"^P\d+", names))
    pipeline.evaluate(sessions, lmap, config, tmp_path / "inline", **common)
    pipeline.evaluate(sessions, lmap, config, tmp_path / "slurm", executor="slurm", retries=0,
                      resources={"gpus": 0, "mem_gb": 2, "time_min": 10}, **common)
    assert (tmp_path / "slurm" / "cv_report.json").read_text() == (tmp_path / "inline" / "cv_report.json").read_text()
    logs = sorted((tmp_path / "slurm" / "folds" / "slurm").rglob("*_log.out"))
    assert len(logs) == 3, logs  # one array task per fold
