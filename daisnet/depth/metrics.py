"""Depth metrics of the Eigen protocol, as BTS reports them, and the constant-depth baseline.

Per image, over valid pixels (min_depth < gt <= max_depth, finite), with the prediction clipped to
[min_depth, max_depth] first; then averaged over images (each image counts once, as in BTS's
evaluation, not each pixel).
- abs_rel = mean |d - g| / g;  sq_rel = mean (d - g)^2 / g
- rmse = sqrt mean (d - g)^2;  rmse_log = sqrt mean (ln d - ln g)^2
- log10 = mean |log10 d - log10 g|;  silog = 100 sqrt(mean e^2 - (mean e)^2), e = ln d - ln g
- delta1..3 = share of pixels with max(d / g, g / d) < 1.25, 1.25^2, 1.25^3
"""

from __future__ import annotations

import numpy as np

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog", "delta1", "delta2", "delta3")


def valid_mask(gt: np.ndarray, min_depth: float = 1e-3, max_depth: float = 80.0) -> np.ndarray:
    return np.isfinite(gt) & (gt > min_depth) & (gt <= max_depth)


def image_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None,
                  min_depth: float = 1e-3, max_depth: float = 80.0) -> dict[str, float]:
    """The metrics of one image (arrays of the same shape, metres)."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    mask = valid_mask(gt, min_depth, max_depth)
    if valid is not None:
        mask &= valid
    if not mask.any():
        raise ValueError("no valid ground-truth pixel")
    g = gt[mask].astype(np.float64)
    d = np.clip(pred[mask].astype(np.float64), min_depth, max_depth)
    ratio = np.maximum(d / g, g / d)
    err = np.log(d) - np.log(g)
    return {
        "abs_rel": float(np.mean(np.abs(d - g) / g)),
        "sq_rel": float(np.mean((d - g) ** 2 / g)),
        "rmse": float(np.sqrt(np.mean((d - g) ** 2))),
        "rmse_log": float(np.sqrt(np.mean(err**2))),
        "log10": float(np.mean(np.abs(np.log10(d) - np.log10(g)))),
        "silog": float(100 * np.sqrt(max(np.mean(err**2) - np.mean(err) ** 2, 0.0))),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25**2)),
        "delta3": float(np.mean(ratio < 1.25**3)),
    }


class DepthMetrics:
    """Accumulates per-image metrics; `summary()` is the mean over images."""

    def __init__(self, min_depth: float = 1e-3, max_depth: float = 80.0) -> None:
        self.min_depth = min_depth
        self.max_depth = max_depth
        self._sums = dict.fromkeys(METRIC_NAMES, 0.0)
        self.count = 0

    def update(self, pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add one image (H, W) or a batch (B, H, W)."""
        if pred.ndim == 2:
            pred, gt = pred[None], gt[None]
            valid = None if valid is None else valid[None]
        for i in range(pred.shape[0]):
            m = image_metrics(pred[i], gt[i], None if valid is None else valid[i], self.min_depth, self.max_depth)
            for k, v in m.items():
                self._sums[k] += v
            self.count += 1

    def summary(self) -> dict[str, float]:
        if not self.count:
            raise ValueError("no image was evaluated")
        return {k: self._sums[k] / self.count for k in METRIC_NAMES}


class PixelMean:
    """The best input-independent prediction under squared error: the mean depth at each pixel over
    a set of images, accumulated batch by batch; pixels never valid get the overall mean."""

    def __init__(self) -> None:
        self._sums: np.ndarray | None = None
        self._counts: np.ndarray | None = None

    def update(self, depth: np.ndarray, valid: np.ndarray) -> None:
        """Add a batch (B, H, W) of depths with their valid masks."""
        sums = np.where(valid, depth, 0.0).sum(axis=0, dtype=np.float64)
        counts = valid.sum(axis=0, dtype=np.int64)
        if self._sums is None:
            self._sums, self._counts = sums, counts
        else:
            if sums.shape != self._sums.shape:
                raise ValueError(f"image size {sums.shape} differs from {self._sums.shape}")
            self._sums += sums
            self._counts += counts

    def value(self) -> np.ndarray:
        if self._sums is None or self._counts is None or not self._counts.any():
            raise ValueError("no valid pixel was seen")
        overall = self._sums.sum() / self._counts.sum()
        return np.where(self._counts > 0, self._sums / np.maximum(self._counts, 1), overall).astype(np.float32)
