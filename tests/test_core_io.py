"""Shared pieces: the frame grid, media decoding errors, SSI stream round trip, segments, .trainer files."""

import numpy as np
import pytest

from nova_infant.core import annotations, atomic, streams, trainer_files
from nova_infant.core import grid as timing
from nova_infant.core.errors import AudioDecodeError, OptionError, StreamError, TrainerFileError, VideoDecodeError
from nova_infant.core.media import VideoSource, read_audio


def test_grid_has_floor_duration_over_step_rows_at_29_97_fps():
    grid = timing.frame_grid(120 * 1000 / 29.97, 1000 / 29.97)
    assert grid.n_frames == 120
    assert timing.frame_grid(4000.0, 1000 / 29.97).n_frames == 119
    assert timing.frame_grid(4004.0, 40).n_frames == 100
    np.testing.assert_allclose(timing.frame_grid(100, 40).centres_ms(), [20, 60])


@pytest.mark.parametrize("text,expected", [("40ms", 40.0), ("0.04s", 40.0), ("25fps", 40.0), (40, 40.0), ("33.3", 33.3)])
def test_step_option_parses_units(text, expected):
    assert timing.parse_step_ms(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", [0, "0ms", -5, "fast"])
def test_zero_or_garbage_step_is_an_option_error(bad):
    with pytest.raises(OptionError):
        timing.parse_step_ms(bad)


def test_video_step_uses_native_rate():
    assert timing.parse_step_ms("video", native_fps=29.97) == pytest.approx(33.3667, abs=1e-3)


def test_truncated_video_is_reported_with_its_path(carphone_session, tmp_path):
    data = carphone_session["video"].read_bytes()
    bad = tmp_path / "truncated.mp4"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError, match="truncated.mp4"):
        VideoSource(str(bad))


def test_non_video_file_is_a_decode_error(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(VideoDecodeError, match="notes.mp4: cannot open as video"):
        VideoSource(str(bad))


def test_video_without_audio_track_is_a_clear_audio_error(tmp_path):
    from nova_infant.core.sample_media import carphone_path

    with pytest.raises(AudioDecodeError, match="has no audio track"):
        read_audio(carphone_path())


def test_stereo_44k1_audio_is_downmixed_and_resampled(tmp_path):
    from nova_infant.core.sample_media import write_wav

    t = np.arange(44100) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 220 * t), -np.sin(2 * np.pi * 220 * t) * 0.5], axis=1) * 0.5
    audio, sr = read_audio(str(write_wav(tmp_path / "s.wav", stereo, 44100)))
    assert sr == 16000 and audio.shape == (16000,) and audio.dtype == np.float32
    # (L + R) / 2 = 0.125 sin: the downmix halves the difference of the channels
    assert 0.10 < np.abs(audio[1000:-1000]).max() < 0.15


def test_ssi_stream_round_trips_through_discover_utils(tmp_path):
    data = np.random.default_rng(0).standard_normal((50, 6)).astype(np.float64)
    stream = streams.make_ssi_stream(data, 29.97, "feature;video;dinov2", [f"d{i}" for i in range(6)],
                                      custom_meta={"weights": "untrained-stand-in"})
    path = streams.write_ssi_stream(stream, tmp_path / "new" / "infant.dinov2.stream")
    loaded = streams.load_ssi_stream(path)
    assert loaded.data.dtype == np.float32 and loaded.data.shape == (50, 6)
    assert loaded.meta_data.sample_rate == pytest.approx(29.97)
    np.testing.assert_allclose(loaded.data, data.astype(np.float32))
    view = streams.open_ssi_stream(path)
    assert view.media_type == "feature;video;dinov2" and view.meta["weights"] == "untrained-stand-in"
    assert [p.name for p in path.parent.iterdir()] and not any(p.name.startswith(".partial") for p in path.parent.iterdir())


def test_stream_with_nan_rows_is_refused():
    data = np.zeros((5, 2), np.float32)
    data[3, 1] = np.nan
    with pytest.raises(StreamError, match="1 rows hold NaN"):
        streams.make_ssi_stream(data, 25, "feature", ["a", "b"])


@pytest.mark.nova_invalid_files  # broken on purpose
def test_truncated_stream_data_is_reported(tmp_path):
    stream = streams.make_ssi_stream(np.ones((10, 3)), 25, "feature", ["a", "b", "c"])
    path = streams.write_ssi_stream(stream, tmp_path / "x.stream")
    with open(str(path) + "~", "r+b") as handle:
        handle.truncate(40)
    with pytest.raises(StreamError, match="header announces 10 rows"):
        streams.open_ssi_stream(path)


def test_frames_merge_into_segments_with_mean_conf():
    labels = np.array([0, 0, 1, 1, 1, 2, 0])
    conf = np.array([1.0, 0.5, 0.9, 0.9, 0.6, 0.7, 0.2])
    seg = annotations.frames_to_segments(labels, 40, conf, skip_ids=[2])
    assert seg["from"].tolist() == [0, 80, 240] and seg["to"].tolist() == [80, 200, 280]
    assert seg["id"].tolist() == [0, 1, 0]
    np.testing.assert_allclose(seg["conf"], [0.75, 0.8, 0.2], rtol=1e-6)


def test_written_trainer_is_listed_as_trained_and_keeps_contexts(tmp_path):
    spec = trainer_files.TrainerSpec(script="x.py", create="X", description="d", category="Feature",
                                     io=[trainer_files.TrainerIO("input", "video", "stream:Video", "video"),
                                         trainer_files.TrainerIO("output", "feat", "stream:SSIStream:dinov2")],
                                     options=[("model", "STRING", "facebook/dinov2-large"), ("bf16", "BOOL", True)],
                                     frame_step_ms=40, left_context_ms=50, right_context_ms=50)
    trainer = trainer_files.read_trainer(trainer_files.write_trainer(tmp_path / "x.trainer", spec))
    assert trainer.info_trained is True
    assert (trainer.meta_frame_step, trainer.meta_left_ctx, trainer.meta_right_ctx) == (40, 50, 50)
    assert trainer.model_optstr == "{model:STRING:facebook/dinov2-large};{bf16:BOOL:True}"
    assert [io.io_id for io in trainer.meta_io] == ["video", "feat"]


def test_option_defaults_with_colons_are_refused():
    with pytest.raises(TrainerFileError, match="NOVA cannot parse"):
        trainer_files.option_string([("model", "STRING", "C:/weights")])


@pytest.mark.nova_invalid_files  # broken on purpose
def test_malformed_trainer_names_the_file(tmp_path):
    bad = tmp_path / "broken.trainer"
    bad.write_text("<trainer><info")
    with pytest.raises(TrainerFileError, match="broken.trainer: malformed"):
        trainer_files.read_trainer(bad)


def test_atomic_outputs_get_the_umask_permissions_not_the_staging_ones(tmp_path):
    """Files and folders staged with mkstemp/mkdtemp (0600/0700) must end as open()/mkdir() would make them, so a
    lab's other accounts can read the outputs."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        with atomic.atomic_file(tmp_path / "report.json") as staged:
            staged.write_text("{}")
        with atomic.atomic_dir(tmp_path / "bundle", kind="test") as folder:
            (folder / "config.json").write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "report.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "bundle").stat().st_mode) == 0o755


def test_iter_batches_gives_the_frames_read_gives_with_repeats_and_a_short_last_batch(carphone_session):
    video = VideoSource(str(carphone_session["video"]))
    picks = [0, 5, 5, 119, 60]
    batches = list(video.iter_batches(picks, 2, prefetch=1))
    assert [b[0].tolist() for b in batches] == [[0, 5], [5, 119], [60]]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), video.read(picks))


def test_a_decode_error_of_the_prefetch_thread_is_raised_in_the_consumer_after_the_good_batches(carphone_session):
    video = VideoSource(str(carphone_session["video"]))
    seen = []
    with pytest.raises(VideoDecodeError, match="cannot decode frame 500 of 120"):
        for idx, _ in video.iter_batches([0, 1, 500], 2):
            seen.append(idx.tolist())
    assert seen == [[0, 1]]


def test_leaving_a_prefetched_loop_early_stops_the_worker_before_it_makes_everything():
    import threading

    from nova_infant.core.prefetch import prefetched

    made = []

    def make():
        for k in range(1000):
            made.append(k)
            yield k

    before = threading.active_count()
    items = prefetched(make, prefetch=2)
    assert [next(items), next(items)] == [0, 1]
    items.close()
    assert threading.active_count() == before
    assert len(made) <= 5
