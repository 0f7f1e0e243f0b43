"""Benchmark of the cooperative loop on synthetic FFSF-like sessions (nova_infant.icep.loop_benchmark): completion
Cohen's kappa on the uncoded part at 10/25/50 % coded, with and without a base bundle, against a per-frame logistic
regression on the same coded part; ECE before/after temperature scaling; review efficiency at NOVA's 0.7.

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_icep_completion.py [--test 4] [--base 6] [--frames 4500]
       [--out bench_icep_completion.json]
"""

import argparse
import json

import torch

from nova_infant.core.atomic import atomic_file
from nova_infant.icep.loop_benchmark import run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", type=int, default=4, help="held-out sessions completed")
    parser.add_argument("--base", type=int, default=6, help="sessions of the base bundle")
    parser.add_argument("--frames", type=int, default=4500, help="frames per session (25 Hz)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench_icep_completion.json")
    parser.add_argument("--png", default="", help="also draw the base bundle's reliability diagram here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = run(args.test, args.base, args.frames, seed=args.seed)
    with atomic_file(args.out) as staged:  # the write policy: never over a file nova-infant did not write
        staged.write_text(json.dumps(result, indent=2))
    if args.png:
        from nova_infant.icep.calibration import CalibrationCounts, plot_reliability

        plot_reliability(CalibrationCounts.from_json(result["calibration"]), args.png,
                         f"Held-out synthetic FFSF sessions ({args.test} x {args.frames / 1500:.0f} min)")
    print(f"{result['seconds']:.0f} s; report in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
