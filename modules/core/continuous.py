"""Continuous NOVA annotations with gaps NOVA shows as gaps.

NOVA reads each ``score;conf`` line of a continuous annotation with .NET's ``double.TryParse`` (NOVA targets .NET
Framework 4.8; ``Types/AnnoListFile.cs``): it accepts ``NaN`` but not the ``nan`` numpy's ``savetxt`` writes (which
discover-utils' ``FileHandler`` uses), and a score that fails to parse silently becomes 0 -- a missing second then
shows as a real, neutral score. A ``nan`` confidence makes NOVA throw (docs/nova-client.md, "Annotations").

The rule every writer of the package follows (:func:`gap_rows` builds the rows, :func:`write_continuous_rows`
writes the ``~`` data file; :func:`nova_infant.core.atomic.save_atomic` calls it for every continuous annotation,
ours and those du-process saves through discover-utils alike):

- a missing value (any non-finite score: NaN, +-inf) is written ``NaN`` with confidence 0;
- a confidence is always a finite number (a non-finite one becomes 0);
- numbers keep discover-utils' ``%.2f`` (10 ms / 0.01 resolution).
"""

from __future__ import annotations

import os

import numpy as np

#: the only spelling of a missing score NOVA's reader takes as missing (.NET ``NumberFormatInfo.NaNSymbol``)
NOVA_NAN = "NaN"


def gap_rows(score, conf) -> np.ndarray:
    """Rows of a continuous annotation (discover-utils ``LabelDType.CONTINUOUS``) with the gap rule applied.

    Parameters
    ----------
    score, conf : array-like of float, shape (n,)
        Value and confidence per sample; NaN/inf scores are missing values.

    Returns
    -------
    ndarray, structured ``[("score", "<f4"), ("conf", "<f4")]``, shape (n,)
        Non-finite scores as NaN with conf 0; non-finite confidences as 0.

    Raises
    ------
    ValueError
        If ``score`` and ``conf`` differ in length.
    """
    score = np.asarray(score, np.float32).reshape(-1)
    conf = np.asarray(conf, np.float32).reshape(-1)
    if len(score) != len(conf):
        raise ValueError(f"continuous annotation: {len(score)} scores but {len(conf)} confidences")
    out = np.zeros(len(score), dtype=[("score", "<f4"), ("conf", "<f4")])
    missing = ~np.isfinite(score)
    out["score"] = np.where(missing, np.nan, score)
    out["conf"] = np.where(missing | ~np.isfinite(conf), 0.0, conf)
    return out


def continuous_lines(score, conf) -> str:
    """The text of a continuous annotation's ``~`` data file: one ``score;conf`` line per sample (``%.2f``; a missing
    score ``NaN;0.00``), as NOVA's ``double.TryParse`` reads it.

    Parameters
    ----------
    score, conf : array-like of float, shape (n,)

    Returns
    -------
    str
        Lines ending in ``\\n`` (empty for n = 0).
    """
    rows = gap_rows(score, conf)
    return "".join(f"{NOVA_NAN if np.isnan(s) else f'{s:.2f}'};{c:.2f}\n" for s, c in zip(rows["score"].tolist(),
                                                                                      rows["conf"].tolist()))


def is_continuous_annotation(obj) -> bool:
    """True for a discover-utils ``ContinuousAnnotation`` (checked by its scheme type, no import needed).

    Parameters
    ----------
    obj : object
        Anything handed to a writer.

    Returns
    -------
    bool
    """
    scheme = getattr(obj, "annotation_scheme", None)
    kind = getattr(scheme, "scheme_type", None)
    return getattr(kind, "name", str(kind)) == "CONTINUOUS"


def write_continuous_rows(annotation, data_path: str | os.PathLike) -> None:
    """Write (replace) the ``~`` data file of a continuous annotation by the gap rule (module docstring).

    Called on the staged copy inside :func:`nova_infant.core.atomic.save_atomic`, after discover-utils has written
    header and data: only the data file's text changes (the header's ``size`` stays the row count).

    Parameters
    ----------
    annotation : discover_utils.data.annotation.ContinuousAnnotation
        Its ``data`` holds ``score`` and ``conf``.
    data_path : path
        The staged ``<annotation>~`` file.

    Raises
    ------
    OSError
        If the file cannot be written (the caller turns it into an ``OutputError``).
    """
    data = annotation.data
    if data is None or len(data) == 0:
        text = ""
    else:
        text = continuous_lines(data["score"], data["conf"])
    with open(data_path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
