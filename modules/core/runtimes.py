"""Model files run outside torch: ONNX Runtime sessions (YAMNet, object detectors) and LiteRT interpreters (BlazeFace,
BlazePose, MediaPipe Hands, fer's expression model), loaded on the CPU with the package's one-line error.

Both runtimes are optional dependencies, imported when a model is loaded.
"""

from __future__ import annotations

import os

from nova_infant.core.errors import WeightsUnavailableError


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [""])[0]


def onnx_session(path: str | os.PathLike, label: str, threads: int = 1, inter_op_threads: int | None = None):
    """An ONNX Runtime ``InferenceSession`` of ``path`` on the CPU.

    Parameters
    ----------
    path : str or path
        ``.onnx`` file.
    label : str
        What the model is, for the error (``"NanoDet"``, ``"YAMNet ONNX"``).
    threads : int
        ``intra_op_num_threads``.
    inter_op_threads : int or None
        ``inter_op_num_threads`` (None: ONNX Runtime's default).

    Returns
    -------
    onnxruntime.InferenceSession

    Raises
    ------
    WeightsUnavailableError
        ``<path>: cannot load <label> (<ONNX Runtime's first line>)`` for a missing or unreadable file.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    if inter_op_threads is not None:
        opts.inter_op_num_threads = inter_op_threads
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise WeightsUnavailableError(f"{path}: cannot load {label} ({_first_line(exc)})") from None


def tflite_interpreter(path: str | os.PathLike, label: str, threads: int = 1, **options):
    """A LiteRT (TFLite) ``Interpreter`` of ``path`` with its tensors allocated.

    Parameters
    ----------
    path : str or path
        ``.tflite`` file.
    label : str
        What the model is, for the error (``"face detector"``).
    threads : int
        ``num_threads`` of the interpreter.
    **options
        Further ``Interpreter`` arguments (e.g. ``experimental_preserve_all_tensors=True``).

    Returns
    -------
    ai_edge_litert.interpreter.Interpreter

    Raises
    ------
    WeightsUnavailableError
        ``<path>: cannot load <label> (<LiteRT's first line>)`` for a missing or unreadable file.
    """
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_path=str(path), num_threads=threads, **options)
        interp.allocate_tensors()
    except Exception as exc:
        raise WeightsUnavailableError(f"{path}: cannot load {label} ({_first_line(exc)})") from None
    return interp
