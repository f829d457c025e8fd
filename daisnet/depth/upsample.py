"""Edge-aware up-sampling of a low-resolution depth prediction, guided by the full-resolution image.

A network run at input scale 1/s predicts depth on a grid s times coarser; bilinear up-sampling then
spreads every object boundary over ~s pixels. The fast guided filter (He and Sun 2015, "Fast Guided
Filter", arXiv:1505.00996) fits, in every window of the low-resolution grid, depth as an affine
function of the image's intensity, a * I + b, then up-samples a and b (smooth) and applies them to the
full-resolution intensity: edges of the image reappear in the depth where depth and intensity vary
together. Done in log depth, so the affine fit is scale-free. `eps` bounds how much image contrast is
taken for depth structure (large eps: plain bilinear).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, the window shrunk at the borders (no zero padding counted)."""
    return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)


def guided_upsample(depth: torch.Tensor, image: torch.Tensor, radius: int = 2, eps: float = 1e-3) -> torch.Tensor:
    """Up-sample depth (B, 1, h, w) in metres to the size of `image` (B, 3, H, W) in [0, 1], guided by
    the image's luminance: (B, 1, H, W) metres."""
    size = tuple(image.shape[-2:])
    # float64: the window statistics are differences of means (E[IP] - E[I]E[P]), which cancel in float32
    luminance = (0.299 * image[:, 0:1] + 0.587 * image[:, 1:2] + 0.114 * image[:, 2:3]).double()
    guide = F.interpolate(luminance, size=tuple(depth.shape[-2:]), mode="area")
    log_depth = depth.double().clamp_min(1e-3).log()
    mean_i, mean_p = _box(guide, radius), _box(log_depth, radius)
    cov = _box(guide * log_depth, radius) - mean_i * mean_p
    var = _box(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    a_up = F.interpolate(_box(a, radius), size=size, mode="bilinear", align_corners=False)
    b_up = F.interpolate(_box(b, radius), size=size, mode="bilinear", align_corners=False)
    return (a_up * luminance + b_up).exp().to(depth.dtype)
