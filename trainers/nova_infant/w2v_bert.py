"""DISCOVER script of the W2V-BERT extractor (w2v_bert.trainer): the adapter lives in nova_infant."""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))); import bootstrap  # noqa: E401,E702,F401

from nova_infant.discover.w2v_bert_module import W2VBert  # noqa: E402,F401
