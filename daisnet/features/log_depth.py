"""Log depth and its z-normalization with train-split statistics (eq. 2-3): the "DN" input.

Statistics are accumulated per block as (count, mean, M2) in float64 and merged with Chan et al.'s
parallel formula, so that they are exact whatever the block order and never need the whole split in
memory. Only pixels inside each image's true size count (canvas padding is no scene).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def log_depth(depth: np.ndarray) -> np.ndarray:
    """Eq. 3: `d_l = log10(d)`, depth in metres (must be > 0), as float32.

    Computed in float64 and rounded once: numpy's float32 log10 kernels differ by CPU (AVX-512 vs
    the x86-64 baseline) in the last bit, and float16 storage turned that into different bytes for
    0.04% of the pixels. float64's last-bit differences reach float32 only at a rounding tie
    (about 1 value in 5e8). tests/test_data_bytes.py checks the bytes under both kernel sets.
    """
    return np.log10(np.asarray(depth, dtype=np.float64)).astype(np.float32)


def z_normalize(x: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Eq. 2: `z = (x - mu) / sigma` with dataset (train-split) statistics, as float32."""
    return ((x - np.float32(mean)) / np.float32(std)).astype(np.float32, copy=False)


@dataclass(frozen=True)
class Moments:
    """Running statistics of a set of values: count, mean and sum of squared deviations (M2)."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @staticmethod
    def of(values: np.ndarray) -> Moments:
        """Moments of a block of values (computed in float64)."""
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size == 0:
            return Moments()
        mean = float(values.mean())
        return Moments(int(values.size), mean, float(((values - mean) ** 2).sum()))

    def merge(self, other: Moments) -> Moments:
        """Chan et al.'s pairwise update: moments of the union of both sets."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / count
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / count
        return Moments(count, mean, m2)

    @property
    def std(self) -> float:
        """Population standard deviation (eq. 2's sigma over all pixels)."""
        return float(np.sqrt(self.m2 / self.count)) if self.count else 0.0
