"""Infant cry reason analysis (seed 003, Cha & Bae): MFCC / log-STFT features, denoising autoencoder + DNN,
frozen ResNet-50 face branch, late-fusion concatenate model, rolling prediction averaging; recorder-grouped
evaluation on the Donate-a-cry corpus (docs/cry-reason.md)."""
