"""MediaPipe's BlazePose and hand models (Apache-2.0, from the ``mediapipe==0.10.21`` wheel) run with ai-edge-litert.

Methods:

- BlazePose (Bazarevsky et al. 2020, "BlazePose: On-device Real-time Body Pose tracking", arXiv:2006.10204):
  ``pose_detection.tflite`` (224 x 224, SSD anchors at strides 8, 16, 32, 32, 32, input scaled to [-1, 1]) finds a
  person by the face/upper body and predicts 4 alignment keypoints (hip centre, a point whose distance to it is the
  body's radius, shoulder centre, ...); ``pose_landmark_full.tflite`` (256 x 256, input in [0, 1]) gives 33 body
  landmarks (x, y, z, visibility, presence) and a pose-presence score in a rotated square crop around the person.
- MediaPipe Hands (Zhang et al. 2020, "MediaPipe Hands: On-device Real-time Hand Tracking", arXiv:2006.10214):
  ``palm_detection_full.tflite`` (192 x 192, strides 8, 16, 16, 16, input in [0, 1]) gives palm boxes with 7
  keypoints; ``hand_landmark_full.tflite`` (224 x 224, input in [0, 1]) gives 21 landmarks, a hand-presence score
  and a handedness score in a rotated crop 2.6 times the palm box, shifted towards the fingers.

Anchor, decoding, region-of-interest and non-maximum suppression parameters follow MediaPipe 0.10's graphs
(``pose_detection_cpu.pbtxt``, ``pose_detection_to_roi.pbtxt``, ``palm_detection_cpu.pbtxt``,
``palm_detection_detection_to_roi.pbtxt``): sigmoid scores clipped at 100, weighted NMS at IoU 0.3. Frames are
letterboxed to a square (no distortion) for the detectors. Coordinates returned are frame pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nova_infant.core.errors import WeightsUnavailableError
from nova_infant.core.runtimes import tflite_interpreter
from nova_infant.taggers.assets import model_file

#: MediaPipe Pose's 33 body landmarks (BlazePose GHUM topology), in model order.
POSE_LANDMARKS = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index")

#: MediaPipe Hands' 21 landmarks, in model order.
HAND_LANDMARKS = (
    "wrist", "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip", "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip", "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip")

#: model file names in the model cache (nova_infant.taggers.assets.WHEEL_FILES)
POSE_DETECTOR = "pose_detection.tflite"
POSE_LANDMARKER = "pose_landmark_full.tflite"
PALM_DETECTOR = "palm_detection_full.tflite"
HAND_LANDMARKER = "hand_landmark_full.tflite"


def ssd_anchors(size: int, strides: tuple[int, ...]) -> np.ndarray:
    """Anchor centres of MediaPipe's SSD detectors (``SsdAnchorsCalculator`` with fixed anchor size, aspect ratio
    1 and an interpolated scale: 2 anchors per layer and cell; consecutive layers of one stride share cells).

    Parameters
    ----------
    size : int
        Square input side (px): 224 for BlazePose detection, 192 for palm detection.
    strides : tuple of int
        Stride of each layer.

    Returns
    -------
    ndarray, float32, shape (n_anchors, 2)
        (x, y) centres as fractions of the input side; 2254 for BlazePose, 2016 for the palm detector.
    """
    out, i = [], 0
    while i < len(strides):
        stride, layers = strides[i], 0
        while i < len(strides) and strides[i] == stride:
            layers, i = layers + 1, i + 1
        n = int(math.ceil(size / stride))
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(cells, 2 * layers, axis=0))
    return np.concatenate(out).astype(np.float32)


@dataclass
class Detection:
    """One SSD detection in frame pixels.

    Attributes
    ----------
    box : ndarray, float32, shape (4,)
        xmin, ymin, xmax, ymax (px; may reach outside the frame).
    keypoints : ndarray, float32, shape (k, 2)
        x, y (px) of the detector's keypoints.
    score : float
        Sigmoid score in [0, 1].
    """

    box: np.ndarray
    keypoints: np.ndarray
    score: float


@dataclass
class Roi:
    """A rotated square region: centre (px), side (px), rotation (radians, clockwise in image coordinates)."""

    cx: float
    cy: float
    side: float
    rotation: float


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou: float = 0.3) -> list[Detection]:
    """MediaPipe's weighted non-maximum suppression: each group overlapping the best remaining box by IoU >= ``iou``
    is merged into one detection, boxes and keypoints averaged with the scores as weights; the score is the best.

    Parameters
    ----------
    boxes : ndarray, float, shape (n, 4)
        xmin, ymin, xmax, ymax.
    keypoints : ndarray, float, shape (n, k, 2)
    scores : ndarray, float, shape (n,)
    iou : float

    Returns
    -------
    list of Detection
        Best first.
    """
    out, order = [], np.argsort(-scores)
    while len(order):
        overlap = _iou(boxes[order[0]], boxes[order])
        group = order[overlap >= iou]
        w = scores[group]
        box = (boxes[group] * w[:, None]).sum(0) / w.sum()
        kps = (keypoints[group] * w[:, None, None]).sum(0) / w.sum()
        out.append(Detection(box.astype(np.float32), kps.astype(np.float32), float(scores[order[0]])))
        order = order[overlap < iou]
    return out


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """Pad an RGB frame to a square (centred, black) and resize it to ``size`` (bilinear, PIL).

    Returns
    -------
    (square uint8 (size, size, 3), side px, pad_x px, pad_y px)
        A point (u, v) of the square input maps back to ``(u / size * side - pad_x, v / size * side - pad_y)``.
    """
    from PIL import Image

    h, w = frame.shape[:2]
    side = max(h, w)
    pad_x, pad_y = (side - w) // 2, (side - h) // 2
    square = np.zeros((side, side, 3), np.uint8)
    square[pad_y:pad_y + h, pad_x:pad_x + w] = frame
    return np.asarray(Image.fromarray(square).resize((size, size), Image.BILINEAR)), float(side), pad_x, pad_y


def rotated_crop(frame: np.ndarray, roi: Roi, size: int) -> np.ndarray:
    """The rotated square ``roi`` of a frame resampled to ``size`` x ``size`` (bilinear; black outside the frame),
    as MediaPipe's ``ImageToTensorCalculator`` cuts a landmark model's input.

    Parameters
    ----------
    frame : ndarray, uint8, shape (H, W, 3)
    roi : Roi
    size : int

    Returns
    -------
    ndarray, uint8, shape (size, size, 3)
    """
    from PIL import Image

    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    k = roi.side / size
    data = (c * k, -s * k, roi.cx - c * roi.side / 2 + s * roi.side / 2,
            s * k, c * k, roi.cy - s * roi.side / 2 - c * roi.side / 2)
    img = Image.fromarray(np.ascontiguousarray(frame))
    return np.asarray(img.transform((size, size), Image.AFFINE, data, resample=Image.BILINEAR))


def roi_to_frame(points: np.ndarray, roi: Roi) -> np.ndarray:
    """Points given as fractions of a rotated crop (x, y in [0, 1]) back to frame pixels.

    Parameters
    ----------
    points : ndarray, float, shape (n, 2)
    roi : Roi

    Returns
    -------
    ndarray, float32, shape (n, 2)
    """
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    dx, dy = (points[:, 0] - 0.5) * roi.side, (points[:, 1] - 0.5) * roi.side
    return np.stack([roi.cx + c * dx - s * dy, roi.cy + s * dx + c * dy], axis=1).astype(np.float32)


def _rotation(start: np.ndarray, end: np.ndarray, target_deg: float = 90.0) -> float:
    """MediaPipe's rotation of a region whose vector start -> end should point at ``target_deg`` (y down)."""
    angle = math.radians(target_deg) - math.atan2(-(end[1] - start[1]), end[0] - start[0])
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def _interpreter(name: str, model_path: str | None, threads: int, shape: tuple):
    path = str(model_path or model_file(name))
    interp = tflite_interpreter(path, name, threads)
    inp = interp.get_input_details()[0]
    if tuple(inp["shape"]) != shape:
        raise WeightsUnavailableError(f"{path}: expected input {shape} of {name}, got {tuple(inp['shape'])}")
    return interp, inp, [o["index"] for o in interp.get_output_details()]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -100, 100)))


class _SsdDetector:
    """Shared SSD decoding of MediaPipe's pose and palm detectors (``TensorsToDetectionsCalculator`` with reversed
    output order: x, y, w, h, then keypoints x, y, all in input pixels relative to the anchor)."""

    size = 0
    strides: tuple = ()
    name = ""
    value_range = (0.0, 1.0)
    n_keypoints = 0

    def __init__(self, model_path: str | None = None, min_score: float = 0.5, iou: float = 0.3, threads: int = 1):
        self.interp, self.inp, outs = _interpreter(self.name, model_path, threads, (1, self.size, self.size, 3))
        shapes = {i: tuple(self.interp.get_tensor(i).shape) for i in outs}
        self.reg = next(i for i in outs if shapes[i][-1] == 4 + 2 * self.n_keypoints)
        self.cls = next(i for i in outs if shapes[i][-1] == 1)
        self.anchors = ssd_anchors(self.size, self.strides)
        if shapes[self.reg][1] != len(self.anchors):
            raise WeightsUnavailableError(f"{self.name}: {shapes[self.reg][1]} boxes, expected {len(self.anchors)}")
        self.min_score, self.iou = float(min_score), float(iou)

    def scores_and_raw(self, frame: np.ndarray):
        """Run the detector on the letterboxed frame; (scores (n,), raw (n, 4 + 2k), side, pad_x, pad_y)."""
        small, side, px, py = letterbox(frame, self.size)
        lo, hi = self.value_range
        x = small.astype(np.float32) / 255.0 * (hi - lo) + lo
        self.interp.set_tensor(self.inp["index"], x[None])
        self.interp.invoke()
        raw = self.interp.get_tensor(self.reg)[0]
        return _sigmoid(self.interp.get_tensor(self.cls)[0, :, 0]), raw, side, px, py

    def detect(self, frame: np.ndarray, min_score: float | None = None) -> list[Detection]:
        """Detections of one RGB frame (uint8 (H, W, 3)) with score >= ``min_score`` (default: the detector's), in
        frame pixels, best first, after weighted NMS.

        Returns
        -------
        list of Detection
        """
        scores, raw, side, px, py = self.scores_and_raw(frame)
        keep = np.flatnonzero(scores >= (self.min_score if min_score is None else min_score))
        if not len(keep):
            return []
        s, a, r = float(self.size), self.anchors[keep], raw[keep]
        cx, cy = r[:, 0] / s + a[:, 0], r[:, 1] / s + a[:, 1]
        w, h = r[:, 2] / s, r[:, 3] / s
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1) * side
        boxes -= np.array([px, py, px, py])
        kps = r[:, 4:].reshape(len(keep), self.n_keypoints, 2) / s + a[:, None, :]
        kps = kps * side - np.array([px, py])
        return weighted_nms(boxes, kps, scores[keep], self.iou)


class PoseDetector(_SsdDetector):
    """BlazePose person detector: ``detect(frame)`` -> list of :class:`Detection` with 4 keypoints (hip centre,
    body-radius point, shoulder centre, upper-body radius point).

    Raises
    ------
    WeightsUnavailableError
        Model missing or not BlazePose's detector.
    """

    size, strides, name, value_range, n_keypoints = 224, (8, 16, 32, 32, 32), POSE_DETECTOR, (-1.0, 1.0), 4

    @staticmethod
    def roi(det: Detection) -> Roi:
        """The landmark model's region of a person (``pose_detection_to_roi``): centred on the hip centre, side
        2 x 1.25 x the hip-centre-to-radius-point distance, rotated so the body points up."""
        start, end = det.keypoints[0], det.keypoints[1]
        radius = float(np.hypot(*(end - start)))
        return Roi(float(start[0]), float(start[1]), 2.0 * radius * 1.25, _rotation(start, end))


class PalmDetector(_SsdDetector):
    """MediaPipe palm detector (full): ``detect(frame)`` -> list of :class:`Detection` with 7 keypoints (wrist,
    index/middle/ring/pinky finger bases, thumb base and tip).

    Raises
    ------
    WeightsUnavailableError
        Model missing or not MediaPipe's palm detector.
    """

    size, strides, name, value_range, n_keypoints = 192, (8, 16, 16, 16), PALM_DETECTOR, (0.0, 1.0), 7

    @staticmethod
    def roi(det: Detection) -> Roi:
        """The hand-landmark region of a palm (``palm_detection_detection_to_roi``): the box rotated so wrist ->
        middle-finger base points up, shifted by half its height towards the fingers, squared on its long side and
        scaled by 2.6."""
        rot = _rotation(det.keypoints[0], det.keypoints[2])
        x1, y1, x2, y2 = (float(v) for v in det.box)
        w, h = x2 - x1, y2 - y1
        cx = (x1 + x2) / 2 + 0.5 * h * math.sin(rot)
        cy = (y1 + y2) / 2 - 0.5 * h * math.cos(rot)
        return Roi(cx, cy, max(w, h) * 2.6, rot)


@dataclass
class Landmarks:
    """Landmarks of one person or hand.

    Attributes
    ----------
    points : ndarray, float32, shape (k, 3)
        x, y (frame px) and z (depth relative to the hips / wrist, in the crop's px scale).
    visibility : ndarray, float32, shape (k,)
        Probability each landmark is visible (pose; ones for hands).
    presence : float
        The model's presence score in [0, 1].
    handedness : float
        Hands only: the model's score for "right hand" (MediaPipe assumes a mirrored selfie image); 0 for pose.
    roi : Roi
    """

    points: np.ndarray
    visibility: np.ndarray
    presence: float
    handedness: float
    roi: Roi


class _LandmarkModel:
    """Shared run of MediaPipe's landmark models: the rotated ``roi`` crop in [0, 1] in, points in frame px out."""

    size = 0

    def _points(self, frame: np.ndarray, roi: Roi, n_points: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Run the model on ``roi`` of ``frame``.

        Returns
        -------
        raw : ndarray, float32, shape (n_points, width)
            The landmark tensor's first ``n_points`` rows (crop px, then the model's extra columns).
        points : ndarray, float32, shape (n_points, 3)
            x, y in frame px and z in the crop's px scale (:class:`Landmarks`).
        """
        crop = rotated_crop(frame, roi, self.size).astype(np.float32) / 255.0
        self.interp.set_tensor(self.inp["index"], crop[None])
        self.interp.invoke()
        raw = self.interp.get_tensor(self.lm)[0].reshape(-1, width)[:n_points]
        xy = roi_to_frame(raw[:, :2] / self.size, roi)
        z = raw[:, 2:3] / self.size * roi.side
        return raw, np.concatenate([xy, z], 1).astype(np.float32)

    def _score(self, index: int) -> float:
        """The model's score output ``index`` clipped to [0, 1]."""
        return float(np.clip(self.interp.get_tensor(index)[0, 0], 0, 1))


class PoseLandmarker(_LandmarkModel):
    """BlazePose GHUM full landmark model: ``landmarks(frame, roi)`` -> :class:`Landmarks` (33 points).

    Raises
    ------
    WeightsUnavailableError
    """

    size = 256

    def __init__(self, model_path: str | None = None, threads: int = 1):
        self.interp, self.inp, outs = _interpreter(POSE_LANDMARKER, model_path, threads, (1, 256, 256, 3))
        shapes = {i: tuple(self.interp.get_tensor(i).shape) for i in outs}
        self.lm = next(i for i in outs if shapes[i] == (1, 195))
        self.flag = next(i for i in outs if shapes[i] == (1, 1))

    def landmarks(self, frame: np.ndarray, roi: Roi) -> Landmarks:
        """33 body landmarks of the person in ``roi`` (input in [0, 1]; visibility through a sigmoid).

        Returns
        -------
        Landmarks
        """
        raw, points = self._points(frame, roi, 33, 5)
        vis = _sigmoid(raw[:, 3]).astype(np.float32)
        return Landmarks(points, vis, self._score(self.flag), 0.0, roi)


class HandLandmarker(_LandmarkModel):
    """MediaPipe hand landmark model (full): ``landmarks(frame, roi)`` -> :class:`Landmarks` (21 points).

    Raises
    ------
    WeightsUnavailableError
    """

    size = 224

    def __init__(self, model_path: str | None = None, threads: int = 1):
        self.interp, self.inp, outs = _interpreter(HAND_LANDMARKER, model_path, threads, (1, 224, 224, 3))
        details = {o["index"]: o["name"] for o in self.interp.get_output_details()}
        shapes = {i: tuple(self.interp.get_tensor(i).shape) for i in outs}
        flags = sorted(i for i in outs if shapes[i] == (1, 1))
        self.lm = min((i for i in outs if shapes[i] == (1, 63)), key=lambda i: details[i])  # Identity, not _3
        flags = sorted(flags, key=lambda i: details[i])
        self.flag, self.hand = flags[0], flags[1]

    def landmarks(self, frame: np.ndarray, roi: Roi) -> Landmarks:
        """21 hand landmarks in ``roi`` (input in [0, 1]), the hand-presence score and the handedness score.

        Returns
        -------
        Landmarks
        """
        _, points = self._points(frame, roi, 21, 3)
        return Landmarks(points, np.ones(21, np.float32), self._score(self.flag), self._score(self.hand), roi)
