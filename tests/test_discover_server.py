"""End to end with a real DISCOVER server (PyPI ``hcai-discover``) and its default virtual-environment backend.

The test starts ``discover`` on localhost with ``DISCOVER_CML_DIR`` at a copy of our ``trainers/`` folder and sends
the forms NOVA sends (same field names and encodings, see ../shared/docs/discover-integration.md §0–§1): ``/cml_info``,
``/process``, ``/job_status``, ``/log``. DISCOVER builds the venv of ``trainers/nova_infant`` from its
``requirements.txt`` on first use (minutes: torch is installed into it), then runs ``du-process`` inside it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from nova_infant.discover.registry import REPO_TRAINER_DIR, TRAINERS

pytestmark = pytest.mark.slow

FINISHED, ERROR = 2, 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Discover:
    """A running DISCOVER server and the NOVA side of the conversation."""

    def __init__(self, url: str, root: Path):
        self.url, self.root = url, root

    def post(self, route: str, **form) -> requests.Response:
        return requests.post(f"{self.url}/{route}", data=form, timeout=60)

    def cml_info(self) -> dict:
        response = self.post("cml_info")
        response.raise_for_status()
        return response.json()

    def process(self, trainer: str, data: list[dict], options: dict, sessions: list[str], dataset: str = "demo",
                frame_size: str = "40", timeout_s: float = 1800) -> tuple[int, str]:
        """POST /process like NOVA's DISCOVER window, poll /job_status every second; return (status, log)."""
        job_id = f"test-{uuid.uuid4().hex[:8]}"
        form = {"jobID": job_id, "trainerFilePath": f"nova_infant\\{trainer}", "dataset": dataset,
                "sessions": json.dumps(sessions), "data": json.dumps(data), "options": json.dumps(options),
                "frameSize": frame_size, "leftContext": "0", "rightContext": "0"}
        assert self.post("process", **form).json()["success"] == "True"
        deadline = time.time() + timeout_s
        status = None
        while time.time() < deadline:
            status = self.post("job_status", jobID=job_id).json().get("status")
            if status in (FINISHED, ERROR, 4):
                break
            time.sleep(1)
        log = self.post("log", jobID=job_id).json().get("message", "")
        return status, log


@pytest.fixture(scope="module")
def discover(tmp_path_factory):
    """DISCOVER 1.1 on 127.0.0.1 with our trainers; torn down after the module."""
    pytest.importorskip("discover", reason="hcai-discover is installed by scripts/install.sh")
    root = tmp_path_factory.mktemp("discover")
    cml = root / "cml"
    shutil.copytree(REPO_TRAINER_DIR, cml / "nova_infant", ignore=shutil.ignore_patterns("__pycache__", "icep_models", "icep_*-*.trainer"))
    os.symlink(REPO_TRAINER_DIR.parents[1] / "modules", root / "modules")  # bootstrap finds ../../modules
    dirs = {name: root / name for name in ("data", "cache", "tmp", "log")}
    for folder in dirs.values():
        folder.mkdir()
    port = _free_port()
    exe = shutil.which("discover") or sys.executable
    cmd = ([exe] if exe.endswith("discover") else [exe, "-m", "discover.app"]) + [
        "--host", "127.0.0.1", "--port", str(port), "--cml_dir", str(cml), "--data_dir", str(dirs["data"]),
        "--cache_dir", str(dirs["cache"]), "--tmp_dir", str(dirs["tmp"]), "--log_dir", str(dirs["log"])]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    server_log = open(root / "server.log", "w")
    proc = subprocess.Popen(cmd, stdout=server_log, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            requests.post(f"{url}/cml_info", timeout=2)
            break
        except requests.ConnectionError:
            if proc.poll() is not None:
                raise RuntimeError(f"discover exited: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield Discover(url, root)
    proc.terminate()
    proc.wait(timeout=30)
    server_log.close()


def test_cml_info_lists_every_module_with_its_options(discover):
    info = discover.cml_info()
    listed = {Path(key.replace("\\", "/")).name: json.loads(value) for key, value in info["trainer_ok"].items()}
    assert not info["trainer_faulty"], info["trainer_faulty"]
    for stem in TRAINERS:
        trainer = listed[f"{stem}.trainer"]
        assert trainer["info_trained"] is True
        assert trainer["model_option_string"].startswith("{")
        assert json.loads(trainer["meta_io"]) if isinstance(trainer["meta_io"], str) else trainer["meta_io"]


@pytest.fixture(scope="module")
def sessions(discover, tmp_path_factory):
    """Two real sessions in NOVA's layout under DISCOVER's data dir, plus one whose video is truncated."""
    from nova_infant.core.backbones import save_standin
    from nova_infant.core.sample_media import build_session

    data = discover.root / "data"
    build_session(data, "demo", "carphone01")
    build_session(data, "demo", "carphone02", fps=25)
    broken = build_session(data, "demo", "broken01")
    video = broken["video"].read_bytes()
    broken["video"].write_bytes(video[: len(video) // 2])
    weights = tmp_path_factory.mktemp("weights")
    return {"data": data, "template": str(data / "{dataset}" / "{session}"),
            "dinov2": str(save_standin("dinov2", weights / "dinov2")),
            "w2v": str(save_standin("w2v-bert", weights / "w2v"))}


def _file(io_id, io_type, src, template, name, **extra):
    return {"id": io_id, "type": io_type, "src": src, "uri_template": f"{template}/{name}", "active": True, **extra}


def test_process_runs_the_dinov2_module_in_its_venv(discover, sessions):
    t = sessions["template"]
    status, log = discover.process(
        "dinov2_pca.trainer",
        [_file("video", "input", "file:stream:video", t, "infant.video.mp4"),
         _file("dinov2_pca", "output", "file:stream:ssistream", t, "infant.dinov2.stream")],
        {"model": sessions["dinov2"], "frame_step": "40ms"}, ["carphone01", "carphone02"])
    assert status == FINISHED, log[-3000:]
    from nova_infant.core.streams import load_ssi_stream

    for session, rows in (("carphone01", 100), ("carphone02", 120)):  # 4004 ms and 4800 ms at 40 ms
        stream = load_ssi_stream(sessions["data"] / "demo" / session / "infant.dinov2.stream")
        assert stream.data.shape == (rows, 1024)
    assert "Processing session (2/2)" in log  # du-process progress reaches NOVA's log view


def test_a_corrupt_session_fails_alone_with_a_clear_message(discover, sessions):
    t = sessions["template"]
    status, log = discover.process(
        "dinov2_pca.trainer",
        [_file("video", "input", "file:stream:video", t, "infant.video.mp4"),
         _file("dinov2_pca", "output", "file:stream:ssistream", t, "infant.dinov2bad.stream")],
        {"model": sessions["dinov2"], "output": "pca"}, ["carphone01", "broken01"])
    assert status == ERROR  # du-process exits 1 when any session failed
    assert "broken01/infant.video.mp4" in log  # the one-line error names the bad file
    assert (sessions["data"] / "demo" / "carphone01" / "infant.dinov2bad.stream").is_file()
    assert not (sessions["data"] / "demo" / "broken01" / "infant.dinov2bad.stream").exists()


def test_process_runs_both_taggers(discover, sessions):
    t = sessions["template"]
    status, log = discover.process(
        "audio_events.trainer",
        [_file("audio", "input", "file:stream:audio", t, "session.audio.wav"),
         _file("speech", "output", "file:annotation:discrete", t, "session.audio_event_speech.annotation"),
         _file("scores", "output", "file:stream:ssistream", t, "session.audio_events.stream")],
        {}, ["carphone01"])
    assert status == FINISHED, log[-3000:]
    status, log = discover.process(
        "emotion_tagger.trainer",
        [_file("video", "input", "file:stream:video", t, "infant.video.mp4"),
         _file("emotion", "output", "file:annotation:discrete", t, "infant.emotion.annotation"),
         _file("face_box", "output", "file:stream:ssistream", t, "infant.face_box.stream")],
        {}, ["carphone01"])
    assert status == FINISHED, log[-3000:]
    from discover_utils.data.handler.file_handler import FileHandler

    folder = sessions["data"] / "demo" / "carphone01"
    speech = FileHandler().load(folder / "session.audio_event_speech.annotation")
    assert len(speech.data) >= 1
    assert FileHandler().load(folder / "infant.face_box.stream").data.shape[0] == 100


def test_icep_training_job_yields_a_predictor_that_nova_lists_and_runs(discover):
    import numpy as np

    from nova_infant.icep.synthetic import context_task, write_session

    data = discover.root / "data"
    rng = np.random.default_rng(0)
    for name in ("S1", "S2", "S3", "S4"):
        x, y = context_task(240, 8, rng, cue=0.5)
        write_session(data, "ffsf", name, {"infant.feat": (x, 25.0, "feature;video;syn")}, y if name != "S4" else None, 40.0)
    t = str(data / "{dataset}" / "{session}")
    feature = _file("feature_0", "input", "file:stream:ssistream", t, "infant.feat.stream")
    labels = _file("labels", "input", "file:annotation:discrete", t, "infant.ICEP-R-infant.gold.annotation")
    status, log = discover.process("icep_train_infant_dinov2.trainer", [feature, labels],
                                   {"model_name": "server-test", "model": "mlp", "hidden": 8, "epochs": 3},
                                   ["S1", "S2", "S3"], dataset="ffsf")
    assert status == FINISHED, log[-3000:]
    listed = discover.cml_info()["trainer_ok"]
    key = next(k for k in listed if k.replace("\\", "/").endswith("nova_infant/icep_server-test.trainer"))
    assert json.loads(listed[key])["info_trained"] is True

    out = _file("annotation", "output", "file:annotation:discrete", t, "infant.ICEP-R-infant-merged.icep.annotation")
    status, log = discover.process(Path(key.replace("\\", "/")).name, [feature, out], {}, ["S4"], dataset="ffsf")
    assert status == FINISHED, log[-3000:]
    from discover_utils.data.handler.file_handler import FileHandler

    anno = FileHandler().load(data / "ffsf" / "S4" / "infant.ICEP-R-infant-merged.icep.annotation")
    assert anno.annotation_scheme.name == "ICEP-R-infant-merged" and len(anno.data) >= 1
