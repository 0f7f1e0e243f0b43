"""DISCOVER script of ICEP-R training (trainer icep_train.trainer); the code is nova_infant.discover.icep_train_module."""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); import bootstrap  # noqa
from nova_infant.discover.icep_train_module import ICEPTrainer  # noqa
