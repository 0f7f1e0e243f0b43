"""Models of seed 003 (Cha & Bae, §3.4-3.5), in PyTorch.

- :class:`DenoisingAutoencoder` + :class:`AudioReasonNet`: the audio sub-model. The autoencoder is pre-trained to
  reconstruct clean window features from noisy ones (Vincent et al. 2008, the paper's ref. 18); its encoder then
  feeds a small DNN from the bottleneck (paper Fig. 2), trained with RMSProp and class-weighted cross-entropy.
- :class:`FaceHead`: the trainable head on frozen ImageNet ResNet-50 feature maps (pooling -> flatten -> dense ->
  softmax, §3.5); backbone via :func:`load_resnet50`.
- :class:`FusionNet`: the late-fusion "concatenate" model over the sub-models' class probabilities (concatenate ->
  flatten -> dense ReLU -> softmax, §3.5).
- :func:`rolling_average`: rolling prediction averaging over a deque of past predictions (§3.5, ref. 22).

Sizes (the paper gives none): encoder dim -> 128 -> 32 bottleneck, DNN 32 -> 32 -> classes, fusion hidden 16; small
because the Donate-a-cry reason classes have 7-19 clips each.
"""

from __future__ import annotations

import collections

import numpy as np

from nova_infant.core.backbones import _is_standin, _load_checked, pick_device, resolve_weights
from nova_infant.core.errors import OptionError, WeightsUnavailableError

AE_HIDDEN = 128
BOTTLENECK = 32
DNN_HIDDEN = 32
FUSION_HIDDEN = 16
FACE_HIDDEN = 256
NOISE_STD = 0.1


def _torch():
    import torch

    return torch


class one_thread:
    """Run torch on one intra-op thread inside the block: these nets are tiny, and on a busy machine extra threads
    only wait on each other (measured: 10 autoencoder epochs 34 s with 2 threads, 0.3 s with 1, load 11 on 2 cores)."""

    def __enter__(self):
        torch = _torch()
        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        _torch().set_num_threads(self.before)


def build_autoencoder(dim: int):
    """A denoising autoencoder for ``dim`` inputs (scaled to 0..1; sigmoid output). Vincent et al. 2008.

    Parameters
    ----------
    dim : int
        Window feature length (40 MFCC, 258 STFT).

    Returns
    -------
    torch.nn.Module
        ``encoder`` (B, dim) -> (B, 32), ``decoder`` (B, 32) -> (B, dim); ``forward`` reconstructs.
    """
    import torch.nn as nn

    class DenoisingAutoencoder(nn.Module):
        """encoder: dim -> 128 -> 32 (ReLU); decoder: 32 -> 128 -> dim (sigmoid). Input/output (B, dim) float32."""

        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(dim, AE_HIDDEN), nn.ReLU(), nn.Linear(AE_HIDDEN, BOTTLENECK),
                                         nn.ReLU())
            self.decoder = nn.Sequential(nn.Linear(BOTTLENECK, AE_HIDDEN), nn.ReLU(), nn.Linear(AE_HIDDEN, dim),
                                         nn.Sigmoid())

        def forward(self, x):
            return self.decoder(self.encoder(x))

    return DenoisingAutoencoder()


def build_audio_net(dim: int, n_classes: int):
    """The audio sub-model: the autoencoder's encoder + DNN head (seed 003 Fig. 2).

    Parameters
    ----------
    dim : int
        Window feature length.
    n_classes : int

    Returns
    -------
    torch.nn.Module
        ``autoencoder`` (pre-train it first) and ``head``; ``forward`` (B, dim) float32 -> logits (B, n_classes).
    """
    import torch.nn as nn

    class AudioReasonNet(nn.Module):
        """encoder (from the denoising autoencoder) -> Linear(32, 32) ReLU Dropout(0.3) -> Linear(32, C)."""

        def __init__(self):
            super().__init__()
            self.autoencoder = build_autoencoder(dim)
            self.head = nn.Sequential(nn.Linear(BOTTLENECK, DNN_HIDDEN), nn.ReLU(), nn.Dropout(0.3),
                                      nn.Linear(DNN_HIDDEN, n_classes))

        def forward(self, x):
            return self.head(self.autoencoder.encoder(x))

    return AudioReasonNet()


def build_fusion(n_inputs: int, n_classes: int):
    """The concatenate model (seed 003 §3.5): concatenate -> flatten -> dense ReLU -> output.

    Parameters
    ----------
    n_inputs : int
        Number of sub-models (2 audio, 3 with the face).
    n_classes : int

    Returns
    -------
    torch.nn.Module
        (B, n_inputs, C) sub-model probabilities -> logits (B, C).
    """
    import torch.nn as nn

    return nn.Sequential(nn.Flatten(), nn.Linear(n_inputs * n_classes, FUSION_HIDDEN), nn.ReLU(),
                         nn.Linear(FUSION_HIDDEN, n_classes))


def build_face_head(channels: int, n_classes: int):
    """The face head on frozen ResNet feature maps: global average pooling -> flatten -> Linear(channels, 256)
    ReLU -> Linear(256, C) logits (softmax applied by the caller). Seed 003 §3.5.

    Parameters
    ----------
    channels : int
        Feature-map channels (2048 for ResNet-50).
    n_classes : int

    Returns
    -------
    torch.nn.Module
        (B, channels, h, w) float32 -> logits (B, n_classes).
    """
    import torch.nn as nn

    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, FACE_HIDDEN), nn.ReLU(),
                         nn.Dropout(0.3), nn.Linear(FACE_HIDDEN, n_classes))


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced class weights ``n / (C * count)`` (scikit-learn's "balanced"); classes absent from ``y`` get 0.

    Parameters
    ----------
    y : ndarray of shape (n,), int class ids
    n_classes : int

    Returns
    -------
    ndarray of shape (n_classes,), float32
    """
    counts = np.bincount(np.asarray(y, np.int64), minlength=n_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    return w.astype(np.float32)


def _batches(n: int, batch: int, rng: np.random.Generator):
    order = rng.permutation(n)
    for i in range(0, n, batch):
        yield order[i:i + batch]


def pretrain_autoencoder(ae, x: np.ndarray, epochs: int, seed: int = 0, lr: float = 1e-3, batch: int = 64) -> list:
    """Denoising pre-training: MSE between ``ae(x + N(0, 0.1))`` and ``x``, RMSProp.

    Parameters
    ----------
    ae : module from :func:`build_autoencoder`
    x : ndarray of shape (n, dim), float32, scaled 0..1
    epochs, seed, batch : int
    lr : float

    Returns
    -------
    list of float
        Mean reconstruction loss per epoch.
    """
    torch = _torch()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    xt = torch.as_tensor(np.asarray(x, np.float32))
    opt = torch.optim.RMSprop(ae.parameters(), lr=lr)
    losses = []
    ae.train()
    with one_thread():
        _fit_ae(ae, xt, opt, losses, epochs, batch, rng)
    ae.eval()
    return losses


def _fit_ae(ae, xt, opt, losses, epochs, batch, rng):
    torch = _torch()
    for _ in range(epochs):
        total = 0.0
        for idx in _batches(len(xt), batch, rng):
            clean = xt[idx]
            noisy = clean + NOISE_STD * torch.randn_like(clean)
            loss = torch.nn.functional.mse_loss(ae(noisy), clean)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(xt))


def train_classifier(net, x: np.ndarray, y: np.ndarray, n_classes: int, epochs: int, seed: int = 0,
                     lr: float = 1e-3, batch: int = 64, weights: np.ndarray | None = None) -> list:
    """Class-weighted cross-entropy training with RMSProp (seed 003 §3.5).

    Parameters
    ----------
    net : module giving logits (B, n_classes)
    x : ndarray of shape (n, ...), float32
    y : ndarray of shape (n,), int class ids
    n_classes, epochs, seed, batch : int
    lr : float
    weights : ndarray of shape (n_classes,), optional
        Default :func:`class_weights` of ``y`` (fitted on the training data given).

    Returns
    -------
    list of float
        Mean loss per epoch.
    """
    torch = _torch()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 1)
    xt = torch.as_tensor(np.asarray(x, np.float32))
    yt = torch.as_tensor(np.asarray(y, np.int64))
    w = torch.as_tensor(class_weights(y, n_classes) if weights is None else weights)
    opt = torch.optim.RMSprop([p for p in net.parameters() if p.requires_grad], lr=lr)
    losses = []
    net.train()
    with one_thread():
        _fit_clf(net, xt, yt, w, opt, losses, epochs, batch, rng)
    net.eval()
    return losses


def _fit_clf(net, xt, yt, w, opt, losses, epochs, batch, rng):
    torch = _torch()
    for _ in range(epochs):
        total = 0.0
        for idx in _batches(len(xt), batch, rng):
            loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx], weight=w)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(xt))


def predict_proba(net, x: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Softmax probabilities of a classifier net.

    Parameters
    ----------
    net : module giving logits
    x : ndarray of shape (n, ...), float32
    batch : int

    Returns
    -------
    ndarray of shape (n, C), float32
    """
    torch = _torch()
    out = []
    net.eval()
    with torch.no_grad(), one_thread():
        for i in range(0, len(x), batch):
            out.append(torch.softmax(net(torch.as_tensor(np.asarray(x[i:i + batch], np.float32))), -1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def fit_audio_model(x: np.ndarray, y: np.ndarray, n_classes: int, epochs_ae: int = 40, epochs: int = 40,
                    seed: int = 0):
    """Autoencoder pre-training on ``x`` then classification from its bottleneck (encoder fine-tuned).

    Epoch defaults: 40, where the paper's audio models stopped improving (§4).

    Parameters
    ----------
    x : ndarray of shape (n, dim), float32, scaled window features
    y : ndarray of shape (n,), int class ids
    n_classes, epochs_ae, epochs, seed : int

    Returns
    -------
    torch.nn.Module
        The trained net of :func:`build_audio_net`, in eval mode.
    """
    net = build_audio_net(x.shape[1], n_classes)
    pretrain_autoencoder(net.autoencoder, x, epochs_ae, seed)
    train_classifier(net, x, y, n_classes, epochs, seed)
    return net


def rolling_average(probs: np.ndarray, size: int) -> np.ndarray:
    """Rolling prediction average (seed 003 §3.5, after Rosebrock's video classification): a deque holds the last
    ``size`` predictions; output row i is the mean of rows max(0, i-size+1)..i. ``size`` 0 = all rows so far.

    Parameters
    ----------
    probs : float (n, C) class probabilities in time order
    size : int >= 0, deque length in predictions

    Returns
    -------
    float32 (n, C); argmax of a row is the label shown at that time.

    Raises
    ------
    OptionError
        If ``size`` is negative.
    """
    if size < 0:
        raise OptionError(f"rolling average size {size}: must be >= 0 (0 = whole segment)")
    q: collections.deque = collections.deque(maxlen=size or None)
    out = np.zeros(np.shape(probs), np.float32)
    for i, p in enumerate(np.asarray(probs, np.float32)):
        q.append(p)
        out[i] = np.mean(q, axis=0)
    return out


# ---------------------------------------------------------------- face branch: frozen ResNet-50

DEFAULT_RESNET = "microsoft/resnet-50"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def load_resnet50(name: str = DEFAULT_RESNET, device: str = "cpu"):
    """Frozen ImageNet ResNet-50 (transformers ``ResNetModel``; weights resolved like the other backbones:
    local directory, Hugging Face cache, hub, :func:`nova_infant.core.backbones.resolve_weights`).

    Parameters
    ----------
    name : str
        Hub id or local folder (``microsoft/resnet-50``; a stand-in folder of ``save_standin("resnet", ...)``).
    device : str
        ``cpu``, ``auto``, ``cuda``, ``cuda:<n>``.

    Returns
    -------
    (model in eval mode with ``requires_grad`` False, is_standin: bool)

    Raises
    ------
    WeightsUnavailableError
        If the weights cannot be found, belong to another architecture or do not fit it.
    """
    from transformers import ResNetModel

    path, _, local_only = resolve_weights(name, "resnet")
    try:
        model = _load_checked(ResNetModel, path, local_only, "resnet", "ResNet")
    except WeightsUnavailableError:
        raise
    except Exception as exc:
        raise WeightsUnavailableError(f"{path}: cannot load ResNet weights ({str(exc).splitlines()[0][:200]})") from None
    model = model.to(pick_device(device)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, _is_standin(model.config)


def face_feature_maps(model, frames: np.ndarray, batch: int = 16) -> np.ndarray:
    """ResNet feature maps of RGB frames, resized to 224 x 224 (bilinear) and ImageNet-normalised.

    Parameters
    ----------
    model : ``ResNetModel`` from :func:`load_resnet50`
    frames : ndarray of shape (n, H, W, 3), uint8 RGB
    batch : int

    Returns
    -------
    ndarray of shape (n, channels, 7, 7), float32 (2048 channels for ResNet-50)
    """
    torch = _torch()
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(frames), batch):
            x = torch.as_tensor(np.asarray(frames[i:i + batch])).permute(0, 3, 1, 2).float() / 255.0
            x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
            x = (x - torch.as_tensor(IMAGENET_MEAN)[:, None, None]) / torch.as_tensor(IMAGENET_STD)[:, None, None]
            out.append(model(pixel_values=x.to(device)).last_hidden_state.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0, 0, 0), np.float32)
