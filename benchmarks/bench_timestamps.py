"""Benchmark of reading frame timestamps (PTS) when a video is opened (``nova_infant.core.media.frame_timestamps``).

Every ``VideoSource`` now demuxes the video's packets with PyAV (no decoding) to place frames by their timestamps.
This prints that cost against the baseline of opening the same file with decord (``decord.VideoReader``, which
indexes the file the same way), measured in the same run on a long synthetic clip (default 10 minutes at 25 fps,
64 x 48 px H.264, written with PyAV), and the ratio PTS / decord open. Nothing is asserted.

Usage: ``python benchmarks/bench_timestamps.py [--minutes 10] [--fps 25] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def write_clip(path: Path, minutes: float, fps: float) -> Path:
    import av

    n = int(minutes * 60 * fps)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(n):
            frame = np.full((48, 64, 3), (i * 7) % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def main() -> None:
    import decord

    from nova_infant.core.media import frame_timestamps

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_clip(Path(tmp) / "long.mp4", args.minutes, args.fps)
        opens, pts = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
            opens.append(time.perf_counter() - start)
            start = time.perf_counter()
            start_ms, fps, times = frame_timestamps(reader, str(path), reader.get_avg_fps())
            pts.append(time.perf_counter() - start)
        n = len(reader)
    base, cost = float(np.median(opens)), float(np.median(pts))
    print(f"{n} frames ({args.minutes:g} min at {args.fps:g} fps): decord open {base * 1000:.0f} ms, "
          f"PTS read {cost * 1000:.0f} ms (median of {args.repeats}); ratio PTS / decord open {cost / base:.2f}; "
          f"constant rate detected: {times is None}, start {start_ms:.1f} ms")


if __name__ == "__main__":
    main()
