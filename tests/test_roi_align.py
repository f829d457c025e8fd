"""The sampled RoIAlign gives torchvision's values and gradients (daisnet/model/roi_align.py)."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign, roi_align

from daisnet.model.roi_align import SampledMultiScaleRoIAlign, roi_align_by_sampling


def _rois(count: int, images: int, height: int, width: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # Some boxes reach past the image, some are smaller than a feature pixel: both edge cases.
    xy = torch.rand(count, 2, generator=g) * torch.tensor([width * 1.1, height * 1.1]) - 4
    wh = torch.rand(count, 2, generator=g) * torch.tensor([width * 0.5, height * 0.5]) + 0.2
    batch = torch.randint(0, images, (count, 1), generator=g).float()
    return torch.cat([batch, xy, xy + wh], dim=1)


@pytest.mark.parametrize("ratio", [1, 2, 3])
@pytest.mark.parametrize("scale", [1.0, 0.25])
def test_values_and_gradients_match_torchvision(ratio, scale):
    g = torch.Generator().manual_seed(ratio)
    features = torch.randn(2, 5, 12, 20, generator=g, dtype=torch.float64)
    rois = _rois(40, 2, 48 if scale < 1 else 12, 80 if scale < 1 else 20, seed=ratio).double()
    upstream = torch.randn(40, 5, 7, 7, generator=g, dtype=torch.float64)
    grads = []
    outs = []
    for op in (lambda f: roi_align(f, rois, (7, 7), scale, ratio, aligned=False),
               lambda f: roi_align_by_sampling(f, rois, 7, scale, ratio)):
        f = features.clone().requires_grad_(True)
        out = op(f)
        (out * upstream).sum().backward()
        outs.append(out.detach())
        grads.append(f.grad)
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-9, atol=1e-9)


def test_multiscale_pooler_matches_torchvision_levels():
    names = ["0", "1", "2", "3"]
    g = torch.Generator().manual_seed(0)
    feats = OrderedDict((n, torch.randn(2, 4, 64 // 2**i, 160 // 2**i, generator=g)) for i, n in enumerate(names))
    boxes = [_rois(30, 1, 256, 640, seed=s)[:, 1:].clamp(min=0) for s in (1, 2)]
    boxes = [torch.cat([b[:, :2], torch.maximum(b[:, 2:], b[:, :2] + 1)], 1) for b in boxes]
    shapes = [(256, 640), (256, 640)]
    reference = MultiScaleRoIAlign(names, 14, 1)(feats, boxes, shapes)
    ours = SampledMultiScaleRoIAlign(names, 14, 1)(feats, boxes, shapes)
    # float32: the grid's [-1, 1] normalization rounds the sample positions (~1e-5 px); the float64
    # test above shows the arithmetic is the same.
    torch.testing.assert_close(ours, reference, rtol=1e-3, atol=3e-4)
    assert reference.abs().sum() > 0


def test_no_rois_and_adaptive_ratio():
    features = torch.randn(1, 3, 8, 8)
    assert roi_align_by_sampling(features, torch.zeros(0, 5), 7, 1.0, 2).shape == (0, 3, 7, 7)
    feats = OrderedDict([("0", features)])
    boxes = [torch.tensor([[0.0, 0.0, 5.0, 6.0]])]
    # sampling_ratio 0 (adaptive) is torchvision's own kernel.
    torch.testing.assert_close(SampledMultiScaleRoIAlign(["0"], 7, 0)(feats, boxes, [(8, 8)]),
                               MultiScaleRoIAlign(["0"], 7, 0)(feats, boxes, [(8, 8)]))
