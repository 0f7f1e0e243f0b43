"""Cry reasons on NOVA sessions: the core work of the trainer and predictor modules (specs ``cry_reason_train``
and ``cry_reason_predict``), usable without DISCOVER.

Training (:func:`training_item` per coded session, then :func:`train_model`): every segment of the lab's discrete
cry-reason annotation is cut into 1 s windows (:mod:`.features`); the windows of all sessions train, per feature
kind (MFCC, log-STFT), the paper's scaler + denoising autoencoder + DNN, and the concatenate fusion model over the
sub-models' probabilities. The scheme's class names are the model's classes.

Prediction (:func:`predict_reasons`): each segment of a crying track (e.g. the audio tagger's ``baby_crying``)
is cut into windows; the fused window probabilities are smoothed by the rolling prediction average (deque of
``smooth_windows`` predictions; 0 = the whole segment) and consecutive windows with the same label are merged. A
segment's confidence is the mean smoothed probability of its label. No crying segment: an empty track and a note.

Saved model: :func:`save_cry_model` / :func:`load_cry_model`, the package's one saved-model format
(:mod:`nova_infant.core.saved`) of kind ``cry-reason-model``, with a ``NOTICE.md``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nova_infant.core.annotations import discrete_segments as class_names_of, labelled_segments, read_annotation
from nova_infant.core.errors import AnnotationError, OptionError
from nova_infant.core.media import VideoSource
from nova_infant.core.saved import load_model, save_model
from nova_infant.cry import features as F
from nova_infant.cry import models as M
from nova_infant.core.validation import check_class_targets

log = logging.getLogger("nova_infant")

MODEL_KIND = "cry-reason-model"
FORMAT_VERSION = 1


@dataclass
class TrainingItem:
    """One coded session's training windows: ``features`` {kind: (n, dim) float32}, ``labels`` (n,) class names,
    ``classes`` (the annotation scheme's class names, in scheme order), ``session`` name, and optionally ``face``
    float32 (n, channels): the globally average-pooled frozen ResNet feature maps of each window's middle frame (the
    pooling is the face head's first, parameter-free layer, so it is applied once here); ``segment_of`` (n,) the
    index of the coded segment each window came from (the unit the trainer's cross-validation scores)."""

    session: str
    features: dict
    labels: list
    classes: list
    face: np.ndarray | None = None  # (n, channels) pooled frozen-ResNet features of each window's middle frame
    segment_of: list = field(default_factory=list)  # (n,) coded segment of each window


@dataclass
class CryReasonModel:
    """A trained cry-reason model: classes, per-kind scaler arrays and AudioReasonNets, the fusion net, config."""

    classes: list
    scalers: dict
    nets: dict
    fusion: object
    config: dict = field(default_factory=dict)

    @property
    def uses_face(self) -> bool:
        """True when the model has a face sub-model (it then needs the session video)."""
        return bool(self.config.get("face"))

    def window_proba(self, feats: dict, face: np.ndarray | None = None) -> np.ndarray:
        """Fused class probabilities of windows: ``feats`` {kind: (n, dim)} (+ ``face`` (n, channels) pooled ResNet
        features when :attr:`uses_face`) -> (n, C) float32."""
        probs = [M.predict_proba(self.nets[k], F.apply_scaler_arrays(feats[k], self.scalers[k]))
                 for k in self.config["kinds"]]
        if self.uses_face:
            probs.append(M.predict_proba(self.nets["face"], _maps(face)))
        return M.predict_proba(self.fusion, np.stack(probs, 1)).astype(np.float32)


def discrete_segments(path, with_scheme: bool = False):
    """Segments ``[(from_ms, to_ms, class name)]`` and scheme class names of a discrete NOVA ``.annotation``
    (and the scheme name when ``with_scheme``); segments whose id is not a class of the scheme (NOVA's garbage
    label -1) are left out.

    Parameters
    ----------
    path : str or path
        A ``.annotation`` file (its ``~`` data file beside it).
    with_scheme : bool
        Also return the scheme name.

    Returns
    -------
    segments : list of (float, float, str)
        (from_ms, to_ms, class name).
    classes : list of str
        Scheme class names in id order.
    scheme : str or None
        Only with ``with_scheme``.

    Raises
    ------
    AnnotationError
        If the file cannot be read or is not a discrete annotation (:mod:`nova_infant.core.annotations`, the
        package's one annotation reader).
    """
    anno = read_annotation(path)
    names = list(class_names_of(anno, str(path))[1])
    segs = [(a, b, n) for a, b, n, _ in labelled_segments(anno, str(path))]
    if with_scheme:
        return segs, names, getattr(getattr(anno, "annotation_scheme", None), "name", None)
    return segs, names


def _maps(pooled: np.ndarray) -> np.ndarray:
    """(n, channels) pooled features as (n, channels, 1, 1) maps for the face head (its pooling is then identity)."""
    return np.asarray(pooled, np.float32)[:, :, None, None]


def face_features(video_path, times_ms: np.ndarray, backbone) -> np.ndarray:
    """Pooled frozen-ResNet features of the frames on screen at ``times_ms`` (session axis, ms): float32
    (n, channels). The whole frame is used (the paper crops centred infant faces; a lab's camera framing decides).

    Parameters
    ----------
    video_path : str or path
    times_ms : ndarray of shape (n,)
        Times on the session axis (ms); the frame on screen at each time is used.
    backbone : frozen ResNet from :func:`nova_infant.cry.models.load_resnet50`

    Returns
    -------
    ndarray of shape (n, channels), float32 (2048 channels for ResNet-50)

    Raises
    ------
    VideoDecodeError
        If the video cannot be read.
    """
    src = VideoSource(str(video_path))
    info = src.info
    t = np.asarray(times_ms, np.float64)
    if info.frame_times_ms is not None:
        idx = np.searchsorted(info.frame_times_ms, t, side="right") - 1
    else:
        idx = np.floor((t - info.start_ms) * info.fps / 1000.0 + 1e-9).astype(np.int64)
    idx = np.clip(idx, 0, info.n_frames - 1)
    if not len(idx):
        return np.zeros((0, 0), np.float32)
    maps = M.face_feature_maps(backbone, src.read(idx.tolist()))
    return maps.mean(axis=(2, 3)).astype(np.float32)


def _middles(starts: np.ndarray, end_ms: float) -> np.ndarray:
    return np.asarray(starts, np.float64) + np.minimum(F.WINDOW_MS, end_ms - np.asarray(starts, np.float64)) / 2


def training_item(session: str, audio_path, segments: list, classes: list, video_path=None,
                  face_backbone=None) -> TrainingItem:
    """Window features and labels of one coded session (see module docstring).

    Parameters
    ----------
    session : str
        Session name (messages, provenance).
    audio_path : str or path
        Session audio (any rate; analysed at 8 kHz).
    segments : list of (float, float, str)
        (from_ms, to_ms, class name) of the cry-reason annotation.
    classes : list of str
        The scheme's class names.
    video_path, face_backbone : optional
        Session video and frozen ResNet: adds ``face`` features.

    Returns
    -------
    TrainingItem

    Raises
    ------
    AnnotationError
        If no segment is long enough for one analysis window (>= 250 ms) inside the audio.
    AudioDecodeError, VideoDecodeError
        If the audio (or the video, given with ``face_backbone`` from :func:`nova_infant.cry.models.load_resnet50`)
        cannot be read.
    """
    signal = F.read_signal(str(audio_path))
    feats = {k: [] for k in F.KINDS}
    labels: list = []
    segment_of: list = []
    middles = []
    for index, (start, end, name) in enumerate(segments):
        n = 0
        for k in F.KINDS:
            x, starts = F.window_features(signal, k, start, end)
            feats[k].append(x)
            n = len(starts)
        labels += [name] * n
        segment_of += [index] * n
        middles.append(_middles(starts, min(end, len(signal) * 1000.0 / F.SAMPLE_RATE)))
    if not labels:
        raise AnnotationError(f"session {session}: no cry-reason segment of at least {F.MIN_WINDOW_MS:.0f} ms inside "
                              f"the audio ({audio_path}): not trained on")
    face = None
    if video_path is not None and face_backbone is not None:
        face = face_features(video_path, np.concatenate(middles), face_backbone)
    return TrainingItem(session, {k: np.concatenate(v) for k, v in feats.items()}, labels, list(classes), face,
                        segment_of)


def train_model(items: list[TrainingItem], epochs_ae: int = 40, epochs: int = 40, epochs_fusion: int = 100,
                seed: int = 0, meta: dict | None = None, epochs_face: int = 10,
                face_backbone: str | None = None) -> CryReasonModel:
    """Fit scalers, AE+DNN per kind, the face head when every item has ``face`` features (``epochs_face``, paper:
    ~10), and the fusion model on the windows of all ``items`` (class-weighted). ``face_backbone`` names the ResNet
    weights the face features came from (stored for the predictor).

    Parameters
    ----------
    items : list of TrainingItem
    epochs_ae, epochs, epochs_fusion, epochs_face : int
        Epochs of the autoencoder pre-training, the DNN, the fusion model and the face head.
    seed : int
    meta : dict, optional
        Provenance merged into the model's config (scheme, dataset, skipped sessions).

    Returns
    -------
    CryReasonModel

    Raises
    ------
    OptionError
        If there are no items, their schemes differ, fewer than two classes occur, or only some items have face
        features.
    """
    if not items:
        raise OptionError("cry_reason_train: no usable session: nothing trained")
    classes = items[0].classes
    for it in items[1:]:
        if it.classes != classes:
            raise OptionError(f"session {it.session}: scheme classes {it.classes} differ from {classes} "
                              f"(session {items[0].session}); train on one scheme")
    y = np.asarray([classes.index(n) for it in items for n in it.labels])
    check_class_targets(y, list(classes), "cry_reason_train on sessions " + ", ".join(it.session for it in items[:5]))
    scalers, nets, probs = {}, {}, []
    for k in F.KINDS:
        x = np.concatenate([it.features[k] for it in items])
        scaler = F.make_scaler().fit(x)
        xs = scaler.transform(x).astype(np.float32)
        scalers[k] = F.scaler_arrays(scaler)
        nets[k] = M.fit_audio_model(xs, y, len(classes), epochs_ae, epochs, seed)
        probs.append(M.predict_proba(nets[k], xs))
    with_face = [it.face is not None for it in items]
    face_config = None
    if any(with_face):
        if not all(with_face):
            missing = [it.session for it in items if it.face is None]
            raise OptionError(f"cry_reason_train: sessions {missing} have no face video while others have: give "
                              f"the video for every session or for none")
        pooled = np.concatenate([it.face for it in items])
        nets["face"] = M.build_face_head(pooled.shape[1], len(classes))
        M.train_classifier(nets["face"], _maps(pooled), y, len(classes), epochs_face, seed)
        probs.append(M.predict_proba(nets["face"], _maps(pooled)))
        face_config = {"backbone": face_backbone or "", "channels": int(pooled.shape[1]), "epochs": epochs_face}
    fusion = M.build_fusion(len(probs), len(classes))
    M.train_classifier(fusion, np.stack(probs, 1), y, len(classes), epochs_fusion, seed)
    counts = {c: int((y == i).sum()) for i, c in enumerate(classes)}
    config = {"kind": MODEL_KIND, "format_version": FORMAT_VERSION, "classes": list(classes), "kinds": list(F.KINDS),
              "dims": {k: F.feature_dim(k) for k in F.KINDS},
              "features": {"sample_rate_hz": F.SAMPLE_RATE, "n_fft": F.N_FFT, "hop": F.HOP, "n_mfcc": F.N_MFCC,
                           "n_mels": F.N_MELS, "window_ms": F.WINDOW_MS, "window_hop_ms": F.WINDOW_HOP_MS},
              "epochs": {"autoencoder": epochs_ae, "dnn": epochs, "fusion": epochs_fusion}, "seed": seed,
              "training_windows": counts, "sessions": [it.session for it in items], "face": face_config,
              **(meta or {})}
    return CryReasonModel(list(classes), scalers, nets, fusion, config)


NOTICE = """# Cry-reason model (nova-infant, seed 003: Cha & Bae)

Denoising autoencoder + DNN on MFCC and on log-STFT window features, fused by a concatenate model
(nova_infant.cry; docs/cry-reason.md). Classes: {classes}. Trained on sessions: {sessions}.
What it is worth: {worth}.
{data_note}
"""


def save_cry_model(model: CryReasonModel, out, data_note: str = "") -> Path:
    """Save the model as one saved-model folder (:func:`nova_infant.core.saved.save_model`, kind
    ``cry-reason-model``: ``config.json``, ``model.safetensors``, ``NOTICE.md``, ``README.md``, ``checksums``,
    replaced atomically). ``data_note`` names the training data and its licence (e.g. Donate-a-cry, ODbL).

    Parameters
    ----------
    model : CryReasonModel
    out : str or path
        Folder to write (replaced atomically; an existing folder only if this package made it).
    data_note : str

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    PathError
        If ``out`` exists and was not made by this package (from :func:`nova_infant.core.atomic.atomic_dir`).
    SavedModelError
        If a tensor cannot be written.
    """
    arrays = {}
    for k in model.config["kinds"]:
        arrays.update({f"{k}.scaler.{n}": v for n, v in model.scalers[k].items()})
        arrays.update({f"{k}.net.{n}": v.detach().numpy() for n, v in model.nets[k].state_dict().items()})
    if model.uses_face:
        arrays.update({f"face.net.{n}": v.detach().numpy() for n, v in model.nets["face"].state_dict().items()})
    arrays.update({f"fusion.{n}": v.detach().numpy() for n, v in model.fusion.state_dict().items()})
    evaluation = model.config.get("evaluation") or {}
    worth = evaluation.get("line") or evaluation.get("skipped") or "not cross-validated"
    notice = NOTICE.format(classes=", ".join(model.classes), sessions=", ".join(model.config.get("sessions", [])),
                           worth=worth, data_note=data_note)
    save_model(out, MODEL_KIND, model.config, {n: np.ascontiguousarray(v) for n, v in arrays.items()},
               readme=notice, files={"NOTICE.md": notice})
    return Path(out)


def load_cry_model(path) -> CryReasonModel:
    """Load a folder written by :func:`save_cry_model`.

    Parameters
    ----------
    path : str or path

    Returns
    -------
    CryReasonModel
        Nets in eval mode on the CPU.

    Raises
    ------
    SavedModelError
        If the folder, its config or weights are missing, damaged (checksums) or of another kind
        (:func:`nova_infant.core.saved.load_model`).
    """
    import torch

    config, arrays = load_model(path, MODEL_KIND)
    classes, scalers, nets = config["classes"], {}, {}
    for k in config["kinds"]:
        scalers[k] = {n.split(".")[-1]: v for n, v in arrays.items() if n.startswith(f"{k}.scaler.")}
        nets[k] = M.build_audio_net(config["dims"][k], len(classes))
        nets[k].load_state_dict({n[len(f"{k}.net."):]: torch.as_tensor(v) for n, v in arrays.items()
                                 if n.startswith(f"{k}.net.")})
        nets[k].eval()
    if config.get("face"):
        nets["face"] = M.build_face_head(config["face"]["channels"], len(classes))
        nets["face"].load_state_dict({n[len("face.net."):]: torch.as_tensor(v) for n, v in arrays.items()
                                      if n.startswith("face.net.")})
        nets["face"].eval()
    fusion = M.build_fusion(len(config["kinds"]) + bool(config.get("face")), len(classes))
    fusion.load_state_dict({n[len("fusion."):]: torch.as_tensor(v) for n, v in arrays.items()
                            if n.startswith("fusion.")})
    fusion.eval()
    return CryReasonModel(classes, scalers, nets, fusion, config)


def predict_reasons(model: CryReasonModel, audio_path, crying: list[tuple[float, float]],
                    smooth_windows: int = 0, min_segment_ms: float = F.MIN_WINDOW_MS, video_path=None,
                    face_backbone=None) -> tuple[np.ndarray, list[str]]:
    """Reason segments of one session (see module docstring).

    Parameters
    ----------
    model : CryReasonModel
    audio_path : str or path
        Session audio (any rate).
    crying : [(from_ms, to_ms)] crying segments (e.g. the audio tagger's ``baby_crying`` track)
    smooth_windows : deque length of the rolling prediction average, in windows (0 = whole segment)
    min_segment_ms : crying segments shorter than this are skipped (noted)
    video_path, face_backbone : the session video and the loaded frozen ResNet, needed when ``model.uses_face``

    Returns
    -------
    segments : discover-utils ``LabelDType.DISCRETE`` array (``from``/``to`` ms, ``id`` class index, ``conf``)
    notes : one line each (no crying segment, segments skipped)

    Raises
    ------
    AudioDecodeError, VideoDecodeError
        If the audio (video) cannot be read.
    OptionError
        If the model has a face sub-model and no video / backbone is given.
    """
    from discover_utils.utils.type_definitions import LabelDType

    if model.uses_face and (video_path is None or face_backbone is None):
        raise OptionError("this cry-reason model was trained with the face video: give the session video (input "
                          "video)")
    notes: list[str] = []
    rows = []
    if not crying:
        notes.append("no crying segment in the crying track: empty cry-reason track")
        return np.zeros(0, dtype=LabelDType.DISCRETE.value), notes
    signal = F.read_signal(str(audio_path))
    end_of_audio = len(signal) * 1000.0 / F.SAMPLE_RATE
    skipped = 0
    for start, end in sorted(crying):
        end = min(end, end_of_audio)
        if end - start < max(min_segment_ms, F.MIN_WINDOW_MS):
            skipped += 1
            continue
        feats = {}
        for k in model.config["kinds"]:
            feats[k], starts = F.window_features(signal, k, start, end)
        face = face_features(video_path, _middles(starts, end), face_backbone) if model.uses_face else None
        smooth = M.rolling_average(model.window_proba(feats, face), smooth_windows)
        labels = smooth.argmax(1)
        # window i speaks for [its start, next start); the last one for the rest of the segment
        bounds = list(starts) + [end]
        bounds[0] = start
        i = 0
        while i < len(labels):
            j = i
            while j + 1 < len(labels) and labels[j + 1] == labels[i]:
                j += 1
            rows.append((bounds[i], bounds[j + 1], int(labels[i]), float(smooth[i:j + 1, labels[i]].mean())))
            i = j + 1
    if skipped:
        notes.append(f"{skipped} crying segment(s) shorter than {max(min_segment_ms, F.MIN_WINDOW_MS):.0f} ms "
                     f"(or outside the audio) left unlabelled")
    if not rows and not notes:
        notes.append("no crying segment long enough: empty cry-reason track")
    out = np.zeros(len(rows), dtype=LabelDType.DISCRETE.value)
    for n, (a, b, c, p) in enumerate(rows):
        out[n] = (a, b, c, p)
    return out, notes
