"""DISCOVER adapter of the emotion tagger (thin: the work is :func:`nova_infant.taggers.emotion.tag_emotion`).

Input ``video`` (grid duration: option ``duration_ms``, else the NOVA session duration, else the video's; no
``reference`` input is declared because NOVA sends every declared input). Outputs: ``emotion`` (discrete, scheme
calm/laughing/crying or the head's scheme), ``face_box`` (SSIStream ymin, xmin, ymax, xmax as fractions of the frame, score:
NOVA's face-box convention), ``valence`` (continuous, [-1, 1]).
"""

from __future__ import annotations

from discover_utils.interfaces.server_module import Processor

from nova_infant.core.nova_io import TrainerIO, TrainerSpec
from nova_infant.taggers.emotion import face_box_stream, tag_emotion
from nova_infant.taggers.outputs import continuous_annotation, discrete_annotation
from nova_infant.core.grid import parse_step_ms
from nova_infant.core.validation import check_emotion_options
from nova_infant.discover.common import SessionIO, as_float, as_int, merge_options, one_line_errors, refuse_bad_options

DEFAULTS = {"head": "", "sample_fps": "1", "face": "largest", "smooth": 3, "frame_step": "40ms", "duration_ms": 0}


def _scheme_names(template) -> list[str] | None:
    """Class names of the discrete output scheme (DB scheme, existing file, or ``classes`` of a file-mode ``--data``
    entry); None for discover-utils' generic placeholder (``class_one``, ``class_two``)."""
    classes = getattr(getattr(template, "annotation_scheme", None), "classes", None)
    if not classes:
        return None
    names = [v["name"] if isinstance(v, dict) else str(v) for _, v in sorted(classes.items(), key=lambda kv: int(kv[0]))]
    return None if names == ["class_one", "class_two"] else names


class EmotionTagger(Processor):
    """du-process entry: tags one session's video (see module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.options = merge_options(DEFAULTS, self.options)
        o = self.options
        refuse_bad_options(lambda: check_emotion_options(o["sample_fps"], o["smooth"], o["frame_step"],
                                                         o["duration_ms"], o["face"]), "emotion_tagger")

    @one_line_errors
    def process_data(self, ds):
        self.session = s = SessionIO.from_provider(ds)
        o = self.options
        classes = _scheme_names(s.template("emotion")) if s.has("emotion") else None
        return tag_emotion(str(s.path("video")), head=str(o["head"]) or None, classes=classes,
                           sample_fps=o["sample_fps"], face=str(o["face"]), smooth=as_int(o["smooth"], "smooth", 1),
                           step_ms=parse_step_ms(o["frame_step"]),
                           duration_ms=as_float(o["duration_ms"], "duration_ms"),
                           reference_duration_ms=s.reference_duration_ms("reference"))

    def to_output(self, r):
        s, out = self.session, {}
        if not str(self.options["head"]).strip():  # a trained head brings its own scheme
            s.check_scheme("emotion", "emotion")
        s.check_scheme("valence", "valence", "CONTINUOUS")
        md = {k: getattr(getattr(s.template(k), "meta_data", None), "role", None) for k in ("emotion", "valence")}
        if s.is_active_output("emotion"):
            s.prepare_output("emotion")
            out["emotion"] = discrete_annotation(r.events, r.classes, "emotion", role=md["emotion"],
                                                 annotator="emotion_tagger", session=s.name, dataset=s.dataset)
        if s.is_active_output("face_box"):
            s.prepare_output("face_box")
            meta = getattr(s.template("face_box"), "meta_data", None)
            out["face_box"] = face_box_stream(r, name=getattr(meta, "name", None) or "face_box",
                                              role=getattr(meta, "role", None), session=s.name, dataset=s.dataset)
        if s.is_active_output("valence"):
            s.prepare_output("valence")
            out["valence"] = continuous_annotation(r.grid_valence, r.grid_valence_conf, r.grid.sample_rate_hz,
                                                   "valence", -1, 1, role=md["valence"], annotator="emotion_tagger",
                                                   session=s.name, dataset=s.dataset)
        return out


TRAINER_SPEC = TrainerSpec(
    script="emotion_tagger.py", create="EmotionTagger", category="Tagger",
    description="Infant emotion (calm/laughing/crying) from BlazeFace crops and a FER2013 model or a trained head; "
                "face box stream and valence-like score",
    io=[TrainerIO("input", "video", "stream:Video", "video"),
        TrainerIO("output", "emotion", "annotation:Discrete", "emotion"),
        TrainerIO("output", "face_box", "stream:SSIStream:boundingbox", "face_box"),
        TrainerIO("output", "valence", "annotation:Continuous", "valence")],
    options=[("head", "STRING", ""), ("sample_fps", "STRING", "1"), ("face", "LIST", "largest,central,left,right"),
             ("smooth", "STRING", "3"), ("frame_step", "STRING", "40ms"), ("duration_ms", "STRING", "0")],
    frame_step_ms=40)
