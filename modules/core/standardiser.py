"""THE per-feature standardiser of the package: ``(x - mean) / scale`` with scikit-learn ``StandardScaler``
semantics (population standard deviation; a constant feature gets scale 1), fitted in one streamed pass so a
dataset larger than memory can be standardised. Used by the ICEP-R trainer (per fold or per session) and the
tagger heads (fitted on the training set only, saved with the head)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np


@dataclass
class Standardiser:
    """Per-feature standardisation ``(x - mean) / scale``.

    Attributes
    ----------
    mean, scale : ndarray (dim,), float32
        Feature means and standard deviations (scale > 0).
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def from_blocks(cls, blocks: Iterable[np.ndarray], dim: int | None = None,
                    min_scale: float = 1e-8) -> "Standardiser":
        """Fit over row blocks streamed once (float64 sums; no block is kept).

        Parameters
        ----------
        blocks : iterable of ndarray (n_i, dim)
            Feature rows, any float dtype.
        dim : int, optional
            Feature count, used when ``blocks`` is empty (mean 0, scale 1).
        min_scale : float
            Standard deviations below this become 1 (constant features pass through centred).

        Returns
        -------
        Standardiser

        Raises
        ------
        ValueError
            If blocks disagree in width, or no block and no ``dim`` are given.
        """
        total, sums, squares = 0, None, None
        for block in blocks:
            block = np.asarray(block, np.float64).reshape(len(block), -1)
            if sums is None:
                sums, squares = np.zeros(block.shape[1]), np.zeros(block.shape[1])
            elif block.shape[1] != len(sums):
                raise ValueError(f"rows of {block.shape[1]} features after rows of {len(sums)}")
            total += len(block)
            sums += block.sum(0)
            squares += np.square(block).sum(0)
        if sums is None:
            if dim is None:
                raise ValueError("no rows to fit a standardiser on")
            sums, squares = np.zeros(dim), np.zeros(dim)
        mean = sums / max(total, 1)
        scale = np.sqrt(np.maximum(squares / max(total, 1) - mean ** 2, 0.0))
        scale[scale < min_scale] = 1.0
        return cls(mean.astype(np.float32), scale.astype(np.float32))

    @classmethod
    def from_array(cls, x: np.ndarray, min_scale: float = 1e-8) -> "Standardiser":
        """Fit on rows ``x`` (n, dim) held in memory (see :meth:`from_blocks`)."""
        x = np.asarray(x)
        return cls.from_blocks([x.reshape(len(x), -1)], x.shape[-1] if x.ndim else None, min_scale)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Standardise ``x`` (..., dim): float32 of the same shape."""
        return ((np.asarray(x, np.float32) - self.mean) / self.scale).astype(np.float32, copy=False)

    def to_json(self) -> dict:
        """``{"method": "standard", "mean": [...], "scale": [...]}``."""
        return {"method": "standard", "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_json(cls, doc: dict):
        """Inverse of :meth:`to_json` (raises ``KeyError``/``ValueError`` on a malformed document)."""
        return cls(np.asarray(doc["mean"], np.float32), np.asarray(doc["scale"], np.float32))
