"""Lightweight per-frame facial affect (seed 002, Nguyen, Nguyen & Huynh, ABAW8 2025): MobileNetV4-Conv-Small
feature maps + a three-level 3D MLP-Mixer temporal aggregation module (TAM) -> valence/arousal, 8 expressions,
12 action units."""
