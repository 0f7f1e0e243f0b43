"""W2V-BERT extractor: timing of the hidden states, grid pooling, chunked = full pass, du-process, bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import burst_audio
from nova_infant.features import w2v_bert as W
from nova_infant.core.backbones import load_w2v_bert, save_standin
from nova_infant.cli import main
from nova_infant.discover.registry import REPO_TRAINER_DIR
from nova_infant.core.errors import AudioDecodeError, OptionError
from nova_infant.core.streams import load_ssi_stream, open_ssi_stream
from nova_infant.core.sample_media import carphone_path, librivox_speech, write_wav
from nova_infant.core.grid import frame_grid


@pytest.fixture(scope="module")
def backbone(tiny_w2v_bert):
    return load_w2v_bert(tiny_w2v_bert, device="cpu", bf16=False)


def _burst_rows(path, quiet_path, backbone, left_ms, right_ms, layer):
    """Rows whose features change by more than half the largest change when the burst is added."""
    burst, grid, _ = W.extract_w2v_bert(str(path), backbone, left_ms=left_ms, right_ms=right_ms, layer=layer)
    quiet, _, _ = W.extract_w2v_bert(str(quiet_path), backbone, left_ms=left_ms, right_ms=right_ms, layer=layer)
    change = np.linalg.norm(burst - quiet, axis=1)
    return np.flatnonzero(change > 0.5 * change.max()), change, grid


def _expected_rows(grid, burst_ms, left_ms, right_ms):
    """Rows whose pooling window [k*s - left, (k+1)*s + right) is at least half covered by the burst."""
    windows = grid.windows_ms(left_ms, right_ms)
    overlap = np.minimum(windows[:, 1], burst_ms[1]) - np.maximum(windows[:, 0], burst_ms[0])
    return np.flatnonzero(overlap >= 0.5 * (windows[:, 1] - windows[:, 0]))


# ---------------------------------------------------------------- timing and alignment


@pytest.mark.parametrize("rate,channels", [(16000, 1), (44100, 2), (48000, 1), (48000, 2)])
@pytest.mark.parametrize("context", [(0.0, 0.0), (50.0, 50.0)])
def test_burst_changes_the_rows_of_its_time_at_any_rate_and_channel_count(tmp_path, backbone, rate, channels, context):
    # layer 0 (feature projection) has no temporal mixing, so it shows the timing of the pipeline itself
    burst_ms = (1010.0, 1210.0)
    path = burst_audio(tmp_path / "burst.wav", rate, 4000, burst_ms, channels)
    quiet = burst_audio(tmp_path / "quiet.wav", rate, 4000, (0.0, 0.0), channels)
    changed, _, grid = _burst_rows(path, quiet, backbone, *context, layer=0)
    expected = _expected_rows(grid, burst_ms, *context)
    assert grid.n_frames == 100
    assert abs(changed.min() - expected.min()) <= 1 and abs(changed.max() - expected.max()) <= 1
    assert set(range(expected.min() + 1, expected.max())) <= set(changed.tolist())


def test_burst_peak_of_the_last_layer_lies_on_the_burst_rows(tmp_path, backbone):
    burst_ms = (2030.0, 2190.0)
    path = burst_audio(tmp_path / "burst.wav", 16000, 4000, burst_ms)
    quiet = burst_audio(tmp_path / "quiet.wav", 16000, 4000, (0.0, 0.0))
    changed, change, grid = _burst_rows(path, quiet, backbone, 50.0, 50.0, layer=-1)
    expected = _expected_rows(grid, burst_ms, 50.0, 50.0)
    assert expected.min() - 1 <= int(np.argmax(change)) <= expected.max() + 1
    far = np.abs(np.arange(grid.n_frames) - expected.mean()) > 10
    assert change[far].max() < 0.5 * change.max()


def test_hidden_state_j_is_dated_at_20j_plus_17_5_ms(tmp_path, backbone):
    # a click at 1000.0-1002.5 ms falls only into fbank windows [10i, 10i+25) ms with i = 98..100, i.e. stacked
    # steps j = 49 (997.5 ms) and j = 50 (1017.5 ms)
    n = 16000 * 2
    quiet = (0.001 * np.random.default_rng(1).standard_normal(n)).astype(np.float32)
    click = quiet.copy()
    click[16000:16040] += 0.9
    h_click = W.encode_session(click, backbone, layer=0)
    h_quiet = W.encode_session(quiet, backbone, layer=0)
    change = np.linalg.norm(h_click - h_quiet, axis=1)
    assert set(np.flatnonzero(change > 0.3 * change.max()).tolist()) == {49, 50}
    assert W.HIDDEN_OFFSET_MS + 49 * 1000 / W.HIDDEN_RATE_HZ == pytest.approx(997.5)


def test_audio_rows_match_video_rows_at_29_97_fps_through_the_reference(carphone_session, backbone):
    # the WAV lasts 4000 ms, the 120-frame 29.97 fps video 4004 ms: on the video's grid both give 120 rows
    audio = str(carphone_session["audio"])
    own, grid_own, _ = W.extract_w2v_bert(audio, backbone, step="29.97fps")
    ref, grid_ref, _ = W.extract_w2v_bert(audio, backbone, step="29.97fps", reference_duration_ms=120 * 1000 / 29.97)
    assert own.shape[0] == grid_own.n_frames == 119
    assert ref.shape[0] == grid_ref.n_frames == 120 and np.isfinite(ref).all()
    forced, grid, _ = W.extract_w2v_bert(audio, backbone, duration_ms=2000, reference_duration_ms=4004.0)
    assert grid.n_frames == forced.shape[0] == 50


def test_pooling_averages_the_states_in_each_window_and_fills_rows_past_the_end():
    hidden = np.arange(10, dtype=np.float32)[:, None] * np.array([[1.0, -2.0]], np.float32)  # 50 Hz, 0..200 ms
    grid = frame_grid(280.0, 40.0)  # 7 rows; states at 17.5 + 20 j ms
    pooled = W.pool_to_grid(hidden, 50.0, grid, left_ms=0, right_ms=0)
    # row 0 [0, 40): j=0 (17.5, 37.5 -> j=0,1); row 1 [40, 80): j=2,3; row 4 [160, 200): j=8,9
    np.testing.assert_allclose(pooled[:5, 0], [0.5, 2.5, 4.5, 6.5, 8.5])
    np.testing.assert_allclose(pooled[:, 1], -2 * pooled[:, 0])
    np.testing.assert_allclose(pooled[5:, 0], [9.0, 9.0])  # past the signal: the nearest (last) state
    wide = W.pool_to_grid(hidden, 50.0, grid, left_ms=50, right_ms=50)
    np.testing.assert_allclose(wide[1, 0], np.mean([0, 1, 2, 3, 4, 5]))  # [-10, 130): j = 0..5
    assert wide.dtype == np.float32 and np.isfinite(wide).all()


# ---------------------------------------------------------------- features and chunking


@pytest.mark.parametrize("n_samples", [560, 16000, 16000 * 3 + 123, 16000 * 3 + 283])
def test_blockwise_features_equal_one_call_of_the_feature_extractor(backbone, n_samples):
    audio = (0.1 * np.random.default_rng(n_samples).standard_normal(n_samples)).astype(np.float32)
    full = backbone.processor(audio, sampling_rate=16000, return_tensors="np")["input_features"][0]
    for block_s in (600.0, 0.5):
        np.testing.assert_allclose(W.seamless_features(audio, backbone.processor, block_s=block_s), full,
                                   rtol=1e-3, atol=1e-4)  # the extractor normalises in float32, we in float64


@pytest.mark.parametrize("n_steps", [1, 299, 300, 301, 1000, 1234])
def test_chunk_plan_keeps_every_step_once_in_equal_windows(n_steps):
    plan = W.plan_chunks(n_steps, chunk_steps=200, overlap_steps=50)
    kept = np.concatenate([np.arange(a, z) for a, z in zip(plan.keep_from, plan.keep_to)])
    assert kept.tolist() == list(range(n_steps))
    assert ((plan.starts >= 0) & (plan.starts + plan.length <= n_steps)).all()
    assert ((plan.keep_from >= plan.starts) & (plan.keep_to <= plan.starts + plan.length)).all()
    inner = (plan.starts > 0) & (plan.starts + plan.length < n_steps)
    assert (plan.keep_from[inner] - plan.starts[inner] >= 50).all()
    assert (plan.starts + plan.length - plan.keep_to >= np.minimum(50, n_steps - plan.keep_to)).all()
    # balanced: the encoder never runs more than one overlap per side beyond the audio
    assert len(plan.starts) * plan.length <= n_steps + len(plan.starts) * (2 * 50 + 1)


def test_chunked_encoder_matches_one_full_pass_within_two_percent(backbone):
    audio = librivox_speech(12.0, 16000)
    full = W.encode_session(audio, backbone, chunk_s=60, overlap_s=0)
    chunked = W.encode_session(audio, backbone, chunk_s=4, overlap_s=1, batch_size=3)
    assert chunked.shape == full.shape == (599, 32)
    error = np.linalg.norm(chunked - full, axis=1) / np.linalg.norm(full, axis=1)
    assert error.max() < 0.02  # measured 0.0075 (docs/w2v-bert.md)
    # without overlap the chunk edges lose their context: the overlap is what buys the tolerance
    bare = W.encode_session(audio, backbone, chunk_s=4, overlap_s=0)
    assert (np.linalg.norm(bare - full, axis=1) / np.linalg.norm(full, axis=1)).max() > 0.1
    np.testing.assert_allclose(W.encode_session(audio, backbone, chunk_s=4, overlap_s=1, batch_size=1), chunked,
                               atol=1e-4)


def test_full_pass_equals_the_model_called_directly(backbone):
    import torch

    audio = librivox_speech(3.0, 16000)
    inputs = backbone.processor(audio, sampling_rate=16000, return_tensors="pt")
    with torch.inference_mode():
        direct = backbone.model(input_features=inputs["input_features"], output_hidden_states=True)
    np.testing.assert_allclose(W.encode_session(audio, backbone), direct.last_hidden_state[0].numpy(), atol=1e-4)
    layer1 = direct.hidden_states[1][0].numpy()
    np.testing.assert_allclose(W.encode_session(audio, backbone, layer=1), layer1, atol=1e-4)


def test_layer_outside_the_model_is_an_option_error(backbone):
    with pytest.raises(OptionError, match="layer: must be -1 .last. or 0..2"):
        W.encode_session(librivox_speech(1.0, 16000), backbone, layer=3)


def test_audio_shorter_than_two_fbank_frames_is_refused(tmp_path, backbone):
    path = write_wav(tmp_path / "blip.wav", np.zeros(400, np.float32), 16000)
    with pytest.raises(AudioDecodeError, match="blip.wav: audio lasts 25.0 ms"):
        W.extract_w2v_bert(str(path), backbone, duration_ms=40)


# ---------------------------------------------------------------- command line and bad input


def test_cli_writes_a_stream_discover_utils_loads(tmp_path, tiny_w2v_bert):
    t = np.arange(int(2.5 * 44100)) / 44100
    stereo = 0.3 * np.stack([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 500 * t)], axis=1)
    wav = write_wav(tmp_path / "stereo.wav", stereo.astype(np.float32), 44100)
    out = tmp_path / "out" / "session.w2vbert.stream"  # <out>/<role>.w2vbert.stream, role "session" by default
    assert main(["run", "w2v-bert", "--audio", str(wav), "--out", str(out.parent), "--model", tiny_w2v_bert,
                 "--device", "cpu"]) == 0
    loaded = load_ssi_stream(out)
    assert loaded.data.shape == (62, 32) and loaded.data.dtype == np.float32  # floor(2500 / 40)
    assert loaded.meta_data.sample_rate == 25.0 and np.isfinite(loaded.data).all()
    view = open_ssi_stream(out)
    assert view.media_type == W.MEDIA_TYPE and view.meta["weights"] == "untrained-stand-in"
    assert view.meta["layer"] == "-1" and view.meta["model"] == tiny_w2v_bert


def test_video_without_audio_track_fails_in_one_line_and_writes_nothing(tmp_path, tiny_w2v_bert, capsys):
    assert main(["run", "w2v-bert", "--audio", carphone_path(), "--out", str(tmp_path), "--model", tiny_w2v_bert]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "carphone_pristine.mp4: file has no audio track" in err
    assert list(tmp_path.iterdir()) == []


def test_video_with_muxed_speech_is_read_as_audio(tmp_path, carphone_session, tiny_w2v_bert):
    out = tmp_path / "v.stream"  # the old command line (an alias of run w2v-bert) names the output file
    assert main(["w2v-bert", str(carphone_session["video"]), str(out), "--model", tiny_w2v_bert]) == 0
    assert open_ssi_stream(out).n_rows == 100  # 4004 ms of muxed audio on the 40 ms grid


@pytest.mark.parametrize("case", ["missing", "dinov2"])
def test_wrong_model_directory_fails_naming_it_and_writes_nothing(tmp_path, carphone_session, case, capsys):
    model = tmp_path / "models" / "nothere"
    if case == "dinov2":
        model = save_standin("dinov2", tmp_path / "models" / "dino")
    out = tmp_path / "out"
    assert main(["run", "w2v-bert", "--audio", str(carphone_session["audio"]), "--out", str(out), "--model",
                 str(model)]) == 2
    err = capsys.readouterr().err
    assert str(model) in err and ("no such model directory" in err or "holds a dinov2 checkpoint" in err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("step", ["0", "0ms", "0.0s"])
def test_frame_step_of_zero_fails_before_any_work(tmp_path, carphone_session, step, capsys):
    out = tmp_path / "out"
    assert main(["run", "w2v-bert", "--audio", str(carphone_session["audio"]), "--out", str(out), "--model",
                 str(tmp_path / "unused"), f"--frame-step={step}"]) == 2
    assert "frame step must be positive" in capsys.readouterr().err
    assert not out.exists()


# ---------------------------------------------------------------- DISCOVER


def _du_process(tmp_path, data, options, session="carphone01"):
    cmd = [sys.executable, "-m", "discover_utils.scripts.process",
           "--trainer_file_path", "w2v_bert.trainer", "--cml_dir", str(REPO_TRAINER_DIR),
           "--cache_dir", str(tmp_path / "c"), "--tmp_dir", str(tmp_path / "t"), "--log_dir", str(tmp_path / "l"),
           "--dataset", "demo", "--sessions", json.dumps([session]), "--data", json.dumps(data),
           "--options", json.dumps(options)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)



def test_du_process_file_mode_writes_the_session_stream(tmp_path, carphone_session, tiny_w2v_bert):
    folder = str(carphone_session["root"]) + "/{dataset}/{session}"
    out = carphone_session["dir"] / "session.w2vbert.stream"
    data = [{"id": "audio", "type": "input", "src": "file:stream:audio", "uri_template": folder + "/session.audio.wav"},
            {"id": "reference", "type": "input", "src": "file:stream:video",
             "uri_template": folder + "/infant.video.mp4"},
            {"id": "w2v_bert", "type": "output", "src": "file:stream:ssistream", "uri_template": str(out)}]
    # bf16=False: the option of trainers written before `precision` still means fp32
    run = _du_process(tmp_path, data, {"model": tiny_w2v_bert, "layer": "1", "bf16": "False"})
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    loaded = load_ssi_stream(out)  # discover-utils' own loader
    # the WAV lasts 4000 ms but the reference video 4004 ms: floor(4004 / 40) = 100 rows, like the video stream
    assert loaded.data.shape == (100, 32) and loaded.meta_data.sample_rate == 25.0
    assert np.isfinite(loaded.data).all() and loaded.data.std(axis=0).min() > 0
    meta = open_ssi_stream(out).meta
    assert meta["weights"] == "untrained-stand-in" and meta["layer"] == "1" and meta["type"] == W.MEDIA_TYPE
    assert meta["precision"] == "fp32"


def test_du_process_reports_a_video_without_audio_and_writes_no_stream(tmp_path, tiny_w2v_bert):
    out = tmp_path / "data" / "demo" / "s1" / "session.w2vbert.stream"
    data = [{"id": "audio", "type": "input", "src": "file:stream:audio", "uri": carphone_path()},
            {"id": "w2v_bert", "type": "output", "src": "file:stream:ssistream", "uri": str(out)}]
    run = _du_process(tmp_path, data, {"model": tiny_w2v_bert}, session="s1")
    assert run.returncode == 1
    assert "AudioDecodeError: " + carphone_path() + ": file has no audio track" in run.stdout + run.stderr
    assert not out.exists() and not (tmp_path / "data").exists()
