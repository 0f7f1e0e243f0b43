"""Tagger speed, as ratios against a baseline measured in the same run (machines are noisy).

- Emotion tagger: frames/s at 640x480 (every frame analysed) against decode-only of the same video (VideoSource).
- Audio event tagger: real-time factor (audio seconds per compute second) on LibriVox speech + CC0 music with the
  YAMNet front end of TF models (mel-linear triangles, log offset 0.001) and the default crying model; target
  >= 100x on two CPU cores. The w8a8 ONNX export takes one window per call: windows run two at a time in a thread
  pool. Baselines in the same run: reading + resampling the same audio, and the same tagger with one window at a
  time (``threads=1``).

Run: ``python benchmarks/bench_taggers.py [--seconds 20] [--threads 2]``. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _video_640(path: Path, seconds: float) -> Path:
    """The carphone face scaled to 640x480 (real face, 29.97 fps), looped to ``seconds``."""
    from PIL import Image

    from nova_infant.core.media import VideoSource
    from nova_infant.core.sample_media import carphone_path, write_video

    src = VideoSource(carphone_path()).read(list(range(120)))
    frames = np.stack([np.asarray(Image.fromarray(f).resize((640, 480), Image.BILINEAR)) for f in src])
    n = int(seconds * 29.97)
    frames = np.concatenate([frames] * (n // len(frames) + 1))[:n]
    write_video(path, frames, 29.97)
    return path


def _audio(path: Path, seconds: float) -> Path:
    from nova_infant.core.media import read_audio
    from nova_infant.core.sample_media import librivox_paths, write_wav

    parts = [read_audio(str(p), 16000)[0] for p in librivox_paths()]
    music = Path("/usr/share/sonic-pi/samples/loop_amen_full.flac")
    if music.is_file():
        parts.append(read_audio(str(music), 16000)[0])
    sig = np.concatenate(parts)
    sig = np.tile(sig, int(seconds * 16000 // len(sig)) + 1)[: int(seconds * 16000)]
    return write_wav(path, sig, 16000)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the test media (s)")
    ap.add_argument("--audio-seconds", type=float, default=120.0)
    args = ap.parse_args(argv)
    from nova_infant.core.media import VideoSource, read_audio
    from nova_infant.taggers.audio_events import tag_audio_events
    from nova_infant.taggers.audio_model import load_backend
    from nova_infant.taggers.emotion import _models, tag_emotion

    out = {"cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as d:
        video = _video_640(Path(d) / "face640.mp4", args.seconds)
        _models()  # load once, as a DISCOVER job does
        src = VideoSource(str(video))
        n = src.info.n_frames
        t = time.perf_counter()
        for _ in src.iter_batches(list(range(n)), 32):
            pass
        decode_fps = n / (time.perf_counter() - t)
        t = time.perf_counter()
        r = tag_emotion(str(video), sample_fps="all")
        tag_fps = n / (time.perf_counter() - t)
        out["emotion"] = {"frames": n, "size": "640x480", "decode_only_fps": round(decode_fps, 1),
                          "tagger_fps": round(tag_fps, 1), "tagger_over_decode": round(tag_fps / decode_fps, 3),
                          "face_rate": round(float(r.has_face.mean()), 3),
                          "sampled_1fps_video_s_per_s": None}
        t = time.perf_counter()
        tag_emotion(str(video), sample_fps="1")
        out["emotion"]["sampled_1fps_video_s_per_s"] = round(
            args.seconds / (time.perf_counter() - t), 1)

        wav = _audio(Path(d) / "speech_music.wav", args.audio_seconds)
        from nova_infant.taggers import audio_model as am

        load_backend("yamnet")
        tag_audio_events(str(wav))  # warm-up (model, crying head, page cache)
        t = time.perf_counter()
        read_audio(str(wav), 16000)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        tag_audio_events(str(wav))
        tag_s = time.perf_counter() - t
        pooled = am._BACKENDS["yamnet"]
        am._BACKENDS["yamnet"] = am.YamnetBackend(threads=1)
        t = time.perf_counter()
        tag_audio_events(str(wav))
        serial_s = time.perf_counter() - t
        am._BACKENDS["yamnet"] = pooled
        out["audio_events"] = {"audio_s": args.audio_seconds, "read_only_rtf": round(args.audio_seconds / read_s, 1),
                               "tagger_rtf": round(args.audio_seconds / tag_s, 1),
                               "one_window_at_a_time_rtf": round(args.audio_seconds / serial_s, 1),
                               "pool_over_serial": round(serial_s / tag_s, 2),
                               "tagger_over_read": round(read_s / tag_s, 3), "target_rtf": 100,
                               "meets_target": args.audio_seconds / tag_s >= 100}
        out["load_average_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
