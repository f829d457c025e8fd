import numpy as np
import pytest
from pycocotools import mask as mask_utils
from scipy import ndimage

from daisnet.data.polygons import mask_to_polygons


def decode(polygons, h, w):
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, h, w))).astype(bool)


@pytest.mark.parametrize("seed", range(40))
def test_random_masks_round_trip_exactly(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(3, 40, 2)
    mask = rng.random((h, w)) < rng.uniform(0.2, 0.8)
    if seed % 2:
        mask = ndimage.binary_opening(mask)
    if not mask.any():
        mask[h // 2, w // 2] = True
    assert np.array_equal(decode(mask_to_polygons(mask), int(h), int(w)), mask)


def test_hole_is_kept_and_components_are_separate_polygons():
    mask = np.zeros((30, 40), bool)
    mask[2:20, 2:20] = True
    mask[6:10, 6:12] = False  # a hole (a pedestrian in front of a car)
    mask[22:28, 30:38] = True  # a second component
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 2
    assert np.array_equal(decode(polygons, 30, 40), mask)


def test_diagonal_pinch_and_single_pixel():
    mask = np.zeros((6, 6), bool)
    mask[1, 1] = mask[2, 2] = mask[3, 1] = True
    assert np.array_equal(decode(mask_to_polygons(mask), 6, 6), mask)
    only = np.zeros((4, 4), bool)
    only[0, 3] = True
    assert mask_to_polygons(only) == [[3.0, 0.0, 4.0, 0.0, 4.0, 1.0, 3.0, 1.0, 3.0, 0.0]]


def test_empty_mask_has_no_polygon():
    assert mask_to_polygons(np.zeros((5, 5), bool)) == []
