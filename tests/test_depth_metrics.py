"""Depth metrics, the BTS loss, the constant baseline, and padded inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from daisnet.depth.bts import build_bts, normalize_images
from daisnet.depth.infer import predict_depth
from daisnet.depth.loss import silog_loss
from daisnet.depth.metrics import DepthMetrics, PixelMean, image_metrics


def test_metrics_on_known_values() -> None:
    gt = np.array([[1.0, 2.0], [4.0, 0.0]])  # 0: invalid, ignored
    pred = np.array([[2.0, 2.0], [2.0, 99.0]])
    m = image_metrics(pred, gt)
    assert m["abs_rel"] == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    assert m["sq_rel"] == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 0 + 4) / 3))
    assert m["rmse_log"] == pytest.approx(np.sqrt(2 * np.log(2) ** 2 / 3))
    assert m["delta1"] == pytest.approx(1 / 3) and m["delta3"] == pytest.approx(1 / 3)
    perfect = image_metrics(gt, gt)
    assert perfect["abs_rel"] == 0 and perfect["delta1"] == 1 and perfect["silog"] == 0


def test_metrics_average_over_images_not_pixels() -> None:
    acc = DepthMetrics(max_depth=80.0)
    acc.update(np.full((2, 2), 2.0), np.full((2, 2), 1.0))  # abs rel 1
    acc.update(np.array([[1.0, 1.0]]), np.array([[1.0, 0.0]]))  # abs rel 0, one valid pixel
    assert acc.count == 2 and acc.summary()["abs_rel"] == pytest.approx(0.5)


def test_prediction_is_clipped_to_depth_range() -> None:
    m = image_metrics(np.array([0.0, 500.0]), np.array([1.0, 80.0]), max_depth=80.0)
    assert np.isfinite(m["rmse_log"]) and m["abs_rel"] == pytest.approx(0.5 * (1 - 1e-3))


def test_silog_loss() -> None:
    gt = torch.tensor([1.0, 2.0, 4.0, 8.0])
    valid = torch.tensor([True, True, True, False])
    assert silog_loss(gt.clone(), gt, valid).item() < 1e-4
    # a global scale error costs only sqrt(1 - 0.85) of its log; with focus 1 it costs nothing
    scaled = 2 * gt
    assert silog_loss(scaled, gt, valid).item() == pytest.approx(10 * np.sqrt(0.15) * np.log(2), rel=1e-4)
    assert silog_loss(scaled, gt, valid, variance_focus=1.0).item() < 1e-4
    # invalid pixels do not count
    bad = gt.clone()
    bad[3] = 1000.0
    assert silog_loss(bad, gt, valid).item() < 1e-4
    with pytest.raises(ValueError, match="no valid"):
        silog_loss(gt, gt, torch.zeros(4, dtype=torch.bool))


def test_pixel_mean_baseline() -> None:
    acc = PixelMean()
    depth = np.array([[[2.0, 5.0]], [[4.0, 0.0]]])
    acc.update(depth[:1], depth[:1] > 0)
    acc.update(depth[1:], depth[1:] > 0)
    np.testing.assert_allclose(acc.value(), [[3.0, 5.0]])


def test_predict_depth_pads_from_true_size_and_crops_back() -> None:
    torch.manual_seed(0)
    model = build_bts("resnet18_bts", focal_reference=None).eval()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    alone = predict_depth(model, image[None], 500.0)
    assert alone.shape == (1, 40, 70) and alone.dtype == np.float32 and (alone > 0).all()
    # the same image on a larger canvas with garbage around it: identical depth where the image is
    canvas = rng.integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    canvas[0, :40, :70] = image
    out = predict_depth(model, canvas, np.array([500.0, 500.0]), sizes=np.array([[40, 70], [64, 96]]))
    np.testing.assert_allclose(out[0, :40, :70], alone[0], rtol=1e-5, atol=1e-5)
    assert (out[0, 40:] == 0).all() and (out[0, :, 70:] == 0).all()
    # a canvas already a multiple of 32 goes through unpadded
    with torch.no_grad():
        direct = model(normalize_images(torch.from_numpy(canvas[1:])))[:, 0].numpy()
    np.testing.assert_allclose(out[1], direct[0], rtol=1e-5, atol=1e-5)


def test_predict_depth_rejects_bad_input() -> None:
    model = build_bts("resnet18_bts", focal_reference=None)
    with pytest.raises(ValueError, match="uint8"):
        predict_depth(model, np.zeros((1, 32, 32, 3), np.float32), 1.0)
    with pytest.raises(ValueError, match="do not fit"):
        predict_depth(model, np.zeros((1, 32, 32, 3), np.uint8), 1.0, sizes=np.array([[40, 32]]))
