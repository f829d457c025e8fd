"""Depth metrics of the Eigen protocol, as BTS reports them, and the constant-depth baseline.

Per image, over valid pixels (min_depth < gt <= max_depth, finite), with the prediction clipped to
[min_depth, max_depth] first; then averaged over images (each image counts once, as in BTS's
evaluation, not each pixel).
- abs_rel = mean |d - g| / g;  sq_rel = mean (d - g)^2 / g
- rmse = sqrt mean (d - g)^2;  rmse_log = sqrt mean (ln d - ln g)^2
- log10 = mean |log10 d - log10 g|;  silog = 100 sqrt(mean e^2 - (mean e)^2), e = ln d - ln g
- delta1..3 = share of pixels with max(d / g, g / d) < 1.25, 1.25^2, 1.25^3

And one metric of ours, because the N and DN inputs see depth through its normals, not its values:
- normal_angle = median angle (degrees) between the normal-tangent maps (eq. 14-22, the features
  stage's kernel) of the prediction and of the ground truth, over the pixels valid in both (every
  pixel of the kernel's window valid); per image, then averaged like the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from daisnet.errors import InputError
from daisnet.stores import canvas_mask, image_sizes, open_store, reading, require_array

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


def normal_angle_error(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None, *, kernel: int = 5,
                       dz: float = 0.8, normalize_kernel: bool = False, max_depth: float = 80.0) -> float:
    """Median angle in degrees between the normal maps of `pred` and `gt` (H, W), over the pixels whose
    whole kernel window is valid in the ground truth (`valid`, and not the sky at max_depth, whose
    "surface" is the renderer's clip, not geometry)."""
    from scipy import ndimage

    from daisnet.features.normals import normal_map

    mask = valid_mask(gt, 1e-3, max_depth) & (gt < max_depth)
    if valid is not None:
        mask &= valid
    mask = ndimage.binary_erosion(mask, np.ones((kernel, kernel), bool), border_value=1)
    if not mask.any():
        return float("nan")
    fill = np.float32(np.median(gt[mask]))  # no invalid pixel's value reaches a kept pixel's window anyway
    n_pred = normal_map(np.where(mask, np.clip(pred, 1e-3, max_depth), fill), kernel, dz, normalize_kernel)
    n_gt = normal_map(np.where(mask, gt, fill), kernel, dz, normalize_kernel)
    a, b = n_pred[:, mask].astype(np.float64), n_gt[:, mask].astype(np.float64)
    # atan2(|a x b|, a . b): exact near 0 degrees, where arccos of a float dot product is not
    angle = np.arctan2(np.linalg.norm(np.cross(a, b, axis=0), axis=0), (a * b).sum(axis=0))
    return float(np.degrees(np.median(angle)))


class DepthMetrics:
    """Accumulates per-image metrics; `summary()` is the mean over images. With `normal_kernel` set,
    also `normal_angle` (the median normal error of `normal_angle_error`, at that kernel and dz)."""

    def __init__(self, min_depth: float = 1e-3, max_depth: float = 80.0, normal_kernel: int | None = None,
                 normal_dz: float = 0.8) -> None:
        self.min_depth = min_depth
        self.max_depth = max_depth
        self.normal_kernel = normal_kernel
        self.normal_dz = normal_dz
        self._sums = dict.fromkeys(METRIC_NAMES, 0.0)
        self._normal_sum, self._normal_count = 0.0, 0
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
            if self.normal_kernel is not None:
                angle = normal_angle_error(pred[i], gt[i], None if valid is None else valid[i],
                                           kernel=self.normal_kernel, dz=self.normal_dz, max_depth=self.max_depth)
                if np.isfinite(angle):
                    self._normal_sum += angle
                    self._normal_count += 1

    def summary(self) -> dict[str, float]:
        if not self.count:
            raise ValueError("no image was evaluated")
        out = {k: self._sums[k] / self.count for k in METRIC_NAMES}
        if self.normal_kernel is not None and self._normal_count:
            out["normal_angle"] = self._normal_sum / self._normal_count
        return out


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


def score_depth_store(depth_path: str | Path, prepared_path: str | Path, max_depth: float = 80.0,
                      normal_kernel: int = 5, normal_dz: float = 0.8, batch: int = 16) -> dict[str, float]:
    """How good a depth store is: the Eigen metrics and the normal-angle error (`daisnet.depth.metrics`)
    of its depth against the prepared store's ground truth (`depth_gt`), over every image."""
    prepared = open_store(prepared_path)
    if "depth_gt" not in prepared:
        raise InputError("no ground-truth depth (`depth_gt`) to score depth against", path=prepared_path)
    truth = require_array(prepared, prepared_path, "depth_gt", 3, "f")
    depth = require_array(open_store(depth_path), depth_path, "depth", 3, "f")
    if depth.shape != truth.shape:
        raise InputError(f"depth {depth.shape} does not match the ground truth {truth.shape} of {prepared_path}",
                         path=depth_path)
    sizes = image_sizes(prepared, prepared_path, truth.shape[0], truth.shape[1:])
    metrics = DepthMetrics(1e-3, max_depth, normal_kernel, normal_dz)
    for start in range(0, truth.shape[0], batch):
        stop = min(start + batch, truth.shape[0])
        with reading(depth_path, "depth"):
            pred = np.asarray(depth[start:stop])
        with reading(prepared_path, "depth_gt"):
            gt = np.asarray(truth[start:stop])
        metrics.update(pred, gt, canvas_mask(sizes[start:stop], truth.shape[1:]))
    return metrics.summary()
