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
    shutil.copytree(REPO_TRAINER_DIR, cml / "nova_infant", ignore=shutil.ignore_patterns("__pycache__"))
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
