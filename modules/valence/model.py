"""VideoMAE with a one-output regression head for clip valence (seed 004, §III-C, Fig. 3).

The backbone is a Hugging Face ``VideoMAEForVideoClassification`` (Tong et al. 2022, "VideoMAE: Masked Autoencoders
are Data-Efficient Learners for Self-Supervised Video Pre-Training"; default the SSV2 fine-tuned ViT-S
``MCG-NJU/videomae-small-finetuned-ssv2``) whose classifier is replaced by one linear output: mean-pooled patch
tokens -> LayerNorm -> Linear(hidden, 1), i.e. the paper's "fully-connected layer" to the valence space. Weights are
found like every backbone (:func:`nova_infant.core.backbones.resolve_weights`: local dir, HF cache, hub).

Input length: SSTS gives ``T / s`` frames per sample (24 / 6 = 4). VideoMAE's position embeddings are a fixed
sin-cos table over ``(num_frames / tubelet_size) × (image_size / patch_size)²`` tokens, built from the config at
construction, so the config's ``num_frames`` is set to the sample length *before* the weights load: the table then
has exactly the shorter input's tokens (the first rows of the checkpoint's table; nothing is learned there). A
length that the tubelet (2 frames) does not divide (s = 8: 3 frames) is padded by repeating its last frame.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from nova_infant.core.backbones import STANDIN_FLAG, resolve_weights
from nova_infant.core.errors import WeightsUnavailableError

# Weights the regression model may lack in a checkpoint (the new head, or fc_norm of a pre-training checkpoint) and
# weights it may drop (a classification head of another size, a pre-training decoder).
_NEW_HEAD = ("classifier.", "fc_norm.")
_DROPPED = ("classifier.", "decoder.", "encoder_to_decoder.", "mask_token", "videomae.layernorm.")


def model_frames(frames_per_sample: int, tubelet_size: int = 2) -> int:
    """Frames VideoMAE gets for a sample of ``frames_per_sample`` frames: rounded up to a multiple of the tubelet."""
    return int(math.ceil(frames_per_sample / tubelet_size) * tubelet_size)


def load_valence_model(name: str, frames_per_sample: int, device, local_only_hint: bool | None = None):
    """Load VideoMAE for ``frames_per_sample`` input frames with a 1-output regression head.

    Parameters
    ----------
    name : str
        Hub id or local folder (a VideoMAE checkpoint of any head, or a model this package trained).
    frames_per_sample : int
        ``T / s`` frames per sample; the config's ``num_frames`` becomes :func:`model_frames` of it.
    device : torch.device

    Returns
    -------
    (model, info) : ``VideoMAEForVideoClassification`` in float32 on ``device`` (train mode off), and a dict with
        ``source``, ``name``, ``is_standin``, ``image_size``, ``mean``, ``std`` (per channel, RGB in [0, 1]),
        ``num_frames`` (model input frames), ``new_head`` (True when the head was initialised here).

    Raises
    ------
    WeightsUnavailableError
        Missing/corrupt weights, another architecture, or weights that do not fit beyond the replaced head.
    """
    from transformers import AutoImageProcessor, VideoMAEConfig, VideoMAEForVideoClassification

    from transformers.utils import logging as hf_logging

    path, source, local_only = resolve_weights(name, "videomae")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report lists the replaced head, which is checked below
    try:
        config = VideoMAEConfig.from_pretrained(path, local_files_only=local_only)
        old_frames = int(config.num_frames)
        config.num_frames = model_frames(frames_per_sample, int(config.tubelet_size))
        config.num_labels, config.problem_type = 1, "regression"
        config.id2label, config.label2id = {0: "valence"}, {"valence": 0}
        config.use_mean_pooling = True
        model, info = VideoMAEForVideoClassification.from_pretrained(
            path, config=config, local_files_only=local_only, ignore_mismatched_sizes=True, output_loading_info=True)
    except Exception as exc:
        raise WeightsUnavailableError(f"{path}: cannot load VideoMAE weights ({str(exc).splitlines()[0][:200]})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = [k for k in info.get("missing_keys") or [] if not k.startswith(_NEW_HEAD)]
    unexpected = [k for k in info.get("unexpected_keys") or [] if not k.startswith(_DROPPED)]
    mismatched = [k if isinstance(k, str) else k[0] for k in info.get("mismatched_keys") or []]
    mismatched = [k for k in mismatched if not k.startswith("classifier.")]
    if missing or unexpected or mismatched:
        what = "; ".join(f"{len(v)} {t} (e.g. {v[0]})" for v, t in ((missing, "missing"), (unexpected, "unexpected"),
                                                                   (mismatched, "of the wrong shape")) if v)
        raise WeightsUnavailableError(f"{path}: weights do not fit VideoMAE: {what}")
    try:
        processor = AutoImageProcessor.from_pretrained(path, local_files_only=local_only)
        mean, std = list(processor.image_mean), list(processor.image_std)
    except Exception:  # a folder without preprocessor_config.json: VideoMAE's ImageNet statistics
        mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    new_head = any(k.startswith("classifier.") for k in (info.get("missing_keys") or [])) or bool(
        info.get("mismatched_keys"))
    model = model.to(device=device, dtype=__import__("torch").float32).eval()
    return model, {"source": source, "name": str(name), "is_standin": bool(getattr(config, STANDIN_FLAG, False)),
                   "image_size": int(config.image_size), "mean": mean, "std": std,
                   "num_frames": int(config.num_frames), "checkpoint_frames": old_frames, "new_head": new_head}


def to_pixels(frames: np.ndarray, mean, std, num_frames: int, device):
    """uint8 face crops (B, t, H, W, 3) RGB -> float32 tensor (B, num_frames, 3, H, W), normalised by the
    checkpoint's mean/std; a sample shorter than ``num_frames`` repeats its last frame (tubelet padding)."""
    import torch

    x = torch.as_tensor(np.ascontiguousarray(frames), device=device).float().div_(255.0)
    if x.shape[1] < num_frames:
        x = torch.cat([x, x[:, -1:].expand(-1, num_frames - x.shape[1], -1, -1, -1)], dim=1)
    m = torch.tensor(mean, device=device).view(1, 1, 1, 1, 3)
    s = torch.tensor(std, device=device).view(1, 1, 1, 1, 3)
    return ((x - m) / s).permute(0, 1, 4, 2, 3).contiguous()


def autocast(device, precision: str):
    """``torch.autocast`` in bfloat16 on CPU or CUDA for precision "bf16" (weights stay float32: training keeps
    full-precision master weights), a no-op for "fp32"."""
    import torch

    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def predict_batch(model, pixels, precision: str = "fp32"):
    """Regression output (B,) float32 tensor for pixels (B, T, 3, H, W), in the model's target unit."""
    with autocast(pixels.device, precision):
        out = model(pixel_values=pixels).logits
    return out.float().reshape(-1)
