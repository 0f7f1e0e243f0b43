"""The cry-reason module pair through du-process on real cries (Donate-a-cry, ODbL): the trainer learns from coded
sessions and writes a predictor ``.trainer``; that predictor labels the crying segment the audio tagger finds in a
session of LibriVox speech + a real corpus cry + CC0 music. Needs the corpus (skips with the reason without it)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["belly_pain", "burping", "discomfort", "hungry", "tired"]


def _rows(root):
    with open(Path(root) / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _write_reasons(path, segments, session):
    from discover_utils.utils.type_definitions import LabelDType

    from nova_infant.core.annotations import write_annotation
    from nova_infant.taggers.outputs import discrete_annotation

    data = np.array([(a, b, CLASSES.index(n), 1.0) for a, b, n in segments], dtype=LabelDType.DISCRETE.value)
    return write_annotation(discrete_annotation(data, CLASSES, "cry_reason", role="session", annotator="coder",
                                                session=session, dataset="cries"), path)


def _concat(parts, gap_s=0.5):
    """16 kHz pieces one after another with silence between: (signal, [(from_ms, to_ms, label)])."""
    from nova_infant.core.media import read_audio

    sig, segs, t = [], [], 0
    gap = np.zeros(int(gap_s * 16000), np.float32)
    for x, label in parts:
        if isinstance(x, str):
            x = read_audio(x, 16000)[0]
        segs.append((t / 16.0, (t + len(x)) / 16.0, label))
        sig += [x, gap]
        t += len(x) + len(gap)
    return np.concatenate(sig).astype(np.float32), segs


def _du_process(tmp_path, cml, trainer, sessions, data, options):
    cmd = [os.path.join(os.path.dirname(sys.executable), "du-process"), "--trainer_file_path", trainer,
           "--cml_dir", str(cml), "--cache_dir", str(tmp_path / "c"), "--tmp_dir", str(tmp_path / "t"),
           "--log_dir", str(tmp_path / "l"), "--dataset", "cries", "--sessions", json.dumps(sessions),
           "--data", json.dumps(data), "--options", json.dumps(options)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_trainer_and_predictor_run_through_du_process_on_a_session_with_a_real_cry(donateacry, tmp_path):
    """About 1-2 min: three coded training sessions of real cries (two reasons each, recorders apart from the test
    cry's), cry_reason_train through du-process, then the predictor .trainer it wrote on a session of speech + a
    held-out recorder's cry + music whose crying track comes from the audio tagger."""
    from nova_infant.core.annotations import read_annotation
    from nova_infant.core.sample_media import librivox_paths, write_wav
    from nova_infant.discover.registry import write_all_trainers
    from nova_infant.taggers import audio_events as ae
    from nova_infant.taggers.outputs import discrete_annotation
    from nova_infant.core.annotations import write_annotation

    rows = _rows(donateacry)
    test_row = next(r for r in sorted(rows, key=lambda r: r["file"]) if r["reason"] == "tired")
    train = [r for r in rows if r["recorder_id"] != test_row["recorder_id"]]
    by_reason = {c: [r for r in train if r["reason"] == c] for c in CLASSES}
    root = tmp_path / "data"
    names = []
    for k, pair in enumerate((("hungry", "tired"), ("belly_pain", "discomfort"), ("burping", "tired"))):
        parts = [(str(donateacry / r["file"]), r["reason"]) for c in pair for r in by_reason[c][k * 2:k * 2 + 2]]
        sig, segs = _concat(parts)
        folder = root / "cries" / f"train{k}"
        write_wav(folder / "session.audio.wav", sig, 16000)
        _write_reasons(folder / "session.cry_reason.annotation", segs, f"train{k}")
        names.append(f"train{k}")
    cml = tmp_path / "cml"
    shutil.copytree(REPO / "trainers" / "nova_infant", cml, dirs_exist_ok=True)
    write_all_trainers(cml)
    tpl = f"{root}/{{dataset}}/{{session}}"
    _du_process(tmp_path, cml, "cry_reason_train.trainer", names,
                [{"id": "audio", "type": "input", "src": "file:stream:audio", "uri_template": f"{tpl}/session.audio.wav"},
                 {"id": "reasons", "type": "input", "src": "file:annotation:discrete",
                  "uri_template": f"{tpl}/session.cry_reason.annotation"}],
                {"model_name": "lab1", "epochs_ae": 3, "epochs": 10, "epochs_fusion": 10})
    model_dir = cml / "cry_reason_models" / "lab1"
    config = json.loads((model_dir / "config.json").read_text())["config"]  # core.saved envelope
    assert config["classes"] == CLASSES and config["sessions"] == names
    predictor = cml / "cry_reason_lab1.trainer"
    assert "cry_reason_models/lab1" in predictor.read_text()

    # the test session: LibriVox speech, the held-out recorder's cry, CC0 music
    sig, segs = _concat([(str(librivox_paths()[0]), "speech"), (str(donateacry / test_row["file"]), "cry"),
                         ("/usr/share/sonic-pi/samples/loop_amen_full.flac", "music")])
    folder = root / "cries" / "home1"
    wav = write_wav(folder / "session.audio.wav", sig, 16000)
    tagged = ae.tag_audio_events(str(wav))
    crying = tagged.events[tagged.classes.index("baby_crying")]
    write_annotation(discrete_annotation(crying, ["baby_crying"], "audio_event_baby_crying", role="session",
                                         annotator="audio_events", session="home1", dataset="cries"),
                     folder / "session.audio_event_baby_crying.annotation")
    out = folder / "session.cry_reason.annotation"
    _du_process(tmp_path, cml, "cry_reason_lab1.trainer", ["home1"],
                [{"id": "audio", "type": "input", "src": "file:stream:audio", "uri_template": f"{tpl}/session.audio.wav"},
                 {"id": "crying", "type": "input", "src": "file:annotation:discrete",
                  "uri_template": f"{tpl}/session.audio_event_baby_crying.annotation"},
                 {"id": "reasons", "type": "output", "src": "file:annotation:discrete", "uri": str(out)}], {})
    anno = read_annotation(out)
    classes = [v["name"] for _, v in sorted(anno.annotation_scheme.classes.items())]
    assert classes == CLASSES and anno.annotation_scheme.name == "cry_reason"
    data = anno.data
    assert len(data) >= 1 and ((data["conf"] > 0) & (data["conf"] <= 1)).all()
    c0, c1 = segs[1][0], segs[1][1]
    covered = (np.minimum(data["to"], c1) - np.maximum(data["from"], c0)).clip(0).sum()
    assert covered >= 0.6 * (c1 - c0)  # the reason track covers the cry ...
    assert data["from"].min() >= c0 - 1000 and data["to"].max() <= c1 + 1000  # ... and not the speech or music


def test_predictor_writes_an_empty_track_with_a_note_when_nothing_cries(donateacry, tmp_path):
    """The predictor spec on a session without crying segments: an empty reason track saying why (CLI path of the
    spec: FileSession + the one writer)."""
    from discover_utils.utils.type_definitions import LabelDType

    from nova_infant.core.annotations import read_annotation, write_annotation
    from nova_infant.core.sample_media import librivox_speech, write_wav
    from nova_infant.cry.session import TrainingItem, save_cry_model, train_model
    from nova_infant.cry import features as F
    from nova_infant.specs.sessions import FileSession
    from nova_infant.specs.writing import write_files
    from nova_infant.specs.registry import SPECS
    from nova_infant.taggers.outputs import discrete_annotation

    rows = [r for r in _rows(donateacry) if r["reason"] in ("tired", "burping")][:8]
    items = []
    for r in rows:
        x = F.read_signal(str(donateacry / r["file"]))
        feats = {k: F.window_features(x, k)[0] for k in F.KINDS}
        items.append(TrainingItem(r["file"], feats, [r["reason"]] * len(feats["mfcc"]), CLASSES))
    save_cry_model(train_model(items, 1, 3, 3), tmp_path / "model", "Donate-a-cry (ODbL 1.0 / DbCL 1.0)")
    wav = write_wav(tmp_path / "s" / "session.audio.wav", librivox_speech(3.0), 16000)
    empty = np.zeros(0, dtype=LabelDType.DISCRETE.value)
    crying = write_annotation(discrete_annotation(empty, ["baby_crying"], "audio_event_baby_crying"),
                              tmp_path / "s" / "session.audio_event_baby_crying.annotation")
    spec = SPECS["cry_reason_predict"]
    session = FileSession({"audio": wav, "crying": crying}, tmp_path / "out")
    result = spec.run(session, spec.parse_options({"model": str(tmp_path / "model")}))
    assert any("no crying segment" in n for n in result.notes)
    [path] = write_files(spec, result, session)
    anno = read_annotation(path)
    assert len(anno.data) == 0 and "no crying segment" in anno.meta_data.description
    bad = spec.parse_options({"model": str(tmp_path / "model"), "crying_label": "laughing"})
    from nova_infant.core.errors import AnnotationError

    with pytest.raises(AnnotationError, match="no class 'laughing'"):
        spec.run(session, bad)
