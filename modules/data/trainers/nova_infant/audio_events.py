import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); import bootstrap  # noqa
from nova_infant.discover.audio_events_module import AudioEvents  # noqa
