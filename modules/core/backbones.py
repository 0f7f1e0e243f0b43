"""Foundation-model weights: where they come from, how they load, and stand-ins for machines without them.

Resolution order for a ``model`` option (``from_pretrained(id_or_dir)`` is the only loading path, Hugging Face
transformers): (1) an existing local directory (air-gapped labs; see ``nova-infant export-weights``); (2) the
Hugging Face cache (``local_files_only=True``); (3) the hub, if it can be reached. If none works a
``WeightsUnavailableError`` says so in plain words and how to provide the weights.

Stand-in checkpoints (:func:`save_standin`) are random weights of the *real* architecture classes (``Dinov2Model``,
``Wav2Vec2BertModel`` and their processors), saved and loaded through the same ``from_pretrained`` path. Their
config carries ``nova_infant_standin: true`` so every stream computed with them says so in its metadata.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

from nova_infant.core.errors import OptionError, WeightsUnavailableError
from nova_infant.core.atomic import atomic_dir
from nova_infant.core.write_policy import check_folder

log = logging.getLogger(__name__)

DEFAULT_DINOV2 = "facebook/dinov2-large"
DEFAULT_W2V_BERT = "facebook/w2v-bert-2.0"
DEFAULT_VIDEOMAE = "MCG-NJU/videomae-small-finetuned-ssv2"
STANDIN_FLAG = "nova_infant_standin"

# model_type values of config.json each loader accepts
_MODEL_TYPES = {"dinov2": ("dinov2", "dinov2_with_registers"), "w2v-bert": ("wav2vec2-bert",),
                "resnet": ("resnet",), "videomae": ("videomae",)}


@dataclass
class LoadedBackbone:
    """A loaded model plus what the extractors need to know about it.

    Attributes
    ----------
    model : torch.nn.Module
        In eval mode on ``device``.
    processor : transformers image processor or feature extractor
    source : str
        Where the weights came from: "local directory", "Hugging Face cache" or "hub".
    name : str
        Hub id or path as given.
    is_standin : bool
        Random stand-in weights (:func:`save_standin`): the features are meaningless.
    device : torch.device
    dtype : torch.dtype
        Of the model's inputs: bfloat16 only for bf16 on CUDA, whose weights are cast; float32 otherwise.
    precision : str
        The precision actually used, "fp32", "bf16" or "int8" (:func:`resolve_precision`); written to the stream
        header.
    """

    model: object
    processor: object
    source: str
    name: str
    is_standin: bool
    device: object
    dtype: object
    precision: str = "fp32"

    def autocast(self):
        """Context for the forward pass: ``torch.autocast("cpu", torch.bfloat16)`` for bf16 on CPU (weights stay
        float32, matrix products run in bfloat16), a no-op otherwise (CUDA bf16 casts the weights at load time)."""
        import torch

        if self.precision == "bf16" and self.device.type == "cpu":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def weights_label(self) -> str:
        """Short text for stream metadata: ``untrained-stand-in`` or ``pretrained``."""
        return "untrained-stand-in" if self.is_standin else "pretrained"


def pick_device(option: str | None = "auto"):
    """``auto`` -> cuda when available, else cpu; otherwise ``torch.device(option)``.

    Raises
    ------
    OptionError
        If the device string is unknown or cuda is asked for but absent.
    """
    import torch

    text = (option or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise OptionError(f"option device: unknown device {option!r} (use auto, cpu or cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(f"option device: {option!r} asked for but no CUDA GPU is visible")
    return device


PRECISIONS = ("auto", "fp32", "bf16", "int8")
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bfloat16 arithmetic: ``avx512_bf16`` or ``amx_bf16`` in /proc/cpuinfo's flags
    (Linux), else torch's capability probe (``torch.backends.cpu.get_cpu_capability()`` naming AMX or BF16).

    Without them bf16 still runs (emulated) but is slower than float32, so ``precision=auto`` keeps float32.
    """
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return any(flag in flags for flag in _CPU_BF16_FLAGS)
    except OSError:
        pass
    try:
        import torch

        capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    except Exception:
        return False
    return "AMX" in capability or "BF16" in capability


def resolve_precision(precision: str | None, device, bf16: bool | None = None) -> str:
    """The precision a backbone runs in: "fp32", "bf16" or "int8".

    Parameters
    ----------
    precision : "auto" | "fp32" | "bf16" | "int8" (None = "auto")
        ``auto``: bf16 on a CUDA GPU that supports it, bf16 on a CPU with native bfloat16 (:func:`cpu_supports_bf16`),
        float32 otherwise. ``bf16``: ``torch.autocast`` on CPU, bfloat16 weights on CUDA. ``int8``: dynamic int8
        quantisation of the Linear layers (``torch.ao.quantization.quantize_dynamic``), CPU only.
    device : torch.device
    bf16 : bool, optional
        Deprecated flag of earlier releases: True = ``auto``, False = ``fp32``; a DeprecationWarning says so.

    Raises
    ------
    OptionError
        Unknown precision, ``int8`` on a GPU, ``bf16`` on a GPU without bfloat16, or ``bf16=False`` together with
        ``precision`` bf16/int8.
    """
    import torch

    text = str(precision or "auto").strip().lower()
    if text not in PRECISIONS:
        raise OptionError(f"option precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    if bf16 is not None:
        warnings.warn("option bf16 is deprecated: use precision (auto, fp32, bf16, int8); bf16=False means "
                      "precision=fp32", DeprecationWarning, stacklevel=3)
        if not bf16:
            if text in ("bf16", "int8"):
                raise OptionError(f"options bf16=False and precision={text} contradict each other; drop bf16")
            text = "fp32"
    if text == "int8" and device.type != "cpu":
        raise OptionError(f"option precision: int8 (dynamic quantisation) runs on the CPU only, not on {device}; "
                          f"use bf16 or fp32 there")
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
        if text == "bf16" and not supported:
            raise OptionError(f"option precision: bf16 asked for but GPU {device} has no bfloat16; use fp32 or auto")
        if text == "auto":
            return "bf16" if supported else "fp32"
        return text
    if text == "auto":
        return "bf16" if device.type == "cpu" and cpu_supports_bf16() else "fp32"
    if text == "bf16" and device.type == "cpu" and not cpu_supports_bf16():
        log.warning("precision bf16 on a CPU without avx512_bf16/AMX: emulated, likely slower than fp32")
    return text


def training_device(device: str | None = "auto", precision: str | None = "auto"):
    """Device and precision to train a model in (:func:`pick_device`, :func:`resolve_precision`), int8 refused.

    Parameters
    ----------
    device : str, optional
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (the ``device`` option).
    precision : "auto" | "fp32" | "bf16" | "int8" (None = "auto")
        The ``precision`` option.

    Returns
    -------
    device : torch.device
    precision : str
        ``"fp32"`` or ``"bf16"``.

    Raises
    ------
    OptionError
        ``int8`` (dynamic quantisation serves inference only), or what :func:`resolve_precision` refuses.
    """
    chosen = pick_device(device)
    resolved = resolve_precision(precision, chosen)
    if resolved == "int8":
        raise OptionError("option precision: int8 is for inference only; use fp32 or bf16 to train")
    return chosen, resolved


def place_model(model, device, precision: str):
    """Move a model to its device in the chosen precision, in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
    device : torch.device
    precision : str
        ``"fp32"``, ``"bf16"`` or ``"int8"`` (from :func:`resolve_precision`).

    Returns
    -------
    (model, input_dtype) : (torch.nn.Module, torch.dtype)
        bf16 on CUDA casts the weights (inputs bfloat16); bf16 on CPU keeps float32 weights for ``torch.autocast``;
        int8 replaces every ``torch.nn.Linear`` by a dynamically quantised one (int8 weights, activations quantised
        per batch; PyTorch ``torch.ao.quantization.quantize_dynamic``).
    """
    import torch

    if precision == "bf16" and device.type == "cuda":
        return model.to(device=device, dtype=torch.bfloat16).eval(), torch.bfloat16
    model = model.to(device=device, dtype=torch.float32).eval()
    if precision == "int8":
        with warnings.catch_warnings():  # torch.ao.quantization announces its future move to torchao
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantiz.*deprecated", category=UserWarning)
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model, torch.float32


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _how_to_provide(name: str) -> str:
    return (f"on a machine with internet run `nova-infant export-weights {name} <folder>`, copy the folder here "
            f"and pass it as the model option (or fill the Hugging Face cache)")


def resolve_weights(name: str, kind: str) -> tuple[str, str, bool]:
    """Find the weights of ``name`` for ``kind`` ("dinov2" or "w2v-bert").

    Returns ``(id_or_dir, source, local_only)``: pass them to ``from_pretrained(id_or_dir,
    local_files_only=local_only)``.

    Raises
    ------
    WeightsUnavailableError
        If ``name`` is a missing directory, a directory without a checkpoint of ``kind``, or a hub id that is
        neither cached nor downloadable.
    """
    import json

    name = str(name).strip()
    if not name:
        raise WeightsUnavailableError(f"no {kind} model given")
    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        config = Path(expanded) / "config.json"
        if not config.is_file():
            raise WeightsUnavailableError(f"{expanded}: model directory has no config.json (not a saved checkpoint)")
        try:
            model_type = json.loads(config.read_text()).get("model_type", "")
        except ValueError:
            raise WeightsUnavailableError(f"{config}: config.json is not valid JSON") from None
        if model_type not in _MODEL_TYPES[kind]:
            raise WeightsUnavailableError(f"{expanded}: holds a {model_type or 'unknown'} checkpoint, expected {kind}")
        return expanded, "local directory", True
    if expanded.startswith((".", "/", "~")) or "\\" in expanded or expanded.count("/") > 1:
        raise WeightsUnavailableError(f"{expanded}: no such model directory")
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(expanded, "config.json")
    except Exception:
        cached = None
    if isinstance(cached, str) and os.path.isfile(cached):
        return expanded, "Hugging Face cache", True
    if _hub_reachable():
        return expanded, "hub", False
    raise WeightsUnavailableError(f"{expanded}: weights are not in a local directory or the Hugging Face cache, and "
                                  f"the hub cannot be reached; {_how_to_provide(expanded)}")


def _load_checked(model_class, path: str, local_only: bool, kind: str, label: str):
    """``model_class.from_pretrained`` that refuses a checkpoint whose weights do not fit: transformers would fill
    missing weights with random values and drop unexpected ones with only a warning (e.g. W2V-BERT weights in a
    DINOv2 folder load as a random DINOv2, labelled "pretrained").

    Raises
    ------
    WeightsUnavailableError
        Naming the folder/id: another architecture's config, or missing / unexpected / mis-shaped weights.
    """
    model, info = model_class.from_pretrained(path, local_files_only=local_only, output_loading_info=True)
    model_type = getattr(model.config, "model_type", "")
    if model_type not in _MODEL_TYPES[kind]:
        raise WeightsUnavailableError(f"{path}: holds a {model_type or 'unknown'} checkpoint, expected {label}")
    problems = []
    for key, text in (("missing_keys", "missing"), ("unexpected_keys", "unexpected"),
                      ("mismatched_keys", "of the wrong shape")):
        names = [k if isinstance(k, str) else k[0] for k in (info.get(key) or [])]
        if names:
            problems.append(f"{len(names)} {text} (e.g. {names[0]})")
    if problems:
        raise WeightsUnavailableError(f"{path}: weights do not fit the {label} architecture in its config.json: "
                                      f"{'; '.join(problems)} (another model's weights, or a damaged checkpoint)")
    return model


def _is_standin(config) -> bool:
    return bool(getattr(config, STANDIN_FLAG, False))


def _load_backbone(name: str, kind: str, label: str, model_class, processor_class, device, bf16,
                   precision) -> LoadedBackbone:
    """Resolve, load, check and place one backbone (the shared body of :func:`load_dinov2`/:func:`load_w2v_bert`)."""
    path, source, local_only = resolve_weights(name, kind)
    torch_device = pick_device(device)
    chosen = resolve_precision(precision, torch_device, bf16)
    try:
        model = _load_checked(model_class, path, local_only, kind, label)
        processor = processor_class.from_pretrained(path, local_files_only=local_only)
    except WeightsUnavailableError:
        raise
    except Exception as exc:
        raise WeightsUnavailableError(f"{path}: cannot load {label} weights ({str(exc).splitlines()[0][:200]})") from None
    standin = _is_standin(model.config)
    model, dtype = place_model(model, torch_device, chosen)
    return LoadedBackbone(model, processor, source, name, standin, torch_device, dtype, chosen)


def load_dinov2(name: str = DEFAULT_DINOV2, device: str | None = "auto", bf16: bool | None = None,
                precision: str | None = "auto") -> LoadedBackbone:
    """Load a DINOv2 ViT (any size, with or without registers) and its image processor.

    Raises
    ------
    WeightsUnavailableError
        If the weights cannot be found (see :func:`resolve_weights`), fail to load (corrupt files), belong to
        another architecture, or leave any weight missing or unexpected.
    OptionError
        Bad device or precision (:func:`resolve_precision`; ``bf16`` is its deprecated alias).
    """
    from transformers import AutoImageProcessor, AutoModel

    return _load_backbone(name, "dinov2", "DINOv2", AutoModel, AutoImageProcessor, device, bf16, precision)


def load_w2v_bert(name: str = DEFAULT_W2V_BERT, device: str | None = "auto", bf16: bool | None = None,
                  precision: str | None = "auto") -> LoadedBackbone:
    """Load a Wav2Vec2-BERT encoder (``Wav2Vec2BertModel``) and its ``SeamlessM4TFeatureExtractor``.

    Raises
    ------
    WeightsUnavailableError
        If the weights cannot be found, fail to load, belong to another architecture, or leave any weight missing
        or unexpected.
    OptionError
        Bad device or precision (:func:`resolve_precision`; ``bf16`` is its deprecated alias).
    """
    from transformers import AutoFeatureExtractor, Wav2Vec2BertModel

    return _load_backbone(name, "w2v-bert", "W2V-BERT", Wav2Vec2BertModel, AutoFeatureExtractor, device, bf16,
                          precision)


# ---------------------------------------------------------------- stand-ins and export

_TINY = {
    "dinov2": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                   image_size=224, patch_size=14),
    "w2v-bert": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     output_hidden_size=32, conv_depthwise_kernel_size=3, feature_projection_input_dim=160),
    "videomae": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     image_size=32, patch_size=16, num_frames=16, tubelet_size=2, use_mean_pooling=True),
}
# VideoMAE ViT-S/16 as MCG-NJU/videomae-small-finetuned-ssv2 (Tong et al. 2022): 384 wide, 12 layers, 6 heads.
_VIDEOMAE_SIZES = {"small": (384, 12, 6), "base": (768, 12, 12)}
# Real sizes, random weights: the compute of facebook/dinov2-<size> and facebook/w2v-bert-2.0 (benchmarks).
_DINOV2_SIZES = {"small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16), "giant": (1536, 40, 24)}


def _vit_params(label: str, kind: str, size: str, sizes: dict, **fixed) -> dict:
    """Config keywords of a stand-in ViT: ``_TINY[kind]`` for ``tiny``, else ``sizes[size]`` (width, layers,
    heads; MLP 4 x width) plus ``fixed``; an unknown size -> OptionError listing the known ones."""
    if size == "tiny":
        return dict(_TINY[kind])
    if size not in sizes:
        known = ["tiny", *sizes]
        raise OptionError(f"unknown {label} size {size!r}: {', '.join(known[:-1])} or {known[-1]}")
    hidden, layers, heads = sizes[size]
    return dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=4 * hidden,
                **fixed)


def save_standin(kind: str, out_dir: str | os.PathLike, size: str = "tiny", seed: int = 0) -> Path:
    """Save a random checkpoint of the real architecture class into ``out_dir`` and return it.

    Parameters
    ----------
    kind : "dinov2", "w2v-bert" or "resnet" (``ResNetModel``, the cry-reason face branch)
    size : "tiny" (test-sized, seconds on CPU) or, for benchmarks, the real sizes: "small"/"base"/"large"/"giant"
        for DINOv2, "full" for W2V-BERT 2.0 (600M parameters) and ResNet-50.

    The saved config has ``nova_infant_standin: true``; the processor is the one the real checkpoints ship
    (``BitImageProcessor`` with ImageNet mean/std for DINOv2, ``SeamlessM4TFeatureExtractor`` for W2V-BERT).
    """
    import torch
    from transformers import (BitImageProcessor, Dinov2Config, Dinov2Model, SeamlessM4TFeatureExtractor,
                              Wav2Vec2BertConfig, Wav2Vec2BertModel)

    if kind not in ("dinov2", "w2v-bert", "resnet", "videomae"):
        raise OptionError(f"unknown backbone kind {kind!r}: dinov2, w2v-bert, resnet or videomae")
    torch.manual_seed(seed)
    out = Path(out_dir)
    # never over real weights or another kind: a folder of kind standin-<kind> only (core.write_policy)
    with atomic_dir(out, f"standin-{kind}") as tmp:
        if kind == "dinov2":
            params = _vit_params("DINOv2", "dinov2", size, _DINOV2_SIZES, image_size=518, patch_size=14)
            config = Dinov2Config(**params, **{STANDIN_FLAG: True})
            Dinov2Model(config).save_pretrained(tmp)
            BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}, do_center_crop=True,
                              image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(tmp)
        elif kind == "w2v-bert":
            if size == "tiny":
                config = Wav2Vec2BertConfig(**_TINY["w2v-bert"], **{STANDIN_FLAG: True})
            elif size == "full":
                config = Wav2Vec2BertConfig(**{STANDIN_FLAG: True})
            else:
                raise OptionError(f"unknown W2V-BERT size {size!r}: tiny or full")
            Wav2Vec2BertModel(config).save_pretrained(tmp)
            SeamlessM4TFeatureExtractor().save_pretrained(tmp)
        elif kind == "resnet":  # cry-reason face branch (seed 003): a tiny ResNet with ResNet-50's bottleneck layers
            from transformers import ResNetConfig, ResNetModel

            config = ResNetConfig(embedding_size=8, hidden_sizes=[16, 16, 32, 32], depths=[1, 1, 1, 1], layer_type="bottleneck",
                                  **{STANDIN_FLAG: True}) if size == "tiny" else ResNetConfig(**{STANDIN_FLAG: True})
            ResNetModel(config).save_pretrained(tmp)
        elif kind == "videomae":
            from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor

            params = _vit_params("VideoMAE", "videomae", size, _VIDEOMAE_SIZES, image_size=224, num_frames=16,
                                 use_mean_pooling=True)
            # 174 classes like the SSV2 fine-tuned checkpoints, so loading exercises the head replacement
            config = VideoMAEConfig(**params, num_labels=174, **{STANDIN_FLAG: True})
            VideoMAEForVideoClassification(config).save_pretrained(tmp)
            side = params["image_size"]
            VideoMAEImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side},
                                   image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(tmp)
    return out


def export_weights(name: str, out_dir: str | os.PathLike, kind: str | None = None) -> Path:
    """Download (or copy from the cache) ``name`` and save model + processor into ``out_dir``.

    The folder can be copied to an air-gapped machine and given as the ``model`` option. ``kind`` ("dinov2" or
    "w2v-bert") is guessed from the name when omitted.

    Raises
    ------
    WeightsUnavailableError
        If the weights cannot be found or downloaded.
    OptionError
        If the kind cannot be guessed.
    """
    kind = kind or _kind_of(name)
    out = Path(out_dir)
    check_folder(out, f"checkpoint-{kind}")  # before the download
    if kind == "videomae":  # the checkpoint as published (its own head), not the regression model built on it
        from transformers import AutoImageProcessor, VideoMAEConfig

        path, _, local_only = resolve_weights(name, "videomae")
        try:
            model_class = _videomae_class(VideoMAEConfig.from_pretrained(path, local_files_only=local_only))
            model = _load_checked(model_class, path, local_only, "videomae", "VideoMAE")
            processor = AutoImageProcessor.from_pretrained(path, local_files_only=local_only)
        except WeightsUnavailableError:
            raise
        except Exception as exc:
            raise WeightsUnavailableError(f"{path}: cannot load VideoMAE weights ({str(exc).splitlines()[0][:200]})") from None
        with atomic_dir(out, f"checkpoint-{kind}") as tmp:
            model.save_pretrained(tmp)
            processor.save_pretrained(tmp)
        return out
    backbone = (load_dinov2 if kind == "dinov2" else load_w2v_bert)(name, device="cpu", precision="fp32")
    with atomic_dir(out, f"checkpoint-{kind}") as tmp:  # written atomically; never over a folder not ours
        backbone.model.save_pretrained(tmp)
        backbone.processor.save_pretrained(tmp)
    return out


def _videomae_class(config):
    """The transformers class a VideoMAE checkpoint was saved from (its ``architectures`` entry)."""
    import transformers

    names = list(getattr(config, "architectures", None) or ["VideoMAEModel"])
    cls = getattr(transformers, names[0], None)
    if cls is None or not names[0].startswith("VideoMAE"):
        raise WeightsUnavailableError(f"unknown VideoMAE architecture {names[0]!r}")
    return cls


def _kind_of(name: str) -> str:
    text = name.lower()
    if "dinov2" in text:
        return "dinov2"
    if "w2v-bert" in text or "wav2vec2-bert" in text or "wav2vec2_bert" in text:
        return "w2v-bert"
    if "videomae" in text:
        return "videomae"
    raise OptionError(f"{name}: cannot tell whether this is a DINOv2, W2V-BERT or VideoMAE checkpoint; pass --kind")
