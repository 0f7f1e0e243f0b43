"""MobileNetV4-Conv-Small in plain torch, with timm's parameter names.

Architecture: Qin et al. 2024, "MobileNetV4: Universal Models for the Mobile Ecosystem", Table (MNv4-Conv-S):
Conv2D 3x3 s2 (32) -> FusedIB 3x3 s2 (32) -> FusedIB 3x3 s2 (exp 96, out 64) -> ExtraDW 5x5/5x5 s2 (exp 192, 96)
-> 4x IB 3x3 (exp 192, 96) -> ConvNext 3x3 (exp 384, 96) -> ExtraDW 3x3/3x3 s2 (exp 576, 128) -> ExtraDW 5x5/5x5
(512, 128) -> IB 5x5 (512, 128) -> IB 5x5 (384, 128) -> 2x IB 3x3 (512, 128) -> Conv2D 1x1 (960).

Why not timm: on this project's CPU torch, timm cannot be imported (it imports torchvision, whose wheels here are
CUDA builds). :func:`create_backbone` uses timm's ``create_model("mobilenetv4_conv_small", features_only=True)``
when timm imports, else :class:`MobileNetV4ConvSmall`. The module names below follow the layout of timm's
``MobileNetV3Features`` for this variant (``conv_stem``, ``bn1``, ``blocks.<stage>.<block>``; FusedIB = two
``ConvBnAct`` blocks ``conv``/``bn1``; UIB = ``dw_start``/``pw_exp``/``dw_mid``/``pw_proj`` each ``conv``/``bn``)
so that a state dict exported from timm's features-only model loads with ``strict=True``. That mapping was written
from the architecture and is UNVERIFIED against real timm weights (none can be downloaded here); the tests check
it against the key list written out from the architecture, not against timm.

Feature maps (``forward`` returns a list, like timm ``features_only``), reductions 2, 4, 8, 16, 32 with 32, 32, 64,
96, 960 channels: at 112 px input the maps 1, 2, 3 are 28x28, 14x14, 7x7 (the TAM levels, authors' 112 px crops);
at 224 px the maps 2, 3, 4 are.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nova_infant.core.errors import WeightsUnavailableError

#: (kind, kernel_start, kernel_mid, stride, expansion, out_channels) per block, per stage (MNv4-Conv-S table).
#: kind "cn": conv + BN + ReLU (kernel_start = kernel), "uir": universal inverted residual (0 = no such conv).
CONV_SMALL_STAGES = (
    (("cn", 3, 0, 2, 1, 32), ("cn", 1, 0, 1, 1, 32)),                     # FusedIB 3x3 s2 (32)
    (("cn", 3, 0, 2, 1, 96), ("cn", 1, 0, 1, 1, 64)),                     # FusedIB 3x3 s2 (96 -> 64)
    (("uir", 5, 5, 2, 3.0, 96),) + (("uir", 0, 3, 1, 2.0, 96),) * 4 + (("uir", 3, 0, 1, 4.0, 96),),
    (("uir", 3, 3, 2, 6.0, 128), ("uir", 5, 5, 1, 4.0, 128), ("uir", 0, 5, 1, 4.0, 128),
     ("uir", 0, 5, 1, 3.0, 128), ("uir", 0, 3, 1, 4.0, 128), ("uir", 0, 3, 1, 4.0, 128)),
    (("cn", 1, 0, 1, 1, 960),),
)
FEATURE_CHANNELS = (32, 32, 64, 96, 960)
FEATURE_REDUCTIONS = (2, 4, 8, 16, 32)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` (not below 90 % of ``value``), as in MobileNetV2/V3/V4."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


class ConvNormAct(nn.Module):
    """Conv (no bias, symmetric padding k//2) + BatchNorm (+ ReLU); names ``conv``/``bn`` like timm ConvNormAct."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class ConvBnAct(nn.Module):
    """Conv + BN + ReLU block without skip; names ``conv``/``bn1`` like timm's efficientnet ``ConvBnAct``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.bn1(self.conv(x)))


class UniversalInvertedResidual(nn.Module):
    """UIB (MobileNetV4 §3.1): optional depthwise conv before expansion (``dw_start``, no activation), 1x1 expansion
    (``pw_exp``), optional depthwise conv after it (``dw_mid``, carries the stride when present), 1x1 projection
    (``pw_proj``, no activation); residual when shape is kept. ExtraDW = both depthwise convs, IB = mid only,
    ConvNext = start only."""

    def __init__(self, cin: int, cout: int, k_start: int, k_mid: int, stride: int, expansion: float):
        super().__init__()
        mid = make_divisible(cin * expansion)
        start_stride = 1 if k_mid else stride
        self.dw_start = ConvNormAct(cin, cin, k_start, start_stride, groups=cin, act=False) if k_start else nn.Identity()
        self.pw_exp = ConvNormAct(cin, mid, 1)
        self.dw_mid = ConvNormAct(mid, mid, k_mid, stride, groups=mid) if k_mid else nn.Identity()
        self.pw_proj = ConvNormAct(mid, cout, 1, act=False)
        self.has_skip = cin == cout and stride == 1

    def forward(self, x):
        y = self.pw_proj(self.dw_mid(self.pw_exp(self.dw_start(x))))
        return x + y if self.has_skip else y


class MobileNetV4ConvSmall(nn.Module):
    """MobileNetV4-Conv-Small feature extractor (see module docstring).

    Parameters
    ----------
    out_indices : which of the 5 feature maps to return (0..4; reductions 2, 4, 8, 16, 32)
    width : channel multiplier for tiny test stand-ins (1.0 = the real architecture; other values break timm
        key compatibility on purpose: shapes differ)

    ``forward(x)``: x float (N, 3, H, W), ImageNet-normalised RGB -> list of float (N, C_i, H/r_i, W/r_i). Stages
    after the last requested map are not run.
    """

    def __init__(self, out_indices=(1, 2, 3), width: float = 1.0):
        super().__init__()
        self.out_indices = tuple(int(i) for i in out_indices)
        if not self.out_indices or min(self.out_indices) < 0 or max(self.out_indices) > 4:
            raise ValueError(f"out_indices must be within 0..4, got {out_indices}")
        scale = (lambda c: c) if width == 1.0 else (lambda c: make_divisible(c * width))
        stem = scale(32)
        self.conv_stem = nn.Conv2d(3, stem, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.act1 = nn.ReLU(inplace=True)
        cin, stages = stem, []
        for stage in CONV_SMALL_STAGES:
            blocks = []
            for kind, k_start, k_mid, stride, exp, cout in stage:
                cout = scale(cout)
                blocks.append(ConvBnAct(cin, cout, k_start, stride) if kind == "cn"
                              else UniversalInvertedResidual(cin, cout, k_start, k_mid, stride, exp))
                cin = cout
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.channels = [stem] + [s[-1].conv.out_channels if isinstance(s[-1], ConvBnAct)
                                  else s[-1].pw_proj.conv.out_channels for s in self.blocks]
        # timm's feature 4 (reduction 32) is after stage 4 (the 1x1 960 conv); stage 3 output is not a feature
        self.channels = [self.channels[0], self.channels[1], self.channels[2], self.channels[3], self.channels[5]]

    def feature_info_channels(self) -> list[int]:
        """Channels of the requested feature maps, in ``out_indices`` order."""
        return [self.channels[i] for i in self.out_indices]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        last = max(self.out_indices)
        x = self.act1(self.bn1(self.conv_stem(x)))
        if 0 in self.out_indices:
            feats.append(x)
        # feature i (1..3) = output of stage i-1; feature 4 = output of stage 4 (stage 3 has no feature)
        n_stages = last if last <= 3 else 5
        for stage_idx in range(n_stages):
            x = self.blocks[stage_idx](x)
            feat = {0: 1, 1: 2, 2: 3, 4: 4}.get(stage_idx)
            if feat in self.out_indices:
                feats.append(x)
        return feats


def timm_available() -> bool:
    """True when ``import timm`` works (it needs a torchvision matching torch)."""
    try:
        import timm  # noqa: F401
        return True
    except Exception:  # ImportError, or torchvision's operator registration failing on a mismatched build
        return False


def create_backbone(out_indices=(1, 2, 3), weights: str | None = None, width: float = 1.0,
                    use_timm: bool | None = None) -> nn.Module:
    """MobileNetV4-Conv-Small feature extractor: timm's ``features_only`` model when timm imports (and
    ``use_timm`` is not False), else :class:`MobileNetV4ConvSmall`.

    Parameters
    ----------
    out_indices : feature maps to return (see :class:`MobileNetV4ConvSmall`)
    weights : where the weights come from, resolved like the project's other backbones:
        a local ``.safetensors``/``.pt`` file or a folder holding ``model.safetensors`` / ``pytorch_model.bin``
        (a features-only state dict, e.g. the authors' AffectNet fine-tune, loaded with ``strict=True``);
        ``timm:<name>`` (e.g. ``timm:mobilenetv4_conv_small.e2400_r224_in1k``) = timm's pretrained weights from the
        Hugging Face cache, else the hub (needs timm); None / "" = random initialisation
    width : stand-in width multiplier (own class only)

    Returns
    -------
    nn.Module whose forward returns a list of (N, C, H, W) maps and with ``feature_info_channels()``.

    Raises
    ------
    WeightsUnavailableError
        ``timm:`` weights without an importable timm, or a missing file/folder.
    RuntimeError
        If the weights do not match the architecture (missing/unexpected keys or shapes).
    """
    hub_name = weights[5:] if weights and str(weights).startswith("timm:") else None
    if use_timm is None:
        use_timm = width == 1.0 and timm_available()
    if hub_name and not use_timm:
        raise WeightsUnavailableError(
            f"backbone weights {weights}: timm cannot be imported here (it needs a torchvision matching torch); on a "
            f"machine with timm save the features_only model's state_dict to a .safetensors file and give its path")
    if use_timm:
        import timm
        model = timm.create_model(hub_name or "mobilenetv4_conv_small", pretrained=bool(hub_name),
                                  features_only=True, out_indices=tuple(out_indices))
        model.feature_info_channels = lambda: list(model.feature_info.channels())
    else:
        model = MobileNetV4ConvSmall(out_indices, width)
    if weights and not hub_name:
        path = Path(weights)
        if path.is_dir():
            found = [path / n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).is_file()]
            if not found:
                raise WeightsUnavailableError(f"{path}: no model.safetensors or pytorch_model.bin in this folder")
            path = found[0]
        if not path.is_file():
            raise WeightsUnavailableError(f"{path}: no such backbone weights file")
        model.load_state_dict(load_state_dict(str(path)), strict=True)
    return model


def load_state_dict(path: str) -> dict:
    """State dict from ``.safetensors`` or a torch file (a timm checkpoint's ``state_dict`` entry is unwrapped)."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file
        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state
