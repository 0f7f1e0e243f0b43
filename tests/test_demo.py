"""README's main command end to end: a 64 s session of package media through every module (du-process), the
timeline PNG and HTML, and a printed summary that says what the written files hold."""

import re

import numpy as np
import pytest
from nova_rules import check_file

from nova_infant.cli import main
from nova_infant.core.streams import load_ssi_stream
from nova_infant.review.annotations import read_annotation, segments


@pytest.mark.slow
def test_demo_builds_a_minute_session_runs_every_module_and_prints_what_the_files_hold(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "UNTRAINED STAND-IN" in out  # no real backbone weights on a test machine, and it says so
    folder = tmp_path / "data" / "demo" / "carphone64"
    written = sorted(p for p in folder.iterdir() if p.suffix in (".stream", ".annotation"))
    # two extractors, audio-event scores + 9 tracks, emotion's three outputs, the demonstration coding + completion
    assert len(written) == 2 + 1 + 9 + 3 + 2
    for path in written:
        assert check_file(path) == [], path  # NOVA's rules (tests/nova_rules.py)

    # 16 x 120 frames at 29.97 fps = 64064 ms -> 1601 rows of 40 ms in every stream and frame track
    dinov2 = load_ssi_stream(folder / "infant.dinov2.stream")
    assert dinov2.data.shape == (1601, 1024) and dinov2.meta_data.sample_rate == 25.0
    for name in ("session.w2vbert.stream", "session.audio_events.stream", "infant.face_box.stream"):
        assert load_ssi_stream(folder / name).data.shape[0] == 1601, name
    assert len(read_annotation(folder / "infant.valence.annotation").data) == 1601

    # the printed summary is what the files hold
    assert f"timeline:       {tmp_path / 'timeline.png'}" in out and str(tmp_path / "timeline.html") in out
    printed = dict(re.findall(r"^  audio_events/(\w+): (\d+ segments?, [\d.]+ s)$", out, re.M))
    assert len(printed) == 9
    for event, line in printed.items():
        rows = segments(read_annotation(folder / f"session.audio_event_{event}.annotation"))
        plural = "" if len(rows) == 1 else "s"
        assert line == f"{len(rows)} segment{plural}, {(rows['to'] - rows['from']).sum() / 1000:.1f} s", event
    # and what they hold is right: LibriVox speech fills 44 s of the soundtrack, sonic-pi music 28 s
    speech_s = float(printed["speech"].split(", ")[1][:-2])
    music_s = float(printed["music"].split(", ")[1][:-2])
    assert 30 < speech_s < 50 and 12 < music_s < 32
    emotion = segments(read_annotation(folder / "infant.emotion.annotation"))
    for cls, name in enumerate(["calm", "laughing", "crying", "uncertain", "no_face"]):
        mine = emotion[emotion["id"] == cls]
        assert f"  emotion_tagger/emotion/{name}: {len(mine)} segment{'' if len(mine) == 1 else 's'}, " \
               f"{(mine['to'] - mine['from']).sum() / 1000:.1f} s\n" in out
    assert "  dinov2_pca/dinov2_pca: 1601 rows x 1024 dims at 25 Hz, 64.0 s (UNTRAINED STAND-IN" in out
    box = load_ssi_stream(folder / "infant.face_box.stream").data
    assert (box[:, 4] > 0.5).mean() > 0.9  # the carphone face is found

    # the timeline: a picture, and one self-contained page with a row per track
    assert (tmp_path / "timeline.png").stat().st_size > 50_000
    page = (tmp_path / "timeline.html").read_text()
    assert not re.search(r"<(script|img|link)[^>]+(src|href)=\"https?:", page)  # no external assets
    for path in written:
        assert path.name.rsplit(".", 1)[0] in page, path.name
    assert np.isfinite(dinov2.data).all()

    # the coder's loop: a demonstration coding of the first 30 s, completed to the end, queued for review
    coding = segments(read_annotation(folder / "infant.ICEP-R-infant.demo-coding.annotation"))
    done = segments(read_annotation(folder / "infant.ICEP-R-infant.icep-complete.annotation"))
    n = len(coding)
    assert coding["to"].max() == 30000 and done[:n].tolist() == coding.tolist()
    assert (done["from"][n:] >= 30000).all() and abs(int(done["to"][-1]) - 64040) <= 40
    assert ((done["conf"][n:] > 0) & (done["conf"][n:] < 1)).all()
    assert "DEMONSTRATION coding" in out and re.search(r"review queue: .*review_queue\.html: review [\d.]+ min for half", out)
    assert re.search(r"^  1\. [\d.]+-[\d.]+ s  I\w+  conf 0\.\d\d  expected errors", out, re.M)
    assert (tmp_path / "review_queue.html").is_file() and "hatched" in page + (tmp_path / "review_queue.html").read_text()


def test_track_summaries_read_each_written_track_back(tmp_path):
    from nova_infant.cli.demo import track_summaries
    from nova_infant.core.streams import make_ssi_stream, write_ssi_stream
    from nova_infant.taggers.outputs import continuous_annotation, discrete_annotation, write_annotation

    seg = np.array([(0, 1500, 0, 0.9), (4000, 4250, 0, 0.8)],
                   dtype=[("from", "<i4"), ("to", "<i4"), ("id", "<i4"), ("conf", "<f4")])
    speech = write_annotation(discrete_annotation(seg, ["speech"], "audio_event_speech"), tmp_path / "s.annotation")
    emotion = write_annotation(discrete_annotation(seg[:1], ["calm", "crying"], "emotion"), tmp_path / "e.annotation")
    score = np.array([0.5, -0.5, 0.0, 1.0], np.float32)
    valence = write_annotation(continuous_annotation(score, np.array([1, 1, 0, 1], np.float32), 25.0, "valence", -1, 1),
                               tmp_path / "v.annotation")
    stream = write_ssi_stream(make_ssi_stream(np.zeros((50, 3), np.float32), 25.0, "feature;test", ["a", "b", "c"],
                                              custom_meta={"weights": "untrained-stand-in"}), tmp_path / "f.stream")
    lines = [s.line() for s in track_summaries({speech: ("audio_events", "speech"), emotion: ("emotion_tagger", "emotion"),
                                                valence: ("emotion_tagger", "valence"), stream: ("x", "feat"),
                                                tmp_path / "never.stream": ("x", "missing")})]
    assert lines == ["audio_events/speech: 2 segments, 1.8 s",
                     "emotion_tagger/emotion/calm: 1 segment, 1.5 s",
                     "emotion_tagger/emotion/crying: 0 segments, 0.0 s",
                     "emotion_tagger/valence: 4 frames at 25 Hz, mean +0.33",
                     "x/feat: 50 rows x 3 dims at 25 Hz, 2.0 s (UNTRAINED STAND-IN: features meaningless)"]
