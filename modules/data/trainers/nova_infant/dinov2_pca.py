"""DISCOVER script of the DINOv2-PCA extractor (trainer dinov2_pca.trainer); the code is nova_infant.discover.dinov2_module."""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); import bootstrap  # noqa
from nova_infant.discover.dinov2_module import DinoV2PCA  # noqa
