"""DISCOVER adapter of the audio event tagger (thin: the work is :func:`nova_infant.taggers.audio_events.tag_audio_events`).

Input ``audio`` (a ``.wav``; NOVA keeps audio as ``<role>.audio.wav``). Grid duration: option ``duration_ms``,
else the NOVA session duration, else the audio's (no ``reference`` input is declared: NOVA sends every declared
input). Outputs: ``scores`` (SSIStream, one column per class, grid rate) and one discrete track per class
(``baby_crying`` ... ``speech``, scheme ``audio_event_<class>``, one class). Every active output is written (NOVA's
default request marks all of them active): a class the model cannot produce (YAMNet has no male/female speech)
gets an empty track whose description says why.
"""

from __future__ import annotations

import logging

from discover_utils.interfaces.server_module import Processor

from nova_infant.core.nova_io import TrainerIO, TrainerSpec, make_ssi_stream
from nova_infant.taggers.audio_events import CLASSES, tag_audio_events
from nova_infant.taggers.outputs import discrete_annotation
from nova_infant.core.grid import parse_step_ms
from nova_infant.core.validation import check_audio_event_options
from nova_infant.discover.common import SessionIO, as_float, merge_options, one_line_errors, refuse_bad_options

log = logging.getLogger("nova_infant")

DEFAULTS = {"backend": "yamnet", "head": "", "frame_step": "40ms", "threshold": "auto", "min_event_ms": 0,
            "duration_ms": 0, "crying_model": "default"}


def _threshold(value) -> float | None:
    """``auto`` (per-class thresholds fitted with the model) -> None, else a number."""
    return None if str(value).strip().lower() == "auto" else as_float(value, "threshold")


class AudioEvents(Processor):
    """du-process entry: tags one session's audio (see module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.options = merge_options(DEFAULTS, self.options)
        o = self.options
        refuse_bad_options(lambda: check_audio_event_options(o["threshold"], o["min_event_ms"], o["frame_step"],
                                                             o["duration_ms"], o["crying_model"]), "audio_events")

    @one_line_errors
    def process_data(self, ds):
        self.session = SessionIO.from_provider(ds)
        opts = self.options
        return tag_audio_events(str(self.session.path("audio")), backend=str(opts["backend"]),
                                head=str(opts["head"]) or None, step_ms=parse_step_ms(opts["frame_step"]),
                                duration_ms=as_float(opts["duration_ms"], "duration_ms"),
                                reference_duration_ms=self.session.reference_duration_ms("reference"),
                                threshold=_threshold(opts["threshold"]), crying_model=str(opts["crying_model"]),
                                min_event_ms=as_float(opts["min_event_ms"], "min_event_ms"),
                                required=[c for c in CLASSES if self.session.is_active_output(c)])

    def to_output(self, result):
        s, out = self.session, {}
        for name in result.classes:
            s.check_scheme(name, f"audio_event_{name}")
        meta = {"backend": result.backend, "mode": result.mode, "classes": ",".join(result.classes),
                "thresholds": ",".join(f"{c}={t:g}" for c, t in result.meta.get("thresholds", {}).items())}
        if s.is_active_output("scores"):
            s.prepare_output("scores")
            out["scores"] = make_ssi_stream(result.scores, result.grid.sample_rate_hz, "feature;audio;audio_events",
                                            result.classes, name="audio_events", session=s.name, dataset=s.dataset,
                                            custom_meta=meta)
        for name, seg in zip(result.classes, result.events):
            if s.is_active_output(name):
                s.prepare_output(name)
                tpl = s.template(name)
                md = getattr(tpl, "meta_data", None)
                out[name] = discrete_annotation(seg, [name], f"audio_event_{name}", role=getattr(md, "role", None),
                                                annotator=getattr(md, "annotator", None) or "audio_events",
                                                session=s.name, dataset=s.dataset)
                note = result.meta.get("notes", {}).get(name)
                if note:  # an empty track that says why, instead of a missing output (du-process crashes on it)
                    out[name].meta_data.description = note
        return out


TRAINER_SPEC = TrainerSpec(
    script="audio_events.py", create="AudioEvents", category="Tagger",
    description="Audio events (baby crying/laughing, music, singing, child/male/female speech, lullaby, speech) "
                "from YAMNet or a Hugging Face AudioSet model; optional trained head",
    io=[TrainerIO("input", "audio", "stream:Audio", "audio"),
        TrainerIO("output", "scores", "stream:SSIStream:audio_events", "audio_events")]
    + [TrainerIO("output", c, "annotation:Discrete", f"audio_event_{c}") for c in CLASSES],
    options=[("backend", "STRING", "yamnet"), ("head", "STRING", ""), ("frame_step", "STRING", "40ms"),
             ("threshold", "STRING", "auto"), ("min_event_ms", "STRING", "0"), ("duration_ms", "STRING", "0"),
             ("crying_model", "LIST", "default,off")],
    frame_step_ms=40)
