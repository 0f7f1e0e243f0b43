"""``nova-infant batch`` on real file-mode sessions: requests from the trainer, provenance (skip what is up to date,
re-run what changed), a failed session reported while the rest complete, the local process pool."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from nova_infant.core import batch
from nova_infant.core.batch import ModuleJob, build_request, run_batch, run_session
from nova_infant.core.dataset_sessions import sessions_in_file, sessions_in_root
from nova_infant.discover.registry import REPO_TRAINER_DIR
from nova_infant.core.errors import NovaInfantError
from nova_infant.core.streams import load_ssi_stream

W2V_TRAINER = str(REPO_TRAINER_DIR / "w2v_bert.trainer")


@pytest.fixture()
def dataset(tmp_path, carphone_session):
    """Three sessions of the real carphone/LibriVox sample under ``<root>/ds``; s3 has no audio."""
    root = tmp_path / "data"
    for name in ("s1", "s2", "s3"):
        shutil.copytree(carphone_session["dir"], root / "ds" / name)
    (root / "ds" / "s3" / "session.audio.wav").unlink()
    return root


def _job(root, tiny_w2v_bert, **options):
    request = build_request(W2V_TRAINER, root, role="session")
    return ModuleJob(W2V_TRAINER, "ds", request, {"model": tiny_w2v_bert, "device": "cpu", "frame_step": "40ms",
                                                   **options}, str(root / ".state"))


def test_request_follows_the_trainer_and_refuses_unknown_io(tmp_path):
    request = build_request(REPO_TRAINER_DIR / "dinov2_pca.trainer", tmp_path, role="infant",
                            files={"dinov2_cls": "off", "dinov2_pca": "feat/infant.dinov2.stream"})
    by_id = {e["id"]: e for e in request}
    assert by_id["video"]["uri_template"] == f"{tmp_path.resolve()}/{{dataset}}/{{session}}/infant.video.mp4"
    assert by_id["video"]["src"] == "file:stream:video" and by_id["video"]["type"] == "input"
    assert by_id["dinov2_pca"]["uri_template"].endswith("{session}/feat/infant.dinov2.stream")
    assert by_id["dinov2_cls"]["active"] is False
    with pytest.raises(batch.BatchError, match="declares no io"):
        build_request(REPO_TRAINER_DIR / "dinov2_pca.trainer", tmp_path, files={"videos": "x.mp4"})
    with pytest.raises(batch.BatchError, match="cannot be off"):
        build_request(REPO_TRAINER_DIR / "dinov2_pca.trainer", tmp_path, files={"video": "off"})


def test_session_sources(tmp_path, dataset):
    assert sessions_in_root(dataset, "ds") == ["s1", "s2", "s3"]
    listing = tmp_path / "sessions.txt"
    listing.write_text("# coded in 2024\ns2\n\ns1  # twice below\ns1\n")
    assert sessions_in_file(listing) == ["s2", "s1"]
    with pytest.raises(batch.BatchError, match="no such dataset folder"):
        sessions_in_root(dataset, "nope")
    (tmp_path / "escape.txt").write_text("s1\n../../etc\n")
    with pytest.raises(batch.BatchError, match="escape.txt: session '../../etc': not a plain name"):
        sessions_in_file(tmp_path / "escape.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(batch.BatchError, match="names no session"):
        sessions_in_file(tmp_path / "empty.txt")


def test_provenance_skips_only_what_is_up_to_date(dataset, tiny_w2v_bert):
    job = _job(dataset, tiny_w2v_bert)
    out = dataset / "ds" / "s1" / "session.w2vbert.stream"
    assert batch.up_to_date(job, "s1") == (False, "no provenance record")
    result = run_session(job, "s1")
    assert result.status == "done", result.reason
    stream = load_ssi_stream(out)  # discover-utils' own reader
    assert stream.data.shape[0] == 100 and stream.meta_data.sample_rate == pytest.approx(25.0)
    assert batch.up_to_date(job, "s1") == (True, "up to date")

    assert batch.up_to_date(_job(dataset, tiny_w2v_bert, frame_step="20ms"), "s1")[1] == \
        "trainer, options, model files or version changed"
    audio = dataset / "ds" / "s1" / "session.audio.wav"
    os.utime(audio, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))  # an input edited after the run
    fresh, why = batch.up_to_date(job, "s1")
    assert not fresh and str(audio) in why
    assert run_session(job, "s1").status == "done" and batch.up_to_date(job, "s1")[0]
    data_file = out.with_name(out.name + "~")  # the stream's data file is tracked too
    os.utime(data_file, ns=(time.time_ns(), time.time_ns() + 9_000_000_000))
    assert batch.up_to_date(job, "s1") == (False, f"{data_file} changed or missing")
    out.unlink()
    assert not batch.up_to_date(job, "s1")[0]

    failed = run_session(job, "s3")
    assert failed.status == "failed"
    assert failed.reason == f"NovaInfantError: {dataset / 'ds' / 's3' / 'session.audio.wav'}: input file missing"
    assert not job.record_path("s3").exists()


def test_local_pool_completes_the_rest_and_a_rerun_does_no_work(dataset, tiny_w2v_bert, monkeypatch):
    job = _job(dataset, tiny_w2v_bert)
    results = run_batch(job, ["s1", "s2", "s3"], executor="local", workers=2, retries=1, progress=False,
                        gpus=["7"])  # no GPU here: the worker's CUDA_VISIBLE_DEVICES is recorded all the same
    assert [(r.session, r.status) for r in results] == [("s1", "done"), ("s2", "done"), ("s3", "failed")]
    assert "input file missing" in results[2].reason
    for name in ("s1", "s2"):
        assert load_ssi_stream(dataset / "ds" / name / "session.w2vbert.stream").data.shape[0] == 100
    records = [json.loads(job.record_path(name).read_text()) for name in ("s1", "s2")]
    assert {r["cuda_visible_devices"] for r in records} == {"7"}
    table = batch.format_table(results)
    assert table.splitlines()[-1] == "2 done, 0 skipped, 1 failed" and "s3" in table

    def must_not_run(*args, **kwargs):
        raise AssertionError("an up-to-date session was run again")

    monkeypatch.setattr(batch, "_run_local", must_not_run)
    again = run_batch(job, ["s1", "s2"], executor="local", workers=2, progress=False)
    assert [r.status for r in again] == ["skipped", "skipped"]


def test_cli_runs_and_reports(dataset, tiny_w2v_bert, capsys):
    from nova_infant.cli import main

    (dataset / "ds" / "s3").rename(dataset / "ds" / ".s3-unused")
    code = main(["batch", "w2v_bert", "--root", str(dataset), "--dataset", "ds", "--role", "session",
                 "--option", f"model={tiny_w2v_bert}", "--option", "device=cpu", "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 0 and out.splitlines()[-1] == "2 done, 0 skipped, 0 failed"
    assert (dataset / ".nova-infant-batch" / "ds" / "s2" / "w2v_bert.json").is_file()
    assert main(["batch", "nope", "--root", str(dataset), "--dataset", "ds"]) == 2
    assert "nope.trainer: no such trainer file" in capsys.readouterr().err
    with pytest.raises(NovaInfantError):
        sessions_in_file(dataset / "missing.txt")


def test_a_tagger_with_many_annotation_outputs_runs_and_is_recorded(dataset):
    """Any module: the audio-event tagger (a score stream and one discrete annotation per class) through the batch."""
    from nova_infant.core.annotations import read_annotation

    trainer = str(REPO_TRAINER_DIR / "audio_events.trainer")
    request = build_request(trainer, dataset, role="session")
    outputs = [e["id"] for e in request if e["type"] == "output"]
    assert "scores" in outputs and "speech" in outputs and len(outputs) > 5
    job = ModuleJob(trainer, "ds", request, {}, str(dataset / ".state"))
    results = run_batch(job, ["s1", "s3"], workers=1, retries=0, progress=False)
    assert [r.status for r in results] == ["done", "failed"]
    assert load_ssi_stream(dataset / "ds" / "s1" / "session.audio_events.stream").data.shape[0] == 100
    speech = read_annotation(dataset / "ds" / "s1" / "session.audio_event_speech.annotation")
    assert len(speech.data) >= 1  # LibriVox speech is found
    record = json.loads(job.record_path("s1").read_text())
    assert len(record["outputs"]) == 2 * len(outputs)  # every header and its ~ data file
    assert batch.up_to_date(job, "s1") == (True, "up to date")
