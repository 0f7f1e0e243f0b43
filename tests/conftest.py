"""Shared fixtures: tiny random checkpoints of the real classes, real sessions built from packages, and media
with marks at known times for alignment tests. Nothing here touches the network."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test must never reach the hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # nova_rules


# ---------------------------------------------------------------- every output the suite writes must open in NOVA

_NOVA_CHECKED: set = set()
_NOVA_EXEMPT: list = []


def _nova_violations(folder) -> list[str]:
    from nova_rules import check_file, nova_outputs

    found = []
    for path in nova_outputs(folder):
        if path in _NOVA_CHECKED or any(path.is_relative_to(root) for root in _NOVA_EXEMPT):
            continue
        _NOVA_CHECKED.add(path)
        found += [f"{path}: {problem}" for problem in check_file(path)]
    return found


@pytest.fixture(autouse=True)
def nova_rules_hold_for_this_tests_outputs(request, tmp_path):
    """After each test: every .trainer/.stream/.annotation in its ``tmp_path`` passes NOVA's rules (nova_rules.py),
    unless the test is marked ``nova_invalid_files`` (it writes broken files on purpose)."""
    yield
    if request.node.get_closest_marker("nova_invalid_files"):
        _NOVA_EXEMPT.append(tmp_path)
        return
    problems = _nova_violations(tmp_path)
    assert not problems, "NOVA could not open these outputs as meant:\n" + "\n".join(problems)


@pytest.fixture(scope="session", autouse=True)
def nova_rules_hold_for_every_output(tmp_path_factory):
    """At the end of the session: the same check over every folder the suite wrote (module/session fixtures too)."""
    yield
    problems = _nova_violations(tmp_path_factory.getbasetemp())
    assert not problems, "NOVA could not open these outputs as meant:\n" + "\n".join(problems)


@pytest.fixture
def one_torch_thread():
    """Tiny models run fastest on one torch thread (and the test machine is shared); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_dinov2(tmp_path_factory):
    """Directory of a tiny random ``Dinov2Model`` + ``BitImageProcessor`` (hidden 32, 2 layers, patch 14)."""
    from nova_infant.core.backbones import save_standin

    return str(save_standin("dinov2", tmp_path_factory.mktemp("dinov2-tiny")))


@pytest.fixture(scope="session")
def tiny_w2v_bert(tmp_path_factory):
    """Directory of a tiny random ``Wav2Vec2BertModel`` + ``SeamlessM4TFeatureExtractor`` (hidden 32, 2 layers)."""
    from nova_infant.core.backbones import save_standin

    return str(save_standin("w2v-bert", tmp_path_factory.mktemp("w2v-bert-tiny")))


@pytest.fixture(scope="session")
def carphone_session(tmp_path_factory):
    """A real NOVA file-mode session: carphone face video (29.97 fps, 120 frames) + LibriVox speech WAV.

    Returns ``{"root", "dataset", "session", "dir", "video", "audio"}``.
    """
    from nova_infant.core.sample_media import build_session

    root = tmp_path_factory.mktemp("nova-data")
    paths = build_session(root, dataset="demo", session="carphone01", mux_audio=True)
    return {"root": root, "dataset": "demo", "session": "carphone01", **paths}


def marked_video(path, fps: float, n_frames: int, marks_ms=(), size=(64, 48)):
    """Write a dark video whose frames on screen at each time in ``marks_ms`` are bright white.

    Returns the set of marked frame indices (frame i is on screen during [i/fps, (i+1)/fps)).
    """
    from nova_infant.core.sample_media import write_video

    width, height = size
    frames = np.full((n_frames, height, width, 3), 16, np.uint8)
    marked = {int(np.floor(t * fps / 1000.0 + 1e-9)) for t in marks_ms}
    for i in marked:
        frames[i] = 235
    write_video(path, frames, fps)
    return marked


def burst_audio(path, sample_rate: int, duration_ms: float, burst_ms: tuple[float, float], channels: int = 1):
    """Write near-silence with a loud 440 Hz burst during ``burst_ms`` (start, end) in ms; returns the path."""
    from nova_infant.core.sample_media import write_wav

    n = int(round(duration_ms * sample_rate / 1000.0))
    t = np.arange(n) / sample_rate
    signal = 0.001 * np.random.default_rng(0).standard_normal(n)
    inside = (t * 1000 >= burst_ms[0]) & (t * 1000 < burst_ms[1])
    signal[inside] += 0.8 * np.sin(2 * np.pi * 440 * t[inside])
    if channels > 1:
        signal = np.stack([signal] * channels, axis=1)
    return write_wav(path, signal.astype(np.float32), sample_rate)


@pytest.fixture(scope="session")
def donateacry():
    """The Donate-a-cry corpus folder (``$NOVA_INFANT_DONATEACRY`` or ``../shared/data/donateacry`` beside the
    repository); tests that need real infant cries skip with the reason when a clone has no shared data."""
    from nova_infant.taggers.crying_data import CORPUS_ENV, corpus_dir

    root = corpus_dir()
    if not (root / "manifest.csv").is_file():
        pytest.skip(f"Donate-a-cry corpus not found at {root} (set {CORPUS_ENV}); real-cry checks need it")
    return root


def active_outputs(trainer_path) -> list[dict]:
    """The outputs a ``.trainer`` marks ``default_active`` -- what NOVA requests when the user changes nothing:
    [{"id", "data"}] in file order."""
    import xml.etree.ElementTree as ET

    ios = ET.parse(trainer_path).getroot().find("meta").findall("io")
    return [{"id": io.get("id"), "data": io.get("data")} for io in ios
            if io.get("type") == "output" and io.get("default_active", "True").lower() == "true"]


def run_default_request(tmp_path, trainer: str, inputs: list[dict], session_dir, options: dict | None = None):
    """Run ``du-process`` on a file-mode session with exactly the outputs ``trainer`` marks active (file names
    ``<session_dir>/out.<id>.<stream|annotation>``). Returns (CompletedProcess, {output id: path})."""
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from nova_infant.discover.registry import write_all_trainers

    repo = Path(__file__).resolve().parents[1]
    cml = tmp_path / "cml"
    shutil.copytree(repo / "trainers" / "nova_infant", cml, dirs_exist_ok=True)
    write_all_trainers(cml)
    data, paths = list(inputs), {}
    for out in active_outputs(repo / "trainers" / "nova_infant" / trainer):
        kind = "stream" if out["data"].startswith("stream") else "annotation"
        src = "file:stream:ssistream" if kind == "stream" else f"file:annotation:{out['data'].split(':')[1].lower()}"
        paths[out["id"]] = Path(session_dir) / f"out.{out['id']}.{kind}"
        data.append({"id": out["id"], "type": "output", "src": src, "uri": str(paths[out["id"]])})
    cmd = [os.path.join(os.path.dirname(sys.executable), "du-process"), "--trainer_file_path", trainer,
           "--cml_dir", str(cml), "--cache_dir", str(tmp_path / "c"), "--tmp_dir", str(tmp_path / "t"),
           "--log_dir", str(tmp_path / "l"), "--dataset", "demo", "--sessions", '["carphone01"]',
           "--data", json.dumps(data), "--options", json.dumps(options or {})]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600), paths
