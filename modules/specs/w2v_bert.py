"""Spec of the W2V-BERT extractor (:func:`nova_infant.features.w2v_bert.extract_w2v_bert`; docs/w2v-bert.md).

Input ``audio`` (any rate/channels; read again from its file). The grid's duration is the option ``duration_ms``,
else the ``reference`` input (not declared in the ``.trainer``: NOVA sends every declared input; a hand-written
``--data`` entry or the CLI's ``--reference`` still fixes the grid), else the NOVA session, else the audio's.
Output ``w2v_bert``: float32 ``(n_rows, 1024)`` at 1000/frame_step Hz.
"""

from __future__ import annotations

from nova_infant.core.backbones import DEFAULT_W2V_BERT, load_w2v_bert
from nova_infant.core.errors import OptionError
from nova_infant.features.w2v_bert import MEDIA_TYPE, extract_w2v_bert
from nova_infant.specs import options as shared
from nova_infant.specs.module_spec import ModuleSpec
from nova_infant.specs.options import Option
from nova_infant.specs.ports import Port, REFERENCE, Result, StreamData


def _check(o: dict) -> dict:
    if o["overlap_s"] >= o["chunk_s"]:
        raise OptionError(f"option overlap_s: must be < chunk_s ({o['chunk_s']:g}), got {o['overlap_s']:g}")
    return shared.check_precision(o)


def run(session, o: dict) -> Result:
    """W2V-BERT features of one session's ``audio`` on its grid (model loaded once per job).

    Parameters
    ----------
    session : nova_infant.specs.sessions.Session
    o : dict
        Parsed options of :data:`SPEC`.

    Returns
    -------
    Result
        ``streams["w2v_bert"]``: float32 ``(n_rows, hidden_size)`` at ``1000 / frame_step`` Hz.

    Raises
    ------
    AudioDecodeError, WeightsUnavailableError, OptionError
        One line naming the file.
    """
    def backbone():  # loaded once per job, after this session's audio proved readable
        return session.cached("w2v_bert", lambda: load_w2v_bert(o["model"], device=o["device"],
                                                                precision=o["precision"]))

    features, grid, meta = extract_w2v_bert(
        str(session.path("audio")), backbone, step=o["frame_step"], left_ms=o["left_context"],
        right_ms=o["right_context"], layer=o["layer"], chunk_s=o["chunk_s"], overlap_s=o["overlap_s"],
        batch_size=o["batch_size"], duration_ms=o["duration_ms"],
        reference_duration_ms=session.reference_duration_ms("reference"), progress=session.job.get("progress", False))
    dims = [f"w2vbert_{i}" for i in range(features.shape[1])]
    return Result(streams={"w2v_bert": StreamData(features, grid.sample_rate_hz, dims, MEDIA_TYPE, meta)},
                  notes=[f"{grid.n_frames} rows x {features.shape[1]} dims at {grid.sample_rate_hz:g} Hz "
                         f"({meta.get('weights')} {meta.get('model')}, {meta.get('precision')})"])


SPEC = ModuleSpec(
    name="w2v_bert", create="W2VBert", category="Feature",
    description="Wav2Vec2-BERT 2.0 audio features pooled onto the session frame grid (one encoder pass per session)",
    inputs=(Port("audio", "stream:Audio", "audio", "session audio (any rate, mono or multi-channel) or a video"),
            REFERENCE),
    outputs=(Port("w2v_bert", "stream:SSIStream:w2vbert", "w2vbert",
                  "float32 (n_rows, 1024) at 1000/frame_step Hz, media type feature;audio;w2vbert"),),
    options=(
        Option("model", "str", DEFAULT_W2V_BERT, "hub id or local checkpoint folder (nova-infant export-weights)"),
        shared.frame_step("40ms"),
        Option("left_context", "float", 50.0, "ms before each row pooled into it (ICMI'24 ICEP-R paper, Eq. 4)",
               minimum=0, maximum=10000),
        Option("right_context", "float", 50.0, "ms after each row pooled into it", minimum=0, maximum=10000),
        Option("layer", "int", -1, "-1 = last hidden state, else index into hidden_states", minimum=-100,
               maximum=100),
        Option("chunk_s", "float", 30.0, "encoder chunk kept per window, s", minimum=1, maximum=600),
        Option("overlap_s", "float", 3.0, "context added on each side of a chunk, s (< chunk_s)", minimum=0),
        Option("batch_size", "int", 2, "encoder windows per forward call", minimum=1, maximum=4096),
        shared.device(), shared.precision(), shared.duration_ms(), shared.legacy_bf16()),
    run=run, check=_check, frame_step_ms=40, left_context_ms=50, right_context_ms=50, doc="docs/w2v-bert.md",
    citation="Barrault et al. 2023, Seamless (W2V-BERT 2.0 encoder); pooling: ICMI'24 ICEP-R paper, Eq. 4",
    licence="weights facebook/w2v-bert-2.0: MIT; code: MIT")
