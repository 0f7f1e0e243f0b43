"""Benchmark: our W2V-BERT extractor vs the per-window algorithm of discover-modules ``w2v_bert_2`` and vs one bare
forward pass, on the same LibriVox speech, in the same run, with the real W2V-BERT 2.0 architecture (random
weights, ``save_standin("w2v-bert", dir, size="full")``).

- ``bare``: feature extractor + ``Wav2Vec2BertModel`` once over the whole audio (the floor any extractor pays).
- ``ours``: ``extract_w2v_bert`` with its defaults (reads the WAV, block-wise features, chunked encoder, pooling onto
  the 40 ms grid); a second configuration forces chunking (``--chunk-s``) to show its overhead.
- ``per-window``: the algorithm of hcmlab/discover-modules ``modules/w2v_bert_2`` at HEAD: every 40 ms a 1 s window
  ending at the frame (edge-padded at the start), each window through the feature extractor and the model, last
  hidden state mean-pooled. It is timed on ``--windows`` windows (batched like the module) and extrapolated per
  window to all ``floor(D / 40 ms)`` windows (said so in the output). Its per-window librosa resampling is not
  counted (the audio is already 16 kHz), which favours the baseline.

Targets (issue 2): ours >= 10x faster than per-window, and <= 1.25x the bare forward pass.

Usage: ``python benchmarks/bench_w2v_bert.py [--seconds 25] [--windows 24] [--model DIR]``
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import numpy as np
import torch


def _time(fn, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def per_window_baseline(audio: np.ndarray, backbone, indices, batch_size: int) -> np.ndarray:
    """discover-modules ``w2v_bert_2``: window i = audio [i*40 - 960, i*40 + 40) ms, edge-padded; mean of the last
    hidden state. Returns (len(indices), dim) float32."""
    sr, hop, width = 16000, 640, 16000
    padded = np.pad(audio, (width - hop, 0), mode="edge")
    out = []
    for b in range(0, len(indices), batch_size):
        windows = [padded[i * hop:i * hop + width] for i in indices[b:b + batch_size]]
        inputs = backbone.processor(windows, sampling_rate=sr, return_tensors="pt", padding=True)
        with torch.inference_mode(), backbone.autocast():
            hidden = backbone.model(input_features=inputs["input_features"].to(backbone.dtype),
                                    attention_mask=inputs["attention_mask"]).last_hidden_state
        out.append(hidden.float().mean(dim=1).numpy())
    return np.concatenate(out)


def main() -> None:
    """Time bare / ours / per-window on the same audio and print times, ratios and the chunking error."""
    from nova_infant.core.backbones import load_w2v_bert, save_standin
    from nova_infant.core.sample_media import librivox_speech, write_wav
    from nova_infant.features.w2v_bert import encode_session, extract_w2v_bert

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=25.0, help="LibriVox speech length, s (default: 25)")
    parser.add_argument("--windows", type=int, default=24, help="per-window baseline windows actually timed")
    parser.add_argument("--chunk-s", type=float, default=8.0, help="forced-chunking configuration: chunk, s")
    parser.add_argument("--overlap-s", type=float, default=1.0, help="forced-chunking configuration: overlap, s")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats of bare/ours (best is kept)")
    parser.add_argument("--precision", default="fp32", help="auto|fp32|bf16|int8 for every arm (default fp32; "
                        "precisions against each other: benchmarks/bench_precision.py)")
    parser.add_argument("--model", default=None, help="W2V-BERT checkpoint dir (default: a fresh full-size stand-in)")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="bench-w2v-")
    model_dir = args.model or str(save_standin("w2v-bert", f"{work}/w2v-bert-full", size="full"))
    backbone = load_w2v_bert(model_dir, device="cpu", precision=args.precision)
    params = sum(p.numel() for p in backbone.model.parameters()) / 1e6
    audio = librivox_speech(args.seconds, 16000)
    wav = str(write_wav(f"{work}/speech.wav", audio, 16000))
    n_rows = int(math.floor(args.seconds * 1000 / 40))
    print(f"W2V-BERT {params:.0f}M parameters ({'stand-in, random weights' if not args.model else model_dir}), "
          f"{args.seconds:g} s LibriVox speech at 16 kHz, {n_rows} output rows of 40 ms, "
          f"torch {torch.__version__} on CPU with {torch.get_num_threads()} threads, precision {backbone.precision}")

    def bare():
        inputs = backbone.processor(audio, sampling_rate=16000, return_tensors="pt")
        with torch.inference_mode(), backbone.autocast():
            return backbone.model(input_features=inputs["input_features"]).last_hidden_state

    def ours():
        return extract_w2v_bert(wav, backbone)

    def ours_chunked():
        return extract_w2v_bert(wav, backbone, chunk_s=args.chunk_s, overlap_s=args.overlap_s)

    bare()  # warm-up (allocations, oneDNN kernels)
    t_bare = _time(bare, args.repeats)
    t_ours = _time(ours, args.repeats)
    t_chunked = _time(ours_chunked, args.repeats)

    full = bare()[0].float().numpy()
    chunked = encode_session(audio, backbone, chunk_s=args.chunk_s, overlap_s=args.overlap_s)
    rel = np.linalg.norm(chunked - full, axis=1) / np.linalg.norm(full, axis=1)
    cos = (chunked * full).sum(1) / (np.linalg.norm(chunked, axis=1) * np.linalg.norm(full, axis=1))

    indices = np.linspace(0, n_rows - 1, args.windows).round().astype(int)
    per_window_baseline(audio, backbone, indices[:2], batch_size=2)  # warm-up
    start = time.perf_counter()
    per_window_baseline(audio, backbone, indices, batch_size=8)
    t_window = (time.perf_counter() - start) / len(indices)
    t_baseline = t_window * n_rows

    print(f"bare forward pass (extractor + model, one pass) : {t_bare:8.2f} s")
    print(f"ours, defaults (chunk 30 s, overlap 3 s)        : {t_ours:8.2f} s  = {t_ours / t_bare:.2f}x bare "
          f"(target <= 1.25x)")
    print(f"ours, forced chunking ({args.chunk_s:g} s, overlap {args.overlap_s:g} s)    : {t_chunked:8.2f} s  = "
          f"{t_chunked / t_bare:.2f}x bare")
    print(f"per-window baseline (discover-modules w2v_bert_2): {t_window:8.3f} s per window, timed on "
          f"{len(indices)} of {n_rows} windows and EXTRAPOLATED to all: {t_baseline:.1f} s")
    print(f"speed-up ours vs per-window                      : {t_baseline / t_ours:8.1f}x (target >= 10x)")
    print(f"chunked vs full pass, last hidden state per 20 ms step: relative L2 error max {rel.max():.4f} "
          f"mean {rel.mean():.4f}; cosine min {cos.min():.5f}")


if __name__ == "__main__":
    main()
