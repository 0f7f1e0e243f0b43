"""Trainable heads over frozen embeddings, in VIBA-Net's "VGGishNet" shape (Ong et al., WACV-W'25, §3.3 and Fig. 4).

Input (batch, T, dim) -> temporal average pooling over T -> [Linear -> BatchNorm1d -> LeakyReLU -> Dropout] per
hidden layer (default 64, 32, the paper's best configuration, §4.2) -> Linear -> sigmoid (multi-label audio events)
or softmax (one emotion class per face). Inputs are standardised with a mean/scale fitted on the training set only
and saved with the head. A head is a saved-model folder (:mod:`nova_infant.core.saved`, kind ``tagger-head``):
``config.json`` + ``model.safetensors`` + ``checksums`` + ``README.md``, readable without our code.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nova_infant.core.errors import OptionError, SavedModelError
from nova_infant.core.saved import load_model, save_model
from nova_infant.core.standardiser import Standardiser
from nova_infant.core.validation import check_class_targets


@dataclass
class HeadConfig:
    """What a head bundle records: ``kind`` ("audio-events"|"emotion"), ``classes`` (output names, in order),
    ``multilabel`` (sigmoid vs softmax), ``input_dim``, ``hidden``, ``dropout``, ``context`` (windows each side the
    temporal pooling averages), ``embedding`` (which embedding it was fit on, e.g. ``yamnet-logits``),
    ``mean``/``scale`` (standardiser, length ``input_dim``), ``metrics`` (training summary), ``thresholds``
    (``{class: probability}`` fitted on training data only; empty = the caller's threshold), ``hold``
    (``{class: [low threshold, max ms]}``: how far an event may run on past its last row at the threshold while the
    score stays at or above the low threshold, :func:`nova_infant.taggers.audio_classes.active_frames`; empty =
    plain thresholding)."""

    kind: str
    classes: list
    multilabel: bool
    input_dim: int
    embedding: str
    hidden: list = field(default_factory=lambda: [64, 32])
    dropout: float = 0.1
    context: int = 1
    mean: list = field(default_factory=list)
    scale: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    thresholds: dict = field(default_factory=dict)
    hold: dict = field(default_factory=dict)


class _one_thread:
    """Run a tiny head on one torch thread: on small CPUs, intra-op threads cost ~15x more than they save here."""

    def __enter__(self):
        import torch

        self.n = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.n)


def build_module(cfg: HeadConfig):
    """The torch module of a head: input (B, T, dim) float32 -> logits (B, n_classes)."""
    import torch
    from torch import nn

    class PooledMLP(nn.Module):
        def __init__(self):
            super().__init__()
            layers, width = [], cfg.input_dim
            for size in cfg.hidden:
                layers += [nn.Linear(width, size), nn.BatchNorm1d(size), nn.LeakyReLU(0.01), nn.Dropout(cfg.dropout)]
                width = size
            layers.append(nn.Linear(width, len(cfg.classes)))
            self.net = nn.Sequential(*layers)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            return self.net(x.mean(dim=1))  # temporal average pooling

    return PooledMLP()


class Head:
    """A fitted head: ``predict_proba(x)`` with x of shape (n, T, dim) or (n, dim) -> (n, n_classes) float32.

    Build with :func:`fit_head` or :meth:`load`; save with :meth:`save`.
    """

    def __init__(self, cfg: HeadConfig, module):
        self.cfg, self.module = cfg, module.eval()

    @property
    def classes(self) -> list[str]:
        """Class names of the outputs, in column order."""
        return list(self.cfg.classes)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of embeddings: standardised with the training mean/scale, then the module
        (sigmoid per class for a multi-label head, softmax otherwise).

        Parameters
        ----------
        x : ndarray, float32, shape (n, T, dim) or (n, dim)
            Embeddings (``T`` frames averaged by the module); ``dim`` must be the head's ``input_dim``.

        Returns
        -------
        ndarray, float32, shape (n, n_classes)

        Raises
        ------
        OptionError
            If ``dim`` differs from the head's input width (trained on another embedding).
        """
        import torch

        x = np.asarray(x, np.float32)
        if x.ndim == 2:
            x = x[:, None, :]
        if x.shape[-1] != self.cfg.input_dim:
            raise OptionError(f"head expects {self.cfg.input_dim}-d {self.cfg.embedding} embeddings, got "
                              f"{x.shape[-1]}-d (trained on another embedding?)")
        x = Standardiser(np.asarray(self.cfg.mean, np.float32), np.asarray(self.cfg.scale, np.float32)).apply(x)
        with torch.no_grad(), _one_thread():
            logits = self.module(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
            prob = torch.sigmoid(logits) if self.cfg.multilabel else torch.softmax(logits, dim=1)
        return prob.numpy().astype(np.float32)

    def save(self, out_dir: str | os.PathLike, readme: str = "", files: dict | None = None) -> Path:
        """Save as a saved-model folder of kind ``tagger-head`` (:func:`nova_infant.core.saved.save_model`):
        ``config.json`` (the :class:`HeadConfig`), ``model.safetensors``, ``checksums``, ``README.md``, atomically.

        Parameters
        ----------
        out_dir : path
        readme : str
            How the head was trained (data, method), for ``README.md``; a default line is written otherwise.
        files : dict of name -> str, optional
            Extra files (e.g. ``NOTICE.md`` with the training data's licence).

        Raises
        ------
        PathError
            If ``out_dir`` exists and is not a folder this package created (it is never replaced).
        OutputError
            If the folder cannot be written; a previous head there is kept.
        """
        cfg = self.cfg
        text = readme or (f"A {'multi-label' if cfg.multilabel else 'single-label'} head of the {cfg.kind} tagger "
                          f"over {cfg.input_dim}-d {cfg.embedding} embeddings, classes {', '.join(map(str, cfg.classes))}; "
                          f"hidden layers {cfg.hidden}, VIBA-Net's pooled MLP (nova_infant.taggers.heads.fit_head), "
                          f"standardiser fitted on the training set only. Training: {cfg.metrics or 'not recorded'}.")
        return save_model(out_dir, "tagger-head", asdict(cfg), self.module.state_dict(), readme=text, files=files)

    @classmethod
    def load(cls, path: str | os.PathLike, kind: str | None = None) -> "Head":
        """Load a head folder (:func:`nova_infant.core.saved.load_model`, kind ``tagger-head``).

        Parameters
        ----------
        path : path
        kind : str, optional
            The tagger it must have been trained for (``audio-events`` | ``emotion``).

        Raises
        ------
        SavedModelError
            If the folder, its ``config.json`` or ``model.safetensors`` is missing, unreadable or differs from the
            SHA-256 recorded at save time, the standardiser is not finite or of the wrong length, the class list
            does not fit the weights, or the head was trained for another tagger than ``kind``.
        """
        import numpy as np

        path = Path(path)
        config, state = load_model(path, kind="tagger-head", framework="pt")
        try:
            cfg = HeadConfig(**config)
            module = build_module(cfg)
        except Exception as exc:
            raise SavedModelError(f"{path / 'config.json'}: unreadable tagger head config "
                                  f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
        for name in ("mean", "scale"):
            values = np.asarray(getattr(cfg, name), np.float64)
            if values.ndim != 1 or len(values) != cfg.input_dim or not np.isfinite(values).all():
                raise SavedModelError(f"{path / 'config.json'}: {name} must hold {cfg.input_dim} finite "
                                      f"numbers (got {values.size})")
        if (np.asarray(cfg.scale, np.float64) <= 0).any():
            raise SavedModelError(f"{path / 'config.json'}: scale must be > 0")
        if len(cfg.classes) < 1 or len(set(map(str, cfg.classes))) != len(cfg.classes):
            raise SavedModelError(f"{path / 'config.json'}: classes must be distinct names (got {cfg.classes})")
        try:
            module.load_state_dict(state)
        except Exception as exc:
            raise SavedModelError(f"{path / 'model.safetensors'}: weights do not fit config.json "
                                  f"({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})") from None
        if kind and cfg.kind != kind:
            raise SavedModelError(f"{path}: this head was trained for the {cfg.kind} tagger, not {kind}")
        return cls(cfg, module)


def fit_head(x: np.ndarray, y: np.ndarray, classes: list[str], *, kind: str, embedding: str, multilabel: bool,
             context: int = 1, hidden=(64, 32), dropout: float = 0.1, epochs: int = 300, lr: float = 1e-3,
             weight_decay: float = 1e-3, seed: int = 0) -> Head:
    """Fit a head on embeddings (full-batch AdamW; BCE for multi-label, class-weighted CE otherwise).

    Parameters
    ----------
    x : float array of shape (n, T, dim) or (n, dim)
        Embeddings (T = 2*context+1 windows for audio events, 1 face crop for emotion).
    y : array of shape (n, n_classes) in {0, 1} (multilabel) or int ids of shape (n,) in 0..n_classes-1
    classes : output names, in column / id order.

    Method: VIBA-Net §4.2 (2 hidden layers 64/32, LeakyReLU, weight decay 1e-3); the learning rate is raised from
    1e-4 to 1e-3 because we fit full-batch on small lab sets.

    Raises
    ------
    OptionError
        If there are fewer than 2 samples, shapes disagree, labels fall outside ``classes``, only one class
        occurs, or (multi-label) every class is present in every sample or in none
        (:func:`nova_infant.core.validation.check_class_targets`). A multi-label class that alone is constant is
        a warning (stderr and ``metrics["warnings"]`` of the saved head's config).
    """
    import torch

    x = np.asarray(x, np.float32)
    if x.ndim == 2:
        x = x[:, None, :]
    y = np.asarray(y)
    if len(x) < 2 or len(x) != len(y):
        raise OptionError(f"head training needs at least 2 labelled samples with one label row each "
                          f"(got {len(x)} samples, {len(y)} labels)")
    if multilabel and (y.ndim != 2 or y.shape[1] != len(classes)):
        raise OptionError(f"multi-label targets must have shape (n, {len(classes)}), got {y.shape}")
    if not multilabel and (y.min() < 0 or y.max() >= len(classes)):
        raise OptionError(f"class ids must lie in 0..{len(classes) - 1}")
    warnings = check_class_targets(y, list(classes), f"{kind} head training")
    for text in warnings:
        logging.getLogger("nova_infant").warning("%s", text)
    standardiser = Standardiser.from_array(x.reshape(-1, x.shape[-1]), min_scale=1e-6)  # training set only
    mean, scale = standardiser.mean, standardiser.scale
    cfg = HeadConfig(kind=kind, classes=list(classes), multilabel=multilabel, input_dim=int(x.shape[-1]),
                     embedding=embedding, hidden=list(hidden), dropout=float(dropout), context=int(context),
                     mean=mean.tolist(), scale=scale.tolist())
    torch.manual_seed(seed)
    module = build_module(cfg)
    xt = torch.from_numpy(standardiser.apply(x)).float()
    if multilabel:
        yt = torch.from_numpy(y.astype(np.float32))
        pos = yt.mean(0).clamp(1e-3, 1 - 1e-3)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=((1 - pos) / pos).clamp(max=20.0))
    else:
        yt = torch.from_numpy(y.astype(np.int64))
        counts = np.bincount(y.astype(np.int64), minlength=len(classes)).astype(np.float32)
        weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(classes), 0.0)
        loss_fn = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(weights.astype(np.float32)))
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    module.train()
    with _one_thread():
        for _ in range(epochs):
            opt.zero_grad()
            loss = loss_fn(module(xt), yt)
            loss.backward()
            opt.step()
    cfg.metrics = {"train_loss": float(loss.detach()), "n_samples": int(len(x)), "epochs": int(epochs),
                   **({"warnings": warnings} if warnings else {})}
    return Head(cfg, module)
