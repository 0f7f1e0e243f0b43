"""DISCOVER adapter of the W2V-BERT extractor (logic in :mod:`nova_infant.features.w2v_bert`; docs/w2v-bert.md).

Input: ``audio`` (stream:Audio; any rate/channels, read again from its file). The grid's duration is the option
``duration_ms``, else the NOVA session duration (database mode), else the audio's; the trainer declares no
``reference`` input because NOVA sends every declared input (a ``reference`` entry in a hand-written ``--data``,
e.g. the session video, still fixes the grid). Output: ``w2v_bert``
(stream:SSIStream:w2vbert, float32 (n, 1024) at 1000/frame_step Hz).
"""

from __future__ import annotations

from discover_utils.interfaces.server_module import Processor

from nova_infant.core.backbones import DEFAULT_W2V_BERT, load_w2v_bert
from nova_infant.core.nova_io import TrainerIO, TrainerSpec
from nova_infant.features.w2v_bert import extract_w2v_bert, to_stream
from nova_infant.core.validation import check_w2v_bert_options
from nova_infant.discover.common import (SessionIO, as_float, as_int, merge_options, one_line_errors, precision_of,
                     refuse_bad_options)

OUTPUT_ID = "w2v_bert"
DEFAULTS = {"model": DEFAULT_W2V_BERT, "frame_step": "40ms", "left_context": 50, "right_context": 50, "layer": -1,
            "chunk_s": 30, "overlap_s": 3, "batch_size": 2, "device": "auto", "precision": "auto",
            "duration_ms": 0}

TRAINER_SPEC = TrainerSpec(
    script="w2v_bert.py", create="W2VBert", category="Feature",
    description="Wav2Vec2-BERT 2.0 audio features pooled onto the session frame grid (one encoder pass per session)",
    io=[TrainerIO("input", "audio", "stream:Audio", "audio"),
        TrainerIO("output", OUTPUT_ID, "stream:SSIStream:w2vbert", "w2vbert")],
    options=[("model", "STRING", DEFAULT_W2V_BERT), ("frame_step", "STRING", "40ms"), ("left_context", "STRING", 50),
             ("right_context", "STRING", 50), ("layer", "STRING", -1), ("chunk_s", "STRING", 30),
             ("overlap_s", "STRING", 3), ("batch_size", "STRING", 2), ("device", "STRING", "auto"),
             ("precision", "LIST", "auto,fp32,bf16,int8"), ("duration_ms", "STRING", 0)],
    frame_step_ms=40, left_context_ms=50, right_context_ms=50)


class W2VBert(Processor):
    """W2V-BERT features of one session per ``process_data`` call; the model loads once per job."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.options = merge_options(DEFAULTS, self.options)
        o = self.options
        refuse_bad_options(lambda: check_w2v_bert_options(o["frame_step"], o["left_context"], o["right_context"],
                                                          o["layer"], o["chunk_s"], o["overlap_s"], o["batch_size"],
                                                          o["duration_ms"], o["device"], precision_of(o)), "w2v_bert")
        self._backbone = None
        self._session = None

    @one_line_errors
    def process_data(self, ds):
        """Features of the one session in ``ds`` (DatasetManager): ``(features (n, dim) float32, FrameGrid, meta)``.

        Raises ``OptionError``, ``AudioDecodeError``, ``WeightsUnavailableError`` (one line, naming the file)."""
        o = self.options
        self._session = session = SessionIO.from_provider(ds)
        if self._backbone is None:
            self._backbone = load_w2v_bert(str(o["model"]), device=str(o["device"]), precision=precision_of(o))
        return extract_w2v_bert(
            str(session.path("audio")), self._backbone, step=o["frame_step"],
            left_ms=as_float(o["left_context"], "left_context"), right_ms=as_float(o["right_context"], "right_context"),
            layer=as_int(o["layer"], "layer"), chunk_s=as_float(o["chunk_s"], "chunk_s"),
            overlap_s=as_float(o["overlap_s"], "overlap_s"), batch_size=as_int(o["batch_size"], "batch_size", 1),
            duration_ms=o["duration_ms"], reference_duration_ms=session.reference_duration_ms("reference"))

    def to_output(self, data):
        """``{"w2v_bert": SSIStream}`` (empty when the output is unticked); creates the file-mode output folder."""
        session = self._session
        if not session.is_active_output(OUTPUT_ID):
            return {}
        features, grid, metadata = data
        template = session.template(OUTPUT_ID)
        meta = getattr(template, "meta_data", None)
        stream = to_stream(features, grid, metadata, name=getattr(meta, "name", None) or OUTPUT_ID,
                           role=getattr(meta, "role", None), session=session.name, dataset=session.dataset)
        session.prepare_output(OUTPUT_ID)
        return {OUTPUT_ID: stream}
