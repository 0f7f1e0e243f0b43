"""Frame times from the container's timestamps (PTS): a variable-frame-rate clip (10 fps, then 30 fps) and streams
that start after the container's start land on the right rows of the session grid (docs/alignment.md)."""

from fractions import Fraction

import numpy as np
import pytest

from nova_infant.core.media import VideoSource, read_audio

TB = Fraction(1, 90000)


def _level(i: int) -> int:
    """Grey level that marks frame ``i`` (distinct after H.264 coding: 6 levels apart)."""
    return 16 + 6 * i


def write_timed_video(path, times_s, audio=None, audio_start_s=0.0, audio_rate=16000):
    """Write an H.264 mp4 whose frame ``i`` is shown at ``times_s[i]`` (explicit PTS) and is flat grey
    ``_level(i)``; with ``audio`` (float32 mono) an AAC track starting at ``audio_start_s`` is muxed in."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.time_base = video.codec_context.time_base = TB
        track = None
        if audio is not None:  # every stream is added before the first packet is muxed
            track = container.add_stream("aac", rate=audio_rate)
            track.layout = "mono"
        for i, t in enumerate(times_s):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), _level(i), np.uint8), format="rgb24")
            frame.pts, frame.time_base = int(round(t / TB)), TB
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if track is not None:
            offset = int(round(audio_start_s * audio_rate))
            for pos in range(0, len(audio), 1024):
                chunk = av.AudioFrame.from_ndarray(audio[None, pos:pos + 1024], format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = audio_rate, offset + pos
                for packet in track.encode(chunk):
                    container.mux(packet)
            for packet in track.encode():
                container.mux(packet)
    return path


VFR_TIMES = [i / 10 for i in range(10)] + [1 + i / 30 for i in range(30)]  # 10 fps for 1 s, then 30 fps for 1 s


def _expected_frames(times_s, centres_ms):
    """Frame on screen at each time: the last one whose PTS is at or before it (frame 0 before the first)."""
    pts_ms = np.asarray(times_s) * 1000
    return np.clip(np.searchsorted(pts_ms, centres_ms, side="right") - 1, 0, len(pts_ms) - 1)


def _decoded_frame_numbers(path, frame_indices):
    """Which marked frame each decoded index shows (grey level -> frame number)."""
    frames = VideoSource(str(path)).read(list(frame_indices))
    return np.round((frames[:, 24, 32, 0].astype(float) - 16) / 6).astype(int)


def test_vfr_frames_are_placed_by_their_timestamps(tmp_path):
    path = write_timed_video(tmp_path / "vfr.mp4", VFR_TIMES)
    info = VideoSource(str(path)).info
    assert info.variable_rate and info.n_frames == 40
    assert info.duration_ms == pytest.approx(2000, abs=0.1)
    assert np.allclose(info.frame_starts_ms(), np.asarray(VFR_TIMES) * 1000, atol=0.01)

    centres = (np.arange(50) + 0.5) * 40.0                            # a 40 ms session grid over 2 s
    expected = _expected_frames(VFR_TIMES, centres)
    placed = info.frame_at_ms(centres)
    assert np.array_equal(placed, expected)
    # the decoded picture of every row is the frame shown at that time (marks survive coding)
    assert np.array_equal(_decoded_frame_numbers(path, placed), expected)
    # index / average fps (the old rule) would put rows up to hundreds of ms off: this clip tells them apart
    by_average_fps = np.clip(np.floor(centres * info.fps / 1000), 0, 39).astype(int)
    assert np.abs(np.asarray(VFR_TIMES)[by_average_fps] * 1000 - np.asarray(VFR_TIMES)[expected] * 1000).max() > 300


def test_dinov2_rows_of_a_vfr_clip_show_the_frame_on_screen(tmp_path, tiny_dinov2, one_torch_thread):
    from nova_infant.features.dinov2_pca import extract_dinov2

    path = write_timed_video(tmp_path / "vfr.mp4", VFR_TIMES)
    features = extract_dinov2(str(path), tiny_dinov2, size=28, k=2, pca="frame", output="cls", frame_step="40ms",
                              batch_size=8, device="cpu", bf16=False)
    centres = features.grid.centres_ms()
    assert features.grid.n_frames == 50
    assert np.array_equal(features.row_frames, _expected_frames(VFR_TIMES, centres))
    # rows on one frame share its CLS token; rows on different (differently grey) frames do not
    same = features.row_frames[:-1] == features.row_frames[1:]
    deltas = np.abs(np.diff(features.cls, axis=0)).max(axis=1)
    assert np.all(deltas[same] == 0) and np.all(deltas[~same] > 0)


def test_a_video_stream_starting_after_the_audio_is_placed_at_its_start(tmp_path):
    rate = 16000
    audio = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate)).astype(np.float32)
    times = [0.5 + i / 25 for i in range(25)]                        # video from 500 ms, audio from 0 ms
    path = write_timed_video(tmp_path / "offset.mp4", times, audio=audio)
    info = VideoSource(str(path)).info
    assert info.start_ms == pytest.approx(500, abs=0.01) and not info.variable_rate
    assert info.duration_ms == pytest.approx(1500, abs=0.01)
    centres = (np.arange(50) + 0.5) * 30.0                            # centres never on a frame boundary
    expected = _expected_frames(times, centres)
    assert np.array_equal(info.frame_at_ms(centres), expected)
    assert expected[17] == 0 and expected[18] == 1 and expected[34] == 13  # 525 ms: frame 0, 555 ms: 1, 1035 ms: 13
    # the stream's own clock (offset dropped, as decord reports it) would be 500 ms early
    assert np.array_equal(np.clip(np.floor(centres[18:] / 40), 0, 24), expected[18:]) is False
    assert np.array_equal(_decoded_frame_numbers(path, info.frame_at_ms(centres)), expected)


def test_an_audio_track_starting_late_is_padded_to_its_start(tmp_path):
    rate = 16000
    audio = (0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    path = write_timed_video(tmp_path / "late_audio.mp4", [i / 25 for i in range(40)], audio=audio, audio_start_s=0.5)
    samples, sr = read_audio(str(path), 16000)
    envelope = np.abs(samples)
    assert sr == 16000 and len(samples) >= int(1.45 * rate)
    assert envelope[: int(0.44 * rate)].max() < 0.01                   # nothing before the track starts
    assert envelope[int(0.52 * rate): int(1.4 * rate)].mean() > 0.1    # the tone from 500 ms on


def test_emotion_every_frame_samples_at_the_frame_timestamps(tmp_path, monkeypatch):
    from nova_infant.taggers import emotion

    class NoFaces:
        def detect(self, frame):
            return []

    monkeypatch.setitem(emotion._MODELS, "det", NoFaces())
    monkeypatch.setitem(emotion._MODELS, "fer", None)
    path = write_timed_video(tmp_path / "vfr.mp4", VFR_TIMES)
    result = emotion.analyse_faces(str(path), sample_fps="all")
    assert np.allclose(result["sample_ms"], np.asarray(VFR_TIMES) * 1000, atol=0.01)
    sampled = emotion.analyse_faces(str(path), sample_fps="4")           # 0, 250, 500, ... ms
    assert np.allclose(sampled["sample_ms"], np.arange(0, 2000, 250))
