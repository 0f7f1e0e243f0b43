"""Our files as the NOVA client reads them (rules in tests/nova_rules.py, each citing hcmlab/nova source).

Besides these tests, conftest.py checks every .trainer/.stream/.annotation any test writes against the same rules.
Here: the rules themselves can fail, every committed trainer passes them, one output per writer opens, the face box
NOVA draws lands on the face, and trainers declare no input NOVA would send without the module needing it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import nova_rules
from nova_infant.core import annotations, streams, trainer_files
from nova_infant.discover.registry import REPO_TRAINER_DIR, TRAINERS, trainer_specs

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- the rules catch what NOVA rejects


def _stream(tmp_path, meta: dict, rows=None, name="s.stream"):
    rows = np.zeros((3, 2), np.float32) if rows is None else np.asarray(rows, np.float32)
    path = streams.write_ssi_stream(streams.make_ssi_stream(rows, 25.0, meta.pop("type", "feature;x;y"),
                                                            [f"d{i}" for i in range(rows.shape[1])],
                                                            custom_meta=meta), tmp_path / name)
    return path


def test_stream_writer_refuses_meta_keys_nova_reads_otherwise():
    from nova_infant.core.errors import StreamError

    for meta, message in (({"size": "224"}, "must be W:H"), ({"name": "face"}, "reserved"), ({"type": "x"}, "reserved")):
        with pytest.raises(StreamError, match=message):
            streams.make_ssi_stream(np.zeros((2, 1)), 25.0, "feature;x", ["d"], custom_meta=meta)


@pytest.mark.nova_invalid_files
def test_rules_reject_what_nova_cannot_read(tmp_path):
    bad = tmp_path / "a.stream"
    streams.write_ssi_stream(streams.make_ssi_stream(np.zeros((3, 2)), 25.0, "feature;x;y", ["a", "b"]), bad)
    bad.write_text(bad.read_text().replace('type="feature;x;y"', 'type="feature;x;y" size="224" name="face"'))
    errors = " | ".join(nova_rules.check_stream(bad))
    assert "W:H" in errors and "'name'" in errors
    assert nova_rules.check_stream(_stream(tmp_path, {"size": "352:288"}, name="b.stream")) == []
    xywh = [[0.4, 0.3, 0.2, 0.25, 0.9]]  # x, y, w, h: read by NOVA as ymin, xmin, ymax, xmax -> ymax < ymin
    bad = _stream(tmp_path, {"type": "feature;face;boundingbox;blazeface"}, rows=xywh, name="d.stream")
    assert any("ymax < ymin" in e for e in nova_rules.check_stream(bad))
    _, errors = nova_rules.parse_optstr("{a:STRING:1};{url:STRING:http://x};{b:FLOAT:2}")
    assert len(errors) == 2 and "':'" in errors[0] and "no name or no type" in errors[1]
    options, errors = nova_rules.parse_optstr("{m:LIST:bilstm,mlp};{bf16:BOOL:False};{x:STRING:}")
    assert not errors and [o["default"] for o in options] == ["bilstm", False, ""]
    trainer = tmp_path / "t.trainer"
    trainer.write_text('<trainer ssi-v="5"><info trained="false"/><meta category="Feature Extraction">'
                       '<io type="input" id="reference" data="stream:Video" default_value="" default_active="False"/>'
                       '<io type="input" id="f" data="stream:SSIStream:dinov2" default_value="dinov2"/>'
                       '</meta><model create="X" script="x.py" optstr=""/></trainer>')
    errors = " | ".join(nova_rules.check_trainer(trainer))
    for expected in ("NOVA hides", "category", "default_active=False", "no default_value"):
        assert expected in errors
    anno = tmp_path / "x.annotation"
    anno.write_text('<annotation ssi-v="3"><info ftype="BINARY" size="2"/><scheme name="s" type="discrete"/></annotation>')
    assert len(nova_rules.check_annotation(anno)) == 2  # ftype and the case of the type


def test_an_input_type_token_must_not_match_another_of_our_streams():
    assert nova_rules.matching_stream_types("stream:SSIStream:dinov2", ["feature;video;dinov2",
                                                                      "feature;video;dinov2cls"]) == {
        "feature;video;dinov2", "feature;video;dinov2cls"}  # NOVA matches by substring: why CLS is "dino_cls"
    for io_data, writer in (("stream:SSIStream:dinov2", "dinov2_pca (PCA)"), ("stream:SSIStream:w2vbert", "w2v_bert"),
                            ("stream:SSIStream:dino_cls", "dinov2_pca (CLS)")):
        offered = nova_rules.matching_stream_types(io_data, nova_rules.PACKAGE_STREAM_TYPES)
        assert [nova_rules.PACKAGE_STREAM_TYPES[t] for t in offered] == [writer]


# ---------------------------------------------------------------- trainers


@pytest.mark.parametrize("stem", sorted(TRAINERS))
def test_committed_trainer_follows_novas_rules(stem):
    assert nova_rules.check_trainer(REPO_TRAINER_DIR / f"{stem}.trainer") == []


def test_no_trainer_declares_an_input_nova_would_send_without_need():
    """NOVA has no on/off control for inputs: every declared input arrives, so none may be optional."""
    from nova_infant.icep.bundle import predictor_spec
    from nova_infant.icep.schemes import label_map
    from nova_infant.specs.icep import predictor_options

    specs = dict(trainer_specs())
    features = {"step_ms": 40.0, "streams": [{"name": "infant.dinov2", "media_type": "feature;video;dinov2"},
                                             {"name": "session.w2vbert", "media_type": "feature;audio;w2vbert"}]}
    specs["trained predictor"] = predictor_spec(features, label_map("merged", "caregiver"), "m", "m", predictor_options())
    for stem, spec in specs.items():
        for io in spec.io:
            if io.type == "input":
                assert io.default_active, f"{stem}: input {io.id} is optional (default_active=False)"
                assert io.default_value, f"{stem}: input {io.id} has no default stream/scheme"
                assert io.id != "reference", f"{stem}: a reference input is always sent; use option duration_ms"
    from nova_infant.core.trainer_files import read_trainer

    # trained predictors (a model bundle in <model path>) may sit beside ours after a local training run
    committed = {p.stem for p in REPO_TRAINER_DIR.glob("*.trainer") if not read_trainer(p).model_weights_path}
    assert committed == set(TRAINERS), "trainers/nova_infant holds a trainer no adapter declares (stale)"
    assert 'default_active="False"' not in "".join(
        (REPO_TRAINER_DIR / f"{stem}.trainer").read_text() for stem in TRAINERS)


def test_feature_inputs_preselect_the_stream_our_extractors_write():
    """NOVA puts an input's default_value first and preselects it even if no such stream exists: it must be the
    name our extractor's output writes by default, with a type the input's token matches."""
    specs = trainer_specs().values()
    written = {(io.default_value, io.data.split(":")[-1]) for spec in specs for io in spec.io
               if io.type == "output" and io.data.startswith("stream:SSIStream")}
    for spec in specs:
        for io in spec.io:
            if io.type == "input" and io.data.startswith("stream:SSIStream"):
                assert (io.default_value, io.data.split(":")[-1]) in written, (spec.script, io)


def test_icep_training_ships_one_trainer_per_role_and_feature_set():
    icep = {stem: spec for stem, spec in trainer_specs().items() if stem.startswith("icep_train")}
    combos = set()
    for stem, spec in icep.items():
        inputs = [io for io in spec.io if io.type == "input"]
        feats = [io.data.split(":")[-1] for io in inputs if io.id.startswith("feature_")]
        labels = next(io for io in inputs if io.id == "labels")
        role = dict((n, d) for n, _, d in spec.options)["role"]
        assert "," not in role and labels.default_value == f"ICEP-R-{role}"
        assert len(set(feats)) == len(feats), f"{stem} fuses a stream type twice"
        combos.add((role, tuple(feats)))
    feature_sets = (("dinov2",), ("dinov2", "w2vbert"), ("dinov2", "people", "skeleton", "hands"))  # issue 25
    assert combos == {(r, f) for r in ("infant", "caregiver") for f in feature_sets}


def test_trainer_option_defaults_reach_the_module(tmp_path):
    """The module reads its .trainer's option defaults, so a caregiver trainer trains caregiver codes even when a job
    sends no options (du-process run by hand)."""
    from nova_infant.discover.common import trainer_defaults
    from nova_infant.core.trainer_files import read_trainer

    trainer = read_trainer(REPO_TRAINER_DIR / "icep_train_caregiver_dinov2_w2vbert.trainer")
    defaults = trainer_defaults(trainer)
    assert defaults["role"] == "caregiver" and defaults["model"] == "bilstm" and defaults["model_name"] == ""
    assert trainer_defaults(None) == {}


def test_categories_are_one_documented_set():
    guide = (REPO / "docs" / "nova-guide.md").read_text()
    used = {spec.category for spec in trainer_specs().values()}
    assert used <= nova_rules.CATEGORIES
    for category in nova_rules.CATEGORIES:
        assert f"`{category}`" in guide


# ---------------------------------------------------------------- one output per writer


def test_one_output_of_every_writer_opens_in_nova(tmp_path, tiny_dinov2):
    from conftest import marked_video

    from nova_infant.core.backbones import load_dinov2
    from nova_infant.features.dinov2_pca import extract_dinov2
    from nova_infant.icep.bundle import predictor_spec
    from nova_infant.icep.schemes import label_map, write_scheme_templates
    from nova_infant.specs.icep import predictor_options
    from nova_infant.taggers.outputs import continuous_annotation, discrete_annotation
    from nova_infant.core.grid import frame_grid
    from nova_infant.features.w2v_bert import to_stream

    marked_video(tmp_path / "v.mp4", 25, 10, size=(64, 48))
    features = extract_dinov2(tmp_path / "v.mp4", load_dinov2(tiny_dinov2, device="cpu"), size=28, batch_size=10)
    written = [streams.write_ssi_stream(features.pca_stream(role="infant"), tmp_path / "infant.dinov2.stream"),
               streams.write_ssi_stream(features.cls_stream(role="infant"), tmp_path / "infant.dinov2cls.stream")]
    meta = ET.parse(written[0]).getroot().find("meta").attrib
    assert "size" not in meta and meta["input_size"] == "28"  # was <meta size="28">: NOVA throws reading W:H
    grid = frame_grid(400, 40)
    written.append(streams.write_ssi_stream(to_stream(np.zeros((10, 4), np.float32), grid, {"model": "m"}),
                                            tmp_path / "session.w2vbert.stream"))
    segments = annotations.frames_to_segments(np.array([0, 0, 1, 1, 1, -1, 2, 2, 2, 2]), 40.0, skip_ids=(-1,))
    written.append(annotations.write_annotation(discrete_annotation(segments, ["a", "b", "c"], "emotion", "infant", "m"),
                                            tmp_path / "infant.emotion.m.annotation"))
    written.append(annotations.write_annotation(continuous_annotation(np.linspace(-1, 1, 10), np.ones(10), 25.0,
                                                                  "valence", -1, 1, "infant", "m"),
                                            tmp_path / "infant.valence.m.annotation"))
    written += write_scheme_templates(tmp_path / "schemes")
    from nova_infant.cli import main
    from nova_infant.core.sample_media import librivox_speech, write_wav

    wav = write_wav(tmp_path / "speech.wav", librivox_speech(3.0), 16000)
    assert main(["run", "audio-events", "--audio", str(wav), "--out", str(tmp_path / "ae")]) == 0
    audio_outputs = sorted((tmp_path / "ae").glob("session.*"))
    assert any(p.name == "session.audio_events.stream" for p in audio_outputs)
    written += [p for p in audio_outputs if p.suffix in (".stream", ".annotation")]
    spec = predictor_spec({"step_ms": 40.0, "streams": [{"name": "infant.dinov2", "media_type": "feature;video;dinov2"}]},
                          label_map("merged", "infant"), "m", "m", predictor_options())
    written.append(trainer_files.write_trainer(tmp_path / "icep_m.trainer", spec))
    for path in written:
        assert nova_rules.check_file(path) == [], path


# ---------------------------------------------------------------- face boxes as NOVA draws them


def test_detector_boxes_become_novas_corner_order_clipped_to_the_frame():
    from nova_infant.taggers.emotion import BOX_DIMS, nova_boxes

    rows = nova_boxes(np.array([[0.25, 0.1, 0.5, 0.3, 0.9], [0.8, -0.1, 0.4, 0.3, 0.7]]))
    np.testing.assert_allclose(rows, [[0.1, 0.25, 0.4, 0.75, 0.9], [0.0, 0.8, 0.2, 1.0, 0.7]], atol=1e-6)
    assert BOX_DIMS == ["ymin", "xmin", "ymax", "xmax", "score"]


def test_face_box_nova_draws_from_the_stream_covers_the_detected_face(tmp_path):
    from nova_infant.core.media import VideoSource
    from nova_infant.core.sample_media import carphone_path
    from nova_infant.taggers import emotion as em
    from nova_infant.taggers.faces import BlazeFaceDetector

    result = em.tag_emotion(carphone_path(), sample_fps="5")
    from nova_infant.specs.sessions import FileSession
    from nova_infant.specs.writing import write_files
    from nova_infant.specs.emotion_tagger import SPEC, result_of

    paths = write_files(SPEC, result_of(result), FileSession({}, tmp_path, role="infant"))
    box_path = next(p for p in paths if str(p).endswith(".face_box.stream"))
    root = ET.parse(box_path).getroot()
    meta, info = root.find("meta").attrib, root.find("info").attrib
    assert "feature;face;boundingbox" in meta["type"]  # NOVA draws this stream as a face overlay
    rows = np.fromfile(str(box_path) + "~", "<f4").reshape(-1, int(info["dim"]))
    step_ms = 1000.0 / float(info["sr"])
    video = VideoSource(carphone_path())
    detector = BlazeFaceDetector()
    picks = [k for k in range(0, len(rows), 25) if rows[k, 4] > 0.5]  # rows at sampled frames (every 200 ms)
    assert len(picks) >= 3
    frames = dict(zip(picks, next(video.iter_batches([video.info.frame_at_ms(np.array([k * step_ms]))[0] for k in picks],
                                                     len(picks)))[1]))
    for k, frame in frames.items():
        height, width = frame.shape[:2]
        x0, y0, x1, y1 = nova_rules.nova_face_box_px(rows[k], width, height)
        drawn = frame.copy()
        paint = np.array([255, 0, 255], np.uint8)
        for x in range(max(x0, 0), min(x1, width - 1) + 1):  # the four lines NOVA's Face.cs draws
            drawn[np.clip([y0, y1], 0, height - 1), x] = paint
        for y in range(max(y0, 0), min(y1, height - 1) + 1):
            drawn[y, np.clip([x0, x1], 0, width - 1)] = paint
        ys, xs = np.nonzero((drawn == paint).all(axis=2) & ~(frame == paint).all(axis=2))
        assert len(xs) > 0, f"row {k}: NOVA draws nothing inside the frame"
        faces = detector.detect(frame)
        assert faces, f"row {k}: no face detected in the frame"
        face = max(faces, key=lambda f: f.w * f.h)
        inter_w = max(0.0, min(xs.max(), face.x + face.w) - max(xs.min(), face.x))
        inter_h = max(0.0, min(ys.max(), face.y + face.h) - max(ys.min(), face.y))
        inter = inter_w * inter_h
        union = (xs.max() - xs.min()) * (ys.max() - ys.min()) + face.w * face.h - inter
        assert inter / union > 0.8, (k, (xs.min(), ys.min(), xs.max(), ys.max()), face)
    assert meta["size"] == "176:144"  # the video's W:H, which NOVA uses for the overlay's aspect
    assert nova_rules.check_stream(box_path) == []
