"""ICEP-R annotation schemes: the JSON source of truth in the package data (``nova_infant/data/schemes/``), label maps, and the forms NOVA needs.

Infant codes Ineg, Ipro, Iwit, Inon, Ineu, Ipos, Islp, Iusc and caregiver codes Cneg, Cwit, Cint, Chos, Cnon,
Cneu, Cpvc, Cpos, Cusc come from the ICMI'24 ICEP-R paper, Tables 1-2; the merged training label sets from its
section 4.2 (Ineg = Ipro + Iwit; Cneg = Cwit + Cint + Chos; Cnon excluded). A scheme is used in NOVA in two forms:

- file mode: the ``<scheme>`` element of an ``.annotation`` header (written through discover-utils'
  ``FileHandler``, see :func:`write_discrete_annotation`; ``data/schemes/nova/*.annotation`` are empty templates);
- database mode: a document of the ``Schemes`` collection (:func:`scheme_document`, :func:`import_schemes`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nova_infant.core.atomic import save_atomic
from nova_infant.core.nova_db import scheme_document as nova_scheme_document

from nova_infant.core.errors import AnnotationError
from nova_infant.core.package_data import SCHEME_DIR  # noqa: F401  (re-exported)
from nova_infant.core.schemes import Scheme, parse_scheme, read_scheme_json
SCHEME_FILES = {"infant": "icep_r_infant.json", "caregiver": "icep_r_caregiver.json"}


UNKNOWN = -2  # LabelMap.lookup: a source name that is neither mapped nor excluded

CPVC_NOTE = ("caregiver label set 'merged': Cpvc is merged into Cneu (a nova-infant decision, both are social "
             "monitor codes; the paper does not say where Cpvc went); alternative: --label-set merged-no-cpvc "
             "(Cpvc masked)")


@dataclass
class LabelMap:
    """Map from the classes a coder used (source scheme names) to the training classes (target names, ids 0..K-1).

    Source names are matched case-insensitively. Names listed in ``exclude`` (e.g. unscorable, Cnon) are masked: they
    keep their frames on the time axis but count in neither loss nor scores. A name in neither ``mapping`` nor
    ``exclude`` is unknown (:data:`UNKNOWN`): sampling labels from it is an error (:func:`dataset.sample_labels`).

    Attributes
    ----------
    target : Scheme
        The training classes.
    mapping : dict
        source name -> target name.
    exclude : list of str
        Source names masked.
    name : str
        The label set (``merged``, ``merged-no-cpvc``, ``full`` or a file).
    """

    target: Scheme
    mapping: dict[str, str] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    name: str = ""

    @property
    def n_classes(self) -> int:
        """K, the number of training classes (target scheme)."""
        return len(self.target.classes)

    def lookup(self, source_names: list[str]) -> np.ndarray:
        """Target id per source class name: int64 array of len(source_names); -1 = excluded (masked),
        :data:`UNKNOWN` (-2) = neither mapped nor excluded. Names match case-insensitively."""
        index = {n.casefold(): i for i, n in enumerate(self.target.names)}
        mapping = {k.casefold(): v.casefold() for k, v in self.mapping.items()}
        excluded = {n.casefold() for n in self.exclude}
        out = []
        for n in source_names:
            key = str(n).strip().casefold()
            out.append(index[mapping[key]] if key in mapping else -1 if key in excluded else UNKNOWN)
        return np.array(out, np.int64)

    @property
    def note(self) -> str:
        """Decision a reader of a score must know (the caregiver Cpvc merge), or ""."""
        if self.target.role == "caregiver" and "cpvc" in {k.casefold() for k in self.mapping}:
            return CPVC_NOTE
        return ""

    @property
    def label_set_short(self) -> str:
        """A few words of :attr:`note` for picture titles."""
        return "Cpvc counted as Cneu (nova-infant decision)" if self.note else ""

    def to_json(self) -> dict:
        """JSON-ready dict (label set, target scheme and classes, role, map, exclude, note) as stored in a bundle's
        ``config.json``; :meth:`from_json` reads it back."""
        return {"label_set": self.name, "target_scheme": self.target.name, "role": self.target.role,
                "classes": self.target.classes, "map": self.mapping, "exclude": list(self.exclude),
                **({"note": self.note} if self.note else {})}

    @classmethod
    def from_json(cls, doc: dict) -> "LabelMap":
        """Read :meth:`to_json`'s dict back."""
        return cls(Scheme(doc["target_scheme"], doc["classes"], role=doc.get("role", "")), dict(doc["map"]),
                   list(doc.get("exclude", [])), doc.get("label_set", ""))


def load_scheme_json(role_or_path: str | os.PathLike) -> dict:
    """The JSON source of a scheme: ``"infant"``/``"caregiver"`` or a path to a file of the same layout.

    Raises
    ------
    AnnotationError
        If the file is missing or is not valid JSON.
    """
    path = Path(SCHEME_DIR / SCHEME_FILES[str(role_or_path)]) if str(role_or_path) in SCHEME_FILES else Path(role_or_path)
    return read_scheme_json(path)


def full_scheme(role: str) -> Scheme:
    """The full ICEP-R scheme of ``role`` (ICMI'24 ICEP-R paper, Tables 1-2), from the package's JSON.

    Parameters
    ----------
    role : str
        ``"infant"`` or ``"caregiver"`` (or a path to a scheme JSON of the same layout).

    Returns
    -------
    Scheme

    Raises
    ------
    AnnotationError
        If the JSON is missing or malformed.
    """
    return parse_scheme(load_scheme_json(role), str(role))


def merged_scheme(role: str) -> Scheme:
    """The paper's merged training scheme of ``role`` (section 4.2).

    Parameters
    ----------
    role : str
        ``"infant"`` or ``"caregiver"``.

    Returns
    -------
    Scheme
        Ids 0..K-1 in the order of the JSON's ``merged.classes``.

    Raises
    ------
    AnnotationError
        If the JSON is missing or malformed.
    """
    doc = load_scheme_json(role)
    merged = doc["merged"]
    classes = [{"id": i, **c} for i, c in enumerate(merged["classes"])]
    return Scheme(merged["name"], classes, merged.get("description", ""), doc.get("color", "#FFFFFFFF"), doc["role"])


def label_map(label_set: str = "merged", role: str = "infant") -> LabelMap:
    """The label map for training.

    Parameters
    ----------
    label_set : "merged" | "merged-no-cpvc" | "full" | path to a JSON file
        "merged": the paper's merged set (section 4.2), every other code of the role's scheme excluded; for the
        caregiver Cpvc joins Cneu (our decision, :data:`CPVC_NOTE`). "merged-no-cpvc" (caregiver): the same with
        Cpvc excluded instead. "full": every code except the unscorable one. A JSON file
        ``{"name", "classes": [{"name", "color"}], "map": {source: target}, "exclude": [source, ...]}`` for a
        lab's own set: source names in neither ``map`` nor ``exclude`` are errors when a coder used them.
    role : "infant" | "caregiver" | path to a scheme JSON

    Raises
    ------
    AnnotationError
        If a target named in the map is not one of its classes, the file cannot be read, or "merged-no-cpvc" is
        asked for a role without Cpvc.
    """
    doc = load_scheme_json(role)
    source_names = [c["name"] for c in doc["classes"]]
    if label_set in ("merged", "merged-no-cpvc"):
        target, mapping = merged_scheme(role), dict(doc["merged"]["map"])
        if label_set == "merged-no-cpvc":
            if "Cpvc" not in mapping:
                raise AnnotationError(f"label set merged-no-cpvc: the {doc['role']} scheme has no Cpvc code")
            del mapping["Cpvc"]
        exclude = [n for n in source_names if n not in mapping]
    elif label_set == "full":
        keep = [c for c in doc["classes"] if c["name"] not in doc.get("unscorable", [])]
        target = Scheme(doc["name"], [{**c, "id": i} for i, c in enumerate(keep)], doc.get("description", ""),
                        role=doc["role"])
        mapping = {c["name"]: c["name"] for c in keep}
        exclude = [n for n in source_names if n not in mapping]
    else:
        own = load_scheme_json(label_set)
        target = Scheme(own["name"], [{"id": i, **c} for i, c in enumerate(own["classes"])], own.get("description", ""),
                        role=doc["role"])
        mapping, exclude = dict(own["map"]), list(own.get("exclude", []))
    unknown = sorted(set(mapping.values()) - set(target.names))
    if unknown:
        raise AnnotationError(f"label set {label_set}: map targets {unknown} are not classes of {target.name}")
    return LabelMap(target, mapping, exclude, str(label_set))


# ---------------------------------------------------------------- NOVA forms


def scheme_document(scheme: Scheme) -> dict:
    """The NOVA database ``Schemes`` document of a discrete scheme.

    Parameters
    ----------
    scheme : Scheme

    Returns
    -------
    dict
        Built by :func:`nova_infant.core.nova_db.scheme_document` (``labels`` with id, name, colour, isValid).
    """
    return nova_scheme_document({"name": scheme.name, "color": scheme.color, "description": scheme.description,
                                 "classes": scheme.classes}, source=scheme.name)


def all_schemes() -> list[Scheme]:
    """Full and merged ICEP-R schemes of both roles."""
    return [f(role) for role in ("infant", "caregiver") for f in (full_scheme, merged_scheme)]


def import_schemes(database, schemes: list[Scheme] | None = None, replace: bool = False) -> list[str]:
    """Insert the schemes into a NOVA database (one MongoDB database per NOVA dataset).

    Parameters
    ----------
    database : pymongo ``Database`` (or mongomock's)
    replace : bool
        Overwrite a scheme of the same name; otherwise existing schemes are left untouched.

    Returns
    -------
    list of str : names of the schemes written.
    """
    written = []
    for scheme in schemes or all_schemes():
        doc = scheme_document(scheme)
        existing = database["Schemes"].find_one({"name": scheme.name})
        if existing is not None and not replace:
            continue
        if existing is not None:
            database["Schemes"].replace_one({"_id": existing["_id"]}, doc)
        else:
            database["Schemes"].insert_one(doc)
        written.append(scheme.name)
    return written


def write_discrete_annotation(path: str | os.PathLike, scheme: Scheme, segments: np.ndarray, role: str = "",
                              annotator: str = "", session: str = "", dataset: str = "") -> Path:
    """Write a NOVA file-mode discrete annotation (ASCII ``.annotation`` + ``.annotation~``) atomically.

    Parameters
    ----------
    path : path
    scheme : Scheme
    segments : ndarray
        discover-utils ``LabelDType.DISCRETE`` rows (from ms, to ms, id, conf); discover-utils writes seconds.
    role, annotator, session, dataset : str
        NOVA metadata of the annotation.

    Returns
    -------
    pathlib.Path
        ``path`` (the header; its ``~`` data file lies beside it).

    Raises
    ------
    OutputError
        Folder not writable (full disk, no permission); an existing annotation stays as it was.
    """
    from discover_utils.data.annotation import DiscreteAnnotation

    anno = DiscreteAnnotation(scheme=scheme.discover_scheme(), data=segments, role=role, annotator=annotator,
                              session=session, dataset=dataset)
    return save_atomic(anno, path)


def write_scheme_templates(out_dir: str | os.PathLike) -> list[Path]:
    """Write one empty file-mode ``.annotation`` (+ empty ``~`` data file) per ICEP-R scheme, full and merged, of both
    roles; the header is the scheme NOVA loads (``data/schemes/nova/``).

    Parameters
    ----------
    out_dir : path

    Returns
    -------
    list of pathlib.Path
        The header paths.
    """
    from discover_utils.utils.type_definitions import LabelDType

    empty = np.zeros(0, dtype=LabelDType.DISCRETE.value)
    return [write_discrete_annotation(Path(out_dir) / f"{s.name}.annotation", s, empty, role=s.role)
            for s in all_schemes()]
