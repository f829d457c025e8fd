"""Regional depth normalization (eq. 4-5), as resolved in shared/DESIGN.md.

For k = 0..Dm-1: `x_k = d / Ds + k / Dm` (d in metres, Ds the step in metres, Dm the number of
offset maps), and `map_k = x_k - floor(x_k)` with `floor` the hard floor (eq. 4, divided by Ds: a
saw-tooth in [0, 1)) or the soft floor of eq. 5. With the soft floor
`map_k = sin(2 pi x_k) / (2 pi)`: a sinusoid in [-1/(2 pi), 1/(2 pi)] whose phases are spread by
2 pi / Dm, i.e. map_k(d) = map_0(d + k Ds / Dm). Both are periodic in d with period Ds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Floor = Literal["soft", "hard"]
FLOORS: tuple[str, ...] = ("soft", "hard")


def hard_floor(x: np.ndarray) -> np.ndarray:
    """Eq. 4's floor: the greatest integer not above x."""
    return np.floor(x)


def soft_floor(x: np.ndarray) -> np.ndarray:
    """Eq. 5: `y = x - sin(2 pi x) / (2 pi)`: equal to floor(x) = x at integers, monotone, with zero
    slope at integers, so the steps between regions are smooth instead of hard edges."""
    return x - np.sin(2.0 * np.pi * x) / (2.0 * np.pi)


def regional_phases(depth: np.ndarray, step: float, offsets: int) -> np.ndarray:
    """`x_k = d / Ds + k / Dm` for k = 0..Dm-1 (eq. 4's argument with the offsets of §3.3);
    shape (Dm, *depth.shape), in the depth's float type.

    float32 depth stays float32: ~10x faster than float64 (SIMD sin), and for x < 100 (d < 100 Ds)
    the error of x_k is under 1e-5, below the float16 storage step of the maps (docs/features.md)."""
    depth = np.asarray(depth)
    dtype = depth.dtype if depth.dtype in (np.float32, np.float64) else np.float64
    k = np.arange(offsets, dtype=dtype).reshape((offsets,) + (1,) * depth.ndim)
    return depth.astype(dtype, copy=False)[None] / dtype.type(step) + k / dtype.type(offsets)


def regional_maps(depth: np.ndarray, step: float = 3.0, offsets: int = 4, floor: Floor = "soft") -> np.ndarray:
    """Eq. 4-5: the Dm regional maps `x_k - floor(x_k)` of a depth map in metres, float32 (Dm, ...)
    (computed in the depth's float type)."""
    if floor not in FLOORS:
        raise ValueError(f"floor must be one of {FLOORS}, not {floor!r}")
    x = regional_phases(depth, step, offsets)
    if floor == "hard":
        maps = x - hard_floor(x)
    else:
        # x - soft_floor(x), written directly: identical, and free of the cancellation of
        # subtracting two large numbers at far depths.
        # In float64, rounded once: float32 sin kernels differ by CPU in the last bit (see log_depth).
        x64 = x.astype(np.float64)
        maps = np.sin((2.0 * np.pi) * x64) / (2.0 * np.pi)
    return maps.astype(np.float32)


def standardize_maps(maps: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Each regional map z-scored with the train split's per-channel mean and std, as log depth is
    (eq. 3). Not in the paper: eq. 4-5's soft maps span only +-1/(2 pi) (std ~0.11 on our data)
    while every other input channel has std ~1, so the backbone would see them almost silent
    (docs/features.md; `features.regional.normalize: false` gives the literal maps)."""
    mean32 = np.asarray(mean, dtype=np.float32).reshape(-1, *(1,) * (maps.ndim - 1))
    std32 = np.asarray(std, dtype=np.float32).reshape(-1, *(1,) * (maps.ndim - 1))
    return (maps - mean32) / std32
