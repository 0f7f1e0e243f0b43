"""Frames/s of the seed-002 affect model (MobileNetV4-Conv-Small + TAM) against the backbone alone, same run.

Real-size architecture (MobileNetV4-Conv-Small, width 1.0; TAM dim 256, depth 1, T = 32; heads VA/EXPR/AU), random
weights, 112 px crops (the authors' input size). Both arms see the same batches of T-frame sequences; the ratio says
what the temporal aggregation costs on top of the backbone, and the real-time factor (RTF = processing time / media
time) what a 25 fps session costs at one window per T frames (prediction with stride T/2 doubles the model time).
Face detection and decoding are not included (see docs/emotion-tagger.md for the detector's rate).

    python benchmarks/bench_affect.py [--device cpu|cuda] [--precision fp32|bf16] [--threads N] [--rounds R]
"""

from __future__ import annotations

import argparse
import time

import torch

from nova_infant.affect.model import AffectConfig, AffectModel


def _time(fn, x, rounds: int) -> float:
    """Median seconds of ``fn(x)`` over ``rounds`` runs after one warm-up."""
    fn(x)
    if x.is_cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn(x)
        if x.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2, help="sequences per forward call")
    ap.add_argument("--seq-len", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--fps", type=float, default=25.0, help="session frame rate for the real-time factor")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    model = AffectModel(AffectConfig(seq_len=a.seq_len)).to(device).eval()
    x = torch.randn(a.batch, a.seq_len, 3, 112, 112, device=device)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if a.precision == "bf16"
                else torch.autocast(device.type, enabled=False))

    @torch.no_grad()
    def backbone(inp):
        with autocast:
            return model.backbone(inp.reshape(-1, *inp.shape[2:]))

    @torch.no_grad()
    def full(inp):
        with autocast:
            return model(inp)

    t_bb, t_full = [], []
    for _ in range(2):  # interleaved arms against drift from other jobs on the machine
        t_bb.append(_time(backbone, x, a.rounds))
        t_full.append(_time(full, x, a.rounds))
    frames = a.batch * a.seq_len
    fps_bb, fps_full = frames / min(t_bb), frames / min(t_full)
    params = {"backbone": sum(p.numel() for p in model.backbone.parameters()),
              "tam+heads": sum(p.numel() for n, p in model.named_parameters() if not n.startswith("backbone."))}
    out = {"device": str(device), "precision": a.precision, "threads": a.threads, "frames_per_call": frames,
           "backbone_fps": fps_bb, "full_fps": fps_full, "full_vs_backbone_time": fps_bb / fps_full,
           "rtf_25fps": a.fps / fps_full, "rtf_25fps_stride_half": 2 * a.fps / fps_full, "params": params}
    print(f"device {device} ({a.precision}, {a.threads} threads), {a.batch} x {a.seq_len} frames of 112 px per call")
    print(f"backbone alone      : {fps_bb:8.1f} frames/s")
    print(f"backbone + TAM+heads: {fps_full:8.1f} frames/s  (time ratio {fps_bb / fps_full:.2f}x the backbone's)")
    print(f"real-time factor at {a.fps:g} fps: {a.fps / fps_full:.3f} (windows every T frames), "
          f"{2 * a.fps / fps_full:.3f} (stride T/2, the predictor's default)")
    print(f"parameters: backbone {params['backbone']:,}, TAM + heads {params['tam+heads']:,}")
    return out


if __name__ == "__main__":
    main()
