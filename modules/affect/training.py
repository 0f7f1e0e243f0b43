"""Training, sliding-window prediction and subject-grouped cross-validation of :class:`AffectModel`.

Losses per task (seed 002 §3; the authors' code uses CCC loss for VA): VA ``1 - mean(CCC_V, CCC_A)`` over the
labelled face frames of a batch, or MSE; expressions: cross-entropy weighted by inverse class frequency of the
training fold; AUs: binary cross-entropy, positives weighted by each AU's negative/positive ratio in the training
fold (capped at 10; the authors' code uses a focal loss for the same imbalance). Frames without a face or without a
label are masked out of every loss and every score. Optimiser AdamW (lr 2e-4, weight decay 2e-5: the authors'
code). Memory is bounded: crops stay in uint8 arrays (memory-mapped files for real sessions, see
:mod:`nova_infant.affect.sessions`) and only one batch of ``batch_size`` x T crops is turned into float tensors at a
time.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from nova_infant.affect.model import EXPR_CLASSES, AffectConfig, AffectModel, normalise_crops
from nova_infant.core.backbones import training_device
from nova_infant.core.errors import OptionError
from nova_infant.core.validation import check_class_targets, check_continuous_targets

log = logging.getLogger("nova_infant")


@dataclass
class AffectSession:
    """One coded session on its frame grid.

    Attributes: ``name``, ``subject`` (group id for CV: the filmed person/dyad), ``crops`` (n, S, S, 3) uint8
    (array or memmap), ``has_face`` (n,) bool, ``va`` (n, 2) float32 NaN = unlabelled, ``expr`` (n,) int64 -1 =
    unlabelled, ``au`` (n, n_au) float32 0/1 NaN = unlabelled (None = task not coded), ``step_ms`` grid step (ms).
    """
    name: str
    subject: str
    crops: np.ndarray
    has_face: np.ndarray
    va: np.ndarray | None = None
    expr: np.ndarray | None = None
    au: np.ndarray | None = None
    step_ms: float = 40.0

    @property
    def n_frames(self) -> int:
        return len(self.has_face)


def check_targets(sessions: list, tasks) -> None:
    """The pooled targets of every training session can teach each asked task: valence and arousal vary, and at least
    two expression classes occur (:mod:`nova_infant.core.validation`; the trainers' common checks).

    Raises
    ------
    OptionError
        ``affect training on sessions ...: every coded valence value is 0`` or ``only class 'x' occurs``.
    """
    where = "affect training on sessions " + ", ".join(s.name for s in sessions[:5]) + (" ..." if len(sessions) > 5 else "")
    if "va" in tasks:
        coded = [s.va for s in sessions if s.va is not None]
        if coded:
            for j, dim in enumerate(("valence", "arousal")):
                check_continuous_targets(np.concatenate([v[:, j] for v in coded]), f"{where} ({dim})")
    if "expr" in tasks:
        coded = [s.expr for s in sessions if s.expr is not None]
        if coded:
            check_class_targets(np.concatenate(coded), EXPR_CLASSES, f"{where} (expression)")


@dataclass
class TrainOptions:
    """Training settings. ``epochs``; ``batch_size`` sequences; ``stride`` frames between training windows (0 =
    T/2); ``lr``/``weight_decay`` (AdamW); ``va_loss`` "ccc" | "mse"; ``backbone`` "last" (paper: all but the last
    used stage frozen) | "frozen" | "all"; ``device`` "auto"|"cpu"|"cuda"; ``precision`` "auto"|"fp32"|"bf16"
    (torch.autocast bfloat16); ``seed``; ``loss_weights`` per task."""
    epochs: int = 10
    batch_size: int = 8
    stride: int = 0
    lr: float = 2e-4
    weight_decay: float = 2e-5
    va_loss: str = "ccc"
    backbone: str = "last"
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    loss_weights: dict = field(default_factory=lambda: {"va": 1.0, "expr": 1.0, "au": 1.0})

    def __post_init__(self):
        if self.va_loss not in ("ccc", "mse"):
            raise OptionError(f"option va_loss: expected ccc or mse, got {self.va_loss!r}")
        if self.backbone not in ("last", "frozen", "all"):
            raise OptionError(f"option backbone: expected last, frozen or all, got {self.backbone!r}")
        if int(self.epochs) < 1 or int(self.batch_size) < 1:
            raise OptionError("options epochs and batch_size must be >= 1")


def window_starts(n_frames: int, seq_len: int, stride: int) -> np.ndarray:
    """Starts of T-frame windows covering 0..n-1 (the last window ends at the last frame; one window when n <= T)."""
    if n_frames <= seq_len:
        return np.zeros(1, np.int64)
    starts = np.arange(0, n_frames - seq_len + 1, max(1, stride))
    if starts[-1] != n_frames - seq_len:
        starts = np.append(starts, n_frames - seq_len)
    return starts.astype(np.int64)


def _window(array, start: int, seq_len: int, fill):
    """Rows start..start+T of ``array``, padded with ``fill`` past its end."""
    part = np.asarray(array[start:start + seq_len])
    if len(part) < seq_len:
        pad = np.full((seq_len - len(part),) + part.shape[1:], fill, dtype=part.dtype)
        part = np.concatenate([part, pad])
    return part


def make_batch(sessions: list, items: list, seq_len: int, n_expr: int, n_au: int) -> dict:
    """Tensors of a batch of windows ``items`` = [(session index, start), ...]: ``x`` (B, T, 3, S, S) float32,
    ``face`` (B, T) bool, ``va`` (B, T, 2) NaN-masked, ``expr`` (B, T) int64 (-1 masked), ``au`` (B, T, n_au)."""
    xs, face, va, ex, au = [], [], [], [], []
    for si, start in items:
        s = sessions[si]
        xs.append(_window(s.crops, start, seq_len, 0))
        f = _window(s.has_face, start, seq_len, False)
        face.append(f)
        va.append(_window(s.va, start, seq_len, np.nan) if s.va is not None
                  else np.full((seq_len, 2), np.nan, np.float32))
        ex.append(_window(s.expr, start, seq_len, -1) if s.expr is not None else np.full(seq_len, -1, np.int64))
        au.append(_window(s.au, start, seq_len, np.nan) if s.au is not None
                  else np.full((seq_len, n_au), np.nan, np.float32))
    face = torch.as_tensor(np.stack(face))
    va_t = torch.as_tensor(np.stack(va).astype(np.float32))
    ex_t = torch.as_tensor(np.stack(ex).astype(np.int64))
    au_t = torch.as_tensor(np.stack(au).astype(np.float32))
    va_t[~face] = float("nan")
    ex_t[~face] = -1
    au_t[~face] = float("nan")
    return {"x": normalise_crops(np.stack(xs)), "face": face, "va": va_t, "expr": ex_t, "au": au_t}


def ccc_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean over columns of the CCC (Lin 1989) between ``pred`` and ``target`` (n, k) on rows where target is
    finite; 0-gradient zero when fewer than 2 rows."""
    losses = []
    for k in range(pred.shape[-1]):
        keep = torch.isfinite(target[:, k])
        if keep.sum() < 2:
            continue
        x, y = pred[keep, k].float(), target[keep, k]
        mx, my = x.mean(), y.mean()
        cov = ((x - mx) * (y - my)).mean()
        ccc = 2 * cov / (x.var(unbiased=False) + y.var(unbiased=False) + (mx - my) ** 2 + 1e-8)
        losses.append(1 - ccc)
    return torch.stack(losses).mean() if losses else pred.sum() * 0


def task_losses(out: dict, batch: dict, tasks, va_loss: str = "ccc", class_weights: torch.Tensor | None = None,
                au_pos_weight: torch.Tensor | None = None) -> dict:
    """Per-task losses on the labelled face frames of a batch (see module docstring); tasks without a labelled
    frame in the batch give no entry. ``au_pos_weight`` (n_au,): BCE weight of positive frames per AU."""
    losses = {}
    if "va" in tasks and "va" in out:
        pred, tgt = out["va"].reshape(-1, 2), batch["va"].reshape(-1, 2)
        if torch.isfinite(tgt).any():
            if va_loss == "ccc":
                losses["va"] = ccc_loss(pred, tgt)
            else:
                keep = torch.isfinite(tgt)
                losses["va"] = F.mse_loss(pred.float()[keep], tgt[keep])
    if "expr" in tasks and "expr" in out:
        logits, tgt = out["expr"].reshape(-1, out["expr"].shape[-1]).float(), batch["expr"].reshape(-1)
        if (tgt >= 0).any():
            losses["expr"] = F.cross_entropy(logits, tgt, weight=class_weights, ignore_index=-1)
    if "au" in tasks and "au" in out:
        logits, tgt = out["au"].reshape(-1, out["au"].shape[-1]).float(), batch["au"].reshape(-1, out["au"].shape[-1])
        keep = torch.isfinite(tgt)
        if keep.any():
            weight = None
            if au_pos_weight is not None:  # positives of AU k weigh pos_weight[k], negatives 1
                weight = torch.where(tgt > 0.5, au_pos_weight.expand_as(tgt), torch.ones_like(tgt))[keep]
            losses["au"] = F.binary_cross_entropy_with_logits(logits[keep], tgt[keep], weight=weight)
    return losses


def expr_class_weights(sessions: list, n_classes: int) -> np.ndarray:
    """Inverse-frequency class weights (mean 1 over the classes seen) from labelled face frames of ``sessions``
    (fitted on the training fold only); unseen classes weigh 0."""
    counts = np.zeros(n_classes)
    for s in sessions:
        if s.expr is not None:
            e = s.expr[s.has_face & (s.expr >= 0)]
            counts += np.bincount(e, minlength=n_classes)[:n_classes]
    w = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    return (w / w[counts > 0].mean()).astype(np.float32) if (counts > 0).any() else np.ones(n_classes, np.float32)


def au_positive_weights(sessions: list, n_au: int, cap: float = 10.0) -> np.ndarray:
    """Per-AU weight of positive frames = negatives / positives among labelled face frames of ``sessions`` (the
    training fold), clipped to [1, ``cap``]: rare AUs are not drowned by their absent frames."""
    pos, neg = np.zeros(n_au), np.zeros(n_au)
    for s in sessions:
        if s.au is not None:
            a = s.au[s.has_face]
            pos += np.nansum(a > 0.5, 0)
            neg += np.nansum(a <= 0.5, 0)
    return np.clip(neg / np.maximum(pos, 1), 1.0, cap).astype(np.float32)


def autocast_context(device: torch.device, precision: str):
    """``torch.autocast(device.type, bfloat16)`` for precision bf16, else a no-op."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def fit(sessions: list, cfg: AffectConfig, options: TrainOptions, backbone_weights: str | None = None,
        progress: bool = True) -> tuple[AffectModel, dict]:
    """Train an :class:`AffectModel` on ``sessions`` (:class:`AffectSession`).

    Returns
    -------
    (model in eval mode on the CPU, info dict: ``class_weights`` list, ``losses`` per epoch, ``device``,
    ``precision``, ``n_windows``, ``trainable`` parameter prefixes)

    Raises
    ------
    OptionError
        If no session has a labelled face frame for the model's tasks.
    """
    from tqdm.auto import tqdm
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    device, precision = training_device(options.device, options.precision)
    model = AffectModel(cfg, backbone_weights=backbone_weights)
    if options.backbone == "all":
        trainable = ["backbone"]
    else:
        trainable = model.freeze_backbone(train_last_stage=options.backbone == "last")
    model.to(device)
    weights = torch.as_tensor(expr_class_weights(sessions, len(cfg.expr_classes)), device=device)
    pos_weight = torch.as_tensor(au_positive_weights(sessions, len(cfg.au_names)), device=device)
    stride = options.stride or max(1, cfg.seq_len // 2)
    items = [(i, int(st)) for i, s in enumerate(sessions) for st in window_starts(s.n_frames, cfg.seq_len, stride)
             if s.has_face.any()]
    if not items:
        raise OptionError("no session with a face frame to train on")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
    history = []
    bar = tqdm(range(options.epochs), desc="affect training", disable=not progress, unit="epoch")
    for _ in bar:
        model.train()
        order = rng.permutation(len(items))
        total, n = 0.0, 0
        for k in range(0, len(order), options.batch_size):
            batch = make_batch(sessions, [items[j] for j in order[k:k + options.batch_size]], cfg.seq_len,
                               len(cfg.expr_classes), len(cfg.au_names))
            with autocast_context(device, precision):
                out = model(batch["x"].to(device))
            losses = task_losses(out, {k2: v.to(device) for k2, v in batch.items() if k2 != "x"}, cfg.tasks,
                                 options.va_loss, weights, pos_weight)
            if not losses:
                continue
            loss = sum(options.loss_weights.get(t, 1.0) * v for t, v in losses.items())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n = total + float(loss.detach()), n + 1
        history.append(total / max(n, 1))
        bar.set_postfix(loss=f"{history[-1]:.3f}")
    model.cpu().eval()
    return model, {"class_weights": weights.cpu().tolist(), "au_pos_weight": pos_weight.cpu().tolist(),
                   "losses": history, "device": str(device),
                   "precision": precision, "n_windows": len(items), "trainable": trainable,
                   "options": asdict(options)}


@torch.no_grad()
def predict_frames(model: AffectModel, crops, has_face: np.ndarray, batch_size: int = 4, device: str = "cpu",
                   precision: str = "fp32", stride: int = 0) -> dict:
    """Per-frame outputs of ``model`` over a session, T-frame windows every ``stride`` frames (0 = T/2), outputs of
    overlapping windows averaged (expression and AU probabilities, VA values).

    Parameters
    ----------
    crops : (n, S, S, 3) uint8; has_face : (n,) bool

    Returns
    -------
    dict: ``va`` (n, 2) float32, ``expr`` (n, n_expr) probabilities, ``au`` (n, n_au) probabilities (heads the
    model has); rows of frames without a face are NaN (no value is invented for them).
    """
    cfg = model.cfg
    dev = torch.device(device)
    model = model.to(dev).eval()
    n, t = len(has_face), cfg.seq_len
    starts = window_starts(n, t, stride or max(1, t // 2))
    sums = {k: np.zeros((n, d), np.float64) for k, d in
            (("va", 2), ("expr", len(cfg.expr_classes)), ("au", len(cfg.au_names))) if k in cfg.tasks}
    counts = np.zeros(n)
    holder = [AffectSession("predict", "", crops, np.asarray(has_face, bool))]
    for k in range(0, len(starts), batch_size):
        chunk = starts[k:k + batch_size]
        batch = make_batch(holder, [(0, int(s)) for s in chunk], t, len(cfg.expr_classes), len(cfg.au_names))
        with autocast_context(dev, precision):
            out = model(batch["x"].to(dev))
        probs = {"va": out["va"].float()} if "va" in out else {}
        if "expr" in out:
            probs["expr"] = out["expr"].float().softmax(-1)
        if "au" in out:
            probs["au"] = out["au"].float().sigmoid()
        for b, s in enumerate(chunk):
            m = min(t, n - s)
            for key, val in probs.items():
                sums[key][s:s + m] += val[b, :m].cpu().numpy()
            counts[s:s + m] += 1
    result = {}
    for key, total in sums.items():
        avg = (total / np.maximum(counts, 1)[:, None]).astype(np.float32)
        avg[~np.asarray(has_face, bool)] = np.nan
        result[key] = avg
    return result
