"""Pre-annotation taggers (VIBA-Net design, Ong et al., WACV-W'25): infant emotion from face crops and audio events
from AudioSet-model embeddings, each with a head a lab can train on its own NOVA annotations.

Sub-modules: :mod:`.assets` (offline model files), :mod:`.audio_events`, :mod:`.faces`, :mod:`.emotion`,
:mod:`.heads`, :mod:`.evaluate`.
"""
