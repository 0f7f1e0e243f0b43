"""Benchmark of ``nova-infant batch``: sessions per hour for 8 short sessions, batch against a loop of
single-session ``du-process`` runs, in the same run on the same sessions.

Sessions: the real carphone/LibriVox sample session (4 s, 120 frames at 29.97 fps), copied 8 times into a NOVA
file-mode data root. Module: DINOv2-PCA with a real-size stand-in (``save_standin("dinov2", size=...)``, random
weights of the real architecture; default ``small``) on CPU, ``frame_step`` 200 ms (20 rows per session).

Arms (same module, options and outputs; outputs are overwritten each time, ``--force`` for the batch arms):

- ``loop``: what a lab does without the batch command: one ``du-process`` per session (a new process, imports and
  one model load per session).
- ``batch w1``: ``run_batch`` with 1 worker (one model load, sessions one after the other; DINOv2-PCA decodes
  on its own background thread while the model runs).
- ``batch w2``: 2 workers with ``threads = cores / 2`` each: one session's decoding and pre-processing overlap
  another's inference, one model load per worker.

Usage: ``python benchmarks/bench_batch.py [--sessions 8] [--size small] [--frame-step 200ms]``
Prints a table (wall s, sessions/hour, ratio to the loop); nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _loop(trainer_dir: Path, data: list, options: dict, sessions: list[str], work: Path) -> float:
    start = time.perf_counter()
    for session in sessions:
        cmd = [sys.executable, "-m", "discover_utils.scripts.process", "--trainer_file_path", "dinov2_pca.trainer",
               "--cml_dir", str(trainer_dir), "--cache_dir", str(work / "c"), "--tmp_dir", str(work / "t"),
               "--log_dir", str(work / "l"), "--dataset", "bench", "--sessions", json.dumps([session]),
               "--data", json.dumps(data), "--options", json.dumps(options)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"du-process failed on {session}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--size", default="small", help="DINOv2 stand-in size: tiny|small|base|large")
    parser.add_argument("--frame-step", default="200ms")
    args = parser.parse_args()

    from nova_infant.core.backbones import save_standin
    from nova_infant.core.batch import ModuleJob, build_request, run_batch
    from nova_infant.discover.registry import REPO_TRAINER_DIR
    from nova_infant.core.streams import load_ssi_stream
    from nova_infant.core.sample_media import build_session

    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:
        root = work / "data"
        first = build_session(root, "bench", "s00")
        sessions = [f"s{i:02d}" for i in range(args.sessions)]
        for name in sessions[1:]:
            shutil.copytree(first["dir"], root / "bench" / name)
        model = str(save_standin("dinov2", work / "model", size=args.size))
        options = {"model": model, "device": "cpu", "frame_step": args.frame_step, "output": "pca",
                   "batch_size": 8}
        trainer = str(REPO_TRAINER_DIR / "dinov2_pca.trainer")
        data = build_request(trainer, root, role="infant", files={"dinov2_cls": "off"})
        rows = load_avg = None
        timings = {}
        timings["loop (du-process per session)"] = _loop(REPO_TRAINER_DIR, data, options, sessions, work)
        for workers in (1, 2):
            job = ModuleJob(trainer, "bench", data, options, str(work / "state"),
                            threads=max(1, cores // workers))
            start = time.perf_counter()
            results = run_batch(job, sessions, workers=workers, retries=0, force=True, progress=False)
            timings[f"batch, {workers} worker(s) x {job.threads} thread(s)"] = time.perf_counter() - start
            failed = [r for r in results if r.status != "done"]
            if failed:
                raise SystemExit(f"batch failed: {failed}")
        rows = load_ssi_stream(root / "bench" / "s00" / "infant.dinov2.stream").data.shape[0]
        load_avg = os.getloadavg()[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = timings["loop (du-process per session)"]
    print(f"{args.sessions} sessions x 4 s (120 frames, {rows} rows at {args.frame_step}), DINOv2 stand-in "
          f"{args.size}, CPU, {cores} cores, load average at the end {load_avg:.1f}")
    print(f"{'arm':<34} {'wall s':>7} {'sessions/h':>11} {'vs loop':>8}")
    for arm, seconds in timings.items():
        print(f"{arm:<34} {seconds:>7.1f} {3600 * args.sessions / seconds:>11.0f} {base / seconds:>7.2f}x")


if __name__ == "__main__":
    main()
