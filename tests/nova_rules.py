"""How the NOVA client reads our files, re-stated from its source so tests can check every output against it.

NOVA (hcmlab/nova, C#/WPF for Windows) cannot run here, so each rule below cites the NOVA (or discover-utils) source it
was read from (hcmlab/nova @459ae30; docs/nova-guide.md lists them). Each ``check_*`` returns a list of violations
(empty = NOVA opens the file as we mean it); :func:`check_file` dispatches on the file extension.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

# The one documented category set (docs/nova-guide.md); NOVA's processor list filters on the exact string.
CATEGORIES = {"Feature", "Tagger", "ICEP-R", "Affect"}
# Stream types our writers produce (media type -> the writer), for the input-matching rule.
PACKAGE_STREAM_TYPES = {
    "feature;video;dinov2": "dinov2_pca (PCA)",
    "feature;video;dino_cls": "dinov2_pca (CLS)",
    "feature;audio;w2vbert": "w2v_bert",
    "feature;audio;audio_events": "audio_events scores",
    "feature;face;boundingbox;blazeface": "emotion_tagger face boxes",
}
# SignalFile.cs: the sample types NOVA can read, with their byte size.
SIGNAL_TYPES = {"SHORT": 2, "USHORT": 2, "INT": 4, "UINT": 4, "FLOAT": 4, "DOUBLE": 8}
# AnnoScheme.TYPE, parsed with Enum.Parse (case-sensitive; AnnoListFile.cs).
SCHEME_TYPES = {"DISCRETE", "CONTINUOUS", "FREE", "POINT", "POLYGON", "DISCRETE_POLYGON", "GRAPH", "SEGMENTATION"}


# ---------------------------------------------------------------- trainers (DISCOVER /cml_info -> NOVA)


def parse_optstr(optstr: str) -> tuple[list[dict], list[str]]:
    """NOVA's option parser (Database/DatabaseNovaServerWindow.xaml.cs, the optstr loop): split on ``;``, remove
    braces, split on ``:``; ``name = f[0]``, type found by substring of ``f[1]`` (BOOL, STRING, LIST), default =
    ``f[2]`` (LIST: its first comma-separated item; BOOL: ticked unless "false"). Returns (options, violations)."""
    options, errors = [], []
    if not optstr:
        return options, errors
    for part in optstr.split(";"):
        fields = part.replace("{", "").replace("}", "").split(":")
        if len(fields) < 3:  # NOVA indexes attributes[1] and [2]: IndexOutOfRange
            errors.append(f"option {part!r}: fewer than 3 ':'-separated fields")
            continue
        if len(fields) > 3:  # only the third field is kept: a default with ':' is cut
            errors.append(f"option {part!r}: the default contains ':' (NOVA keeps only {fields[2]!r})")
        name, kind, default = fields[0], fields[1], fields[2]
        kinds = [k for k in ("BOOL", "STRING", "LIST") if k in kind]
        if not name or not kinds:
            errors.append(f"option {part!r}: no name or no type NOVA knows (BOOL, STRING, LIST)")
            continue
        if default.startswith("$("):
            errors.append(f"option {name}: default {default!r} is a NOVA tag, not a value")
        value = default.split(",")[0] if kinds[0] == "LIST" else default
        if kinds[0] == "BOOL":
            value = default.lower() != "false"
        options.append({"name": name, "type": kinds[0], "default": value})
    names = [o["name"] for o in options]
    errors += [f"option {n!r} declared twice" for n in sorted({n for n in names if names.count(n) > 1})]
    return options, errors


def cml_info_json(path: str | Path) -> dict:
    """What DISCOVER's ``/cml_info`` sends NOVA for one trainer: discover-utils' parser + ``TrainerEncoder``
    (discover/route/cml_info.py; discover_utils/utils/ssi_xml_utils.py, json_utils.py)."""
    from discover_utils.utils.json_utils import TrainerEncoder
    from discover_utils.utils.ssi_xml_utils import Trainer

    trainer = Trainer()
    trainer.load_from_file(Path(path))
    return json.loads(json.dumps(trainer, cls=TrainerEncoder))


def matching_stream_types(io_data: str, stream_types) -> set:
    """Stream types NOVA offers for an input ``data="stream:<Sub>[:<specific>]"``: those containing the specific (else
    the sub) type, case-insensitive (DatabaseNovaServerWindow.xaml.cs ``stream.Type.ToUpper().Contains(...)``)."""
    parts = io_data.split(":")
    token = parts[2] if len(parts) > 2 else (parts[1] if len(parts) > 1 else "")
    return {t for t in stream_types if token.upper() in t.upper()}


def check_trainer(path: str | Path) -> list[str]:
    """A ``.trainer`` as NOVA's DISCOVER window lists and fills it (``parseProcessorFile``, ``ParseInputs``/
    ``ParseOutputs``, ``InputOutResults`` in Database/DatabaseNovaServerWindow.xaml.cs)."""
    errors = []
    try:
        info = cml_info_json(path)
    except Exception as exc:  # DISCOVER lists it under trainer_faulty
        return [f"discover-utils cannot parse it ({type(exc).__name__}: {exc})"]
    if info.get("info_trained") is not True:  # `if (!processor.isTrained) return false;`
        errors.append('<info trained="true"> missing: NOVA hides the processor')
    if info.get("meta_category") not in CATEGORIES:
        errors.append(f"category {info.get('meta_category')!r} is not one of the documented {sorted(CATEGORIES)}")
    for key in ("meta_frame_step", "meta_left_ctx", "meta_right_ctx"):
        value = info.get(key)
        if value is not None and not re.fullmatch(r"\d+", str(value)):
            errors.append(f"{key} = {value!r}: DISCOVER/NOVA need whole ms")
    if not info.get("model_create"):
        errors.append("<model create> missing")
    _, opt_errors = parse_optstr(info.get("model_option_string") or "")
    errors += opt_errors
    ios = json.loads(info["meta_io"]) if isinstance(info.get("meta_io"), str) else (info.get("meta_io") or [])
    ids = [io["id"] for io in ios]
    errors += [f"io id {i!r} declared twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for io in ios:
        where = f"{io['type']} {io['id']!r} ({io['data']})"
        parts = str(io["data"]).split(":")
        if parts[0] not in ("stream", "annotation") or len(parts) < 2:
            errors.append(f"{where}: data must be stream:<Sub>[:<specific>] or annotation:<Type>")
            continue
        if parts[0] == "annotation" and parts[1].upper() not in SCHEME_TYPES:
            errors.append(f"{where}: NOVA matches scheme types by substring of {parts[1]!r}: no such scheme type")
        if io["type"] == "input":
            # inputs have no on/off control: NOVA sends every one as active; default_active="False" is ignored
            if io.get("default_active") is False or str(io.get("default_active")).lower() == "false":
                errors.append(f"{where}: default_active=False, but NOVA sends every input as active")
            if not io.get("default_value"):
                errors.append(f"{where}: no default_value (NOVA preselects the first matching stream or sends '')")
            if parts[0] == "stream" and parts[1].lower() == "ssistream":
                offered = matching_stream_types(io["data"], PACKAGE_STREAM_TYPES)
                if len(parts) < 3:
                    errors.append(f"{where}: no specific type: NOVA offers every feature stream")
                elif len(offered) > 1:
                    errors.append(f"{where}: NOVA also offers {sorted(offered)} for it (substring match)")
    return errors


# ---------------------------------------------------------------- streams (Types/SignalFile.cs, MainHandlerFile.cs, Face.cs)


def check_stream(path: str | Path) -> list[str]:
    """An SSI ``.stream`` header + ``~`` data file as NOVA opens it."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        return [f"header is not XML ({exc})"]
    info = root.find("info")
    if root.tag != "stream" or info is None:
        return ["no <stream><info>"]
    errors = []
    missing = [a for a in ("ftype", "sr", "dim", "byte", "type") if a not in info.attrib]
    if missing:  # SignalFile.cs reads each unguarded; a failure makes NOVA offer to delete the files
        return [f"<info> lacks {missing}"]
    ftype, kind = info.get("ftype").upper(), info.get("type").upper()
    try:
        sr, dim, nbytes = float(info.get("sr")), int(info.get("dim")), int(info.get("byte"))
    except ValueError as exc:
        return [f"<info> sr/dim/byte not numbers ({exc})"]
    if ftype not in ("ASCII", "BINARY"):
        errors.append(f"ftype {ftype!r}")
    if kind not in SIGNAL_TYPES:
        errors.append(f"type {kind!r}: NOVA reads {sorted(SIGNAL_TYPES)}")
    elif nbytes != SIGNAL_TYPES[kind]:
        errors.append(f"type {kind} with byte={nbytes}")
    if sr <= 0 or dim <= 0:
        errors.append(f"sr={sr}, dim={dim}")
    n = sum(int(c.get("num", 0)) for c in root.findall("chunk"))  # only `num` is summed; `from` is ignored
    if n <= 0:
        errors.append("no samples (chunk num sums to 0)")
    meta = dict(root.find("meta").attrib) if root.find("meta") is not None else {}
    # MainHandlerFile.cs: with any <meta> attribute it reads Meta["type"] unguarded, Meta["size"] as "W:H", and
    # treats name="face"/"skeleton" as an overlay
    if meta and "type" not in meta:
        errors.append("<meta> has attributes but no type (NOVA reads Meta[\"type\"] unguarded)")
    if "size" in meta and not re.fullmatch(r"\d+:\d+", meta["size"]):
        errors.append(f"<meta size={meta['size']!r}>: NOVA reads size as W:H (Split(':')[1]) and throws")
    if "name" in meta:
        errors.append(f"<meta name={meta['name']!r}>: NOVA gives meta 'name' its own meaning (face/skeleton)")
    data_path = Path(str(path) + "~")
    if not data_path.is_file():
        return errors + ["data file ~ missing"]
    if ftype == "BINARY" and kind in SIGNAL_TYPES and n > 0:
        expected = n * dim * SIGNAL_TYPES[kind]
        if data_path.stat().st_size != expected:
            errors.append(f"data holds {data_path.stat().st_size} bytes, header says {expected}")
        elif "feature;face;boundingbox" in meta.get("type", ""):
            errors += _check_face_boxes(np.fromfile(data_path, dtype="<f4" if kind == "FLOAT" else "<f8").reshape(n, dim))
    return errors


def _check_face_boxes(rows: np.ndarray) -> list[str]:
    """Face.cs (FaceType.BOUNDINGBOX) draws columns 0..3 as normalised ymin, xmin, ymax, xmax."""
    if rows.shape[1] < 4:
        return [f"face-box stream with {rows.shape[1]} columns (NOVA reads 4)"]
    box = rows[:, :4]
    errors = []
    if (box < 0).any() or (box > 1).any():
        errors.append("face boxes outside [0, 1] (NOVA reads normalised coordinates)")
    if (box[:, 2] < box[:, 0]).any() or (box[:, 3] < box[:, 1]).any():
        errors.append("face boxes with ymax < ymin or xmax < xmin (NOVA reads ymin, xmin, ymax, xmax)")
    return errors


def nova_face_box_px(row, width: int, height: int) -> tuple[int, int, int, int]:
    """The rectangle NOVA's face overlay draws for one row (Face.cs: Y1 = d[0]*h, X1 = d[1]*w, Y3 = d[2]*h,
    X3 = d[3]*w), as (x0, y0, x1, y1) pixels of a ``width`` x ``height`` picture."""
    return int(row[1] * width), int(row[0] * height), int(row[3] * width), int(row[2] * height)


# ---------------------------------------------------------------- annotations (Types/AnnoListFile.cs)


# .NET Framework 4.8 double.TryParse (NumberStyles.Float | AllowThousands, invariant digits): digits with an
# optional sign, point and exponent, or exactly the NumberFormatInfo symbols "NaN", "Infinity", "-Infinity"
# (case-sensitive there; numpy writes "nan"/"inf", which fail and NOVA then shows 0).
_DOTNET_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
_DOTNET_SYMBOLS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def dotnet_double(text: str) -> float | None:
    """The value .NET Framework's ``double.TryParse`` gives ``text``, or None where it fails (NOVA's continuous reader,
    Types/AnnoListFile.cs: a failed score becomes 0; a failed conf throws)."""
    if text.strip() in _DOTNET_SYMBOLS:
        return _DOTNET_SYMBOLS[text.strip()]
    return float(text) if _DOTNET_NUMBER.fullmatch(text) else None


def check_annotation(path: str | Path) -> list[str]:
    """A NOVA ``.annotation`` header + ``~`` data file as ``AnnoListFile.LoadfromFile`` reads it."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        return [f"header is not XML ({exc})"]
    info, scheme = root.find("info"), root.find("scheme")
    if root.tag != "annotation" or info is None or scheme is None:
        return ["no <annotation><info>/<scheme>"]
    errors = []
    if info.get("ftype") != "ASCII":  # compared with TYPE.ASCII.ToString(); our BINARY writer upstream is broken
        errors.append(f"ftype {info.get('ftype')!r}, NOVA reads ASCII")
    try:
        size = int(info.get("size"))  # int.Parse
    except (TypeError, ValueError):
        return errors + [f"size {info.get('size')!r} is not an integer"]
    kind = scheme.get("type")
    if kind not in SCHEME_TYPES:  # Enum.Parse, case-sensitive
        return errors + [f"scheme type {kind!r}"]
    if not scheme.get("name"):
        errors.append("scheme without name")
    ids = set()
    if kind == "DISCRETE":
        for item in scheme.findall("item"):
            if item.get("id") is None or item.get("name") is None:
                errors.append(f"scheme item {item.attrib} lacks id or name")
            else:
                ids.add(item.get("id"))
    if kind == "CONTINUOUS":
        for key in ("sr", "min", "max"):
            try:
                float(scheme.get(key))
            except (TypeError, ValueError):
                errors.append(f"continuous scheme {key}={scheme.get(key)!r}")
    data_path = Path(str(path) + "~")
    if not data_path.is_file():
        return errors + ["data file ~ missing"]
    lines = [ln for ln in data_path.read_text(encoding="utf-8").splitlines() if ln != ""]
    if len(lines) != size:
        errors.append(f"header size {size}, data has {len(lines)} lines")
    for number, line in enumerate(lines[:100000], 1):
        fields = line.split(";")
        try:
            if kind == "DISCRETE":  # from;to;id;conf (s); int.Parse(id); Convert.ToDouble(conf)
                start, stop, conf = float(fields[0]), float(fields[1]), float(fields[3])
                label = int(fields[2])
                if stop < start or not np.isfinite([start, stop, conf]).all():
                    raise ValueError("bad times or conf")
                if label >= 0 and str(label) not in ids:
                    raise ValueError(f"id {label} is no scheme item (NOVA shows it as nothing)")
            elif kind == "CONTINUOUS":
                score, conf = dotnet_double(fields[0]), dotnet_double(fields[1])
                if score is None:  # TryParse fails -> NOVA silently shows 0, not a gap
                    raise ValueError(f"score {fields[0]!r}: .NET double.TryParse fails, NOVA shows 0 (write 'NaN')")
                if conf is None or not np.isfinite(conf):  # a nan/NaN conf makes NOVA throw (FormatException)
                    raise ValueError(f"conf {fields[1]!r} is not a finite number")
                if np.isinf(score):
                    raise ValueError(f"score {fields[0]!r} is infinite (a missing value is 'NaN' with conf 0)")
                if np.isnan(score) and conf != 0:
                    raise ValueError(f"missing score (NaN) with conf {conf} (a gap has conf 0)")
            elif kind == "FREE":
                float(fields[0]), float(fields[1]), float(fields[3])
        except (IndexError, ValueError) as exc:
            errors.append(f"{data_path.name} line {number} {line!r}: {exc}")
            break
    return errors


def check_file(path: str | Path) -> list[str]:
    """Violations of NOVA's rules for a ``.trainer``, ``.stream`` or ``.annotation`` (other files: none)."""
    suffix = Path(path).suffix
    if suffix == ".trainer":
        return check_trainer(path)
    if suffix == ".stream":
        return check_stream(path)
    if suffix == ".annotation":
        return check_annotation(path)
    return []


def nova_outputs(folder: str | Path) -> list[Path]:
    """Every ``.trainer``/``.stream``/``.annotation`` header under ``folder`` (skipping unfinished ``.partial`` ones)."""
    found = []
    for suffix in (".trainer", ".stream", ".annotation"):
        found += [p for p in Path(folder).rglob(f"*{suffix}") if p.is_file() and ".partial" not in str(p)]
    return sorted(found)


def nova_request(trainer: str | Path, entries: dict[str, dict]) -> list[dict]:
    """The ``--data`` list NOVA's DISCOVER window sends for ``trainer`` (``InputOutResults``): every declared input,
    active (NOVA has no on/off control for inputs), plus the outputs given. ``entries`` maps io id -> the source
    part of the entry (e.g. ``{"src": "file:stream:video", "uri_template": ...}``).

    Raises ``AssertionError`` when an input of the trainer has no entry (NOVA would send it anyway) or an entry names
    an io the trainer does not declare."""
    info = cml_info_json(trainer)
    ios = json.loads(info["meta_io"]) if isinstance(info.get("meta_io"), str) else info["meta_io"]
    declared = {io["id"]: io for io in ios}
    unknown = sorted(set(entries) - set(declared))
    assert not unknown, f"{Path(trainer).name} declares no io {unknown}"
    missing = [i for i, io in declared.items() if io["type"] == "input" and i not in entries]
    assert not missing, f"NOVA sends every input of {Path(trainer).name}; the request lacks {missing}"
    return [{"id": i, "type": declared[i]["type"], "active": True, **entry} for i, entry in entries.items()]
