"""RGB statistics of a train split (eq. 2): what normalizes the images of a model trained from random weights."""

from __future__ import annotations

import numpy as np

from daisnet.data.prepared import PreparedStore


def rgb_statistics(store: PreparedStore, max_images: int = 200) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel RGB mean and std in [0, 1] over (up to `max_images` evenly spaced) train images (eq. 2)."""
    count = len(store)
    indices = np.linspace(0, count - 1, min(count, max_images)).round().astype(int)
    total = np.zeros(3)
    total_sq = np.zeros(3)
    pixels = 0
    for i in np.unique(indices):
        image = store.image(int(i)).reshape(-1, 3).astype(np.float64) / 255.0
        total += image.sum(0)
        total_sq += (image**2).sum(0)
        pixels += image.shape[0]
    mean = total / pixels
    std = np.sqrt(np.maximum(total_sq / pixels - mean**2, 1e-12))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
