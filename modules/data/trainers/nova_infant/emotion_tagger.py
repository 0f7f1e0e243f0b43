import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); import bootstrap  # noqa
from nova_infant.discover.emotion_module import EmotionTagger  # noqa
