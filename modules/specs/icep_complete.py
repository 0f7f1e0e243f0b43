"""Specs of "Complete this session" (``icep_complete_<role>_<features>``): the coder's partial ICEP-R annotation and
the session's feature streams in, the completed annotation out (:mod:`nova_infant.icep.completion`; docs/icep.md,
docs/nova-guide.md "The cooperative loop").

NOVA's own "Complete Current Annotation" (Ctrl+L) posts to DISCOVER's ``/train`` and ``/predict``, which are broken
upstream (../shared/docs/nova-client.md, "Cooperative learning"), so completion is a ``/process`` module run from the
DISCOVER window, one per role and feature set because NOVA sends every declared input.

Write policy: the output is a tier of its own (the annotator chosen for output ``annotation``); a request whose
output is the coder's own annotation (same file, or same scheme/role/annotator in the database) is refused unless
``into_coder_tier`` is set; then (file mode) the coder's previous file is first copied beside it as
``<role>.<scheme>.<annotator>-backup-<UTC time>.annotation`` (NOVA lists it as another annotator) and the coder's
rows before the split are written back unchanged.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from nova_infant.core.annotations import discrete_segments
from nova_infant.core.atomic import atomic_file
from nova_infant.core import write_policy
from nova_infant.core.errors import AnnotationError, NovaInfantError, OptionError, OutputError
from nova_infant.core.fileid import nova_file_names
from nova_infant.specs import options as shared
from nova_infant.specs.module_spec import ModuleSpec
from nova_infant.specs.options import Option
from nova_infant.specs.ports import Port, Result
from nova_infant.specs.icep import (CITATION, FEATURE_SETS, LICENCE, REVIEW_THRESHOLD_OPTION, ROLES, TRAIN_SPECS,
                                   load_bundle_of, session_data)

log = logging.getLogger("nova_infant")

OPTIONS: tuple[Option, ...] = (
    Option("split", "str", "auto", "where the coded part ends: auto (the end of the last coded segment) or a time "
           "in seconds (95.2) or m:ss (1:35.2); predictions replace everything after it"),
    Option("base_bundle", "path", "", "optional ICEP-R bundle trained on other sessions (icep_models/<name>) to "
           "fine-tune on the coded part; its window and architecture are kept"),
    Option("model", "choice", "bilstm", "bilstm or mlp (without base_bundle)", choices=("bilstm", "mlp")),
    Option("window", "int", 50, "frames per window (without base_bundle)", minimum=1, maximum=100000),
    Option("stride", "int", 10, "frames between training windows (without base_bundle)", minimum=1,
           maximum=100000),
    Option("hidden", "int", 32, "LSTM hidden units per direction (without base_bundle)", minimum=1, maximum=65536),
    Option("layers", "int", 1, "LSTM layers (without base_bundle)", minimum=1, maximum=64),
    Option("lr", "float", 0.003, "learning rate", minimum=0, maximum=10, min_open=True),
    Option("epochs", "int", 40, "maximum epochs (early stopping on the held-out end of the coded part)", minimum=1,
           maximum=1000000),
    Option("patience", "int", 6, "epochs without improvement before stopping", minimum=1, maximum=1000000),
    Option("val_fraction", "float", 0.2, "share of the coded part (its end) held out for early stopping and "
           "calibration", minimum=0, maximum=1, max_open=True),
    Option("min_dur_ms", "float", 400.0, "smoothing of the predicted part: shortest segment kept, ms", minimum=0),
    REVIEW_THRESHOLD_OPTION,
    Option("into_coder_tier", "bool", False, "write into the coder's own annotation (file mode; the previous file "
           "is kept as <annotator>-backup-<time>); default: refuse when the output is the coder's annotation"),
    Option("seed", "int", 0, "random seed", minimum=0, maximum=2 ** 32 - 1),
    shared.device(),
)


def _coder_annotation(session):
    """The coder's annotation (discover-utils ``DiscreteAnnotation``) and a name for messages."""
    io = getattr(session, "io", None)
    if io is not None:
        anno = io.manager.input_data.get("labels")
        desc = io.description("labels")
        where = (str(io.path("labels")) if desc.get("src", "").lower().startswith("file") else
                 f"session {session.name}: scheme={desc.get('scheme')} annotator={desc.get('annotator')} "
                 f"role={desc.get('role')}")
        if anno is None or anno.data is None:
            raise AnnotationError(f"{where}: the coder's annotation is missing")
        return anno, where
    return session.read_annotation("labels"), str(session.path("labels"))


def _same_tier(session) -> bool:
    """True when output ``annotation`` would replace the coder's input ``labels``."""
    io = getattr(session, "io", None)
    if io is not None:
        if not io.is_active_output("annotation"):
            return False
        a, b = io.description("labels"), io.description("annotation")
        if io.in_database("labels") and io.in_database("annotation"):
            return all(a.get(k) == b.get(k) for k in ("scheme", "role", "annotator"))
        if io.in_database("labels") or io.in_database("annotation"):
            return False
    try:
        return Path(session.path("labels")).resolve() == Path(session.path("annotation")).resolve()
    except (KeyError, NotImplementedError, TypeError):
        return False


def backup_name(path: Path, stamp: str | None = None) -> Path:
    """``<role>.<scheme>.<annotator>-backup-<UTC time>.annotation`` beside ``path`` (NOVA reads it as annotator
    ``<annotator>-backup-<time>``)."""
    stamp = stamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    stem = path.name[: -len(".annotation")] if path.name.endswith(".annotation") else path.name
    return path.with_name(f"{stem}-backup-{stamp}.annotation")


def backup_annotation(path: Path) -> Path:
    """Copy a NOVA annotation pair (``path`` and ``path~``) byte for byte to :func:`backup_name`, each file
    atomically; an existing backup is never replaced.

    Raises
    ------
    OutputError
        The copy cannot be written (then the coder's file is not touched either).
    """
    target = backup_name(path)
    n = 1
    while target.exists():
        target = backup_name(path, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{n}")
        n += 1
    for src, dst in ((Path(str(path) + "~"), Path(str(target) + "~")), (path, target)):
        if src.is_file():
            try:
                with atomic_file(dst) as tmp:
                    tmp.write_bytes(src.read_bytes())
            except OSError as exc:
                raise OutputError(f"{dst}: cannot write the backup of the coder's annotation ({exc.strerror})") from None
    return target


def complete_run(session, o: dict) -> Result:
    """Complete one session (:func:`nova_infant.icep.completion.complete_session`).

    Returns
    -------
    Result
        ``extra["completion"]``, ``extra["coder"]`` (the coder's annotation), written by :func:`complete_write`.

    Raises
    ------
    OptionError
        The output is the coder's annotation without ``into_coder_tier`` (or with it in database mode).
    AnnotationError, StreamError, AlignmentError, SessionTooShortError, BundleError
    """
    from nova_infant.icep.completion import complete_session, parse_split
    from nova_infant.icep.training import TrainConfig
    split = parse_split(o["split"])
    same = _same_tier(session)
    io = getattr(session, "io", None)
    if same and not o["into_coder_tier"]:
        raise OptionError(f"session {session.name}: output 'annotation' is the coder's own annotation (input "
                          f"'labels'); choose another annotator for the output, or set into_coder_tier=true")
    if same and io is not None and io.in_database("labels"):
        raise OptionError(f"session {session.name}: into_coder_tier works in file mode only; in the database, "
                          f"write to another annotator and merge in NOVA")
    anno, where = _coder_annotation(session)
    segments, names = discrete_segments(anno, where)
    data = session_data(session)
    base = load_bundle_of(session, {"bundle": o["base_bundle"], "device": o["device"]}) if o["base_bundle"] else None
    config = TrainConfig(model=o["model"], window=o["window"], stride=min(o["stride"], o["window"]),
                         hidden=o["hidden"], layers=o["layers"], lr=o["lr"], max_epochs=o["epochs"],
                         patience=o["patience"], seed=o["seed"], device=o["device"], batch_size=32)
    done = complete_session(data, segments, names, config, split, base, o["val_fraction"], o["review_threshold"],
                            o["min_dur_ms"], where)
    backup = None
    if same:
        backup = backup_annotation(Path(session.path("labels")))
        write_policy.permit_replacing(session.path("labels"), backup)  # the one sanctioned write into a coder's file
    below = int((done.segments["conf"][done.n_coded:] < o["review_threshold"]).sum())
    notes = [f"{done.n_coded} coded rows kept up to {done.split_ms / 1000:.2f} s, "
             f"{len(done.segments) - done.n_coded} predicted segments ({below} below {o['review_threshold']:g}: "
             f"hatched in NOVA); trained on {done.coded_frames} coded frames, temperature "
             f"{done.fitted.temperature:.2f}"]
    if base is None:  # measured: docs/icep.md, "Targets", 3 seeds of synthetic FFSF sessions
        notes.append("no base_bundle: confidence learnt from the coded part alone is optimistic for phases the coder "
                     "has not reached (ECE up to 0.27 with 10 % coded, synthetic FFSF sessions); a bundle trained on "
                     "other sessions as base_bundle gives calibrated confidence (ECE <= 0.05 at 10 % and 25 % coded)")
    if backup is not None:
        notes.append(f"the coder's previous annotation is kept as {backup}")
    return Result(extra={"completion": done, "coder": anno}, notes=notes)


def complete_write(result: Result, session) -> dict:
    """The completed annotation in the coder's scheme: ``{"annotation": DiscreteAnnotation}``.

    Raises
    ------
    AnnotationError
        Database mode: the output scheme's classes differ from the coder's.
    """
    from discover_utils.data.annotation import DiscreteAnnotation

    done, coder = result.extra["completion"], result.extra["coder"]
    if not session.is_active_output("annotation"):
        return {}
    scheme = coder.annotation_scheme
    target = session.output_scheme("annotation")
    io = getattr(session, "io", None)
    if target is not None and io is not None and io.in_database("annotation"):
        want = [v.get("name") for _, v in sorted(scheme.classes.items())]
        got = [v.get("name") for _, v in sorted(getattr(target, "classes", {}).items())]
        if want != got:
            raise AnnotationError(f"session {session.name}: output scheme {getattr(target, 'name', '?')} has classes "
                                  f"{got}, the coder's annotation {want}: choose the coder's scheme for the output")
        scheme = target
    role, annotator = _tier_names(session, coder, scheme.name)
    data = done.segments.astype(scheme.label_dtype) if hasattr(scheme, "label_dtype") else done.segments
    return {"annotation": DiscreteAnnotation(scheme=scheme, data=data, role=role, annotator=annotator,
                                             session=session.name, dataset=session.dataset)}


def _tier_names(session, coder, scheme_name: str) -> tuple[str | None, str]:
    """Role and annotator the output's header carries: NOVA's request (database mode), else, in file mode, the
    output's file name ``<role>.<scheme>.<annotator>.annotation`` (NOVA labels a file's tier from its header's
    ``role``/``annotator``: Types/AnnoListFile.cs, Controls/Annotation/AnnoTierControl.xaml.cs), else the coder's
    role and ``icep-complete``. So written into the coder's tier, the header keeps the coder's role and annotator.

    Returns
    -------
    (role or None, annotator)
    """
    names = session.output_names("annotation")
    role, annotator = names.get("role"), names.get("annotator")
    io = getattr(session, "io", None)
    if not (role and annotator) and (io is None or not io.in_database("annotation")):
        try:
            named_role, named_scheme, named_annotator = nova_file_names(session.path("annotation"))
        except (KeyError, NotImplementedError, TypeError, NovaInfantError):
            named_role = named_scheme = named_annotator = None
        if named_scheme == scheme_name:
            role, annotator = role or named_role, annotator or named_annotator
    return role or getattr(getattr(coder, "meta_data", None), "role", None), annotator or "icep-complete"


def complete_spec(role: str, key: str) -> ModuleSpec:
    """The completion module for one coded role and one feature set of :data:`FEATURE_SETS` (the same feature
    inputs as the training module ``icep_train_<role>_<key>``).

    Parameters
    ----------
    role : str
        ``infant`` or ``caregiver``.
    key : str
        ``dinov2`` or ``dinov2_w2vbert``.

    Returns
    -------
    ModuleSpec
    """
    features = FEATURE_SETS[key]
    return ModuleSpec(
        name=f"icep_complete_{role}_{key}", create="ICEPCompleter", category="ICEP-R",
        description=f"Complete this session: learn from the coded first part of the {role} ICEP-R annotation "
                    f"({' + '.join(features)} features) and predict the rest into a tier of its own; uncertain "
                    f"stretches are hatched",
        inputs=tuple(p for p in TRAIN_SPECS[f"icep_train_{role}_{key}"].inputs if p.id.startswith("feature_"))
        + (Port("labels", "annotation:Discrete", f"ICEP-R-{role}", "the coder's partial ICEP-R annotation (saved)",
                scheme=f"ICEP-R-{role}"),),
        outputs=(Port("annotation", "annotation:Discrete", f"ICEP-R-{role}",
                      "the completed annotation: coded rows unchanged, then predictions with calibrated conf",
                      scheme=f"ICEP-R-{role}"),),
        options=OPTIONS, run=complete_run, write=complete_write, doc="docs/icep.md", citation=CITATION,
        licence=LICENCE)


COMPLETE_SPECS = {spec.name: spec for spec in (complete_spec(role, key) for role in ROLES for key in FEATURE_SETS)}
