"""Fitting and windowed inference of the ICEP-R models (PyTorch).

Protocol (ICMI'24 ICEP-R paper, section 4.3, with the leaks of its reference code, github.com/Daksitha/
SCHWAN-ICEP-R-Automation @ 4a2f397, fixed; docs/icep.md):
windows of ``window`` frames every ``stride`` frames (the last window is aligned to the session end so every frame
is covered); class-weighted cross-entropy with masked frames (-1) ignored; the normaliser (per-feature mean/scale)
and the class weights are fitted on the training sessions given to :func:`fit` only; early stopping on the loss of
separate validation sessions, keeping a copy of the best epoch's weights; seeds fixed.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from nova_infant.core.backbones import pick_device
from nova_infant.core.errors import StreamError
from nova_infant.core.prefetch import prefetched
from nova_infant.icep.calibration import expected_calibration_error, fit_temperature, scale_probs
from nova_infant.core.standardiser import Standardiser
from nova_infant.icep.dataset import MASK, SessionData
from nova_infant.icep.models import build_model

log = logging.getLogger("nova_infant.icep")


class SessionTooShortError(StreamError):
    """A session has fewer frames than one model window."""


@dataclass
class TrainConfig:
    """Hyper-parameters of an ICEP-R model. Defaults follow the paper's bi-LSTM (ICMI'24 ICEP-R paper, section 4.3:
    window 50, stride 25, 2 layers, hidden 128, dropout 0.25, early stopping patience 5).

    Attributes
    ----------
    model : str
        ``"bilstm"`` or ``"mlp"`` (per-frame, ``mlp_hidden`` layers).
    window, stride : int
        Window length and hop in frames.
    hidden, layers : int
        bi-LSTM width and depth.
    dropout : float
    mlp_hidden : tuple of int
    optimizer : str
        ``"adam"`` (default here: converges in far fewer epochs on CPU) or ``"sgd"`` (paper: lr 1e-3, momentum 0.9).
    lr, weight_decay : float
    batch_size, max_epochs, patience : int
        Windows per batch; epoch cap; epochs without a better validation loss before stopping.
    seed : int
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    normalise : str
        ``"session"`` (default; each session standardised with its own per-feature mean/scale, no labels used, the
        same at prediction time, then the fold-level normaliser) or ``"fold"`` (fold-level normaliser only); the
        default was chosen by nested CV (docs/icep.md, "Normalisation").
    """

    model: str = "bilstm"
    window: int = 50
    stride: int = 25
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.25
    mlp_hidden: tuple = (512, 256, 128)
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    max_epochs: int = 100
    patience: int = 5
    seed: int = 0
    device: str = "auto"
    normalise: str = "session"

    def to_dict(self) -> dict:
        """The config as a JSON-ready dict (``mlp_hidden`` as a list); :meth:`replace` reads it back."""
        doc = asdict(self)
        doc["mlp_hidden"] = list(self.mlp_hidden)
        return doc

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes`` applied (field name -> value; ``mlp_hidden`` may be a list)."""
        doc = self.to_dict()
        doc.update(changes)
        doc["mlp_hidden"] = tuple(doc["mlp_hidden"])
        return TrainConfig(**doc)


class Normaliser(Standardiser):
    """The ICEP-R trainer's standardiser: :class:`nova_infant.core.standardiser.Standardiser` fitted over every
    frame of training sessions. ``mean``/``scale``: float32 (dim,)."""

    @classmethod
    def fit(cls, sessions: list[SessionData], chunk: int = 4096) -> "Normaliser":
        """Streamed fit over every frame of ``sessions`` (float64 sums; data read in chunks, never all at once)."""
        blocks = (s.features(start, min(start + chunk, s.n_frames)) for s in sessions
                  for start in range(0, s.n_frames, chunk))
        return cls.from_blocks(blocks, dim=sessions[0].dim)


class StandardisedSession:
    """A session read through its own per-feature standardisation ``(x - mean_s) / scale_s``.

    Statistics are streamed once over every frame of the session (features only, no labels: unsupervised, so the same
    is done for a session at prediction time) and cached on the session. Everything else (``name``, ``labels``,
    ``n_frames``, ``step_ms``, ``dim``, ``streams``, ``masked``) is the wrapped session's.

    Parameters
    ----------
    session : SessionData
    """

    def __init__(self, session: SessionData):
        self.base = session
        if session._norm is None:
            own = Normaliser.fit([session])
            session._norm = (own.mean, own.scale)
        self.mean, self.scale = session._norm

    def __getattr__(self, name):
        return getattr(self.base, name)

    def features(self, start: int, stop: int) -> np.ndarray:
        """Standardised fused features of frames ``[start, stop)``: float32 (stop - start, dim)."""
        return (self.base.features(start, stop) - self.mean) / self.scale


NORMALISE = ("session", "fold")


def normalised(sessions: list, mode: str) -> list:
    """``sessions`` as the model reads them: wrapped in :class:`StandardisedSession` for ``mode="session"``.

    Raises
    ------
    ValueError
        For a mode other than "session" or "fold".
    """
    if mode not in NORMALISE:
        raise ValueError(f"normalise must be 'session' or 'fold', got {mode!r}")
    if mode == "fold":
        return list(sessions)
    return [s if isinstance(s, StandardisedSession) else StandardisedSession(s) for s in sessions]


def class_weights(sessions: list[SessionData], n_classes: int) -> np.ndarray:
    """Balanced class weights from the unmasked labels of the (training) sessions: ``n / (n_classes_present * count_c)``,
    scikit-learn's ``compute_class_weight('balanced')`` rule.

    Parameters
    ----------
    sessions : list of SessionData
    n_classes : int

    Returns
    -------
    ndarray, float32, shape (n_classes,)
        0 for a class absent from these sessions.
    """
    counts = np.zeros(n_classes, np.float64)
    for s in sessions:
        lab = s.labels[s.labels >= 0]
        counts += np.bincount(lab, minlength=n_classes)[:n_classes]
    present = counts > 0
    weights = np.zeros(n_classes, np.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


def window_starts(n_frames: int, window: int, stride: int, session: str = "") -> np.ndarray:
    """Start frames of windows of ``window`` frames every ``stride`` frames; the last window ends at ``n_frames``.

    Raises
    ------
    SessionTooShortError
        If ``n_frames < window``.
    """
    if n_frames < window:
        raise SessionTooShortError(f"session {session}: {n_frames} frames, shorter than one window of {window} frames")
    starts = list(range(0, n_frames - window + 1, stride))
    if starts[-1] != n_frames - window:
        starts.append(n_frames - window)
    return np.asarray(starts, np.int64)


def _batches(sessions, items, window, batch_size, with_labels=True, prefetch=2):
    """Yield (x float32 (B,W,D), y int64 (B,W) or None, items) read by a background thread."""

    def read():
        for i in range(0, len(items), batch_size):
            chunk = items[i:i + batch_size]
            x = np.stack([sessions[s].features(t, t + window) for s, t in chunk])
            y = np.stack([sessions[s].labels[t:t + window] for s, t in chunk]) if with_labels else None
            yield x, y, chunk

    yield from prefetched(read, prefetch)


def _items(sessions, window, stride, labelled_only=True):
    items = []
    for i, s in enumerate(sessions):
        for t in window_starts(s.n_frames, window, stride, s.name):
            if not labelled_only or (s.labels[t:t + window] >= 0).any():
                items.append((i, int(t)))
    return items


@dataclass
class FitResult:
    """A fitted model plus everything fitted with it on the training sessions (saved together in a bundle).

    Attributes
    ----------
    model : torch.nn.Module
    arch : dict
        Architecture arguments that rebuild ``model``.
    normaliser : Normaliser
    class_weights : ndarray, float32, shape (n_classes,)
    config : TrainConfig
    best_epoch : int
        Epoch of the lowest validation loss (the weights kept).
    history : list of dict
        Per epoch: training and validation loss.
    temperature : float
        Temperature of the class probabilities (:mod:`nova_infant.icep.calibration`), fitted on the validation
        sessions' labelled frames after the best epoch was chosen; 1.0 when there was no validation session.
    calibration : dict
        How ``temperature`` was fitted: ``frames``, ``ece_before``, ``ece_after`` on those frames (in-sample for
        the temperature; the cross-validation report holds the held-out figures).
    """

    model: nn.Module
    arch: dict
    normaliser: Normaliser
    class_weights: np.ndarray
    config: TrainConfig
    best_epoch: int = 0
    history: list = field(default_factory=list)
    temperature: float = 1.0
    calibration: dict = field(default_factory=dict)


def _device(name):
    return pick_device(name)


def fit(train: list[SessionData], val: list[SessionData], n_classes: int, config: TrainConfig,
        progress: bool = False, max_batches: int | None = None, init_state: dict | None = None,
        normaliser: Normaliser | None = None) -> FitResult:
    """Train one model on ``train`` with early stopping on ``val`` (may be empty: then ``max_epochs`` are run).

    Parameters
    ----------
    train, val : sessions with ``labels`` (int64, -1 masked) on their own frame grids; same fused ``dim``
    n_classes : int -- number of target classes (label map)
    max_batches : int, optional -- stop each epoch after this many batches (benchmarks)
    init_state : dict, optional -- start from these weights (fine-tuning a bundle trained on other sessions); a
        tensor whose shape differs from the new model's (another number of classes) is left at its initial value
    normaliser : Normaliser, optional -- keep this fold-level normaliser (the base bundle's) instead of fitting one

    Returns
    -------
    FitResult with the weights of the epoch of lowest validation loss.

    Raises
    ------
    SessionTooShortError
        If a session is shorter than one window.
    ValueError
        If the training sessions hold no labelled frame.
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = _device(config.device)
    train, val = normalised(train, config.normalise), normalised(val, config.normalise)
    normaliser = normaliser if normaliser is not None else Normaliser.fit(train)
    weights = class_weights(train, n_classes)
    if weights.sum() == 0:
        raise ValueError("the training sessions hold no labelled frame")
    arch = {"model": config.model, "in_dim": train[0].dim, "n_classes": n_classes, "hidden": config.hidden,
            "layers": config.layers, "dropout": config.dropout, "mlp_hidden": list(config.mlp_hidden)}
    model = build_model(arch)
    if init_state is not None:
        own = model.state_dict()
        model.load_state_dict({k: v if k in init_state and init_state[k].shape != v.shape else init_state.get(k, v)
                               for k, v in own.items()})
    model = model.to(device)
    mean = torch.from_numpy(normaliser.mean).to(device)
    scale = torch.from_numpy(normaliser.scale).to(device)
    loss_fn = nn.CrossEntropyLoss(weight=torch.from_numpy(weights).to(device), ignore_index=MASK, reduction="sum")
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    train_items = _items(train, config.window, config.stride)
    val_items = _items(val, config.window, config.window) if val else []
    best, best_state, best_epoch, bad_epochs, history = np.inf, None, 0, 0, []
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        order = [train_items[i] for i in rng.permutation(len(train_items))]
        if max_batches is not None:
            order = order[:max_batches * config.batch_size]
        total, weight_sum, tic = 0.0, 0.0, time.perf_counter()
        for x, y, _ in _batches(train, order, config.window, config.batch_size):
            xt = (torch.from_numpy(x).to(device) - mean) / scale
            yt = torch.from_numpy(y).to(device)
            logits = model(xt)
            loss_sum = loss_fn(logits.reshape(-1, n_classes), yt.reshape(-1))
            denom = _weight_sum(weights, y)
            opt.zero_grad()
            (loss_sum / max(denom, 1e-8)).backward()
            opt.step()
            total += float(loss_sum.detach())
            weight_sum += denom
        train_loss = total / max(weight_sum, 1e-8)
        train_seconds = time.perf_counter() - tic
        val_loss = _loss(model, val, val_items, config, loss_fn, weights, mean, scale, device) if val_items else train_loss
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                        "train_frames": len(order) * config.window, "train_seconds": train_seconds})
        if progress:
            log.info("epoch %d: train loss %.4f, validation loss %.4f", epoch, train_loss, val_loss)
        if val_loss < best - 1e-6:
            best, best_epoch, bad_epochs = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
            if val_items and bad_epochs >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    fitted = FitResult(model, arch, normaliser, weights, config, best_epoch, history)
    calibrate(fitted, val)
    return fitted


def calibrate(fitted: FitResult, held_out: list) -> FitResult:
    """Fit ``fitted.temperature`` on the labelled frames of ``held_out`` sessions (frames the weights were not
    fitted on: the early-stopping validation groups, or a held-out coded block; :mod:`nova_infant.icep.calibration`).

    Parameters
    ----------
    fitted : FitResult
        Changed in place: ``temperature`` and ``calibration``.
    held_out : list of SessionData
        Labels int64 (n_frames,), -1 masked; sessions shorter than one window are left out.

    Returns
    -------
    FitResult
        ``fitted``; temperature 1.0 when no held-out frame is labelled.
    """
    probs, labels = [], []
    for s in held_out:
        if s.labels is None or not (s.labels >= 0).any() or s.n_frames < fitted.config.window:
            continue
        probs.append(predict_fitted(fitted, s, calibrated=False))
        labels.append(s.labels)
    if not probs:
        fitted.temperature, fitted.calibration = 1.0, {"frames": 0, "note": "no held-out labelled frame: not scaled"}
        return fitted
    p, y = np.concatenate(probs), np.concatenate(labels)
    fitted.temperature = fit_temperature(p, y)
    fitted.calibration = {"frames": int((y >= 0).sum()), "ece_before": expected_calibration_error(p, y),
                          "ece_after": expected_calibration_error(scale_probs(p, fitted.temperature), y),
                          "sessions": [s.name for s in held_out]}
    return fitted


def _weight_sum(weights, y):
    y = y[y >= 0]
    return float(weights[y].sum()) if len(y) else 0.0


@torch.no_grad()
def _loss(model, sessions, items, config, loss_fn, weights, mean, scale, device):
    model.eval()
    total, weight_sum = 0.0, 0.0
    for x, y, _ in _batches(sessions, items, config.window, config.batch_size):
        logits = model((torch.from_numpy(x).to(device) - mean) / scale)
        total += float(loss_fn(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).to(device).reshape(-1)))
        weight_sum += _weight_sum(weights, y)
    return total / max(weight_sum, 1e-8)


@torch.no_grad()
def predict_proba(model: nn.Module, normaliser: Normaliser, session: SessionData, window: int, stride: int,
                  batch_size: int = 64, device=None, normalise: str = "fold") -> np.ndarray:
    """Class probabilities per frame; frames covered by several windows get the mean of their softmax outputs.

    ``normalise`` must be the model's training mode (``TrainConfig.normalise``): "session" standardises the
    session with its own statistics first (:class:`StandardisedSession`).

    Returns
    -------
    float32 (n_frames, n_classes); every frame is covered at least once.

    Raises
    ------
    SessionTooShortError
        If the session is shorter than one window.
    """
    device = device or next(model.parameters()).device
    model.eval()
    mean = torch.from_numpy(normaliser.mean).to(device)
    scale = torch.from_numpy(normaliser.scale).to(device)
    session = normalised([session], normalise)[0]
    stride = min(stride, window)  # a stride longer than the window would leave frames without a prediction
    items = [(0, int(t)) for t in window_starts(session.n_frames, window, stride, session.name)]
    sums, counts = None, np.zeros(session.n_frames, np.float32)
    for x, _, chunk in _batches([session], items, window, batch_size, with_labels=False):
        prob = torch.softmax(model((torch.from_numpy(x).to(device) - mean) / scale), dim=-1).float().cpu().numpy()
        if sums is None:
            sums = np.zeros((session.n_frames, prob.shape[-1]), np.float64)
        for (_, t), p in zip(chunk, prob):
            sums[t:t + window] += p
            counts[t:t + window] += 1
    return (sums / counts[:, None]).astype(np.float32)


def predict_fitted(fitted: FitResult, session: SessionData, batch_size: int | None = None,
                   calibrated: bool = True) -> np.ndarray:
    """:func:`predict_proba` with the fitted model's own window, stride and normalisation (``fitted.config``), scaled
    by the fitted temperature unless ``calibrated`` is False (scaling never changes the arg-max class).

    Parameters
    ----------
    fitted : FitResult
    session : SessionData
    batch_size : int, optional
        Windows per forward pass (default the training batch size).

    Returns
    -------
    ndarray, float32, shape (n_frames, n_classes)

    Raises
    ------
    SessionTooShortError
        If the session is shorter than one window.
    """
    cfg = fitted.config
    probs = predict_proba(fitted.model, fitted.normaliser, session, cfg.window, cfg.stride,
                          batch_size or cfg.batch_size, normalise=cfg.normalise)
    return scale_probs(probs, fitted.temperature) if calibrated else probs
