"""DISCOVER adapter of the DINOv2-PCA extractor (:func:`nova_infant.features.dinov2_pca.extract_dinov2`) and its trainer.

Input ``video`` (stream:Video). The grid's duration is the option ``duration_ms``, else the NOVA session duration
(database mode), else the video's (docs/alignment.md); the trainer declares no ``reference`` input because NOVA would
always send one (a ``reference`` entry in a hand-written ``--data`` still works);
outputs ``dinov2_pca`` (stream:SSIStream:dinov2) and ``dinov2_cls`` (stream:SSIStream:dino_cls). Options are
documented in docs/dinov2-pca.md.
"""

from __future__ import annotations

import logging
import os

from discover_utils.interfaces.server_module import Processor

from nova_infant.core.errors import NovaInfantError, OptionError
from nova_infant.core.nova_io import TrainerIO, TrainerSpec
from nova_infant.core.validation import check_dinov2_options
from nova_infant.discover.common import SessionIO, as_int, merge_options, precision_of, refuse_bad_options

log = logging.getLogger("nova_infant")

DEFAULTS = {"model": "facebook/dinov2-large", "size": 224, "k": 4, "pca": "dataset", "pca_basis": "",
            "pca_fit_sessions": "", "pca_fit_frames": 256,
            "output": "both", "framing": "resize", "frame_step": "video", "batch_size": 8, "device": "auto",
            "precision": "auto", "duration_ms": 0, "picture_dir": ""}

TRAINER_SPEC = TrainerSpec(
    script="dinov2_pca.py", create="DinoV2PCA", category="Feature",
    description="DINOv2 patch tokens -> PCA (k per patch, 16x16xk for 224 px) and CLS token per video frame",
    io=[TrainerIO("input", "video", "stream:Video", "video"),
        TrainerIO("output", "dinov2_pca", "stream:SSIStream:dinov2", "dinov2"),
        TrainerIO("output", "dinov2_cls", "stream:SSIStream:dino_cls", "dinov2cls")],
    options=[("model", "STRING", DEFAULTS["model"]), ("size", "STRING", "224"), ("k", "STRING", "4"),
             ("pca", "STRING", "dataset"), ("pca_basis", "STRING", ""), ("pca_fit_sessions", "STRING", ""),
             ("pca_fit_frames", "STRING", "256"), ("output", "LIST", "both,pca,cls"),
             ("framing", "STRING", "resize"), ("frame_step", "STRING", "video"), ("batch_size", "STRING", "8"),
             ("device", "LIST", "auto,cpu,cuda"), ("precision", "LIST", "auto,fp32,bf16,int8"),
             ("duration_ms", "STRING", "0"),
             ("picture_dir", "STRING", "")],
)

_OUTPUT_IDS = {"pca": "dinov2_pca", "cls": "dinov2_cls"}


class DinoV2PCA(Processor):
    """DISCOVER ``Processor``: one session's video -> DINOv2-PCA and CLS streams (``is_iterable="False"``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.options = merge_options(DEFAULTS, self.options)
        o = self.options
        refuse_bad_options(lambda: check_dinov2_options(o["size"], o["k"], o["pca_fit_frames"], o["batch_size"],
                                                        o["output"], o["framing"], o["frame_step"], o["duration_ms"],
                                                        o["device"], precision_of(o)), "dinov2_pca")
        self._backbone = None
        self._pca = None

    def _load(self):
        from nova_infant.core.backbones import load_dinov2

        if self._backbone is None:  # once per job, reused for every session
            self._backbone = load_dinov2(str(self.options["model"]), device=str(self.options["device"]),
                                         precision=precision_of(self.options))
        return self._backbone

    def process_data(self, ds):
        from nova_infant.features.dinov2_pca import extract_dinov2, picture_of_row

        o, session = self.options, SessionIO.from_provider(ds)
        self.session = session
        try:
            output = str(o["output"]).strip().lower()
            if output not in ("pca", "cls", "both"):
                raise OptionError(f"option output: expected pca, cls or both, got {o['output']!r}")
            wanted = {"pca", "cls"} if output == "both" else {output}
            active = {kind for kind in wanted if session.is_active_output(_OUTPUT_IDS[kind])}
            if not active:
                return {}
            pca = str(o["pca"]).strip()
            if pca.lower() == "dataset" and "pca" in active:
                pca = self._dataset_pca(session)
            features = extract_dinov2(
                str(session.path("video")), self._load(), size=as_int(o["size"], "size", 14), k=as_int(o["k"], "k", 1),
                pca=pca, pca_fit_frames=as_int(o["pca_fit_frames"], "pca_fit_frames", 1),
                output="both" if active == {"pca", "cls"} else active.pop(), framing=str(o["framing"]),
                frame_step=o["frame_step"], batch_size=as_int(o["batch_size"], "batch_size", 1),
                duration_ms=o["duration_ms"], reference_duration_ms=session.reference_duration_ms("reference"))
            if str(o["picture_dir"]).strip() and features.pca is not None:
                picture_of_row(features, len(features.row_frames) // 2, os.path.join(
                    str(o["picture_dir"]), f"{session.dataset}.{session.name}.dinov2_pca.png"))
        except NovaInfantError as exc:  # du-process prints a traceback; say it in one line first
            log.error("session %s: %s: %s", session.name, type(exc).__name__, exc)
            raise
        return features

    def _dataset_pca(self, session):
        """The dataset's basis, once per job: option ``pca_basis``, else ``<dataset folder>/dinov2_pca_basis/...``
        next to the outputs; fitted on the job's sessions (or ``pca_fit_sessions``) when the file is missing."""
        from nova_infant.features.dinov2_pca import DinoV2Encoder, dataset_basis, default_basis_path

        if self._pca is None:
            o, backbone = self.options, self._load()
            k, size = as_int(o["k"], "k", 1), as_int(o["size"], "size", 14)
            path = str(o["pca_basis"]).strip()
            if not path:
                encoder = DinoV2Encoder(backbone, size, str(o["framing"]))
                path = default_basis_path(_dataset_folder(session.path("dinov2_pca"), session.name), encoder,
                                          backbone.name, k)
            names = [n.strip() for n in str(o["pca_fit_sessions"]).split(",") if n.strip()] or _job_sessions(session)
            videos = [v for v in (_video_of(session, n) for n in names) if v is not None]
            self._pca, created = dataset_basis(path, videos or [session.path("video")], backbone, size=size, k=k,
                                               pca_fit_frames=as_int(o["pca_fit_frames"], "pca_fit_frames", 1),
                                               framing=str(o["framing"]), frame_step=o["frame_step"],
                                               batch_size=as_int(o["batch_size"], "batch_size", 1))
            log.info("%s: PCA basis %s %s", path, self._pca.basis_hash,
                     f"fitted on {len(self._pca.sources)} videos and saved" if created else "reused")
        return self._pca

    def to_output(self, data) -> dict:
        if not data:
            return {}
        out = {}
        for io_id, array, make in (("dinov2_pca", data.pca, data.pca_stream), ("dinov2_cls", data.cls, data.cls_stream)):
            if array is None:
                continue
            template = self.session.template(io_id)
            meta = getattr(template, "meta_data", None)
            self.session.prepare_output(io_id)
            out[io_id] = make(name=getattr(meta, "name", None), role=getattr(meta, "role", None),
                              session=self.session.name, dataset=self.session.dataset)
        return out


def _job_sessions(session) -> list[str]:
    """Sessions named in du-process's ``--sessions`` (the current one if absent)."""
    import json

    from nova_infant.discover.icep_train_module import _argv

    return json.loads(_argv("--sessions") or "[]") or [session.name]


def _video_of(session, name: str):
    """Path of session ``name``'s video input (same request, file or database layout), None if it does not exist."""
    from pathlib import Path

    from discover_utils.data.provider.data_manager import resolve_file_uri

    desc = session.description("video")
    if desc.get("src", "").lower().startswith("file"):
        path = Path(resolve_file_uri(desc, session.dataset, name))
    else:
        own = session.path("video")
        path = own.parent.parent / name / own.name
    return path if path.is_file() else None


def _dataset_folder(output_path, session_name: str):
    """The folder holding the session folder of an output path (NOVA layout); the output's folder otherwise."""
    from pathlib import Path

    path = Path(output_path).resolve()
    for parent in path.parents:
        if parent.name == session_name:
            return parent.parent
    return path.parent
