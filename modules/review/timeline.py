"""Timeline of a session the way NOVA stacks tracks: feature strips on top, annotation tracks below, one shared
media time axis in seconds.

Tracks are built once (:func:`build_tracks`) and drawn two ways: a PNG with matplotlib (:func:`render_png`) and a
self-contained HTML page (:func:`render_html`: inline SVG, an inline PNG data URI for feature strips and a few
lines of inline JavaScript for a time cursor; no external assets, so it opens offline and can be mailed).
Discrete tracks use the scheme's NOVA colours (``#AARRGGBB``); garbage segments are dark grey.
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from nova_infant.core.atomic import atomic_file, save_figure
from nova_infant.core.errors import AnnotationError, StreamError
from nova_infant.core.streams import open_ssi_stream
from nova_infant.review.annotations import (GARBAGE_COLOR, GARBAGE_ID, describe, is_discrete, read_annotation,
                          scheme_classes, segments)

MAX_STRIP_BANDS = 32  # feature strip height in rows (dims are averaged into bands)
MAX_STRIP_COLUMNS = 2000  # feature strip width in columns (frames are averaged into columns)


def nova_color_to_rgba(color: str) -> tuple[float, float, float, float]:
    """NOVA colour to a matplotlib RGBA tuple.

    Parameters
    ----------
    color : str
        ``#AARRGGBB`` (NOVA) or ``#RRGGBB``.

    Returns
    -------
    tuple of 4 float
        (r, g, b, a) in 0..1; alpha at least 0.25 (fully transparent classes would vanish); mid grey when malformed.
    """
    text = str(color).lstrip("#")
    try:
        if len(text) == 8:
            a, r, g, b = (int(text[i:i + 2], 16) for i in range(0, 8, 2))
        elif len(text) == 6:
            a, (r, g, b) = 255, (int(text[i:i + 2], 16) for i in range(0, 6, 2))
        else:
            raise ValueError(color)
    except ValueError:
        return 0.5, 0.5, 0.5, 1.0
    return r / 255, g / 255, b / 255, max(a, 64) / 255  # fully transparent classes would vanish


def nova_color_to_css(color: str) -> str:
    """NOVA colour to CSS.

    Parameters
    ----------
    color : str
        NOVA ``#AARRGGBB`` (or ``#RRGGBB``), as :func:`nova_color_to_rgba` reads it.

    Returns
    -------
    str
        ``#rrggbb`` (alpha dropped: tracks are drawn opaque); mid grey when malformed.
    """
    r, g, b, _ = nova_color_to_rgba(color)
    return "#{:02x}{:02x}{:02x}".format(round(r * 255), round(g * 255), round(b * 255))


@dataclass
class Track:
    """One timeline row.

    Attributes
    ----------
    kind : str
        ``"discrete"`` (segments), ``"continuous"`` (line) or ``"feature"`` (image strip).
    title : str
    segments : list of (from_ms, to_ms, label, nova_color)
        Discrete tracks.
    times_ms, values : ndarray of shape (n,), float
        Continuous tracks (sample centres in ms); ``value_range`` = (min, max) of the scheme.
    strip : ndarray of shape (bands, columns), float32
        Feature tracks: z-scored feature dims averaged into ``bands`` rows and time into ``columns``.
    strip_end_ms : float
        Feature and continuous tracks: time (ms) where the content ends (n_samples / rate).
    legend : list of (label, nova_color)
    conf : list of float
        Discrete tracks: each segment's confidence (parallel to ``segments``); segments below ``hatch_below`` are
        drawn cross-hatched with their confidence, as NOVA hatches them.
    hatch_below : float
        NOVA's correction certainty level (default 0.7).
    """

    kind: str
    title: str
    segments: list = field(default_factory=list)
    times_ms: np.ndarray | None = None
    values: np.ndarray | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    strip: np.ndarray | None = None
    strip_end_ms: float = 0.0
    legend: list = field(default_factory=list)
    conf: list = field(default_factory=list)
    hatch_below: float = 0.7

    def hatched(self, i: int) -> bool:
        """True when segment ``i`` has a confidence below :attr:`hatch_below`."""
        return i < len(self.conf) and self.conf[i] < self.hatch_below

    @property
    def end_ms(self) -> float:
        """Where the track's content ends (ms)."""
        if self.kind == "discrete":
            return max((s[1] for s in self.segments), default=0.0)
        return self.strip_end_ms


def annotation_track(annotation, title: str | None = None) -> Track:
    """A timeline track from a discover-utils annotation (discrete → segments, continuous → line, free → text).

    Raises
    ------
    AnnotationError
        If a discrete label id is not a class of the scheme (and not garbage).
    """
    title = title or describe(annotation, "annotation")
    if is_discrete(annotation):
        classes = {c.id: c for c in scheme_classes(annotation)}
        segs, confs = [], []
        for start, stop, cid, conf in segments(annotation).tolist():
            confs.append(float(conf))
            if cid == GARBAGE_ID:
                segs.append((float(start), float(stop), "garbage", GARBAGE_COLOR))
            elif cid in classes:
                segs.append((float(start), float(stop), classes[cid].name, classes[cid].color))
            else:
                raise AnnotationError(f"{title}: label id {cid} at {start / 1000:.2f} s is not in scheme "
                                      f"{annotation.annotation_scheme.name!r}")
        return Track("discrete", title, segments=segs, legend=[(c.name, c.color) for c in classes.values()],
                     conf=confs)
    data = annotation.data
    names = data.dtype.names if data is not None else None
    if names and "score" in names:
        sr = float(annotation.annotation_scheme.sample_rate)
        values = np.asarray(data["score"], float)
        times = (np.arange(len(values)) + 0.5) * 1000.0 / sr
        lo, hi = float(annotation.annotation_scheme.min_val), float(annotation.annotation_scheme.max_val)
        return Track("continuous", title, times_ms=times, values=values, value_range=(lo, hi),
                     strip_end_ms=len(values) * 1000.0 / sr)
    segs = [(float(r["from"]), float(r["to"]), str(r["name"]), "#FF9EC5E8") for r in (data if data is not None else [])]
    return Track("discrete", title, segments=segs)


def feature_track(path: str | os.PathLike, title: str | None = None) -> Track:
    """A feature summary strip of an SSI ``.stream``: dims z-scored, averaged into ≤32 bands, time into ≤2000
    columns (bounded memory: the stream is read through a memmap column block by block).

    Raises
    ------
    StreamError
        If the stream cannot be opened or has no rows.
    """
    view = open_ssi_stream(path)
    n, dim = view.n_rows, view.dim
    if n == 0 or dim == 0:
        raise StreamError(f"{path}: stream is empty")
    cols = min(n, MAX_STRIP_COLUMNS)
    edges = np.linspace(0, n, cols + 1).astype(int)
    band_edges = np.linspace(0, dim, min(dim, MAX_STRIP_BANDS) + 1).astype(int)
    data = view.data
    mean = np.zeros(dim)
    sq = np.zeros(dim)
    for a in range(0, n, 4096):
        block = np.asarray(data[a:a + 4096], float)
        mean += block.sum(0)
        sq += (block ** 2).sum(0)
    mean /= n
    std = np.sqrt(np.maximum(sq / n - mean ** 2, 0)) + 1e-8
    strip = np.zeros((len(band_edges) - 1, cols), np.float32)
    for c in range(cols):
        z = (np.asarray(data[edges[c]:max(edges[c + 1], edges[c] + 1)], float) - mean) / std
        z = z.mean(0)
        strip[:, c] = [z[band_edges[b]:band_edges[b + 1]].mean() for b in range(len(band_edges) - 1)]
    label = title or Path(path).name.removesuffix(".stream")
    return Track("feature", f"{label} ({dim} dims, {view.sample_rate_hz:g} Hz)", strip=strip,
                 strip_end_ms=n * 1000.0 / view.sample_rate_hz)


def build_tracks(paths: Sequence[str | os.PathLike], titles: Sequence[str] | None = None) -> list[Track]:
    """Tracks from files: ``.stream`` → feature strip, ``.annotation`` → annotation track; a folder is expanded
    to its streams and annotations (NOVA session layout ``<role>.<name>.stream``, ``<role>.<scheme>.<annotator>
    .annotation``). Feature strips come first, as in NOVA.

    Raises
    ------
    AnnotationError
        If a path has another extension or nothing is found.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.glob("*.stream")) + sorted(p.glob("*.annotation"))
        else:
            files.append(p)
    if not files:
        raise AnnotationError(f"{', '.join(map(str, paths)) or 'timeline'}: no .stream or .annotation files")
    titles = list(titles or [])
    tracks = []
    for i, f in enumerate(files):
        title = titles[i] if i < len(titles) else None
        if f.suffix == ".stream":
            tracks.append(feature_track(f, title))
        elif f.suffix == ".annotation":
            tracks.append(annotation_track(read_annotation(f), title or f.name.removesuffix(".annotation")))
        else:
            raise AnnotationError(f"{f}: timeline takes .stream and .annotation files")
    return sorted(tracks, key=lambda t: t.kind != "feature")


def _duration(tracks: Sequence[Track], duration_ms: float | None) -> float:
    duration = float(duration_ms) if duration_ms else max((t.end_ms for t in tracks), default=0.0)
    if duration <= 0:
        raise AnnotationError("timeline: all tracks are empty and no duration was given")
    return duration


def render_png(tracks: Sequence[Track], path: str | os.PathLike, duration_ms: float | None = None,
               title: str = "", width_in: float = 14.0, dpi: int = 110) -> Path:
    """Draw the tracks stacked over one time axis (s) into a PNG with matplotlib.

    Parameters
    ----------
    tracks : sequence of Track
    path : path
        Output PNG (temp file + rename).
    duration_ms : float or None
        Length of the time axis; default the end of the longest track.
    title : str
        Figure title (e.g. ``dataset/session``).
    width_in, dpi : float, int
        Figure width in inches and resolution.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    duration_s = _duration(tracks, duration_ms) / 1000.0
    heights = [1.1 if t.kind == "feature" else 0.8 for t in tracks]
    fig, axes = plt.subplots(len(tracks), 1, figsize=(width_in, 0.9 + sum(heights)), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, track in zip(axes[:, 0], tracks):
        ax.set_xlim(0, duration_s)
        ax.set_ylabel(track.title, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
        if track.kind == "feature":
            ax.imshow(track.strip, aspect="auto", cmap="viridis", vmin=-2, vmax=2, interpolation="nearest",
                      extent=(0, track.strip_end_ms / 1000.0, 0, 1))
            ax.set_ylim(0, 1)
        elif track.kind == "continuous":
            ax.plot(track.times_ms / 1000.0, track.values, color="#1f77b4", lw=1)
            ax.set_ylim(*track.value_range)
        else:
            for i, (start, stop, label, color) in enumerate(track.segments):
                ax.axvspan(start / 1000.0, stop / 1000.0, color=nova_color_to_rgba(color), lw=0)
                if track.hatched(i):  # NOVA's cross-hatch of a segment below the correction certainty level
                    ax.axvspan(start / 1000.0, stop / 1000.0, facecolor="none", edgecolor="#d62728", hatch="xx",
                               lw=0)
                    label = f"{label} {track.conf[i]:.2f}"
                if (stop - start) / 1000.0 > duration_s / 40:
                    ax.text((start + stop) / 2000.0, 0.5, label, ha="center", va="center", fontsize=7,
                            clip_on=True, transform=ax.get_xaxis_transform())
            if track.legend:
                ax.legend(handles=[Patch(color=nova_color_to_rgba(c), label=n) for n, c in track.legend],
                          loc="center left", bbox_to_anchor=(1.002, 0.5), fontsize=6, frameon=False,
                          ncol=max(1, (len(track.legend) + 3) // 4))
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()

    return save_figure(fig, path, dpi=dpi)


def _strip_png(strip: np.ndarray) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rgba = (matplotlib.colormaps["viridis"](np.clip((strip + 2) / 4, 0, 1)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    plt.imsave(buf, rgba, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


_JS = """
(function(){var svg=document.getElementById('tl');var cur=document.getElementById('cursor');
var lab=document.getElementById('cursor-label');var x0=LEFT,w=WIDTH,d=DURATION;
svg.addEventListener('mousemove',function(e){var r=svg.getBoundingClientRect();
var x=(e.clientX-r.left)*svg.viewBox.baseVal.width/r.width;if(x<x0||x>x0+w){return;}
cur.setAttribute('x1',x);cur.setAttribute('x2',x);cur.style.display='';
lab.textContent=((x-x0)/w*d/1000).toFixed(2)+' s';lab.setAttribute('x',x+4);});})();
"""


def render_html(tracks: Sequence[Track], path: str | os.PathLike, duration_ms: float | None = None,
                title: str = "", width_px: int = 1300) -> Path:
    """Write a self-contained HTML page with the same stacked tracks as :func:`render_png`.

    Inline SVG (one ``<rect>`` per segment with a ``<title>`` tooltip: class, start, end in s), feature strips as
    inline PNG data URIs, a time axis in seconds, a legend per discrete track and an inline-JS time cursor.
    No network access is needed to view it.

    Parameters
    ----------
    tracks : sequence of Track
    path : path
        Output ``.html`` (temp file + rename).
    duration_ms : float or None
        Length of the time axis; default the end of the longest track.
    title : str
        Page heading.
    width_px : int
        SVG width in px (the page scales it to the window).
    """
    duration = _duration(tracks, duration_ms)
    left, right, row_h, gap, top = 230, 20, 34, 8, 10
    plot_w = width_px - left - right
    sx = plot_w / duration
    parts = []
    y = top
    for i, track in enumerate(tracks):
        h = row_h + (14 if track.kind == "feature" else 0)
        parts.append(f'<text class="name" x="{left - 8}" y="{y + h / 2 + 4:.1f}" text-anchor="end">'
                     f'{html.escape(track.title)}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{plot_w}" height="{h}" fill="#f4f4f4"/>')
        if track.kind == "feature":
            parts.append(f'<image x="{left}" y="{y}" width="{track.strip_end_ms * sx:.2f}" height="{h}" '
                         f'preserveAspectRatio="none" style="image-rendering:pixelated" '
                         f'href="data:image/png;base64,{_strip_png(track.strip)}"/>')
        elif track.kind == "continuous":
            lo, hi = track.value_range
            span = (hi - lo) or 1.0
            pts = " ".join(f"{left + t * sx:.1f},{y + h - (v - lo) / span * h:.1f}"
                           for t, v in zip(track.times_ms, np.nan_to_num(track.values, nan=lo)))
            parts.append(f'<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-width="1"/>')
        else:
            for i, (start, stop, label, color) in enumerate(track.segments):
                x, w = left + start * sx, max((stop - start) * sx, 0.5)
                conf = f", conf {track.conf[i]:.2f}" if i < len(track.conf) and track.conf[i] < 1 else ""
                parts.append(f'<rect class="seg" x="{x:.2f}" y="{y}" width="{w:.2f}" height="{h}" '
                             f'fill="{nova_color_to_css(color)}"><title>{html.escape(label)}: '
                             f'{start / 1000:.2f}-{stop / 1000:.2f} s{conf}</title></rect>')
                if track.hatched(i):
                    parts.append(f'<rect class="hatched" x="{x:.2f}" y="{y}" width="{w:.2f}" height="{h}" '
                                 f'fill="url(#nova-hatch)" pointer-events="none"/>')
                    label = f"{label} {track.conf[i]:.2f}"
                if w > 40:
                    parts.append(f'<text class="seg-label" x="{x + w / 2:.2f}" y="{y + h / 2 + 4:.1f}" '
                                 f'text-anchor="middle">{html.escape(label)}</text>')
        y += h + gap
    # time axis: about 10 ticks at a round step
    step = max(1.0, 10 ** np.floor(np.log10(duration / 1000 / 5)))
    for mult in (1, 2, 5):
        if duration / 1000 / (step * mult) <= 12:
            step *= mult
            break
    for t in np.arange(0, duration / 1000 + 1e-9, step):
        x = left + t * 1000 * sx
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{y}" stroke="#ccc" stroke-width="0.5"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{y + 14}" text-anchor="middle">{t:g}</text>')
    parts.append(f'<text class="tick" x="{left + plot_w / 2}" y="{y + 30}" text-anchor="middle">time (s)</text>')
    parts.append(f'<line id="cursor" x1="0" x2="0" y1="{top}" y2="{y}" stroke="#d00" style="display:none"/>')
    parts.append(f'<text id="cursor-label" class="tick" x="0" y="{top + 10}" fill="#d00"></text>')
    height = y + 40
    legend = []
    for track in tracks:
        if track.legend:
            items = "".join(f'<span class="key"><i style="background:{nova_color_to_css(c)}"></i>'
                            f'{html.escape(n)}</span>' for n, c in track.legend)
            legend.append(f'<div><b>{html.escape(track.title)}</b> {items}</div>')
    js = _JS.replace("LEFT", str(left)).replace("WIDTH", str(plot_w)).replace("DURATION", f"{duration:.1f}")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title or 'timeline')}</title>
<style>
body{{font-family:sans-serif;margin:12px;background:#fff;color:#222}} h1{{font-size:16px;margin:0 0 8px}}
svg{{width:100%;height:auto;display:block}} .name{{font-size:12px}} .tick{{font-size:11px;fill:#444}}
.seg-label{{font-size:11px;fill:#000;pointer-events:none}} .seg:hover{{opacity:.75}}
.legend{{font-size:12px;margin-top:6px}} .key{{margin-right:10px;white-space:nowrap}}
.key i{{display:inline-block;width:11px;height:11px;margin-right:3px;vertical-align:-1px}}
</style></head><body>
<h1>{html.escape(title or 'timeline')} &middot; {duration / 1000:.2f} s</h1>
<svg id="tl" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width_px} {height}">
<defs><pattern id="nova-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<line x1="0" y1="0" x2="0" y2="6" stroke="#d62728" stroke-width="1.5"/></pattern></defs>
{chr(10).join(parts)}
</svg>
<div class="legend">{''.join(legend)}</div>
<script>{js}</script>
</body></html>
"""
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
