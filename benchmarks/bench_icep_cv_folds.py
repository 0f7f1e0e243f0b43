"""ICEP-R nested CV: outer folds inline (one after the other, this process) against folds as separate jobs
(``--executor local``: a process pool; ``--slurm``: also a Slurm job array), measured in the same run.

Prints the wall time of each, the ratio against inline, and whether ``cv_report.json`` is identical to the inline
one (it must be: the same three functions, :func:`plan_folds` -> :func:`run_fold` -> :func:`combine_folds`).
Synthetic "context" sessions (:func:`nova_infant.icep.synthetic.context_task`) written as real NOVA file-mode data.
Every fold job and the inline run use the same torch thread count (``--threads``), so the reports can be compared
bit for bit.

    python benchmarks/bench_icep_cv_folds.py --sessions 8 --frames 2000 --folds 4 --workers 2 [--slurm]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--frames", type=int, default=2000, help="frames per session (40 ms)")
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="local fold processes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, inline and per fold job")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--slurm", action="store_true", help="also run the folds as a Slurm job array (needs sbatch)")
    args = ap.parse_args()

    from nova_infant.icep import pipeline
    from nova_infant.icep.dataset import SessionSpec
    from nova_infant.icep.schemes import label_map
    from nova_infant.icep.synthetic import context_task, write_session
    from nova_infant.icep.training import TrainConfig

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        names = [f"S{i:02d}" for i in range(args.sessions)]
        for name in names:
            x, y = context_task(args.frames, args.dim, rng, cue=0.5)
            write_session(root / "data", "syn", name, {"infant.feat": (x, 25.0, "feature;video;syn")}, y, 40.0)
        lmap = label_map("merged", "infant")
        sessions, _ = pipeline.load_sessions([root / "data" / "syn" / n for n in names],
                                             SessionSpec(["infant.feat"], ("infant", "ICEP-R-infant", "gold")), lmap)
        config = TrainConfig(model="bilstm", hidden=32, max_epochs=args.epochs, patience=2, device="cpu")
        common = dict(folds=args.folds, seed=0)
        runs = [("inline", {}), (f"local, {args.workers} workers", dict(executor="local", workers=args.workers,
                                                                       threads=args.threads))]
        if args.slurm:
            runs.append(("slurm job array", dict(executor="slurm", threads=args.threads, retries=0,
                                                 resources={"gpus": 0, "mem_gb": 2, "time_min": 30})))
        print(f"{args.sessions} sessions x {args.frames} frames x {args.dim} dims, {args.folds} outer folds, "
              f"bi-LSTM hidden 32, {args.epochs} epochs, {args.threads} torch thread(s) per process")
        reference, base = None, None
        for i, (label, extra) in enumerate(runs):
            started = time.perf_counter()
            pipeline.evaluate(sessions, lmap, config, root / f"run{i}", **common, **extra)
            seconds = time.perf_counter() - started
            report = (root / f"run{i}" / "cv_report.json").read_text()
            reference = reference or report
            base = base or seconds
            print(f"{label:<22} {seconds:8.1f} s  ratio to inline {seconds / base:5.2f}  "
                  f"report identical to inline: {report == reference}")


if __name__ == "__main__":
    main()
