"""DISCOVER adapter of the ICEP-R predictor (:func:`nova_infant.icep.predict.predict_session`) and its trainer.

A trained model's ``.trainer`` (written by training) points at its bundle with ``<model path="...">``, relative to
the trainer's folder; the generic ``icep_predict.trainer`` takes the bundle folder as option ``bundle``. Inputs:
``feature_0``, ``feature_1``, ... as at training time; outputs ``annotation`` (discrete, merged ICEP-R scheme,
segments with mean-probability ``conf``) and optional ``prob_<class>`` continuous tracks.
"""

from __future__ import annotations

import logging
from pathlib import Path

from discover_utils.interfaces.server_module import Processor

from nova_infant.core.errors import AnnotationError, NovaInfantError, TrainerFileError
from nova_infant.core.nova_db import IMPORT_HINT
from nova_infant.core.nova_io import TrainerIO, TrainerSpec
from nova_infant.core.validation import check_predict_options
from nova_infant.discover.common import SessionIO, as_float, as_int, merge_options, refuse_bad_options
from nova_infant.discover.icep_train_module import trainer_dir

log = logging.getLogger("nova_infant")

DEFAULTS = {"bundle": "", "min_dur_ms": 0, "device": "auto", "batch_size": 64}

TRAINER_SPEC = TrainerSpec(
    script="icep_predict.py", create="ICEPPredictor", category="ICEP-R",
    description="Predict ICEP-R engagement phases with a trained model bundle (option 'bundle')",
    io=[TrainerIO("input", "feature_0", "stream:SSIStream:dinov2", "dinov2"),
        TrainerIO("output", "annotation", "annotation:Discrete", "ICEP-R-infant-merged")],
    options=[("bundle", "STRING", ""), ("min_dur_ms", "STRING", "0"), ("device", "LIST", "auto,cpu,cuda"),
             ("batch_size", "STRING", "64")],
)


class ICEPPredictor(Processor):
    """DISCOVER ``Processor`` (``is_iterable="False"``): one session's feature streams -> ICEP-R annotation."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.options = merge_options(DEFAULTS, self.options)
        o = self.options
        refuse_bad_options(lambda: check_predict_options(o["min_dur_ms"], o["batch_size"], o["device"]), "icep_predict")
        self._bundle = None

    def _load(self):
        from nova_infant.icep.bundle import load_bundle

        if self._bundle is None:  # once per job
            given = str(self.options["bundle"]).strip() or getattr(self.trainer, "model_weights_path", "")
            if not given:
                raise TrainerFileError("icep_predict: no model bundle (set option 'bundle' or <model path=...>)")
            path = Path(given) if Path(given).is_absolute() else trainer_dir() / given
            from nova_infant.core.backbones import pick_device

            self._bundle = load_bundle(path, str(pick_device(str(self.options["device"]))))
        return self._bundle

    def process_data(self, ds):
        from nova_infant.icep.pipeline import session_from_discover
        from nova_infant.icep.predict import predict_session

        self.session = SessionIO.from_provider(ds)
        try:
            data = session_from_discover(self.session)
            return predict_session(self._load(), data, as_float(self.options["min_dur_ms"], "min_dur_ms"),
                                   as_int(self.options["batch_size"], "batch_size", 1))
        except NovaInfantError as exc:  # du-process prints a traceback; say it in one line first
            log.error("session %s: %s: %s", self.session.name, type(exc).__name__, exc)
            raise

    def to_output(self, pred) -> dict:
        from nova_infant.icep.predict import discrete_annotation, probability_annotations

        bundle, s, out = self._load(), self.session, {}
        template = s.template("annotation")
        scheme = getattr(template, "annotation_scheme", None)
        names = [v.get("name") for _, v in sorted(getattr(scheme, "classes", {}).items())] if scheme else []
        db_mode = s.has("annotation") and not s.description("annotation").get("src", "").lower().startswith("file")
        if db_mode and names != bundle.label_map.target.names:
            raise AnnotationError(f"session {s.name}: output scheme {getattr(scheme, 'name', '?')} has classes "
                                  f"{names}, the model predicts {bundle.label_map.target.names} "
                                  f"(scheme {bundle.label_map.target.name}: {IMPORT_HINT})")
        meta = getattr(template, "meta_data", None)
        kw = dict(role=getattr(meta, "role", None), annotator=getattr(meta, "annotator", None), session=s.name,
                  dataset=s.dataset)
        if s.is_active_output("annotation"):
            s.prepare_output("annotation")
            out["annotation"] = discrete_annotation(bundle, pred, scheme=scheme if db_mode else None, **kw)
        for name, anno in probability_annotations(bundle, pred, **kw).items():
            s.check_scheme(f"prob_{name}", anno.annotation_scheme.name, "CONTINUOUS")
            if s.is_active_output(f"prob_{name}"):
                s.prepare_output(f"prob_{name}")
                out[f"prob_{name}"] = anno
        return out
