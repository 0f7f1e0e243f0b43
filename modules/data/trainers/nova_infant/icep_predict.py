"""DISCOVER script of the ICEP-R predictor (icep_predict.trainer and every trained icep_<model>.trainer); the code is
nova_infant.discover.icep_predict_module."""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); import bootstrap  # noqa
from nova_infant.discover.icep_predict_module import ICEPPredictor  # noqa
