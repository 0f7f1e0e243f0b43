"""ICEP-R classifiers. Both map a window of frames (batch, T, dim) float32 to logits (batch, T, n_classes).

- :class:`BiLSTMSeq2Seq`: ICMI'24 ICEP-R paper, section 4.3 / appendix (2-layer bi-LSTM, hidden 128, dropout between
  layers, a linear layer per time step; sequence to sequence over windows of 50 frames with stride 25).
- :class:`PaperMLP`: the paper's "linear" classifier (appendix): 512-256-128, GELU and dropout after each layer,
  applied to every frame on its own (no temporal context).
"""

from __future__ import annotations

import torch
from torch import nn


class BiLSTMSeq2Seq(nn.Module):
    """Bidirectional LSTM with one prediction per time step.

    Parameters
    ----------
    in_dim : int -- fused feature dimension
    n_classes : int
    hidden : int -- LSTM units per direction (paper: 128)
    layers : int -- stacked LSTM layers (paper: 2)
    dropout : float -- between LSTM layers and before the output layer (paper: 0.25)
    """

    def __init__(self, in_dim: int, n_classes: int, hidden: int = 128, layers: int = 2, dropout: float = 0.25):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, T, in_dim) -> logits (batch, T, n_classes)."""
        out, _ = self.lstm(x)
        return self.head(self.dropout(out))


class PaperMLP(nn.Module):
    """Per-frame MLP: Linear-GELU-Dropout blocks of widths ``hidden`` then a linear output layer.

    Parameters
    ----------
    in_dim, n_classes : int
    hidden : tuple of int -- paper: (512, 256, 128)
    dropout : float
    """

    def __init__(self, in_dim: int, n_classes: int, hidden=(512, 256, 128), dropout: float = 0.3):
        super().__init__()
        layers, width = [], in_dim
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.GELU(), nn.Dropout(dropout)]
            width = int(h)
        layers.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, T, in_dim) -> logits (batch, T, n_classes)."""
        return self.net(x)


def build_model(arch: dict) -> nn.Module:
    """Model from its architecture config ``{"model": "bilstm"|"mlp", "in_dim", "n_classes", ...}``.

    Raises
    ------
    ValueError
        For an unknown model name.
    """
    kind = arch["model"]
    if kind == "bilstm":
        return BiLSTMSeq2Seq(arch["in_dim"], arch["n_classes"], arch.get("hidden", 128), arch.get("layers", 2),
                             arch.get("dropout", 0.25))
    if kind == "mlp":
        return PaperMLP(arch["in_dim"], arch["n_classes"], tuple(arch.get("mlp_hidden", (512, 256, 128))),
                        arch.get("dropout", 0.3))
    raise ValueError(f"unknown model {kind!r} (choose bilstm or mlp)")
