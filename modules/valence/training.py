"""Training, ensemble inference, subject-grouped cross-validation and the saved valence model (seed 004).

- Samples: SSTS (:mod:`.ssts`) draws ``T / s`` frames of a clip's valid face frames per sample and epoch; only those
  frames are decoded (:class:`.clips.ClipReader`), so memory is bounded by one batch whatever the data size.
- Frame augmentation: RandAugment (Cubuk et al. 2020) from kornia (``kornia.augmentation.auto.RandAugment``) with
  the paper's operations (§III-B: colour, contrast, brightness, rotation, shear), applied to each frame.
- Loss: mean squared error (§III-D eq. 1) on valence divided by ``scale`` (the scheme's half range, 100 for
  [-100, 100]): the paper's loss divided by scale², which keeps the head's output near unit size. AdamW (lr 5e-4,
  weight decay 0.05) and an exponential moving average of the weights (0.999, with the usual warm-up
  ``min(decay, (1 + n) / (10 + n))`` so short trainings are not stuck at the initial weights), as §III-D.
- Prediction: ensemble inference (§IV-B): the mean of the ``s`` strided samplings of each clip.
- Evaluation: folds grouped by subject (scikit-learn ``GroupKFold``), CCC (main) and RMSE per fold, their spread,
  pooled over folds, beside a mean predictor (the training folds' mean valence) on the same folds.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nova_infant.core import saved
from nova_infant.core.backbones import training_device
from nova_infant.core.errors import OptionError, SavedModelError
from nova_infant.core.metrics import ccc, rmse
from nova_infant.valence.clips import ClipPlan, ClipReader
from nova_infant.valence.model import autocast, load_valence_model, predict_batch, to_pixels
from nova_infant.valence.ssts import check_stride, ensemble_indices, single_indices, ssts_indices

log = logging.getLogger("nova_infant")

#: RandAugment operations named in §III-B (magnitude ranges: kornia's defaults for these operations)
RANDAUGMENT_POLICY = [[("color", 0.1, 1.9)], [("contrast", 0.1, 1.9)], [("brightness", 0.1, 1.9)],
                      [("rotate", -30.0, 30.0)], [("shear_x", -0.3, 0.3)], [("shear_y", -0.3, 0.3)]]
FORMAT = "nova-infant-valence/1"


@dataclass
class ValenceConfig:
    """Training options (defaults: seed 004 §III-D unless said).

    Attributes
    ----------
    model : VideoMAE hub id or folder (default the SSV2 fine-tuned ViT-S)
    stride : s of SSTS (paper's best: 6)
    clip_frames : T of SSTS (paper: 24)
    epochs : passes over the training clips (paper: until convergence, at most 100; default 30 for CPU budgets)
    batch_size : clips per step (paper: 64)
    lr, weight_decay : AdamW (paper: 5e-4, 0.05)
    ema : weight EMA decay (paper: 0.999; 0 = off)
    augment : RandAugment on every frame (paper: on)
    randaugment_n, randaugment_m : operations per frame, magnitude 0-30 (RandAugment's ImageNet default 2, 9)
    scale : target unit (the scheme's half range: 100 for [-100, 100])
    seed, device, precision : reproducibility and compute ("auto": bf16 where supported)
    """

    model: str = "MCG-NJU/videomae-small-finetuned-ssv2"
    stride: int = 6
    clip_frames: int = 24
    epochs: int = 30
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.05
    ema: float = 0.999
    augment: bool = True
    randaugment_n: int = 2
    randaugment_m: float = 9.0
    scale: float = 100.0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"

    @property
    def frames_per_sample(self) -> int:
        return check_stride(self.stride, self.clip_frames)


@dataclass
class ValenceSession:
    """One coded (or to-be-predicted) session: ``name``, ``subject`` (CV group: the infant), ``video`` path,
    ``plan`` (its clips with targets)."""

    name: str
    subject: str
    video: str
    plan: ClipPlan


@dataclass
class FittedModel:
    """A trained model in memory: ``model`` (VideoMAE, eval mode), ``info`` (from :func:`load_valence_model`),
    ``config``, ``device``, ``precision``, ``history`` (mean training loss per epoch), ``train_seconds`` (wall time of
    the training steps, loading excluded), ``n_samples`` (clips seen in training: clips x epochs)."""

    model: object
    info: dict
    config: ValenceConfig
    device: object
    precision: str
    history: list = field(default_factory=list)
    train_seconds: float = 0.0
    n_samples: int = 0


def _augmenter(config: ValenceConfig):
    if not config.augment:
        return None
    from kornia.augmentation.auto import RandAugment

    return RandAugment(n=config.randaugment_n, m=config.randaugment_m, policy=RANDAUGMENT_POLICY)


def _pixels(frames: np.ndarray, info: dict, device, augment=None):
    """uint8 crops (B, t, H, W, 3) -> normalised model input (B, num_frames, 3, H, W), RandAugment per frame."""
    import torch

    if augment is not None:
        b, t, h, w, _ = frames.shape
        x = torch.as_tensor(frames, device=device).float().div_(255.0).permute(0, 1, 4, 2, 3).reshape(b * t, 3, h, w)
        with torch.no_grad():
            x = augment(x).clamp_(0, 1)
        frames = (x.reshape(b, t, 3, h, w).permute(0, 1, 3, 4, 2) * 255.0).round().to(torch.uint8).cpu().numpy()
    return to_pixels(frames, info["mean"], info["std"], info["num_frames"], device)


def fit(sessions: list[ValenceSession], config: ValenceConfig, progress: bool = True) -> FittedModel:
    """Fine-tune VideoMAE + regression head on every clip of ``sessions`` (MSE, SSTS, RandAugment, AdamW, EMA).

    Parameters
    ----------
    sessions : list of ValenceSession
        Their plans' clips carry finite targets in the scheme's unit.
    config : ValenceConfig

    Returns
    -------
    FittedModel
        The EMA weights when ``config.ema > 0``.

    Raises
    ------
    OptionError
        No clip to train on, a bad stride, or a clip shorter than ``clip_frames``.
    WeightsUnavailableError
        The backbone cannot be loaded.
    """
    import torch
    from torch.optim.swa_utils import AveragedModel
    from tqdm import tqdm

    items = [(s.video, c) for s in sessions for c in s.plan.clips]
    if not items:
        raise OptionError("valence training: no usable clip in the selected sessions (every clip skipped)")
    short = [c for _, c in items if len(c.frames) < config.clip_frames]
    if short:
        raise OptionError(f"valence training: {len(short)} clips have fewer than clip_frames={config.clip_frames} "
                          f"face frames (set min_face_frames >= clip_frames)")
    device, precision = training_device(config.device, config.precision)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model, info = load_valence_model(config.model, config.frames_per_sample, device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    ema = None
    if config.ema > 0:
        decay = float(config.ema)

        def ema_avg(averaged, current, n):  # warm-up: decay grows from 0.1 towards `decay`
            d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
            return d * averaged + (1.0 - d) * current

        ema = AveragedModel(model, avg_fn=ema_avg, use_buffers=True)
    augment = _augmenter(config)
    reader = ClipReader()
    size = info["image_size"]
    targets = np.array([c.target for _, c in items], np.float32) / np.float32(config.scale)
    history = []
    steps = config.epochs * int(np.ceil(len(items) / config.batch_size))
    bar = tqdm(total=steps, desc="valence training", unit="step", disable=not progress, leave=False)
    started = time.perf_counter()
    for _ in range(config.epochs):
        order = rng.permutation(len(items))
        losses = []
        for start in range(0, len(order), config.batch_size):
            batch = order[start:start + config.batch_size]
            frames = np.stack([reader.read(items[i][0], items[i][1],
                                           ssts_indices(len(items[i][1].frames), config.stride, rng,
                                                        config.clip_frames), size) for i in batch])
            x = _pixels(frames, info, device, augment)
            y = torch.as_tensor(targets[batch], device=device)
            with autocast(device, precision):
                out = model(pixel_values=x).logits.float().reshape(-1)
            loss = torch.nn.functional.mse_loss(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update_parameters(model)
            losses.append(float(loss.detach()))
            bar.update(1)
        history.append(float(np.mean(losses)))
        bar.set_postfix(loss=f"{history[-1]:.4f}")
    bar.close()
    seconds = time.perf_counter() - started
    final = ema.module if ema is not None else model
    final.eval()
    return FittedModel(final, info, config, device, precision, history, seconds, len(items) * config.epochs)


def predict_plan(fitted: FittedModel, plan: ClipPlan, video: str | None = None, ensemble: bool = True,
                 batch_size: int = 16, seed: int = 0, reader: ClipReader | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Valence and confidence for every row of ``plan.grid``.

    Parameters
    ----------
    ensemble : bool
        True: mean of the ``s`` strided samplings per clip (§IV-B); False: one of them at random ("single").
    batch_size : clips per forward pass (each clip gives ``s`` rows with ``ensemble``)

    Returns
    -------
    values : float32 (n_rows,)
        Valence in the scheme's unit; NaN (NOVA's garbage value) for every skipped row (no face, too few face frames):
        no value is invented there.
    conf : float32 (n_rows,)
        The clip's face fraction (valid face frames / frames in the clip window), 0 for skipped rows.
    """
    import torch

    cfg = fitted.config
    n = plan.grid.n_frames
    values = np.full(n, np.nan, np.float32)
    conf = np.zeros(n, np.float32)
    reader = reader or ClipReader()
    rng = np.random.default_rng(seed)
    size = fitted.info["image_size"]
    video = video or plan.video
    clips = plan.clips
    for start in range(0, len(clips), batch_size):
        chunk = clips[start:start + batch_size]
        rows = []
        for clip in chunk:
            samplings = (ensemble_indices(len(clip.frames), cfg.stride, cfg.clip_frames) if ensemble
                         else single_indices(len(clip.frames), cfg.stride, rng, cfg.clip_frames))
            needed = np.unique(samplings)  # every frame of the s samplings decoded and cropped once
            crops = reader.read(video, clip, needed, size)
            rows.append(crops[np.searchsorted(needed, samplings)])
        counts = [len(r) for r in rows]
        frames = np.concatenate(rows)
        with torch.no_grad():
            out = predict_batch(fitted.model, _pixels(frames, fitted.info, fitted.device), fitted.precision)
        out = out.cpu().numpy() * cfg.scale
        pos = 0
        for clip, k in zip(chunk, counts):
            values[clip.row] = float(out[pos:pos + k].mean())
            conf[clip.row] = clip.face_fraction
            pos += k
    return values, conf


# ---------------------------------------------------------------- cross-validation


def scores(reference: np.ndarray, prediction: np.ndarray) -> dict:
    """``{"ccc", "rmse", "n"}`` over the finite pairs (:func:`nova_infant.core.metrics.ccc`, ``rmse``)."""
    keep = np.isfinite(reference) & np.isfinite(prediction)
    return {"ccc": ccc(reference, prediction), "rmse": rmse(reference, prediction), "n": int(keep.sum())}


def cross_validate(sessions: list[ValenceSession], config: ValenceConfig, folds: int = 5,
                   progress: bool = True) -> dict:
    """Subject-grouped K-fold evaluation (scikit-learn ``GroupKFold`` over ``ValenceSession.subject``).

    Every fold fits a model on the other subjects' clips and predicts its own with ensemble inference; a mean
    predictor (the training folds' mean valence) is scored on the same clips.

    Returns
    -------
    dict
        ``folds`` [{fold, test_subjects, n_clips, model: {ccc, rmse, n}, mean_predictor: {...}}], ``pooled``
        (over all folds' predictions) and ``mean_predictor_pooled``, ``spread`` (mean and SD of per-fold CCC and
        RMSE, model and mean predictor), ``summary`` (one line).

    Raises
    ------
    OptionError
        Fewer than 2 subjects or ``folds`` < 2.
    """
    from sklearn.model_selection import GroupKFold

    subjects = sorted({s.subject for s in sessions})
    if folds < 2 or len(subjects) < 2:
        raise OptionError(f"cross-validation needs cv_folds >= 2 and >= 2 subjects (got {folds} folds, "
                          f"{len(subjects)} subjects)")
    k = min(folds, len(subjects))
    groups = [s.subject for s in sessions]
    out_folds, ref_all, pred_all, base_all = [], [], [], []
    for f, (train_idx, test_idx) in enumerate(GroupKFold(n_splits=k).split(sessions, groups=groups)):
        train = [sessions[i] for i in train_idx]
        test = [sessions[i] for i in test_idx]
        fitted = fit(train, config, progress)
        train_mean = float(np.mean([c.target for s in train for c in s.plan.clips]))
        ref, pred = [], []
        for s in test:
            values, _ = predict_plan(fitted, s.plan, s.video)
            for c in s.plan.clips:
                ref.append(c.target)
                pred.append(values[c.row])
        ref, pred = np.asarray(ref, np.float64), np.asarray(pred, np.float64)
        base = np.full_like(ref, train_mean)
        out_folds.append({"fold": f, "test_subjects": sorted({s.subject for s in test}), "n_clips": int(len(ref)),
                          "model": scores(ref, pred), "mean_predictor": scores(ref, base)})
        ref_all.append(ref), pred_all.append(pred), base_all.append(base)
    ref, pred, base = np.concatenate(ref_all), np.concatenate(pred_all), np.concatenate(base_all)

    def spread(key, metric):
        vals = np.array([fo[key][metric] for fo in out_folds], np.float64)
        return {"mean": float(np.nanmean(vals)), "sd": float(np.nanstd(vals, ddof=1)) if len(vals) > 1 else 0.0}

    report = {"folds": out_folds, "pooled": scores(ref, pred), "mean_predictor_pooled": scores(ref, base),
              "spread": {key: {m: spread(key, m) for m in ("ccc", "rmse")} for key in ("model", "mean_predictor")},
              "grouped_by": "subject", "n_folds": k, "ensemble": True}
    p, b, sp = report["pooled"], report["mean_predictor_pooled"], report["spread"]["model"]
    report["summary"] = (f"{k}-fold subject-grouped CV: pooled CCC {p['ccc']:.3f} RMSE {p['rmse']:.2f} "
                         f"(per fold CCC {sp['ccc']['mean']:.3f} ± {sp['ccc']['sd']:.3f}); mean predictor CCC "
                         f"{b['ccc']:.3f} RMSE {b['rmse']:.2f}")
    return report


# ---------------------------------------------------------------- saved model (one folder)


KIND = "valence-model"


def save_model(folder, fitted: FittedModel, scheme: dict, clip_rules: dict, training: dict | None = None,
               evaluation: dict | None = None) -> Path:
    """Write the trained model as one saved-model folder (:func:`nova_infant.core.saved.save_model`, kind
    ``valence-model``): ``config.json`` (format, the VideoMAE config with the trained ``num_frames``, SSTS settings,
    image mean/std, scheme, clip rules, training info, cross-validation report), ``model.safetensors`` (the
    fine-tuned weights), ``README.md``, ``checksums``; written atomically (a previous folder of this package is
    replaced only once the new one is complete).

    Raises
    ------
    PathError / OutputError / SavedModelError
        The folder exists and is not ours, or cannot be written.
    """
    meta = {"format": FORMAT, "config": asdict(fitted.config), "precision_trained": fitted.precision,
            "backbone": {k: fitted.info[k] for k in ("name", "source", "is_standin", "checkpoint_frames")},
            "image": {k: fitted.info[k] for k in ("image_size", "mean", "std", "num_frames")},
            "videomae_config": fitted.model.config.to_dict(),
            "scheme": scheme, "clip_rules": clip_rules, "training": training or {},
            "loss_history": fitted.history, "evaluation": evaluation}
    meta = json.loads(json.dumps(meta, default=str))
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in fitted.model.state_dict().items()}
    ev = (evaluation or {}).get("summary", "no cross-validation run")
    readme = (f"Infant facial valence (seed 004): VideoMAE ({fitted.info['name']}, "
              f"{'UNTRAINED stand-in backbone' if fitted.info['is_standin'] else 'pretrained backbone'}) fine-tuned "
              f"with SSTS s={fitted.config.stride} on {len((training or {}).get('sessions', []))} sessions; scheme "
              f"{scheme.get('name')} [{scheme.get('min')}, {scheme.get('max')}] at {scheme.get('sr')} Hz. "
              f"Evaluation: {ev}. Load with nova_infant.valence.training.load_model; docs/valence.md.")
    return saved.save_model(folder, KIND, meta, tensors, readme=readme)


def load_model(folder, device: str = "auto", precision: str = "auto") -> tuple[FittedModel, dict]:
    """Load a folder written by :func:`save_model` -> (FittedModel, its saved configuration dict).

    Raises
    ------
    SavedModelError
        Not a valence model, damaged (checksums), or weights that do not fit the saved architecture.
    """
    import torch
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    folder = Path(folder)
    meta, tensors = saved.load_model(folder, kind=KIND, framework="pt")
    if meta.get("format") != FORMAT:
        raise SavedModelError(f"{folder}/config.json: format {meta.get('format')!r}, expected {FORMAT}")
    config = ValenceConfig(**{**meta["config"], "device": device, "precision": precision})
    dev, prec = training_device(config.device, config.precision)
    model = VideoMAEForVideoClassification(VideoMAEConfig.from_dict(meta["videomae_config"]))
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise SavedModelError(f"{folder}/model.safetensors: weights do not fit the saved VideoMAE config "
                              f"({str(exc).splitlines()[0][:160]})") from None
    model = model.to(device=dev, dtype=torch.float32).eval()
    info = {**meta["backbone"], **meta["image"], "new_head": False}
    return FittedModel(model, info, config, dev, prec, meta.get("loss_history", [])), meta
