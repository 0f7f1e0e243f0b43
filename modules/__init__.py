"""nova-infant: NOVA/DISCOVER modules for coding infant-caregiver interaction videos.

Sub-modules: ``timing`` (the shared output frame grid), ``media`` (video/audio decoding), ``nova_io`` (SSI
streams, annotations and ``.trainer`` files), ``backbones`` (Hugging Face weights, offline resolution),
``dinov2_pca`` and ``w2v_bert`` (feature extractors), ``discover`` (thin DISCOVER adapters).
"""

__version__ = "0.1.0"
