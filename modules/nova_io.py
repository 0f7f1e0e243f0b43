"""NOVA I/O shared by every module, on top of discover-utils (hcai-discover-utils 1.2.1).

- SSI feature streams: build (float32, true rate, ``media_type``, ``dim_labels``), write atomically, open lazily
  (memory-mapped) and load back through discover-utils.
- Discrete annotations: frame labels -> merged segments in ms with ``conf``.
- ``.trainer`` files: written by hand (discover-utils' writer loses ``rightContext``/``is_iterable``, and NOVA
  hides any trainer without ``trained="true"``; see docs/discover-integration notes) and read back with
  discover-utils' parser.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from .errors import StreamError, TrainerFileError

# ---------------------------------------------------------------- streams


def dim_labels(names: Sequence[str]) -> list[dict]:
    """``[{"id": i, "name": name}, ...]`` as discover-utils/NOVA expect for ``SSIStream.dim_labels``."""
    return [{"id": i, "name": str(n)} for i, n in enumerate(names)]


def make_ssi_stream(data: np.ndarray, sample_rate_hz: float, media_type: str, dim_names: Sequence[str],
                    name: str | None = None, role: str | None = None, session: str | None = None,
                    dataset: str | None = None, custom_meta: dict | None = None):
    """Build a discover-utils ``SSIStream`` that NOVA can list and plot.

    Parameters
    ----------
    data : array-like of shape (n_rows, dim)
        Cast to float32 (the header says FLOAT; the writer dumps the array's bytes as they are).
    sample_rate_hz : float
        True row rate in Hz (e.g. 25.0, or 29.97 for every frame of a 29.97 fps video).
    media_type : str
        NOVA stream type, e.g. ``"feature;video;dinov2"``; NOVA matches trainer inputs against its last token.
    dim_names : sequence of str, length dim
    custom_meta : dict of str -> str, optional
        Extra attributes of the header's ``<meta>`` element (e.g. ``weights="stand-in"``). NOVA reads ``size`` as
        ``W:H`` and reserves ``name`` and ``type``.

    Raises
    ------
    StreamError
        If ``data`` is not 2-D, is empty, has NaN/inf values, ``dim_names`` does not match its width, or
        ``custom_meta`` uses a key NOVA interprets with another meaning.
    """
    from discover_utils.data.stream import SSIStream

    array = np.ascontiguousarray(data, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] == 0:
        raise StreamError(f"stream {name or ''}: expected a 2-D (rows, dim) array, got shape {array.shape}")
    if array.shape[0] == 0:
        raise StreamError(f"stream {name or ''}: no rows (NOVA rejects empty streams)")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise StreamError(f"stream {name or ''}: {bad} rows hold NaN or inf values")
    if len(dim_names) != array.shape[1]:
        raise StreamError(f"stream {name or ''}: {len(dim_names)} dimension names for {array.shape[1]} columns")
    meta = {str(k): str(v) for k, v in (custom_meta or {}).items()}
    _check_meta(meta, name)
    return SSIStream(array, float(sample_rate_hz), dim_labels=dim_labels(dim_names), media_type=media_type,
                     custom_meta=meta, dtype=np.float32, name=name, role=role, session=session, dataset=dataset)


def _check_meta(meta: dict, name: str | None) -> None:
    """NOVA gives some ``<meta>`` keys a meaning of its own (hcmlab/nova Controls/MainHandlerFile.cs): ``size`` is
    split as ``W:H`` (a bare "224" throws and the session's streams are skipped), ``name`` selects face/skeleton
    overlays, ``type`` is the media type. Raises ``StreamError`` for such a key used otherwise."""
    if "size" in meta and not re.fullmatch(r"\d+:\d+", meta["size"]):
        raise StreamError(f"stream {name or ''}: <meta size={meta['size']!r}> must be W:H (NOVA parses it so)")
    for key in ("name", "type"):
        if key in meta:
            raise StreamError(f"stream {name or ''}: <meta {key}> is reserved by NOVA; use another key")


def save_atomic(data, path: str | os.PathLike) -> Path:
    """Save a discover-utils object that has a header file and a ``<path>~`` data file (SSI stream, annotation).

    Both files are written with discover-utils' ``FileHandler`` into a temporary folder beside the target and renamed
    into place, so an interrupted write leaves no partial output. Missing parent folders are created.
    """
    from discover_utils.data.handler.file_handler import FileHandler

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=".partial-", dir=path.parent))
    try:
        tmp = tmp_dir / path.name
        FileHandler().save(data, tmp)
        os.replace(str(tmp) + "~", str(path) + "~")
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path


@contextmanager
def atomic_dir(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Write a folder (model bundle, head) atomically: yields a temporary folder beside ``out_dir``; when the block
    ends without error it replaces ``out_dir`` (an existing folder is removed first), otherwise it is deleted."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_ssi_stream(stream, path: str | os.PathLike) -> Path:
    """Write an ``SSIStream`` as ``path`` (XML header) + ``path~`` (binary float32), atomically (:func:`save_atomic`).

    ``.stream`` is appended to ``path`` if missing. Returns the header path.
    """
    path = Path(path)
    if path.suffix != ".stream":
        path = path.with_name(path.name + ".stream")
    return save_atomic(stream, path)


def write_annotation(annotation, path: str | os.PathLike) -> Path:
    """Write a discover-utils annotation as an ASCII NOVA ``.annotation`` (+ ``~``), atomically.

    ``.annotation`` is appended to ``path`` if missing (discover-utils' BINARY writer is broken: never used).
    Returns the header path.
    """
    path = Path(path)
    if path.suffix != ".annotation":
        path = path.with_name(path.name + ".annotation")
    return save_atomic(annotation, path)


def read_annotation(path: str | os.PathLike):
    """Load a NOVA ``.annotation`` (discrete, continuous or free) with discover-utils' ``FileHandler``.

    Returns a ``DiscreteAnnotation`` (data: ``from``/``to`` int32 ms, ``id`` int32, ``conf`` float32),
    ``ContinuousAnnotation`` (``score``, ``conf`` at the scheme's rate) or ``FreeAnnotation``.

    Raises
    ------
    AnnotationError
        If the file is not an ``.annotation``, it or its ``~`` data file is missing, or it cannot be parsed.
    """
    from discover_utils.data.annotation import Annotation
    from discover_utils.data.handler.file_handler import FileHandler

    from .errors import AnnotationError

    path = Path(path)
    if path.suffix != ".annotation":
        raise AnnotationError(f"{path}: not a NOVA .annotation file")
    if not path.is_file():
        raise AnnotationError(f"{path}: no such annotation file")
    if not Path(str(path) + "~").is_file():
        raise AnnotationError(f"{path}: data file {path.name}~ is missing")
    try:
        annotation = FileHandler().load(path)
    except Exception as exc:  # the parser raises XML, value and index errors alike
        raise AnnotationError(f"{path}: cannot read annotation ({type(exc).__name__}: {exc})") from None
    if not isinstance(annotation, Annotation):
        raise AnnotationError(f"{path}: not an annotation")
    return annotation


@dataclass
class StreamView:
    """A feature stream opened lazily: ``data`` is a read-only ``np.memmap`` of shape (n_rows, dim), float32.

    Attributes: ``path``, ``data``, ``sample_rate_hz``, ``media_type``, ``meta`` (all ``<meta>`` attributes).
    """

    path: Path
    data: np.ndarray
    sample_rate_hz: float
    media_type: str
    meta: dict = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return int(self.data.shape[0])

    @property
    def dim(self) -> int:
        return int(self.data.shape[1])

    @property
    def duration_ms(self) -> float:
        return self.n_rows * 1000.0 / self.sample_rate_hz


_SSI_TYPES = {"FLOAT": np.float32, "DOUBLE": np.float64, "SHORT": np.int16, "USHORT": np.uint16,
              "INT": np.int32, "UINT": np.uint32, "LONG": np.int64, "ULONG": np.uint64}


def open_ssi_stream(path: str | os.PathLike) -> StreamView:
    """Open an SSI stream (BINARY) without reading its data into memory.

    Raises
    ------
    StreamError
        If the header is missing or malformed, the type is not numeric, or the data file's size does not match
        the header (rows x dim x bytes).
    """
    path = Path(path)
    data_path = Path(str(path) + "~")
    try:
        root = ET.parse(path).getroot()
        info = root.find("info")
        sr = float(info.get("sr"))
        dim = int(info.get("dim"))
        ftype = info.get("ftype", "BINARY").upper()
        dtype = _SSI_TYPES[info.get("type", "FLOAT").upper()]
    except FileNotFoundError:
        raise StreamError(f"{path}: no such stream file") from None
    except Exception as exc:
        raise StreamError(f"{path}: malformed stream header ({exc})") from None
    meta_el = root.find("meta")
    meta = dict(meta_el.attrib) if meta_el is not None else {}
    n_rows = sum(int(c.get("num", 0)) for c in root.findall("chunk"))
    if not data_path.is_file():
        raise StreamError(f"{data_path}: stream data file is missing")
    if ftype == "ASCII":
        array = np.loadtxt(data_path, dtype=np.float64, delimiter=(info.get("delim") or " ").strip() or None,
                           ndmin=2).astype(np.float32)
    else:
        expected = n_rows * dim * np.dtype(dtype).itemsize
        actual = data_path.stat().st_size
        if actual != expected:
            raise StreamError(f"{data_path}: holds {actual} bytes, header announces {n_rows} rows x {dim} dims "
                              f"({expected} bytes)")
        array = np.memmap(data_path, dtype=dtype, mode="r", shape=(n_rows, dim)) if n_rows else np.zeros((0, dim), dtype)
    if sr <= 0:
        raise StreamError(f"{path}: non-positive sample rate {sr}")
    return StreamView(path, array, sr, meta.get("type", ""), meta)


def load_ssi_stream(path: str | os.PathLike):
    """Load a stream back through discover-utils' ``FileHandler`` (the path NOVA-side tools take)."""
    from discover_utils.data.handler.file_handler import FileHandler

    return FileHandler().load(Path(path))


# ---------------------------------------------------------------- discrete annotations


def frames_to_segments(labels: np.ndarray, step_ms: float, conf: np.ndarray | None = None,
                       skip_ids: Iterable[int] = (), offset_ms: float = 0.0) -> np.ndarray:
    """Merge consecutive equal frame labels into segments (NOVA ``LabelDType.DISCRETE``: ms, id, conf).

    Parameters
    ----------
    labels : int array of shape (n_frames,)
        Class id per frame; frame k covers ``[offset + k*step, offset + (k+1)*step)`` ms.
    conf : float array of shape (n_frames,), optional
        Per-frame confidence; a segment's ``conf`` is the mean over its frames (1.0 if omitted).
    skip_ids : ids that produce no segment (e.g. REST, or -1 for "no prediction").

    Returns
    -------
    structured ndarray with fields ``from``, ``to`` (int32 ms), ``id`` (int32), ``conf`` (float32)
    """
    from discover_utils.utils.type_definitions import LabelDType

    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    conf = np.ones(len(labels), np.float32) if conf is None else np.asarray(conf, np.float32).reshape(-1)
    if len(labels) == 0:
        return np.zeros(0, dtype=LabelDType.DISCRETE.value)
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(labels)]])
    keep = ~np.isin(labels[starts], list(skip_ids))
    starts, ends = starts[keep], ends[keep]
    csum = np.concatenate([[0.0], np.cumsum(conf, dtype=np.float64)])
    sums = csum[ends] - csum[starts]
    out = np.zeros(len(starts), dtype=LabelDType.DISCRETE.value)
    out["from"] = np.round(offset_ms + starts * step_ms).astype(np.int32)
    out["to"] = np.round(offset_ms + ends * step_ms).astype(np.int32)
    out["id"] = labels[starts]
    out["conf"] = (sums / np.maximum(ends - starts, 1)).astype(np.float32)
    return out


# ---------------------------------------------------------------- .trainer files


@dataclass
class TrainerIO:
    """One ``<io>`` entry of a ``.trainer``: ``type`` input|output, ``id`` (the key of the module's dict),
    ``data`` (e.g. ``stream:Video``, ``stream:SSIStream:dinov2``, ``annotation:Discrete``), ``default_value``."""

    type: str
    id: str
    data: str
    default_value: str = ""
    default_active: bool = True


@dataclass
class TrainerSpec:
    """What a hand-written ``.trainer`` holds (see :func:`write_trainer`).

    Options are ``(name, TYPE, default)`` with TYPE in STRING, BOOL, LIST (LIST default = comma-separated choices,
    first = default). Contexts and frame step are in ms.
    """

    script: str
    create: str
    description: str
    category: str
    io: list[TrainerIO]
    options: list[tuple[str, str, str]] = field(default_factory=list)
    frame_step_ms: float = 0
    left_context_ms: float = 0
    right_context_ms: float = 0
    is_iterable: bool = False
    weights_path: str = ""
    trained: bool = True
    enable_post_process: bool = False
    is_trainable: bool = False


def option_string(options: Sequence[tuple[str, str, str]]) -> str:
    """``{name:TYPE:default};...`` as NOVA parses it.

    Raises
    ------
    TrainerFileError
        If a name or default contains ``:``, ``;``, ``{`` or ``}`` (NOVA splits on them).
    """
    parts = []
    for name, kind, default in options:
        text = str(default)
        if kind == "BOOL":
            text = "True" if str(default).lower() in ("1", "true", "yes") else "False"
        if any(ch in str(name) + text for ch in ":;{}"):
            raise TrainerFileError(f"option {name!r}: NOVA cannot parse ':', ';', '{{' or '}}' in {text!r}")
        parts.append(f"{{{name}:{kind}:{text}}}")
    return ";".join(parts)


def _ms(value: float) -> str:
    # DISCOVER parses frame step and contexts to integer ms ("40ms" -> 40).
    return f"{int(round(float(value)))}ms"


def write_trainer(path: str | os.PathLike, spec: TrainerSpec) -> Path:
    """Write a ``.trainer`` XML that NOVA lists and ``du-process`` runs; written atomically.

    Layout follows DISCOVER 1.1 / discover-utils 1.2.1 (``<trainer ssi-v="5"><info trained="true"/><meta …><io/>
    </meta><model create script optstr path/></trainer>``). Frame step and contexts are written as integer ms.

    Raises
    ------
    TrainerFileError
        For an option string NOVA could not parse.
    """
    path = Path(path)
    root = ET.Element("trainer", {"ssi-v": "5"})
    ET.SubElement(root, "info", {"trained": "true" if spec.trained else "false", "seed": "1234"})
    meta = ET.SubElement(root, "meta", {
        "backend": "nova-server",
        "category": spec.category,
        "description": spec.description,
        "frameStep": _ms(spec.frame_step_ms),
        "leftContext": _ms(spec.left_context_ms),
        "rightContext": _ms(spec.right_context_ms),
        "is_iterable": "True" if spec.is_iterable else "False",
        "is_trainable": "True" if spec.is_trainable else "False",
        "enable_post_process": "True" if spec.enable_post_process else "False",
    })
    for io in spec.io:
        ET.SubElement(meta, "io", {"type": io.type, "id": io.id, "data": io.data, "default_value": io.default_value,
                                   "default_active": "True" if io.default_active else "False"})
    ET.SubElement(root, "model", {"create": spec.create, "script": spec.script,
                                  "optstr": option_string(spec.options), "path": spec.weights_path})
    tree = ET.ElementTree(root)
    ET.indent(tree, space="    ")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tree.write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)
    return path


def read_trainer(path: str | os.PathLike):
    """Parse a ``.trainer`` with discover-utils' own parser (what ``du-process``/DISCOVER use).

    Raises
    ------
    TrainerFileError
        If the file is missing, is not XML, or lacks ``<model create script>``.
    """
    from discover_utils.utils.ssi_xml_utils import Trainer

    path = Path(path)
    if not path.is_file():
        raise TrainerFileError(f"{path}: no such .trainer file")
    try:
        ET.parse(path)
        trainer = Trainer()
        trainer.load_from_file(path)
    except Exception as exc:
        raise TrainerFileError(f"{path}: malformed .trainer ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if not trainer.model_create or not trainer.model_script_path:
        raise TrainerFileError(f"{path}: <model> needs 'create' and 'script' attributes")
    return trainer
