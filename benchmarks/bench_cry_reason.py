"""Cry-reason speed: clips per second for feature extraction + inference against feature extraction alone, both
measured in the same run on the same clips (machines are noisy; the ratio is the figure to compare).

- features alone: read the clip (8 kHz), MFCC + log-STFT window features (:func:`nova_infant.cry.features.clip_windows`);
- inference alone (features precomputed), to tell its share apart from the noise of the two totals;
- features + inference: the same, then scaling, both AE+DNN sub-models, the concatenate fusion and the rolling
  prediction average (:meth:`nova_infant.cry.session.CryReasonModel.window_proba`).

Clips: the first ``--clips`` Donate-a-cry clips (7 s each; ``$NOVA_INFANT_DONATEACRY``), else 7 s pieces of
LibriVox speech. The model is trained for one epoch on the same clips (inference cost does not depend on the
weights). The two measurements alternate ``--repeats`` times, the best time of each is kept.

Run: ``python benchmarks/bench_cry_reason.py [--clips 40] [--repeats 5]``. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path



def _clips(n: int, tmp: Path) -> tuple[list[str], str]:
    from nova_infant.core.errors import MediaError
    from nova_infant.cry.evaluation import corpus_clips

    try:
        return [c.path for c in corpus_clips()[:n]], "Donate-a-cry"
    except MediaError:
        from nova_infant.core.sample_media import librivox_speech, write_wav

        speech = librivox_speech(7.0 * n, 8000)
        return [str(write_wav(tmp / f"s{i}.wav", speech[i * 56000:(i + 1) * 56000], 8000)) for i in range(n)], \
            "LibriVox speech (corpus not found)"


def main(argv=None) -> int:
    from nova_infant.cry import features as F
    from nova_infant.cry import models as M
    from nova_infant.cry.session import TrainingItem, train_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths, source = _clips(args.clips, Path(tmp))
        feats = [F.clip_windows(p) for p in paths]
        items = [TrainingItem(str(i), f, [("a", "b")[i % 2]] * len(f["mfcc"]), ["a", "b"]) for i, f in enumerate(feats)]
        model = train_model(items, 1, 1, 1)

        def features_only():
            for p in paths:
                F.clip_windows(p)

        def features_and_inference():
            for p in paths:
                M.rolling_average(model.window_proba(F.clip_windows(p)), 0)

        def inference_only():
            for f in feats:
                M.rolling_average(model.window_proba(f), 0)

        best = {"features": float("inf"), "features+inference": float("inf"), "inference": float("inf")}
        for _ in range(args.repeats):  # interleaved, so that all see the same machine load
            for name, fn in (("features", features_only), ("features+inference", features_and_inference),
                             ("inference", inference_only)):
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
    n = len(paths)
    out = {"clips": n, "clip_seconds": 7.0, "source": source,
           "features_clips_per_s": round(n / best["features"], 1),
           "features_inference_clips_per_s": round(n / best["features+inference"], 1),
           "inference_alone_clips_per_s": round(n / best["inference"], 1),
           "inference_share_of_time": round(best["inference"] / best["features+inference"], 3),
           "ratio_features_inference_vs_features": round(best["features"] / best["features+inference"], 3)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
