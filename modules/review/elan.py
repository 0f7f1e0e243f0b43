"""Exchange with ELAN (``.eaf``) and spreadsheets (CSV), for labs that code in ELAN.

- :func:`export_elan`: NOVA annotations (discrete or free) → one ELAN tier each, times in ms; garbage segments
  get the value ``GARBAGE``. Written with ``pympi-ling`` (``pympi.Elan.Eaf``, EAF 2.8).
- :func:`export_csv`: one row per segment (discrete/free) or per sample (continuous).
- :func:`import_elan_tier`: an ELAN tier → a NOVA discrete annotation. The tier's distinct values become the
  scheme's classes (in order of first appearance, colours from matplotlib's tab20) unless a scheme is given, in which
  case every value must be one of its class names (``GARBAGE`` → NOVA garbage -1).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from nova_infant.core.atomic import atomic_file
from nova_infant.core.errors import AnnotationError, NovaInfantError
from nova_infant.core.schemes import parse_scheme, read_scheme_json
from nova_infant.review.annotations import GARBAGE_ID, describe, is_discrete, read_annotation, scheme_classes, segments, write_annotation

GARBAGE_VALUE = "GARBAGE"
MIMETYPES = {".mp4": "video/mp4", ".avi": "video/x-msvideo", ".mov": "video/quicktime", ".wav": "audio/x-wav",
             ".mpg": "video/mpeg", ".mpeg": "video/mpeg"}


def _pympi():
    try:
        import pympi
    except ImportError:
        raise NovaInfantError("ELAN files need pympi-ling: pip install pympi-ling (scripts/install-review.sh)") from None
    return pympi


def _labelled_segments(annotation, source: str) -> list[tuple[int, int, str, float]]:
    """(from ms, to ms, value, conf) of a discrete or free annotation."""
    data = annotation.data
    if is_discrete(annotation):
        names = {c.id: c.name for c in scheme_classes(annotation)}
        out = []
        for start, stop, cid, conf in segments(annotation).tolist():
            if cid != GARBAGE_ID and cid not in names:
                raise AnnotationError(f"{source}: label id {cid} at {start / 1000:.2f} s is not in the scheme")
            out.append((int(start), int(stop), GARBAGE_VALUE if cid == GARBAGE_ID else names[cid], float(conf)))
        return out
    if data is not None and data.dtype.names and "name" in data.dtype.names:
        return [(int(r["from"]), int(r["to"]), str(r["name"]), float(r["conf"]))
                for r in data[np.argsort(data["from"], kind="stable")]]
    raise AnnotationError(f"{source}: only discrete and free annotations map to ELAN tiers")


def _atomic(path: Path, write) -> Path:
    with atomic_file(path, path.suffix) as tmp:
        write(tmp)
    return path


def export_elan(annotation_paths: Sequence[str | os.PathLike], out_path: str | os.PathLike,
                media: str | os.PathLike | None = None, tier_names: Sequence[str] | None = None) -> Path:
    """Write NOVA annotations as tiers of one ELAN file.

    Parameters
    ----------
    annotation_paths : sequence of path
        NOVA ``.annotation`` files (discrete or free) of one session.
    out_path : path
        ``.eaf`` to write (temp file + rename).
    media : path or None
        Video/audio to link in the ELAN file (absolute URL; ELAN asks for it if it moved).
    tier_names : sequence of str or None
        Tier ids; default ``role.scheme.annotator`` of each annotation (NOVA's naming).

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    AnnotationError
        For a continuous annotation, unreadable file, or duplicate tier names.
    """
    pympi = _pympi()

    eaf = pympi.Elan.Eaf(author="nova-infant")
    eaf.remove_tier("default")
    names = list(tier_names or [])
    used = set()
    for i, p in enumerate(annotation_paths):
        ann = read_annotation(p)
        tier = names[i] if i < len(names) else describe(ann, Path(p).stem)
        if tier in used:
            raise AnnotationError(f"{p}: tier name {tier!r} is used twice; pass distinct tier names")
        used.add(tier)
        eaf.add_tier(tier)
        for start, stop, value, _ in _labelled_segments(ann, str(p)):
            if stop > start:  # ELAN has no zero-length annotations
                eaf.add_annotation(tier, start, stop, value)
    if media:
        media = Path(media).resolve()
        eaf.add_linked_file(media.as_uri(), mimetype=MIMETYPES.get(media.suffix.lower(), "video/mp4"))
    return _atomic(Path(out_path), lambda tmp: eaf.to_file(str(tmp)))


def export_csv(annotation_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write a NOVA annotation as CSV (comma-separated, header row, UTF-8).

    Columns: discrete ``start_s,end_s,label_id,label,confidence`` (garbage: id -1, label ``GARBAGE``); free
    ``start_s,end_s,label,confidence``; continuous ``time_s,score,confidence`` (time = sample centre).
    Times in seconds with millisecond precision.

    Returns
    -------
    pathlib.Path
    """
    ann = read_annotation(annotation_path)
    data = ann.data if ann.data is not None else []

    def write(tmp: Path):
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            if is_discrete(ann):
                w.writerow(["start_s", "end_s", "label_id", "label", "confidence"])
                names = {c.id: c.name for c in scheme_classes(ann)}
                for start, stop, cid, conf in segments(ann).tolist():
                    label = GARBAGE_VALUE if cid == GARBAGE_ID else names.get(cid)
                    if label is None:
                        raise AnnotationError(f"{annotation_path}: label id {cid} at {start / 1000:.2f} s is not "
                                              f"in the scheme")
                    w.writerow([f"{start / 1000:.3f}", f"{stop / 1000:.3f}", cid, label, f"{conf:.4f}"])
            elif len(data) and "score" in data.dtype.names:
                w.writerow(["time_s", "score", "confidence"])
                sr = float(ann.annotation_scheme.sample_rate)
                for k, (score, conf) in enumerate(data.tolist()):
                    w.writerow([f"{(k + 0.5) / sr:.3f}", f"{score:.6g}", f"{conf:.4f}"])
            else:
                w.writerow(["start_s", "end_s", "label", "confidence"])
                for start, stop, value, conf in _labelled_segments(ann, str(annotation_path)):
                    w.writerow([f"{start / 1000:.3f}", f"{stop / 1000:.3f}", value, f"{conf:.4f}"])

    return _atomic(Path(out_path), write)


def load_scheme_json(path: str | os.PathLike) -> dict:
    """Read a discrete scheme description (``data/schemes/*.json``: ``name``, ``classes`` [{id, name, color}]).

    Parsed by the package's one scheme parser (:func:`nova_infant.core.schemes.parse_scheme`).

    Raises
    ------
    AnnotationError
        If the file is unreadable or has no classes.
    """
    doc = read_scheme_json(path)
    scheme = parse_scheme(doc, str(path))
    if scheme.type != "DISCRETE":
        raise AnnotationError(f"{path}: not a scheme JSON with classes (scheme {scheme.name!r} is continuous)")
    return {**doc, "classes": scheme.classes}


def _tab20(i: int) -> str:
    import matplotlib

    r, g, b, _ = matplotlib.colormaps["tab20"](i % 20)
    return "#FF{:02X}{:02X}{:02X}".format(round(r * 255), round(g * 255), round(b * 255))


def elan_tier(eaf_path: str | os.PathLike, tier: str) -> list[tuple[int, int, str]]:
    """Time-aligned annotations of one tier of an ELAN file as (start ms, end ms, value), sorted by start.

    Raises
    ------
    AnnotationError
        If the file cannot be parsed or has no such tier (message lists the tiers it has).
    """
    pympi = _pympi()

    try:
        eaf = pympi.Elan.Eaf(str(eaf_path), suppress_version_warning=True)
    except Exception as exc:  # pympi raises ElementTree, KeyError, ValueError
        raise AnnotationError(f"{eaf_path}: cannot read ELAN file ({type(exc).__name__}: {exc})") from None
    if tier not in eaf.get_tier_names():
        raise AnnotationError(f"{eaf_path}: no tier {tier!r} (tiers: {sorted(eaf.get_tier_names())})")
    try:
        rows = eaf.get_annotation_data_for_tier(tier)
    except Exception as exc:
        raise AnnotationError(f"{eaf_path}: tier {tier!r} is not readable ({type(exc).__name__}: {exc})") from None
    return sorted(((int(r[0]), int(r[1]), str(r[2]).strip()) for r in rows), key=lambda r: r[0])


def tier_to_annotation(rows: Sequence[tuple[int, int, str]], scheme: Mapping | None = None,
                       scheme_name: str | None = None, role: str = "", annotator: str = "",
                       source: str = "ELAN tier"):
    """Build a NOVA ``DiscreteAnnotation`` from (start ms, end ms, value) rows.

    Parameters
    ----------
    rows : sequence of (int, int, str)
        Segments in ms (ELAN tier order); empty values and zero-length segments are dropped.
    scheme : dict or None
        Discrete scheme (``{"name", "classes": [{"id", "name", "color"}]}``); values must be its class names or
        ``GARBAGE``. ``None``: classes = the distinct values in order of first appearance.
    scheme_name : str or None
        Scheme name (default ``scheme["name"]`` or ``source``).
    role, annotator : str
        NOVA meta data of the annotation.

    Returns
    -------
    discover_utils.data.annotation.DiscreteAnnotation
        conf 1.0 for every segment; duration = end of the last segment (ms).

    Raises
    ------
    AnnotationError
        If the tier is empty, segments overlap, or values are outside the given scheme (all listed).
    """
    from discover_utils.data.annotation import DiscreteAnnotation, DiscreteAnnotationScheme

    rows = [(a, b, v) for a, b, v in rows if v and b > a]
    if not rows:
        raise AnnotationError(f"{source}: no labelled segments")
    for (a0, b0, _), (a1, _, _) in zip(rows, rows[1:]):
        if a1 < b0:
            raise AnnotationError(f"{source}: segments overlap at {a1 / 1000:.3f} s (a NOVA discrete track "
                                  f"cannot hold overlapping labels)")
    if scheme is not None:
        classes = {int(c["id"]): {"name": str(c["name"]), "color": str(c.get("color", "#FF808080"))}
                   for c in scheme["classes"]}
        if sorted(classes) != list(range(len(classes))):
            raise AnnotationError(f"{source}: scheme class ids must be 0..{len(classes) - 1}")
        name = scheme_name or scheme.get("name")
    else:
        values = list(dict.fromkeys(v for _, _, v in rows if v != GARBAGE_VALUE))
        classes = {i: {"name": v, "color": _tab20(i)} for i, v in enumerate(values)}
        name = scheme_name or source
    ids = {c["name"]: i for i, c in classes.items()}
    unknown = sorted({v for _, _, v in rows if v not in ids and v != GARBAGE_VALUE})
    if unknown:
        raise AnnotationError(f"{source}: values {unknown} are not classes of scheme {name!r} "
                              f"({list(ids)})")
    scheme_obj = DiscreteAnnotationScheme(name=name, classes=classes)
    data = np.array([(a, b, GARBAGE_ID if v == GARBAGE_VALUE else ids[v], 1.0) for a, b, v in rows],
                    dtype=scheme_obj.label_dtype)
    return DiscreteAnnotation(scheme=scheme_obj, data=data, role=role, annotator=annotator,
                              duration=int(data["to"].max()))


def import_elan_tier(eaf_path: str | os.PathLike, tier: str, out_path: str | os.PathLike,
                     scheme: str | os.PathLike | Mapping | None = None, scheme_name: str | None = None,
                     role: str = "", annotator: str = "") -> Path:
    """Convert one ELAN tier into a NOVA ``.annotation`` file (ASCII, temp folder + rename).

    Parameters
    ----------
    eaf_path : path
        ELAN ``.eaf`` file.
    tier : str
        Tier id (e.g. ``Infant``).
    out_path : path
        Target ``.annotation``; NOVA's naming is ``<role>.<scheme>.<annotator>.annotation`` in the session folder.
    scheme : path, dict or None
        A discrete scheme JSON (``schemes/icep_r_infant.json``) or dict; see :func:`tier_to_annotation`.
    scheme_name, role, annotator : str
        Written into the annotation header; the scheme name defaults to the scheme's or the tier's name.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    AnnotationError
        Missing tier, empty tier, overlapping segments, or values outside the given scheme (nothing written).
    """
    if scheme is not None and not isinstance(scheme, Mapping):
        scheme = load_scheme_json(scheme)
    rows = elan_tier(eaf_path, tier)
    annotation = tier_to_annotation(rows, scheme, scheme_name or (None if scheme else tier), role, annotator,
                                    source=f"{eaf_path} tier {tier!r}")
    return write_annotation(annotation, out_path)
