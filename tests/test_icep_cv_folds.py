"""ICEP-R cross-validation split into plan / one fold / combine: the folds run as separate jobs (a process pool here,
a Slurm job array in tests/test_batch_slurm.py) give exactly the report of the in-process CV, and a re-run runs
only the folds whose fold file is missing or belongs to another plan."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nova_infant.core import batch
from nova_infant.cli import main
from nova_infant.icep import evaluation, pipeline
from nova_infant.icep.dataset import SessionSpec
from nova_infant.icep.schemes import label_map
from nova_infant.icep.synthetic import context_task, write_session
from nova_infant.icep.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAMES = ["P01_a", "P01_b", "P02_a", "P03_a", "P04_a"]
CONFIG = TrainConfig(model="mlp", hidden=8, window=20, stride=10, max_epochs=2, patience=1, device="cpu")
GRID = [{"lr": 1e-3}, {"lr": 1e-2}]


def write_sessions(root, n_frames=120, seed=0):
    rng = np.random.default_rng(seed)
    for name in NAMES:
        x, y = context_task(n_frames, 8, rng, cue=0.5)
        write_session(root, "ds", name, {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)


def load(root):
    lmap = label_map("merged", "infant")
    sessions, failures = pipeline.load_sessions([root / "ds" / n for n in NAMES],
                                                SessionSpec(["infant.feat"], ("infant", "ICEP-R-infant", "gold")), lmap)
    assert not failures
    return sessions, lmap


def groups(sessions):
    return evaluation.parse_groups(r"^P\d+", [s.name for s in sessions])  # P01_a and P01_b: one dyad


def test_plan_is_deterministic_and_keeps_groups_together(tmp_path):
    write_sessions(tmp_path / "data")
    sessions, lmap = load(tmp_path / "data")
    args = (sessions, lmap.target.names, CONFIG, 3, GRID, 0.3, 7, 2, groups(sessions))
    plan = evaluation.plan_folds(*args)
    assert plan == evaluation.plan_folds(*args)
    assert plan != evaluation.plan_folds(*args[:6], 8, *args[7:])  # another seed, another plan
    assert sorted(n for f in plan["folds"] for n in f["test"]) == sorted(NAMES)
    for fold in plan["folds"]:
        for side in ("fit", "val"):
            assert not {n[:3] for n in fold[side]} & {n[:3] for n in fold["test"]}
        assert not {n[:3] for n in fold["fit"]} & {n[:3] for n in fold["val"]}
        assert sorted(fold["fit"] + fold["val"] + fold["test"]) == sorted(NAMES)
    # a fold file records the plan's hash; a session changed after planning is refused by the fold step
    stream = tmp_path / "data" / "ds" / "P02_a" / "infant.feat.stream~"
    stream.write_bytes(stream.read_bytes())  # same values, new mtime
    with pytest.raises(evaluation.OptionError, match="session P02_a changed since the plan was made"):
        evaluation.run_fold(sessions, plan, 0)


def test_process_pool_folds_give_the_in_process_report_and_rerun_only_missing_folds(tmp_path, monkeypatch):
    write_sessions(tmp_path / "data")
    sessions, lmap = load(tmp_path / "data")
    common = dict(folds=3, grid=GRID, val_fraction=0.3, seed=3, inner_folds=2, groups=groups(sessions))
    inline = pipeline.evaluate(sessions, lmap, CONFIG, tmp_path / "inline", **common)
    pooled = pipeline.evaluate(sessions, lmap, CONFIG, tmp_path / "pool", executor="local", workers=2, **common)
    a = (tmp_path / "inline" / "cv_report.json").read_text()
    b = (tmp_path / "pool" / "cv_report.json").read_text()
    assert a == b  # every score, interval, baseline and summary line identical
    assert inline.summary == pooled.summary and inline.folds[0].fitted is not None and pooled.folds[0].fitted is None
    report = json.loads(b)
    assert len(report["folds"]) == 3 and sorted(report["per_session"]) == sorted(NAMES)
    assert {p.name for p in (tmp_path / "pool").glob("*.png")} == {p.name for p in (tmp_path / "inline").glob("*.png")}
    cal = report["calibration"]  # pooled over the test folds, from the fold files as from the in-process folds
    assert 0 <= cal["ece_after"] <= 1 and 0 <= cal["ece_before"] <= 1 and len(cal["temperatures"]) == len(NAMES)  # one per test session
    assert cal["review"]["threshold"] == 0.7 and sum(cal["bins_after"]["count"]) == cal["review"]["frames"]
    assert all("calibration" in f for f in report["folds"]) and (tmp_path / "pool" / "reliability.png").is_file()
    folds_dir = tmp_path / "pool" / "folds"
    assert sorted(p.name for p in folds_dir.glob("[!.]*.json")) == ["fold_0.json", "fold_1.json", "fold_2.json", "plan.json"]
    plan = json.loads((folds_dir / "plan.json").read_text())
    assert {json.loads((folds_dir / f"fold_{k}.json").read_text())["plan_sha256"] for k in range(3)} == {plan["sha256"]}

    ran = []
    real_run_local = batch._run_local

    def spy(job, items, *args, **kwargs):
        ran.append(list(items))
        return real_run_local(job, items, *args, **kwargs)

    monkeypatch.setattr(batch, "_run_local", spy)
    pipeline.evaluate(sessions, lmap, CONFIG, tmp_path / "pool", executor="local", **common)
    assert ran == []  # complete: nothing runs again
    (folds_dir / "fold_1.json").write_text("{ cut short")  # a fold file changed by someone else: never replaced
    with pytest.raises(pipeline.FoldsFailed, match="fold_1.json: exists and was not written by nova-infant"):
        pipeline.evaluate(sessions, lmap, CONFIG, tmp_path / "pool", executor="local", **common)
    assert (folds_dir / "fold_1.json").read_text() == "{ cut short"
    (folds_dir / "fold_1.json").unlink()  # the person removes it: the re-run computes that fold only
    ran.clear()
    pipeline.evaluate(sessions, lmap, CONFIG, tmp_path / "pool", executor="local", **common)
    assert ran == [[1]] and (tmp_path / "pool" / "cv_report.json").read_text() == a
    pipeline.evaluate(sessions, lmap, CONFIG, tmp_path / "pool", executor="local", **{**common, "seed": 4})
    assert ran[-1] == [0, 1, 2]  # another plan: every fold again


def test_a_failed_fold_is_reported_and_a_rerun_runs_only_that_fold(tmp_path, monkeypatch):
    write_sessions(tmp_path / "data")
    sessions, lmap = load(tmp_path / "data")
    plan = evaluation.plan_folds(sessions, lmap.target.names, CONFIG, 3, None, 0.3, 0)
    broken = json.loads(json.dumps(plan))
    broken["folds"][1]["fit"].append("ghost")  # fold 1 cannot find a session; same hash, so the others count
    folds_dir = tmp_path / "cv" / "folds"
    with pytest.raises(pipeline.FoldsFailed, match=r"1 of 3 folds failed \(fold 1: OptionError: fold plan: fold 1 names session ghost, "
                                                         r"which the plan does not list\)"):
        pipeline.run_folds(sessions, broken, folds_dir, "local", workers=1, retries=0)
    assert sorted(p.name for p in folds_dir.glob("fold_*.json")) == ["fold_0.json", "fold_2.json"]
    ran = []
    real_run_local = batch._run_local
    monkeypatch.setattr(batch, "_run_local", lambda job, items, *a, **k: ran.append(list(items)) or
                        real_run_local(job, items, *a, **k))
    folds = pipeline.run_folds(sessions, plan, folds_dir, "local")
    assert ran == [[1]] and [f.index for f in folds] == [0, 1, 2]
    assert evaluation.combine_folds(plan, folds).report() == \
        evaluation.combine_folds(plan, [evaluation.run_fold(sessions, plan, k) for k in range(3)]).report()


def test_cli_cv_executor_local(tmp_path, capsys):
    write_sessions(tmp_path / "data")
    common = ["icep", "cv", "--root", str(tmp_path / "data"), "--dataset", "ds", "--streams", "infant.feat",
              "--model", "mlp", "--hidden", "8", "--epochs", "2", "--window", "20", "--stride", "10", "--folds", "2",
              "--groups", r"^P\d+"]
    assert main(common + ["--out", str(tmp_path / "a")]) == 0
    assert main(common + ["--out", str(tmp_path / "b"), "--executor", "local"]) == 0
    assert (tmp_path / "a" / "cv_report.json").read_text() == (tmp_path / "b" / "cv_report.json").read_text()
    assert (tmp_path / "b" / "folds" / "fold_1.json").is_file() and not (tmp_path / "a" / "folds").exists()
    assert main(common + ["--out", str(tmp_path / "c"), "--executor", "local", "--workers", "0"]) == 2
    assert "option workers / threads-per-worker: expected >= 1" in capsys.readouterr().err
