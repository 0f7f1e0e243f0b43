"""Benchmark of the DINOv2-PCA extractor: speed against a bare batched forward, and peak memory of a long session.

Speed: frames per second of the whole module (``extract_dinov2``: decoding on a background thread, torch
pre-processing, session PCA fit + projection, CLS) against a bare batched forward of the same model on
pre-made tensors, in the same process, on the same number of frames (bare, module, bare: the mean of the two
bare runs is the baseline). Target: ratio >= 0.85. The model is a
real-size DINOv2 architecture with random weights (``save_standin("dinov2", dir, size=...)``; default ``large`` =
the compute of facebook/dinov2-large). Model loading is excluded from both arms.

Memory: a child process loads a model, records its resident set (RSS) after a warm-up batch, then extracts a
10-minute 25 fps session (the carphone clip looped: 15,000 frames) and reports its peak RSS (``ru_maxrss``) minus
that baseline. Target: <= 1.5 GB above the model's own footprint. The default model is the tiny stand-in
(hidden size 32) with the real 224 px input and 16 x 16 patch grid, so the run takes minutes on CPU;
docs/dinov2-pca.md explains how the figure scales to wider models (tokens are never kept).

Usage: ``python benchmarks/bench_dinov2.py [--size large] [--frames 32] [--batch-size 8] [--precision auto]
[--skip-memory]`` (precisions against each other: benchmarks/bench_precision.py)
Prints the figures; nothing is asserted (speed targets live here, not in tests).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def bench_speed(size: str, n_frames: int, batch_size: int, work: Path, precision: str = "auto") -> dict:
    """Module fps / bare forward fps on ``n_frames`` frames of a real video (carphone, 25 fps)."""
    import torch

    from nova_infant.core.backbones import load_dinov2, save_standin
    from nova_infant.features.dinov2_pca import extract_dinov2
    from nova_infant.core.sample_media import carphone_frames, write_video

    model_dir = save_standin("dinov2", work / f"dinov2-{size}", size=size)
    backbone = load_dinov2(str(model_dir), device="auto", precision=precision)
    frames = carphone_frames()
    frames = np.concatenate([frames] * int(np.ceil(n_frames / len(frames))))[:n_frames]
    video = write_video(work / "speed.video.mp4", frames, 25.0)
    pixels = torch.randn(n_frames, 3, 224, 224, dtype=backbone.dtype, device=backbone.device)

    def bare() -> float:
        start = time.perf_counter()
        with torch.inference_mode(), backbone.autocast():
            for i in range(0, n_frames, batch_size):
                backbone.model(pixel_values=pixels[i:i + batch_size]).last_hidden_state.float().cpu()
        return time.perf_counter() - start

    def module() -> float:
        start = time.perf_counter()
        features = extract_dinov2(video, backbone, batch_size=batch_size, output="both", pca="session")
        assert features.pca.shape[0] == n_frames
        return time.perf_counter() - start

    with torch.inference_mode(), backbone.autocast():  # warm-up (allocator, kernels)
        backbone.model(pixel_values=pixels[:batch_size])
    # bare, module, bare: the baseline brackets the module run, so a load change on a shared machine shows up
    t_bare1, t_module, t_bare2 = bare(), module(), bare()
    t_bare = (t_bare1 + t_bare2) / 2
    return {"model": f"dinov2 {size} architecture, random weights", "frames": n_frames, "batch_size": batch_size,
            "device": str(backbone.device), "precision": backbone.precision, "threads": torch.get_num_threads(),
            "bare_runs_s": (t_bare1, t_bare2),
            "bare_fps": n_frames / t_bare, "module_fps": n_frames / t_module, "ratio": t_bare / t_module}


def build_long_session(minutes: float, work: Path) -> tuple[Path, float]:
    """The carphone clip looped to ``minutes`` at 25 fps (``build_session(fps=25, repeat=...)``); (video, seconds).

    Built in the parent process: building holds every frame in memory, which must not count in the child's peak.
    """
    from nova_infant.core.sample_media import build_session

    repeat = int(round(minutes * 60 * 25 / 120))  # the carphone clip has 120 frames
    start = time.perf_counter()
    session = build_session(work / "data", fps=25, repeat=repeat)
    return session["video"], time.perf_counter() - start


def memory_child(size: str, video: str, work: Path) -> dict:
    """Peak RSS above the loaded model while extracting ``video`` (runs in a fresh child process)."""
    from nova_infant.core.backbones import load_dinov2, save_standin
    from nova_infant.features.dinov2_pca import extract_dinov2

    model_dir = save_standin("dinov2", work / f"dinov2-{size}", size=size)
    backbone = load_dinov2(str(model_dir), device="cpu")
    import torch

    with torch.inference_mode():  # settle the allocator with one batch before the baseline
        backbone.model(pixel_values=torch.zeros(8, 3, 224, 224))
    baseline = _rss_mb()
    start = time.perf_counter()
    features = extract_dinov2(video, backbone, batch_size=8, output="both", pca="session")
    extract_s = time.perf_counter() - start
    peak = _peak_mb()
    return {"model": f"dinov2 {size} stand-in (hidden {backbone.model.config.hidden_size}, 224 px, 16x16 patches)",
            "rows": int(features.pca.shape[0]), "pca_dim": int(features.pca.shape[1]),
            "cls_dim": int(features.cls.shape[1]), "extract_s": extract_s,
            "rss_after_model_mb": baseline, "peak_rss_mb": peak, "peak_above_model_mb": peak - baseline}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large", help="speed model: small|base|large|giant (default large)")
    parser.add_argument("--frames", type=int, default=32, help="frames per speed arm (default 32)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--memory-size", default="tiny", help="memory model size (default tiny: hidden 32)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the memory session (default 10)")
    parser.add_argument("--precision", default="auto", help="speed arm precision: auto|fp32|bf16|int8 (default auto)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)  # video path
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-dinov2-") as tmp:
        work = Path(tmp)
        if args.memory_child:
            print(json.dumps(memory_child(args.memory_size, args.memory_child, work)))
            return 0
        if not args.skip_memory:
            video, built_s = build_long_session(args.minutes, work)
            print(f"memory: built {video.name} ({args.minutes:g} min at 25 fps) in {built_s:.0f} s")
            out = subprocess.run([sys.executable, __file__, "--memory-child", str(video), "--memory-size",
                                  args.memory_size], capture_output=True, text=True, check=True)
            memory = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"memory: {memory['model']}: {memory['rows']} rows ({args.minutes:g} min at 25 fps) -> "
                  f"pca {memory['pca_dim']}-d + cls {memory['cls_dim']}-d in {memory['extract_s']:.0f} s; RSS after "
                  f"model {memory['rss_after_model_mb']:.0f} MB, peak {memory['peak_rss_mb']:.0f} MB, "
                  f"peak above model {memory['peak_above_model_mb']:.0f} MB (target <= 1536 MB)")
        if not args.skip_speed:
            speed = bench_speed(args.size, args.frames, args.batch_size, work, args.precision)
            print(f"speed: {speed['model']} on {speed['device']} in {speed['precision']} ({speed['threads']} threads), "
                  f"{speed['frames']} frames, batch {speed['batch_size']}: bare forward {speed['bare_fps']:.3f} fps (runs "
                  f"{speed['bare_runs_s'][0]:.1f} s, {speed['bare_runs_s'][1]:.1f} s), module "
                  f"{speed['module_fps']:.3f} fps, ratio {speed['ratio']:.3f} (target >= 0.85)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
