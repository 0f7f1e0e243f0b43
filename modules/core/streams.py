"""SSI feature streams, on top of discover-utils (hcai-discover-utils 1.2.1): build one NOVA can list and plot
(float32, true rate, ``media_type``, ``dim_labels``), write it atomically (:mod:`nova_infant.core.atomic`), open it
lazily (memory-mapped) and load it back through discover-utils.
"""

from __future__ import annotations

import math
import os
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from nova_infant.core.atomic import check_pair, save_atomic
from nova_infant.core.errors import StreamError
from nova_infant.core.write_policy import register_input




def dim_labels(names: Sequence[str]) -> list[dict]:
    """Dimension labels of a stream as discover-utils and NOVA expect them for ``SSIStream.dim_labels``.

    Parameters
    ----------
    names : sequence of str
        One name per column.

    Returns
    -------
    list of dict
        ``[{"id": i, "name": name}, ...]``.
    """
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


def write_ssi_stream(stream, path: str | os.PathLike) -> Path:
    """Write an ``SSIStream`` as ``path`` (XML header) + ``path~`` (binary float32), atomically (:func:`save_atomic`).

    Parameters
    ----------
    stream : discover_utils.data.stream.SSIStream
    path : path
        ``.stream`` is appended if missing.

    Returns
    -------
    pathlib.Path
        The header path.

    Raises
    ------
    OutputError
        If the folder cannot be written; the previous output is then unchanged.
    """
    path = Path(path)
    if path.suffix != ".stream":
        path = path.with_name(path.name + ".stream")
    return save_atomic(stream, path)


@dataclass
class StreamView:
    """A feature stream opened lazily (:func:`open_ssi_stream`).

    Attributes
    ----------
    path : pathlib.Path
    data : numpy.memmap, shape (n_rows, dim)
        Read-only; float32 for our streams (the header's ``type``).
    sample_rate_hz : float
    media_type : str
        The header's ``type`` attribute (e.g. ``feature;video;dinov2``).
    meta : dict
        Every ``<meta>`` attribute of the header.
    """

    path: Path
    data: np.ndarray
    sample_rate_hz: float
    media_type: str
    meta: dict = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Number of rows (frames) of the stream."""
        return int(self.data.shape[0])

    @property
    def dim(self) -> int:
        """Number of values per row (the stream's ``dim``)."""
        return int(self.data.shape[1])

    @property
    def duration_ms(self) -> float:
        """Length of the stream in ms: ``n_rows * 1000 / sample_rate_hz``."""
        return self.n_rows * 1000.0 / self.sample_rate_hz


_SSI_TYPES = {"FLOAT": np.float32, "DOUBLE": np.float64, "SHORT": np.int16, "USHORT": np.uint16,
              "INT": np.int32, "UINT": np.uint32, "LONG": np.int64, "ULONG": np.uint64}


def _looks_ascii(data_path: Path) -> str:
    """``"; the data looks like ASCII text ..."`` when the first 256 bytes of a data file are printable text, else ``""``."""
    with open(data_path, "rb") as f:
        head = f.read(256)
    if len(head) >= 16 and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "; the data looks like ASCII text: should the header say ftype=ASCII?"
    return ""


def open_ssi_stream(path: str | os.PathLike) -> StreamView:
    """Open an SSI stream (BINARY) without reading its data into memory.

    Raises
    ------
    StreamError
        If the header is missing or malformed, the type is not numeric, the sample rate is not a positive finite
        number (``sr="nan"``), ``dim`` is not positive, the data file disagrees with the header (BINARY: size
        != rows x dim x bytes, e.g. ASCII text; ASCII: not numbers, e.g. binary data, or other rows/dims), or it
        does not match the header's ``data_check`` fingerprint.
    """
    path = Path(path)
    data_path = Path(str(path) + "~")
    register_input(path)  # an output of this job may never replace it (readers never write)
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
    try:
        n_rows = sum(int(c.get("num", 0)) for c in root.findall("chunk"))
    except ValueError as exc:
        raise StreamError(f"{path}: malformed stream header (chunk num: {exc})") from None
    if not math.isfinite(sr) or sr <= 0:
        raise StreamError(f"{path}: sample rate sr={info.get('sr')!r} in the header, expected a positive number")
    if dim <= 0 or n_rows < 0:
        raise StreamError(f"{path}: header announces dim={dim} and {n_rows} rows, expected dim >= 1 and rows >= 0")
    if ftype not in ("ASCII", "BINARY"):
        raise StreamError(f"{path}: header ftype={ftype!r}, expected ASCII or BINARY")
    if not data_path.is_file():
        raise StreamError(f"{data_path}: stream data file is missing")
    if ftype == "ASCII":
        delim = (info.get("delim") or " ").strip() or None
        try:
            with warnings.catch_warnings():  # "input contained no data": an empty stream, checked below
                warnings.simplefilter("ignore", UserWarning)
                array = np.loadtxt(data_path, dtype=np.float64, delimiter=delim, ndmin=2).astype(np.float32)
        except (ValueError, UnicodeDecodeError) as exc:
            why = "binary bytes" if isinstance(exc, UnicodeDecodeError) else (str(exc).splitlines() or [""])[0][:120]
            raise StreamError(f"{data_path}: header {path.name} says ftype=ASCII but the data is not text numbers "
                              f"({why}); should the header say BINARY?") from None
        if array.size == 0:
            array = np.zeros((0, dim), np.float32)
        if array.shape != (n_rows, dim):
            raise StreamError(f"{data_path}: holds {array.shape[0]} rows x {array.shape[1]} values, header "
                              f"{path.name} announces {n_rows} rows x {dim} dims")
    else:
        expected = n_rows * dim * np.dtype(dtype).itemsize
        actual = data_path.stat().st_size
        if actual != expected:
            raise StreamError(f"{data_path}: holds {actual} bytes, header announces {n_rows} rows x {dim} dims "
                              f"({expected} bytes){_looks_ascii(data_path)}")
        if _looks_ascii(data_path):  # text of just the right size would be read as nonsense numbers
            raise StreamError(f"{data_path}: header {path.name} says ftype=BINARY{_looks_ascii(data_path)}")
        check_pair(path)
        array = np.memmap(data_path, dtype=dtype, mode="r", shape=(n_rows, dim)) if n_rows else np.zeros((0, dim), dtype)
    return StreamView(path, array, sr, meta.get("type", ""), meta)


def load_ssi_stream(path: str | os.PathLike):
    """Load a stream back through discover-utils' ``FileHandler`` (the path NOVA-side tools take).

    Parameters
    ----------
    path : path
        The ``.stream`` header.

    Returns
    -------
    discover_utils.data.stream.SSIStream
        ``data`` of shape (n_rows, dim); ``meta_data.sample_rate`` in Hz.

    Raises
    ------
    StreamError
        As :func:`open_ssi_stream` (a header that disagrees with its data), or when discover-utils cannot parse it.
    """
    from discover_utils.data.handler.file_handler import FileHandler

    register_input(path)
    open_ssi_stream(path)  # header and data agree (one-line StreamError otherwise), before discover-utils parses it
    try:
        return FileHandler().load(Path(path))
    except Exception as exc:  # the library raises value, index and XML errors alike
        raise StreamError(f"{path}: cannot read stream ({type(exc).__name__}: {str(exc)[:160]})") from None
