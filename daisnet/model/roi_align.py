"""RoIAlign on the CPU as bilinear sampling (`grid_sample`): the same numbers, a cheaper backward.

torchvision's CPU `roi_align` backward scatters every sample's gradient one at a time; it was 12.6% of
a default-profile training step (profiled: 104 ms of 830 ms). With a fixed `sampling_ratio` r,
RoIAlign (aligned=False, as `MultiScaleRoIAlign` calls it) is bilinear sampling of an (S r x S r) grid
of points per RoI followed by an r x r average, and `grid_sample` does that sampling with a
vectorized backward. Where torchvision zeroes samples beyond one pixel outside the map and clamps
the rest onto it, `padding_mode="border"` clamps and a mask zeroes. benchmarks/bench_roi_align.py
measures it; tests/test_roi_align.py checks values and gradients against torchvision's.

On CUDA, and for the adaptive sampling ratio (<= 0), torchvision's kernel is used unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales


def roi_align_by_sampling(features: Tensor, rois: Tensor, output_size: int, spatial_scale: float,
                          sampling_ratio: int) -> Tensor:
    """torchvision's `roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned=False)`.

    features (N, C, H, W); rois (K, 5) as (batch index, x1, y1, x2, y2) in image coordinates.
    Returns (K, C, output_size, output_size).
    """
    count, channels, height, width = features.shape
    size, ratio = int(output_size), int(sampling_ratio)
    out = features.new_zeros((rois.shape[0], channels, size, size))
    if rois.shape[0] == 0:
        return out
    boxes = rois[:, 1:] * spatial_scale
    box_w = (boxes[:, 2] - boxes[:, 0]).clamp(min=1.0)
    box_h = (boxes[:, 3] - boxes[:, 1]).clamp(min=1.0)
    # Sample j of the S r points along a side sits at start + (j + 0.5) * side / (S r).
    # In the boxes' type (float32), not the features' (bfloat16 under autocast: 2 px off at 640).
    steps = (torch.arange(size * ratio, device=rois.device, dtype=boxes.dtype) + 0.5) / (size * ratio)
    xs = boxes[:, 0, None] + steps[None] * box_w[:, None]  # (K, S r)
    ys = boxes[:, 1, None] + steps[None] * box_h[:, None]
    inside = ((ys >= -1.0) & (ys <= height))[:, :, None] & ((xs >= -1.0) & (xs <= width))[:, None, :]
    # align_corners=True maps -1 and 1 onto the centres of the first and last pixels: pixel index
    # coordinates, as torchvision's bilinear_interpolate reads them.
    gx = xs / max(width - 1, 1) * 2 - 1
    gy = ys / max(height - 1, 1) * 2 - 1
    points = size * ratio
    grid = torch.stack([gx[:, None, :].expand(-1, points, -1), gy[:, :, None].expand(-1, -1, points)], dim=-1)
    batch_index = rois[:, 0].long()
    for image in range(count):
        chosen = torch.nonzero(batch_index == image).flatten()
        if chosen.numel() == 0:
            continue
        # All RoIs of one image as the rows of one sampling grid: a single grid_sample call.
        image_grid = grid[chosen].reshape(1, chosen.numel() * points, points, 2)
        sampled = F.grid_sample(features[image:image + 1], image_grid, mode="bilinear",
                                padding_mode="border", align_corners=True)
        sampled = sampled.reshape(channels, chosen.numel(), points, points).transpose(0, 1)
        sampled = sampled * inside[chosen, None].to(sampled.dtype)
        # grid_sample computes in float32 under autocast; the result keeps the features' type.
        out[chosen] = (F.avg_pool2d(sampled, ratio) if ratio > 1 else sampled).to(out.dtype)
    return out


class SampledMultiScaleRoIAlign(MultiScaleRoIAlign):
    """`MultiScaleRoIAlign` whose CPU path is `roi_align_by_sampling` (same levels, same numbers)."""

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        features = _filter_input(x, self.featmap_names)
        if features[0].is_cuda or self.sampling_ratio <= 0:
            return super().forward(x, boxes, image_shapes)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(features, image_shapes, self.canonical_scale,
                                                         self.canonical_level)
        rois = _convert_to_roi_format(boxes)
        size = self.output_size[0]
        if len(features) == 1:
            return roi_align_by_sampling(features[0], rois, size, self.scales[0], self.sampling_ratio)
        levels = self.map_levels(boxes)
        result = features[0].new_zeros((rois.shape[0], features[0].shape[1], size, size))
        for level, (level_features, scale) in enumerate(zip(features, self.scales)):
            chosen = torch.nonzero(levels == level).flatten()
            pooled = roi_align_by_sampling(level_features, rois[chosen], size, scale, self.sampling_ratio)
            result[chosen] = pooled.to(result.dtype)  # levels may differ in type under autocast
        return result


__all__ = ["SampledMultiScaleRoIAlign", "roi_align_by_sampling"]
