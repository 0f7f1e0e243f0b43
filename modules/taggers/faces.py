"""Face detection with BlazeFace short range (MediaPipe, Apache-2.0) under ai-edge-litert, and the choice of the
face to track.

Method: Bazarevsky et al. 2019, "BlazeFace: Sub-millisecond Neural Face Detection on Mobile GPUs"; anchors and box
decoding follow MediaPipe's ``face_detection_short_range`` graph (SSD anchors: strides 8, 16, 16, 16, 128x128
input, fixed anchor size; ``TensorsToDetections`` with scale 128, sigmoid scores clipped at 100; non-maximum
suppression at IoU 0.3). Frames are letterboxed to a square (no distortion) before resizing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nova_infant.core.errors import OptionError, WeightsUnavailableError
from nova_infant.core.runtimes import tflite_interpreter
from nova_infant.taggers.assets import model_file

FACE_CHOICES = ("largest", "central", "left", "right")


def ssd_anchors() -> np.ndarray:
    """The 896 anchor centres (x, y in [0, 1]) of BlazeFace short range: 16x16x2 (stride 8) + 8x8x6 (stride 16)."""
    out = []
    for stride, per_cell in ((8, 2), (16, 6)):
        n = 128 // stride
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


@dataclass
class Face:
    """One face detection in frame pixels.

    Attributes
    ----------
    x, y : float
        Top-left corner (px).
    w, h : float
        Width and height (px).
    score : float
        Detection score in [0, 1].
    """

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def area(self) -> float:
        """Box area in px²."""
        return self.w * self.h

    @property
    def centre(self) -> tuple[float, float]:
        """Box centre (x, y) in px."""
        return self.x + self.w / 2, self.y + self.h / 2


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


class BlazeFaceDetector:
    """``detect(frame)`` -> list of :class:`Face` for an RGB uint8 frame of shape (H, W, 3).

    Parameters
    ----------
    model_path : the ``.tflite`` file (default: the cached ``face_detection_short_range.tflite``)
    min_score : detection threshold (MediaPipe default 0.5)
    threads : interpreter threads

    Raises
    ------
    WeightsUnavailableError
        If the model file is missing or not a BlazeFace model.
    """

    def __init__(self, model_path: str | None = None, min_score: float = 0.5, iou: float = 0.3, threads: int = 2):
        path = str(model_path or model_file("face_detection_short_range.tflite"))
        self.interp = tflite_interpreter(path, "face detector", threads)
        self.inp = self.interp.get_input_details()[0]
        outs = {o["name"]: o for o in self.interp.get_output_details()}
        if tuple(self.inp["shape"]) != (1, 128, 128, 3) or "regressors" not in outs:
            raise WeightsUnavailableError(f"{path}: not a BlazeFace short-range model")
        self.reg, self.cls = outs["regressors"]["index"], outs["classificators"]["index"]
        self.anchors = ssd_anchors()
        self.min_score, self.iou = float(min_score), float(iou)

    def detect(self, frame: np.ndarray) -> list[Face]:
        """Faces in one frame: BlazeFace short range on the frame padded to a square and resized to 128 x 128
        (MediaPipe face detection; SSD anchors of :func:`ssd_anchors`), then weighted non-maximum suppression.

        Parameters
        ----------
        frame : ndarray, uint8, shape (H, W, 3)
            RGB frame.

        Returns
        -------
        list of Face
            Detections with ``score >= min_score`` in frame pixels, clipped to the frame, best first; boxes that
            overlap a better one by IoU >= ``iou`` are merged into it, weighted by score (MediaPipe's weighted
            non-maximum suppression).
        """
        from PIL import Image

        h, w = frame.shape[:2]
        side = max(h, w)
        pad_x, pad_y = (side - w) / 2, (side - h) / 2
        square = np.zeros((side, side, 3), np.uint8)
        square[int(pad_y):int(pad_y) + h, int(pad_x):int(pad_x) + w] = frame
        small = np.asarray(Image.fromarray(square).resize((128, 128), Image.BILINEAR), np.float32)
        self.interp.set_tensor(self.inp["index"], (small / 127.5 - 1.0)[None])
        self.interp.invoke()
        raw = self.interp.get_tensor(self.reg)[0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(self.interp.get_tensor(self.cls)[0, :, 0].astype(np.float64), -100, 100)))
        keep = np.flatnonzero(scores >= self.min_score)
        if not len(keep):
            return []
        cx = raw[keep, 0] / 128 + self.anchors[keep, 0]
        cy = raw[keep, 1] / 128 + self.anchors[keep, 1]
        bw, bh = raw[keep, 2] / 128, raw[keep, 3] / 128
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1) * side
        boxes -= np.array([pad_x, pad_y, pad_x, pad_y])
        sc = scores[keep]
        faces, order = [], np.argsort(-sc)
        while len(order):
            i = order[0]
            overlap = _iou(boxes[i], boxes[order])
            group = order[overlap >= self.iou]
            wts = sc[group][:, None]
            b = (boxes[group] * wts).sum(0) / wts.sum()  # weighted NMS (MediaPipe)
            x1, y1 = max(b[0], 0.0), max(b[1], 0.0)
            x2, y2 = min(b[2], float(w)), min(b[3], float(h))
            if x2 > x1 and y2 > y1:
                faces.append(Face(float(x1), float(y1), float(x2 - x1), float(y2 - y1), float(sc[i])))
            order = order[overlap < self.iou]
        return faces


def choose_face(faces: list[Face], frame_shape: tuple[int, int], rule: str = "largest") -> Face | None:
    """Pick the face to track in one frame.

    ``largest`` (biggest box), ``central`` (centre nearest the frame centre), ``left`` / ``right`` (largest face
    whose centre lies in that half: a role's side of a split-screen video). None if no face qualifies.

    Raises
    ------
    OptionError
        For an unknown rule.
    """
    if rule not in FACE_CHOICES:
        raise OptionError(f"option face: expected one of {', '.join(FACE_CHOICES)}, got {rule!r}")
    h, w = frame_shape[:2]
    if rule == "left":
        faces = [f for f in faces if f.centre[0] < w / 2]
    elif rule == "right":
        faces = [f for f in faces if f.centre[0] >= w / 2]
    if not faces:
        return None
    if rule == "central":
        return min(faces, key=lambda f: (f.centre[0] - w / 2) ** 2 + (f.centre[1] - h / 2) ** 2)
    return max(faces, key=lambda f: f.area)
