"""Benchmark of the ``precision`` option: DINOv2 module frames/s and W2V-BERT real-time factor at each precision
against fp32 in the same run, plus how close each precision's features are to fp32's (cosine per row).

Models are the real-size architectures with random weights (``save_standin``: ``Dinov2Model`` with the
facebook/dinov2-large config, ``Wav2Vec2BertModel`` with the facebook/w2v-bert-2.0 config), saved to a temporary
folder and loaded through ``load_dinov2`` / ``load_w2v_bert`` with ``device="cpu"`` and each precision (loading is
not timed). Nothing is downloaded.

- ``dinov2``: ``extract_dinov2`` on ``--frames`` frames of the carphone clip (decoding on its background thread,
  pre-processing, forward, PCA projection, CLS) with one shared PCA basis (fitted on the fp32 tokens of the same
  frames in an untimed warm-up run, i.e. the ``dataset`` mode). Cosine per row of the PCA features and of the CLS
  token against the fp32 run.
- ``w2v-bert``: ``extract_w2v_bert`` on ``--seconds`` of LibriVox speech (16 kHz WAV; read, features, encoder,
  pooling onto the 40 ms grid); real-time factor = wall time / audio duration. Cosine per 40 ms row against fp32.

Each of ``--rounds`` rounds times every precision once (fp32 first), and the best time of each precision is kept, so
a load spike from other jobs on a shared machine hits single runs, not a whole precision; every run's time is printed. The load average (``os.getloadavg``) is printed at the start and end.
Targets (issue 16): ``auto`` >= 2x fp32 frames/s for the DINOv2 module, >= 1.5x for W2V-BERT (on a CPU with
avx512_bf16 or AMX).

Usage: ``python benchmarks/bench_precision.py dinov2 [--frames 16] [--batch-size 8] [--threads 2]``
       ``python benchmarks/bench_precision.py w2v-bert [--seconds 10] [--threads 2]``
Prints the figures; nothing is asserted (speed targets live here, not in tests).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``a`` (n, d) with the same row of ``b``: float64 (n,)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)


def _load_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} (2 cores)"


def bench_dinov2(work: Path, precisions: list[str], n_frames: int, batch_size: int, rounds: int) -> list[dict]:
    """Best of ``rounds`` timings of ``extract_dinov2`` at each precision (rounds interleave the precisions) on the
    same frames with one shared basis; cosine of each precision's last outputs to fp32's."""
    from nova_infant.core.backbones import load_dinov2, save_standin
    from nova_infant.features.dinov2_pca import extract_dinov2
    from nova_infant.core.sample_media import carphone_frames, write_video

    model_dir = save_standin("dinov2", work / "dinov2-large", size="large")
    frames = carphone_frames()
    frames = np.concatenate([frames] * int(np.ceil(n_frames / len(frames))))[:n_frames]
    video = str(write_video(work / "speed.video.mp4", frames, 25.0))

    loaded = {p: load_dinov2(str(model_dir), device="cpu", precision=p) for p in ["fp32"] + precisions}
    warm = extract_dinov2(video, loaded["fp32"], batch_size=batch_size, output="both", pca="session")  # + basis
    basis = warm.pca_model
    times, outputs = {p: [] for p in loaded}, {}
    for _ in range(rounds):
        for precision, backbone in loaded.items():
            start = time.perf_counter()
            outputs[precision] = extract_dinov2(video, backbone, batch_size=batch_size, output="both", pca=basis)
            times[precision].append(time.perf_counter() - start)
    reference, rows = outputs["fp32"], []
    for precision, features in outputs.items():
        best = min(times[precision])
        rows.append({"precision": precision, "used": features.meta["precision"], "seconds": best,
                     "runs": times[precision], "fps": n_frames / best,
                     "pca_cos_min": float(row_cosine(features.pca, reference.pca).min()),
                     "pca_cos_mean": float(row_cosine(features.pca, reference.pca).mean()),
                     "cls_cos_min": float(row_cosine(features.cls, reference.cls).min())})
    return rows


def bench_w2v_bert(work: Path, precisions: list[str], seconds_audio: float, rounds: int) -> list[dict]:
    """Best of ``rounds`` timings of ``extract_w2v_bert`` at each precision (rounds interleave the precisions) on
    the same speech; cosine of each precision's rows to fp32's."""
    from nova_infant.core.backbones import load_w2v_bert, save_standin
    from nova_infant.core.sample_media import librivox_speech, write_wav
    from nova_infant.features.w2v_bert import extract_w2v_bert

    model_dir = save_standin("w2v-bert", work / "w2v-bert-full", size="full")
    audio = librivox_speech(seconds_audio, 16000)
    wav = str(write_wav(work / "speech.wav", audio, 16000))
    loaded = {p: load_w2v_bert(str(model_dir), device="cpu", precision=p) for p in ["fp32"] + precisions}
    for backbone in loaded.values():  # warm-up (allocator, oneDNN kernels of each precision)
        extract_w2v_bert(wav, backbone, chunk_s=2.0, overlap_s=0.0)
    times, outputs = {p: [] for p in loaded}, {}
    for _ in range(rounds):
        for precision, backbone in loaded.items():
            start = time.perf_counter()
            outputs[precision] = extract_w2v_bert(wav, backbone)
            times[precision].append(time.perf_counter() - start)
    reference, rows = outputs["fp32"][0], []
    for precision, (features, _, meta) in outputs.items():
        best = min(times[precision])
        cos = row_cosine(features, reference)
        rows.append({"precision": precision, "used": meta["precision"], "seconds": best, "runs": times[precision],
                     "rtf": best / seconds_audio, "cos_min": float(cos.min()), "cos_mean": float(cos.mean())})
    return rows


def main(argv=None) -> int:
    import torch

    from nova_infant.core.backbones import cpu_supports_bf16

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["dinov2", "w2v-bert"])
    parser.add_argument("--precisions", default="bf16,int8,auto", help="compared with fp32 (default bf16,int8,auto)")
    parser.add_argument("--frames", type=int, default=16, help="DINOv2: frames per run (default 16)")
    parser.add_argument("--batch-size", type=int, default=8, help="DINOv2: frames per forward (default 8)")
    parser.add_argument("--seconds", type=float, default=10.0, help="W2V-BERT: speech length, s (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over all precisions; best time kept (default 2)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's, = cores)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip() and p.strip() != "fp32"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16 {cpu_supports_bf16()}; start: {_load_text()}")
    with tempfile.TemporaryDirectory(prefix="bench-precision-") as tmp:
        if args.what == "dinov2":
            rows = bench_dinov2(Path(tmp), precisions, args.frames, args.batch_size, args.rounds)
            base = rows[0]["fps"]
            print(f"DINOv2 ViT-L/14 architecture (random weights), whole module (extract_dinov2, PCA k=4 with one "
                  f"shared basis + CLS), {args.frames} carphone frames at 224 px, batch {args.batch_size}:")
            for r in rows:
                print(f"  {r['precision']:>5} (ran {r['used']:>4}): {r['seconds']:7.1f} s  {r['fps']:6.3f} frames/s  "
                      f"{r['fps'] / base:5.2f}x fp32 (runs {', '.join(f'{t:.1f}' for t in r['runs'])} s) | cosine to fp32: PCA rows min {r['pca_cos_min']:.5f} mean "
                      f"{r['pca_cos_mean']:.5f}, CLS min {r['cls_cos_min']:.5f}")
        else:
            rows = bench_w2v_bert(Path(tmp), precisions, args.seconds, args.rounds)
            base = rows[0]["seconds"]
            print(f"W2V-BERT 2.0 architecture (random weights), extract_w2v_bert on {args.seconds:g} s LibriVox "
                  f"speech (one encoder window), 40 ms rows:")
            for r in rows:
                print(f"  {r['precision']:>5} (ran {r['used']:>4}): {r['seconds']:7.2f} s  real-time factor "
                      f"{r['rtf']:.3f}  {base / r['seconds']:5.2f}x fp32 (runs {', '.join(f'{t:.1f}' for t in r['runs'])} s) | cosine to fp32 per row: min "
                      f"{r['cos_min']:.5f} mean {r['cos_mean']:.5f}")
    print(f"end: {_load_text()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
