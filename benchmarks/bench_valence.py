"""Benchmark of infant facial valence (seed 004): training clips/s at SSTS stride s = 1 vs s = 6, and inference
clips/s with and without ensemble inference, all in the same run.

The model is the real VideoMAE ViT-S/16 architecture of ``MCG-NJU/videomae-small-finetuned-ssv2`` (384 wide, 12
layers, 6 heads, 224 px, tubelet 2) with random weights (``save_standin("videomae", size="small")``), loaded through
the same ``from_pretrained`` path as real weights; nothing is downloaded. The clips are real: the carphone face video
(29.97 fps) repeated ``--repeat`` times, faces found by BlazeFace, 1-s clips by the paper's rules (face probability
>= 0.8, >= 24 face frames); face detection is done once and not timed.

- training: :func:`nova_infant.valence.training.fit` for one epoch over ``--train-clips`` clips at s = 1 (24 frames per
  sample) and s = 6 (4 frames), batch ``--batch-size``, RandAugment on; timed: the training steps (decoding the
  sampled frames, crop, augmentation, forward, backward, AdamW, EMA), loading excluded (``FittedModel.train_seconds``).
  The paper reports 8x faster training at s = 6 than at s = 1 (Table II, A100, whole training).
- inference: :func:`predict_plan` of the s = 6 model over every clip, ensemble (6 samplings per clip, §IV-B) vs
  single (one sampling), same clips; timed: decoding, crops, forward.

Usage: ``python benchmarks/bench_valence.py [--repeat 3] [--train-clips 6] [--batch-size 2] [--threads 2]
[--precision fp32|bf16] [--rounds 2]``. Rounds interleave the configurations; the best rate of each is kept (a load
spike from other jobs on a shared machine hits single runs). Prints the figures and the ratios; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="carphone copies (4 s each) in the session")
    parser.add_argument("--train-clips", type=int, default=6, help="clips in the timed training epoch")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best time of each is kept")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from nova_infant.core.backbones import save_standin
    from nova_infant.core.sample_media import build_session
    from nova_infant.valence.pipeline import session_clips
    from nova_infant.valence.training import ValenceConfig, ValenceSession, fit, predict_plan

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, precision {args.precision}, load average "
          f"{os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = save_standin("videomae", work / "videomae-small", size="small")
        video = build_session(work / "data", "bench", "carphone", repeat=args.repeat)["video"]
        rules = {"face": "largest", "face_threshold": 0.8, "min_face_frames": 24, "clip_ms": 1000.0, "margin": 0.1}
        rng = np.random.default_rng(0)
        plan = session_clips(str(video), 1000.0, None, rules, rng.uniform(-100, 100, 4 * args.repeat), progress=False)
        print(f"session: {plan.skip_summary()}")
        train_plan = type(plan)(plan.video, plan.grid, plan.clips[:args.train_clips], plan.skipped)
        session = ValenceSession("carphone", "a", str(video), train_plan)
        results: dict = {}
        for r in range(args.rounds):
            for stride in (1, 6):
                config = ValenceConfig(model=str(model), stride=stride, epochs=1, batch_size=args.batch_size,
                                       device="cpu", precision=args.precision, seed=r)
                fitted = fit([session], config, progress=False)
                rate = fitted.n_samples / fitted.train_seconds
                print(f"round {r}: training s={stride:>2} ({24 // stride:>2} frames/sample): {fitted.n_samples} clips "
                      f"in {fitted.train_seconds:7.1f} s = {rate:.4f} clips/s (load {os.getloadavg()[0]:.1f})")
                if rate > results.get(stride, (None, 0.0))[1]:
                    results[stride] = (fitted, rate)
        for stride in (1, 6):
            print(f"training s={stride:>2}: best {results[stride][1]:.4f} clips/s")
        print(f"training speed-up s=6 vs s=1: {results[6][1] / results[1][1]:.2f}x (paper: 8x)")
        fitted = results[6][0]
        rates: dict = {}
        for r in range(args.rounds):
            for ensemble in (False, True):
                started = time.perf_counter()
                predict_plan(fitted, plan, ensemble=ensemble, batch_size=args.batch_size)
                seconds = time.perf_counter() - started
                rates[ensemble] = max(rates.get(ensemble, 0.0), len(plan.clips) / seconds)
                print(f"round {r}: inference {'ensemble (6 samplings)' if ensemble else 'single (1 sampling)   '}: "
                      f"{len(plan.clips)} clips in {seconds:6.1f} s = {len(plan.clips) / seconds:.3f} clips/s "
                      f"(load {os.getloadavg()[0]:.1f})")
        print(f"inference: single {rates[False]:.3f} clips/s, ensemble {rates[True]:.3f} clips/s (best of "
              f"{args.rounds}); ensemble costs {rates[False] / rates[True]:.2f}x the time of single (6 samplings)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
