"""Ground-truth depth made worse in one controlled way: the depth-quality axis of the study.

How good must predicted depth be before it helps DAISnet? Each degradation turns the synthetic
ground truth into a depth source of known quality, one defect at a time, at a `level`:
- `noise`: per-pixel log-normal noise, d * exp(level * e), e ~ N(0, 1) per pixel (level = sigma);
- `resolution`: block means over level x level pixels, then bilinear up to the full size (half-pixel
  centres), as BTS at input scale 1/level does: soft object edges, right values far from them;
- `scale`: one log-normal factor per image, d * exp(level * e), e ~ N(0, 1) per image: the metric
  scale error of a monocular network, shape untouched.

The draws depend only on the image's index and the kind, never on the training seed or the level:
every level of a kind applies the same pattern, scaled, and two runs get the same store. Computed in
float64 with numpy's elementwise operations, so the bytes do not depend on the CPU's vector kernels.
"""

from __future__ import annotations

import numpy as np

from daisnet.params import DEGRADATIONS, check_degradation

_SEED = 20261204  # fixed: the degradation is part of the source, not of a training run


def _standard_normal(kind: str, index: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng([_SEED, DEGRADATIONS.index(kind), int(index)]).standard_normal(shape)


def _block_mean_bilinear(depth: np.ndarray, factor: int) -> np.ndarray:
    """(h, w) -> block means over factor x factor (edge-padded), bilinearly up-sampled back to (h, w)."""
    h, w = depth.shape
    low_h, low_w = -(-h // factor), -(-w // factor)
    padded = np.pad(depth, ((0, low_h * factor - h), (0, low_w * factor - w)), mode="edge")
    low = padded.reshape(low_h, factor, low_w, factor).mean(axis=(1, 3))

    def axis_weights(n: int, n_low: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Half-pixel centres (align_corners=False): output pixel i sits at (i + 0.5) / factor - 0.5 of the
        # low-resolution grid; clamped at the borders.
        pos = np.clip((np.arange(n) + 0.5) / factor - 0.5, 0, n_low - 1)
        first = np.floor(pos).astype(np.int64)
        second = np.minimum(first + 1, n_low - 1)
        return first, second, pos - first

    r0, r1, fr = axis_weights(h, low_h)
    c0, c1, fc = axis_weights(w, low_w)
    rows = low[r0] * (1 - fr)[:, None] + low[r1] * fr[:, None]
    return rows[:, c0] * (1 - fc)[None, :] + rows[:, c1] * fc[None, :]


def degrade_depth(depth: np.ndarray, sizes: np.ndarray, first_index: int, kind: str, level: float) -> np.ndarray:
    """Degrade a block of canvas depth maps (B, H, W) in metres whose true sizes are `sizes` (B, 2), the
    block starting at image `first_index` of its split; outside each true size the result is 0."""
    check_degradation(kind, level)
    out = np.zeros(depth.shape, dtype=np.float32)
    for i, (h, w) in enumerate(np.asarray(sizes, dtype=np.int64)):
        d = np.asarray(depth[i, :h, :w], dtype=np.float64)
        if kind == "noise":
            d = d * np.exp(level * _standard_normal(kind, first_index + i, (int(h), int(w))))
        elif kind == "scale":
            d = d * np.exp(level * _standard_normal(kind, first_index + i, (1,))[0])
        else:
            d = _block_mean_bilinear(d, int(level))
        out[i, :h, :w] = d
    return out
