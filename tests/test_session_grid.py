"""One session grid for every module (issue 11): a 120 s session whose 29.97 fps video (3596 frames, 119986.7 ms)
and 44.1 kHz audio (120000 ms) end on different 40 ms rows. Both extractors and both taggers, given the same
sources, write the same number of rows (tiny random checkpoints stand in for the foundation weights)."""

from __future__ import annotations

import numpy as np
import pytest

from nova_infant.core.errors import OptionError
from nova_infant.core.grid import resolve_duration_ms, session_grid

FPS = 30000 / 1001
N_FRAMES = 3596  # 119986.65 ms: 2999 rows of 40 ms, the audio's 120 s give 3000


@pytest.fixture(scope="module")
def long_session(tmp_path_factory):
    from nova_infant.core.sample_media import carphone_frames, librivox_speech, write_video, write_wav

    folder = tmp_path_factory.mktemp("grid120") / "demo" / "long01"
    frames = np.concatenate([carphone_frames()] * 30)[:N_FRAMES]
    speech = librivox_speech(120.0, 44100)
    return {"video": str(write_video(folder / "infant.video.mp4", frames, FPS)),
            "audio": str(write_wav(folder / "session.audio.wav", speech, 44100))}


def test_priority_is_option_then_reference_then_session_then_own():
    assert resolve_duration_ms(1000.0, 500, 700.0, session_duration_ms=800.0) == 500.0
    assert resolve_duration_ms(1000.0, 0, 700.0, session_duration_ms=800.0) == 700.0
    assert resolve_duration_ms(1000.0, None, None, session_duration_ms=800.0) == 800.0
    assert resolve_duration_ms(1000.0, "", None) == 1000.0
    assert session_grid("40ms", 1000.0, duration_ms=2000).n_frames == 50
    with pytest.raises(OptionError, match="clip.wav: .*holds no row"):
        session_grid(40, 30.0, source="clip.wav")
    with pytest.raises(OptionError, match="clip.wav: duration_ms must be positive"):
        session_grid(40, 1000.0, duration_ms=-5, source="clip.wav")


def test_grid_reads_the_duration_of_a_reference_file(long_session):
    assert session_grid(40, 120000.0, reference=long_session["video"]).n_frames == 2999
    assert session_grid(40, long_session["audio"]).n_frames == 3000


@pytest.mark.parametrize("sources,rows", [({"reference": "video"}, 2999), ({"session_duration_ms": 120000.0}, 3000),
                                          ({"duration_ms": 60000}, 1500)])
def test_both_extractors_and_both_taggers_write_the_same_rows(long_session, tiny_dinov2, tiny_w2v_bert,
                                                              one_torch_thread, sources, rows):
    from nova_infant.core.backbones import load_dinov2, load_w2v_bert
    from nova_infant.core.media import media_duration_ms
    from nova_infant.features.dinov2_pca import extract_dinov2
    from nova_infant.features.w2v_bert import extract_w2v_bert
    from nova_infant.taggers.audio_events import tag_audio_events
    from nova_infant.taggers.emotion import tag_emotion

    kw = dict(sources)
    if "reference" in kw:
        kw = {"reference_duration_ms": media_duration_ms(long_session[kw.pop("reference")])}
    video, audio = long_session["video"], long_session["audio"]
    dino = extract_dinov2(video, load_dinov2(tiny_dinov2, device="cpu"), size=28, k=2, pca="session",
                          frame_step="40ms", batch_size=64, **kw)
    w2v, grid, _ = extract_w2v_bert(audio, load_w2v_bert(tiny_w2v_bert, device="cpu"), step="40ms", **kw)
    events = tag_audio_events(audio, step_ms=40.0, **kw)
    emotion = tag_emotion(video, sample_fps="0.2", step_ms=40.0, **kw)
    counts = {"dinov2": dino.pca.shape[0], "w2v_bert": w2v.shape[0], "audio_events": events.scores.shape[0],
              "emotion": emotion.grid.n_frames}
    assert counts == dict.fromkeys(counts, rows)
    assert grid.n_frames == rows == dino.grid.n_frames == events.grid.n_frames


def test_own_inputs_alone_disagree_which_is_why_a_reference_is_needed(long_session):
    # the situation of the issue: without a shared source the video and the audio grids differ by one row
    assert session_grid(40, long_session["video"]).n_frames + 1 == session_grid(40, long_session["audio"]).n_frames
