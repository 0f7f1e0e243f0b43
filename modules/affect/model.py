"""Affect model of seed 002 (Nguyen, Nguyen & Huynh, "Lightweight Models for Emotional Analysis in Video", ABAW8
2025, §2): MobileNetV4-Conv-Small multi-scale feature maps (§2.1) -> temporal aggregation module TAM (§2.2): three
3D MLP-Mixers (Tolstikhin et al. 2021) on the 28x28, 14x14 and 7x7 maps of a sequence of T frames, then a fully
connected layer to the outputs: valence/arousal (tanh, [-1, 1]), 8 expression logits, 12 action-unit logits
(sigmoid -> probability).

3D mixer of one level: each frame's map (C, H, W) is cut into p x p patches; the T*(H/p)*(W/p) patches (tokens,
order t, h, w) are embedded linearly to ``dim``; ``depth`` Mixer blocks follow, each = LayerNorm -> token-mixing MLP
across all tokens of the sequence (space AND time, hence "3D") + residual, then LayerNorm -> channel MLP +
residual; a final LayerNorm, the mean over each frame's tokens and a linear layer give one vector per frame. The
token MLP fixes T: the model sees sequences of exactly ``seq_len`` frames (prediction slides windows over a
session). The paper does not give sizes; defaults follow the authors' public code where it shows them (dim 256,
depth 1, channel expansion 0.5) and keep the token MLP small (expansion 0.5: T=32 gives 1568 tokens per level).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from nova_infant.affect.mobilenetv4 import create_backbone

#: ABAW's 8 expression classes and 12 action units (seed 002 §3.1, Table 1)
EXPR_CLASSES = ["neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise", "other"]
AU_NAMES = ["AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU15", "AU23", "AU24", "AU25", "AU26"]
TASKS = ("va", "expr", "au")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class AffectConfig:
    """Architecture of :class:`AffectModel` (saved with the model).

    ``image_size`` px (112: maps 28/14/7 from backbone features 1/2/3; 224: features 2/3/4), ``seq_len`` T frames,
    ``patch_sizes`` per level (28->4, 14->2, 7->1: 7x7 tokens each), ``dim``/``depth``/``out_dim`` of each mixer,
    ``token_expansion``/``channel_expansion`` of the two MLPs, ``tasks`` heads that exist, ``n_expr``/``n_au``
    output sizes (and their names), ``backbone_width`` (1.0 = MobileNetV4-Conv-Small; < 1 only for test stand-ins).
    """
    image_size: int = 112
    seq_len: int = 32
    patch_sizes: tuple = (4, 2, 1)
    dim: int = 256
    depth: int = 1
    out_dim: int = 256
    token_expansion: float = 0.5
    channel_expansion: float = 0.5
    dropout: float = 0.0
    tasks: tuple = TASKS
    expr_classes: list = field(default_factory=lambda: list(EXPR_CLASSES))
    au_names: list = field(default_factory=lambda: list(AU_NAMES))
    backbone_width: float = 1.0

    def __post_init__(self):
        self.patch_sizes, self.tasks = tuple(self.patch_sizes), tuple(self.tasks)
        if self.image_size not in (112, 224):
            raise ValueError(f"image_size must be 112 or 224 px (TAM maps 28/14/7), got {self.image_size}")
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {self.tasks}")

    @property
    def feature_indices(self) -> tuple:
        """Backbone feature maps fed to the TAM (reductions 4/8/16 at 112 px, 8/16/32 at 224 px)."""
        return (1, 2, 3) if self.image_size == 112 else (2, 3, 4)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["patch_sizes"], d["tasks"] = list(self.patch_sizes), list(self.tasks)
        return d


class PreNormResidual(nn.Module):
    """x + fn(LayerNorm(x)) (MLP-Mixer block half)."""

    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.norm, self.fn = nn.LayerNorm(dim), fn

    def forward(self, x):
        return x + self.fn(self.norm(x))


class TokenMLP(nn.Module):
    """MLP across the token axis of (B, N, D): Linear(N, hidden) -> GELU -> Linear(hidden, N) on each channel."""

    def __init__(self, n_tokens: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(n_tokens, hidden), nn.Linear(hidden, n_tokens)
        self.act, self.drop = nn.GELU(), nn.Dropout(dropout)

    def forward(self, x):  # (B, N, D)
        y = x.transpose(1, 2)
        y = self.drop(self.fc2(self.drop(self.act(self.fc1(y)))))
        return y.transpose(1, 2)


def channel_mlp(dim: int, hidden: int, dropout: float = 0.0) -> nn.Sequential:
    """Linear(dim, hidden) -> GELU -> Linear(hidden, dim) on each token."""
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                         nn.Dropout(dropout))


class MLPMixer3D(nn.Module):
    """One TAM level: (B, T, C, H, W) feature maps -> (B, T, out_dim), see the module docstring.

    Parameters
    ----------
    channels, size : C and H = W of the input maps
    seq_len : T frames
    patch : spatial patch side p (size % p == 0)
    """

    def __init__(self, channels: int, size: int, seq_len: int, patch: int, dim: int, depth: int, out_dim: int,
                 token_expansion: float = 0.5, channel_expansion: float = 0.5, dropout: float = 0.0):
        super().__init__()
        if size % patch:
            raise ValueError(f"map size {size} is not divisible by the patch size {patch}")
        self.patch, self.seq_len, self.grid = patch, seq_len, size // patch
        n_tokens = seq_len * self.grid * self.grid
        self.embed = nn.Linear(channels * patch * patch, dim)
        self.blocks = nn.Sequential(*[nn.Sequential(
            PreNormResidual(dim, TokenMLP(n_tokens, max(1, int(n_tokens * token_expansion)), dropout)),
            PreNormResidual(dim, channel_mlp(dim, max(1, int(dim * channel_expansion)), dropout)))
            for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, out_dim)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) -> (B, T*g*g, p*p*C) patches, token order (t, row, col), patch vector order (pr, pc, c)."""
        b, t, c, h, w = x.shape
        p, g = self.patch, self.grid
        x = x.reshape(b, t, c, g, p, g, p).permute(0, 1, 3, 5, 4, 6, 2)  # b t gh gw ph pw c
        return x.reshape(b, t * g * g, p * p * c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        if t != self.seq_len:
            raise ValueError(f"TAM expects sequences of {self.seq_len} frames, got {t}")
        z = self.norm(self.blocks(self.embed(self.tokens(x))))
        z = z.reshape(b, t, self.grid * self.grid, -1).mean(2)
        return self.out(z)


class TemporalAggregation(nn.Module):
    """TAM: three :class:`MLPMixer3D` levels (28x28, 14x14, 7x7 maps) -> concatenated (B, T, 3*out_dim)."""

    def __init__(self, channels: list, sizes: list, cfg: AffectConfig):
        super().__init__()
        self.levels = nn.ModuleList([
            MLPMixer3D(c, s, cfg.seq_len, p, cfg.dim, cfg.depth, cfg.out_dim, cfg.token_expansion,
                       cfg.channel_expansion, cfg.dropout) for c, s, p in zip(channels, sizes, cfg.patch_sizes)])

    def forward(self, maps: list) -> torch.Tensor:
        return torch.cat([level(m) for level, m in zip(self.levels, maps)], dim=-1)


class AffectModel(nn.Module):
    """Backbone + TAM + heads (seed 002 §2).

    ``forward(x)``: x float (B, T, 3, S, S) ImageNet-normalised RGB face crops (S = ``image_size`` px) -> dict with
    ``va`` (B, T, 2) in [-1, 1] (tanh), ``expr`` (B, T, n_expr) logits, ``au`` (B, T, n_au) logits, for the heads
    in ``cfg.tasks``.
    """

    def __init__(self, cfg: AffectConfig, backbone: nn.Module | None = None, backbone_weights: str | None = None):
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone if backbone is not None else create_backbone(
            cfg.feature_indices, backbone_weights, cfg.backbone_width)
        channels = self.backbone.feature_info_channels()
        sizes = [28, 14, 7]
        self.tam = TemporalAggregation(channels, sizes, cfg)
        width = 3 * cfg.out_dim
        self.heads = nn.ModuleDict()
        if "va" in cfg.tasks:
            self.heads["va"] = nn.Linear(width, 2)
        if "expr" in cfg.tasks:
            self.heads["expr"] = nn.Linear(width, len(cfg.expr_classes))
        if "au" in cfg.tasks:
            self.heads["au"] = nn.Linear(width, len(cfg.au_names))

    def features(self, x: torch.Tensor) -> list:
        """(B, T, 3, S, S) -> the three backbone maps, each (B, T, C_i, s_i, s_i)."""
        b, t = x.shape[:2]
        maps = self.backbone(x.reshape(b * t, *x.shape[2:]))
        return [m.reshape(b, t, *m.shape[1:]) for m in maps]

    def forward(self, x: torch.Tensor) -> dict:
        z = self.tam(self.features(x))
        out = {name: head(z) for name, head in self.heads.items()}
        if "va" in out:
            out["va"] = torch.tanh(out["va"])
        return out

    def freeze_backbone(self, train_last_stage: bool = True) -> list[str]:
        """Freeze the backbone except its last used stage (paper §2.1: "all but the final layers of the backbone
        are frozen"); frozen BatchNorms stay in eval mode (see :meth:`train`). Returns the trainable prefixes."""
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        trainable = []
        if train_last_stage:
            last = {1: "blocks.0", 2: "blocks.1", 3: "blocks.2", 4: "blocks.4"}[max(self.cfg.feature_indices)]
            for name, p in self.backbone.named_parameters():
                if name.startswith(last + "."):
                    p.requires_grad_(True)
            trainable.append("backbone." + last)
        return trainable

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:  # BatchNorms of frozen backbone parts keep their running statistics
            for m in self.backbone.modules():
                if isinstance(m, nn.BatchNorm2d) and not any(p.requires_grad for p in m.parameters()):
                    m.eval()
        return self


def normalise_crops(crops) -> torch.Tensor:
    """uint8 RGB crops (..., S, S, 3) -> float (..., 3, S, S) ImageNet-normalised (timm's default for MNv4)."""
    x = torch.as_tensor(crops).float().div_(255.0)
    x = x.movedim(-1, -3)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std
