"""§4.2's rotation and colour filters: masks, boxes and normals stay consistent with the image."""

from __future__ import annotations

import numpy as np

from daisnet.data.rotate import colour_filter, rotate_grid, rotate_sample
from daisnet.data.torch_dataset import AmodalDataset, AugmentConfig, boxes_from_masks
from daisnet.features.normals import normal_map
from daisnet.model.config import ModelConfig


def test_a_quarter_turn_moves_pixels_as_the_matrix_says() -> None:
    grid = np.zeros((1, 5, 5), np.float32)
    grid[0, 0, 2] = 1.0  # top middle
    turned = rotate_grid(grid, 90.0, order=0)
    assert turned[0, 2, 0] == 1.0 and turned.sum() == 1.0  # counter-clockwise on screen: to the left middle


def test_normals_turn_with_the_image() -> None:
    """The normals of a rotated depth ramp equal the rotated normals of the ramp (away from the borders)."""
    rows, cols = np.mgrid[0:64, 0:64].astype(np.float32)
    depth = 10.0 + 0.05 * cols + 0.02 * rows
    normals = normal_map(depth)
    image = np.concatenate([normals, depth[None]]).astype(np.float32)
    for degrees in (90.0, 30.0, -45.0):
        turned, _, _ = rotate_sample(image, np.zeros((0, 64, 64), bool), np.zeros((0, 64, 64), bool), degrees, 0)
        expected = normal_map(turned[3])  # normals computed on the rotated depth
        inner = (slice(24, 40), slice(24, 40))
        np.testing.assert_allclose(turned[(slice(0, 3), *inner)], expected[(slice(0, 3), *inner)], atol=2e-3)


def test_rotation_keeps_masks_and_boxes_consistent(tiny_features: dict) -> None:
    config = ModelConfig(inputs=("rgb", "normal"))
    augment = AugmentConfig(enabled=True, flip=0.0, contrast=0.0, crop=1.0, rotate=25.0, color=0.2)
    plain = AmodalDataset(tiny_features["train"], config, tiny_features["features_train"])
    rotated = AmodalDataset(tiny_features["train"], config, tiny_features["features_train"], augment=augment, seed=1)
    changed = 0
    for index in range(len(plain)):
        image, target = rotated[(index, 3)]
        masks = target["masks"].numpy().astype(bool)
        assert len(masks) == len(target["boxes"]) == len(target["labels"])
        np.testing.assert_array_equal(target["boxes"].numpy(), boxes_from_masks(masks))
        assert (target["visible_masks"].numpy().astype(bool) <= masks).all()  # visible stays inside amodal
        assert image.shape == plain[index][0].shape
        changed += not np.array_equal(image.numpy(), plain[index][0].numpy())
    assert changed == len(plain)
    again, _ = rotated[(0, 3)]
    assert np.array_equal(again.numpy(), rotated[(0, 3)][0].numpy())  # the draws are keyed: deterministic


def test_off_means_the_draws_of_before() -> None:
    """rotate = 0 and color = 0 draw nothing: augmented runs without them keep their images."""
    assert AugmentConfig().rotate == 0.0 and AugmentConfig().color == 0.0
    rgb = np.full((3, 4, 4), 0.5, np.float32)
    rng = np.random.default_rng(0)
    filtered = colour_filter(rgb, rng, 0.2)
    assert filtered.shape == rgb.shape and 0.4 <= filtered.min() and filtered.max() <= 0.6
    assert len({float(filtered[c, 0, 0]) for c in range(3)}) == 3  # a gain per channel


def test_no_turn_changes_nothing() -> None:
    image = np.random.default_rng(0).random((2, 9, 9)).astype(np.float32)
    mask = np.zeros((1, 9, 9), bool)
    mask[0, 2:5, 3:7] = True
    turned, amodal, _ = rotate_sample(image, mask, mask, 0.0)
    np.testing.assert_allclose(turned, image, atol=1e-5)
    assert np.array_equal(amodal, mask)
