"""ICEP-R engagement phases: schemes, datasets from NOVA sessions, bi-LSTM/MLP training with leak-free nested
cross-validation, model bundles and a predictor that writes NOVA annotations. See docs/icep.md."""
