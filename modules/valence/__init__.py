"""Infant facial valence (seed 004: Ning, Onal Ertugrul, Messinger, Cohn, Salah): coarse face registration,
1-s face clips, VideoMAE with a regression head, Stochastic and Strided Temporal Sampling (SSTS), ensemble
inference, CCC/RMSE. docs/valence.md."""
