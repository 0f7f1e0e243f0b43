"""The one scheme parser: NOVA annotation schemes from the package's JSON files and from discover-utils objects.

A scheme appears in three forms; each is turned into a :class:`Scheme` here and nowhere else:

- a scheme description (``nova_infant/data/schemes/*.json``, a lab's own label-set file): ``{"name", "type":
  "DISCRETE", "classes": [{"id", "name", "color", "description"}], "role", "description", "color"}`` or ``{"name",
  "type": "CONTINUOUS", "sr", "min", "max", "min_color", "max_color"}`` (:func:`parse_scheme`, :func:`load_scheme`);
- the scheme of a discover-utils annotation (an ``.annotation`` header or a NOVA database scheme that DISCOVER
  handed over: ``DiscreteAnnotationScheme.classes = {id: {"name", "color"}}``) (:func:`annotation_scheme`,
  :func:`class_names`);
- what the writers put into an annotation (:meth:`Scheme.discover_scheme`).

Colours are NOVA's ``#AARRGGBB``.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from nova_infant.core.errors import AnnotationError
from nova_infant.core.package_data import SCHEME_DIR

#: class colour when a scheme gives none (NOVA's grey)
DEFAULT_CLASS_COLOR = "#FF808080"
_COLOR = re.compile(r"^#([0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$")  # NOVA #AARRGGBB (or #RRGGBB)


@dataclass(frozen=True)
class SchemeClass:
    """One class of a discrete NOVA scheme.

    Parameters
    ----------
    id : int
        Class id written into the annotation rows (0..N-1; NOVA's garbage label is -1).
    name : str
        Class name shown in NOVA.
    color : str
        NOVA colour ``#AARRGGBB``.
    """

    id: int
    name: str
    color: str


@dataclass
class Scheme:
    """A NOVA annotation scheme (discrete or continuous).

    Parameters
    ----------
    name : str
        Scheme name; NOVA matches an output to a database scheme by it.
    classes : list of dict
        Discrete: ``{"id", "name", "color", "description"}`` per class, ids 0..N-1 in order. Continuous: empty.
    description : str
        One line shown in NOVA's scheme list.
    color : str
        Background colour of a discrete track (``#AARRGGBB``).
    role : str
        The role whose track uses the scheme by default ("infant", "caregiver", "session"), or "".
    type : str
        ``"DISCRETE"`` or ``"CONTINUOUS"``.
    sr : float
        Continuous: sample rate in Hz (one score per frame).
    min, max : float
        Continuous: value range.
    min_color, max_color : str
        Continuous: colours of the range ends.
    """

    name: str
    classes: list[dict] = field(default_factory=list)
    description: str = ""
    color: str = "#FFFFFFFF"
    role: str = ""
    type: str = "DISCRETE"
    sr: float = 0.0
    min: float = 0.0
    max: float = 1.0
    min_color: str = "#FFFFFFFF"
    max_color: str = "#FF0000FF"

    @property
    def names(self) -> list[str]:
        """Class names in id order (discrete)."""
        return [c["name"] for c in self.classes]

    @property
    def scheme_classes(self) -> list[SchemeClass]:
        """The classes as :class:`SchemeClass` in id order."""
        return [SchemeClass(int(c["id"]), str(c["name"]), str(c.get("color") or DEFAULT_CLASS_COLOR))
                for c in self.classes]

    def discover_scheme(self):
        """The discover-utils scheme object that a writer puts into an annotation.

        Returns
        -------
        discover_utils.data.annotation.DiscreteAnnotationScheme or ContinuousAnnotationScheme
            Discrete: ``classes={id: {"name", "color"}}``; continuous: ``sample_rate``, ``min_val``, ``max_val``.
        """
        from discover_utils.data.annotation import ContinuousAnnotationScheme, DiscreteAnnotationScheme

        if self.type == "CONTINUOUS":
            return ContinuousAnnotationScheme(name=self.name, sample_rate=float(self.sr), min_val=float(self.min),
                                              max_val=float(self.max))
        return DiscreteAnnotationScheme(name=self.name, classes={
            int(c["id"]): {"name": c["name"], "color": c.get("color") or DEFAULT_CLASS_COLOR} for c in self.classes})

    def to_json(self) -> dict:
        """The scheme description (the layout of ``data/schemes/*.json``; see :func:`parse_scheme`)."""
        doc: dict[str, Any] = {"name": self.name, "role": self.role, "type": self.type,
                               "description": self.description}
        if self.type == "CONTINUOUS":
            doc.update(sr=self.sr, min=self.min, max=self.max, min_color=self.min_color, max_color=self.max_color)
        else:
            doc.update(color=self.color, classes=self.classes)
        return doc


def read_scheme_json(path: str | os.PathLike) -> dict:
    """The JSON document of a scheme file, unvalidated (ICEP-R files carry extra keys such as ``merged``).

    Raises
    ------
    AnnotationError
        If the file is missing or not valid JSON.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise AnnotationError(f"{path}: no such scheme file") from None
    except (OSError, ValueError) as exc:
        raise AnnotationError(f"{path}: not valid JSON ({exc})") from None


def _color(value: Any, what: str, source: str) -> str:
    if not _COLOR.match(str(value)):
        raise AnnotationError(f"{source}: {what} has colour {value!r}, expected #AARRGGBB")
    return str(value)


def parse_scheme(doc: Mapping, source: str = "scheme") -> Scheme:
    """Check a scheme description and return it as a :class:`Scheme`.

    Parameters
    ----------
    doc : mapping
        Discrete ``{"name", "classes": [{"name", "color"?, "id"?, "description"?}], "color"?, ...}`` (ids default
        to the position and must be 0..N-1; ``classes`` may also be discover-utils' ``{id: {"name", "color"}}`` or
        ``{id: name}``, or be called ``labels`` as in a NOVA database document) or continuous ``{"name", "type":
        "CONTINUOUS", "sr" (Hz), "min", "max", "min_color"?, "max_color"?}``. Colours are NOVA ``#AARRGGBB`` or
        ``#RRGGBB``.
    source : str
        File or origin named in error messages.

    Raises
    ------
    AnnotationError
        If the name is missing, the type is neither DISCRETE nor CONTINUOUS, a discrete scheme has no classes,
        ids that are not 0..N-1 or a malformed colour, or a continuous one lacks finite numbers ``sr`` > 0 and
        ``min`` < ``max``.
    """
    if not isinstance(doc, Mapping) or not str(doc.get("name", "")).strip():
        raise AnnotationError(f"{source}: a scheme needs a name")
    name, kind = str(doc["name"]), str(doc.get("type", "DISCRETE")).upper()
    common = dict(description=str(doc.get("description", "")), role=str(doc.get("role", "")))
    if kind == "CONTINUOUS":
        try:
            sr, low, high = (float(doc[k]) for k in ("sr", "min", "max"))
        except (KeyError, TypeError, ValueError):
            raise AnnotationError(f"{source}: continuous scheme {name!r} needs numbers sr, min and max, got "
                                  f"{[doc.get(k) for k in ('sr', 'min', 'max')]}") from None
        if not all(math.isfinite(v) for v in (sr, low, high)) or sr <= 0 or low >= high:
            raise AnnotationError(f"{source}: continuous scheme {name!r} needs sr > 0 and min < max, got sr={sr}, "
                                  f"min={low}, max={high}")
        return Scheme(name, [], type="CONTINUOUS", sr=sr, min=low, max=high,
                      min_color=_color(doc.get("min_color", "#FFFFFFFF"), f"{name} min", source),
                      max_color=_color(doc.get("max_color", "#FF0000FF"), f"{name} max", source), **common)
    if kind != "DISCRETE":
        raise AnnotationError(f"{source}: scheme {name!r} is {doc.get('type')}, expected DISCRETE or CONTINUOUS")
    raw = doc.get("classes", doc.get("labels"))
    if isinstance(raw, Mapping):  # discover-utils style {id: {"name", "color"}} or {id: name}
        raw = [{"id": k, **(v if isinstance(v, Mapping) else {"name": v})} for k, v in raw.items()]
    if not isinstance(raw, list) or not raw or not all(isinstance(c, Mapping) and "name" in c for c in raw):
        raise AnnotationError(f"{source}: discrete scheme {name!r} needs a non-empty list of classes with names")
    try:
        classes = sorted(({**c, "id": int(c.get("id", i))} for i, c in enumerate(raw)), key=lambda c: c["id"])
    except (TypeError, ValueError):
        raise AnnotationError(f"{source}: scheme {name!r} has a class id that is not an integer") from None
    if [c["id"] for c in classes] != list(range(len(classes))):
        raise AnnotationError(f"{source}: scheme {name!r} class ids must be 0..{len(classes) - 1} in order, got "
                              f"{[c['id'] for c in classes]}")
    for c in classes:
        c["color"] = _color(c.get("color", DEFAULT_CLASS_COLOR), f"class {c['name']!r}", source)
    return Scheme(name, classes, color=_color(doc.get("color", "#FFFFFFFF"), name, source), **common)


def package_scheme_files() -> list[Path]:
    """Every scheme description shipped with the package (``nova_infant/data/schemes/*.json``), sorted."""
    return sorted(SCHEME_DIR.glob("*.json"))


def load_scheme(name_or_path: str | os.PathLike) -> Scheme:
    """A scheme by its NOVA name (``"emotion"``, ``"audio_event_speech"``, ``"ICEP-R-infant"``), by the file stem
    of a package scheme (``"icep_r_infant"``) or from a JSON file path.

    Raises
    ------
    AnnotationError
        If no package scheme has that name and no such file exists, or the file is not a valid scheme.
    """
    text = str(name_or_path)
    for path in package_scheme_files():
        if path.stem == text:
            return parse_scheme(read_scheme_json(path), str(path))
    for path in package_scheme_files():
        doc = read_scheme_json(path)
        if doc.get("name") == text:
            return parse_scheme(doc, str(path))
    if Path(text).suffix == ".json" or Path(text).is_file():
        return parse_scheme(read_scheme_json(text), text)
    raise AnnotationError(f"scheme {text!r}: neither a scheme of the package ({SCHEME_DIR}) nor a JSON file")


def package_scheme(name: str) -> Scheme | None:
    """The package scheme called ``name``, or None.

    Parameters
    ----------
    name : str
        NOVA scheme name or file stem of ``data/schemes/*.json`` (a path is not looked up).

    Returns
    -------
    Scheme or None
        None when the package has no scheme of that name (e.g. a lab's own scheme).
    """
    try:
        return load_scheme(name) if not Path(name).suffix else None
    except AnnotationError:
        return None


def annotation_scheme(annotation_or_scheme, source: str = "annotation") -> Scheme:
    """The :class:`Scheme` of a discover-utils annotation or annotation scheme object.

    Parameters
    ----------
    annotation_or_scheme : discover-utils ``Annotation`` or ``AnnotationScheme``
        Discrete schemes carry ``classes = {id: {"name", "color"}}`` (ids may be str, values may be bare names);
        continuous ones ``sample_rate``, ``min_val``, ``max_val``.
    source : str
        File or origin named in error messages.

    Raises
    ------
    AnnotationError
        If the object has no scheme, or a discrete scheme's class ids are not integers.
    """
    scheme = getattr(annotation_or_scheme, "annotation_scheme", annotation_or_scheme)
    if scheme is None:
        raise AnnotationError(f"{source}: no annotation scheme")
    name = str(getattr(scheme, "name", "") or "")
    classes = getattr(scheme, "classes", None)
    if classes is None:
        if getattr(scheme, "sample_rate", None) is None:
            raise AnnotationError(f"{source}: neither a discrete nor a continuous scheme")
        return Scheme(name, [], type="CONTINUOUS", sr=float(scheme.sample_rate),
                      min=float(getattr(scheme, "min_val", 0.0)), max=float(getattr(scheme, "max_val", 1.0)))
    out = []
    for key, value in classes.items():
        try:
            cid = int(key)
        except (TypeError, ValueError):
            raise AnnotationError(f"{source}: scheme {name!r} has a class id {key!r} that is not an integer") from None
        if isinstance(value, Mapping):
            out.append({"id": cid, "name": str(value.get("name", key)),
                        "color": str(value.get("color") or DEFAULT_CLASS_COLOR)})
        else:
            out.append({"id": cid, "name": str(value), "color": DEFAULT_CLASS_COLOR})
    return Scheme(name, sorted(out, key=lambda c: c["id"]))


def is_discrete_scheme(annotation_or_scheme) -> bool:
    """Whether a discover-utils annotation (or its scheme) is discrete.

    Parameters
    ----------
    annotation_or_scheme : discover-utils annotation or annotation scheme

    Returns
    -------
    bool
        True when the scheme has ``classes``.
    """
    scheme = getattr(annotation_or_scheme, "annotation_scheme", annotation_or_scheme)
    return getattr(scheme, "classes", None) is not None


def class_names(annotation_or_scheme, source: str = "annotation") -> list[str]:
    """Class names of a discrete discover-utils annotation (or scheme), indexed by class id.

    Returns
    -------
    list of str
        ``names[id]`` for ids 0..max id; an id the scheme skips gets ``""``.

    Raises
    ------
    AnnotationError
        If the annotation is not discrete (see :func:`annotation_scheme`).
    """
    if not is_discrete_scheme(annotation_or_scheme):
        raise AnnotationError(f"{source}: not a discrete annotation")
    classes = annotation_scheme(annotation_or_scheme, source).classes
    names = [""] * (max((c["id"] for c in classes), default=-1) + 1)
    for c in classes:
        if c["id"] >= 0:
            names[c["id"]] = c["name"]
    return names
