"""The depth-feature formulas of §3.3-3.4 (eq. 2-5, 14-22), as resolved in shared/DESIGN.md."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage

from daisnet.features.log_depth import Moments, log_depth, z_normalize
from daisnet.features.normals import depth_gradients, normal_map, tangent_normals
from daisnet.features.regional import hard_floor, regional_maps, soft_floor
from daisnet.features.sobel import kernel_gain, sobel_kernels

SIZES = (3, 5, 7, 21, 71)


def test_size_3_is_the_sobel_operator_of_eq_14() -> None:
    kx, ky = sobel_kernels(3)
    np.testing.assert_array_equal(kx, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(ky, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])


def test_size_5_times_10_is_eq_22() -> None:
    eq22 = [[-5, -4, 0, 4, 5], [-8, -10, 0, 10, 8], [-10, -20, 0, 20, 10], [-8, -10, 0, 10, 8], [-5, -4, 0, 4, 5]]
    kx, ky = sobel_kernels(5)
    np.testing.assert_allclose(kx * 10, eq22, atol=1e-12)
    np.testing.assert_allclose(ky * 10, np.transpose(eq22), atol=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_kernels_are_antisymmetric_and_transposed(size: int) -> None:
    kx, ky = sobel_kernels(size)
    assert kx.shape == (size, size)
    np.testing.assert_array_equal(kx[::-1, ::-1], -kx)
    np.testing.assert_array_equal(ky[::-1, ::-1], -ky)
    np.testing.assert_array_equal(kx[:, ::-1], -kx)  # odd in i, even in j
    np.testing.assert_array_equal(ky, kx.T)
    assert kx[size // 2, size // 2] == 0
    # gain on a unit slope: sum of 2 i^2 / (i^2 + j^2) = N^2 - 1
    i = np.arange(size) - size // 2
    assert np.isclose((kx * i[None, :]).sum(), kernel_gain(size))


@pytest.mark.parametrize("size", [1, 2, 4, 0, -3])
def test_even_or_tiny_kernels_are_refused(size: int) -> None:
    with pytest.raises(ValueError):
        sobel_kernels(size)


@pytest.mark.parametrize("size", (3, 5, 21))
def test_fft_gradients_equal_direct_correlation_with_edge_padding(size: int) -> None:
    depth = np.random.default_rng(size).uniform(2, 80, (41, 67)).astype(np.float32)
    dx, dy = depth_gradients(depth, size)
    kx, ky = sobel_kernels(size)
    ref_x = scipy.ndimage.correlate(depth.astype(np.float64), kx, mode="nearest")
    ref_y = scipy.ndimage.correlate(depth.astype(np.float64), ky, mode="nearest")
    scale = np.abs(ref_x).max()
    assert np.abs(dx - ref_x).max() < 1e-5 * scale
    assert np.abs(dy - ref_y).max() < 1e-5 * scale


def test_normals_have_unit_length() -> None:
    depth = np.random.default_rng(0).uniform(1, 80, (30, 50))
    for size in (3, 5, 21):
        normals = normal_map(depth, size, dz=0.8)
        assert normals.shape == (3, 30, 50)
        np.testing.assert_allclose(np.linalg.norm(normals, axis=0), 1.0, atol=1e-6)
        assert (normals[2] > 0).all()  # Dz > 0: every normal faces the camera


def plane(a: float, b: float, c: float, shape: tuple[int, int]) -> np.ndarray:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (a * cols + b * rows + c).astype(np.float64)


@pytest.mark.parametrize("size", (3, 5))
@pytest.mark.parametrize("normalize", (False, True))
def test_tilted_plane_has_the_analytic_normal_inside(size: int, normalize: bool) -> None:
    a, b, dz = 0.05, -0.12, 0.8  # metres per pixel along x (columns) and y (rows)
    depth = plane(a, b, 20.0, (24, 32))
    normals = normal_map(depth, size, dz, normalize)
    gain = 1.0 if normalize else kernel_gain(size)
    expected = np.array([-gain * a, -gain * b, dz]) / np.linalg.norm([gain * a, gain * b, dz])
    r = size // 2
    interior = normals[:, r:-r, r:-r]
    np.testing.assert_allclose(interior, np.broadcast_to(expected[:, None, None], interior.shape), atol=2e-5)
    # at the border the edge-replicated padding flattens the slope: not the plane's normal
    assert not np.allclose(normals[:, 0, 0], expected, atol=1e-3)


def test_tangent_is_eq_15_normalized() -> None:
    n = tangent_normals(np.array([[3.0]]), np.array([[0.0]]), dz=4.0)
    np.testing.assert_allclose(n[:, 0, 0], [-0.6, 0.0, 0.8], atol=1e-7)
    with pytest.raises(ValueError):
        tangent_normals(np.zeros((1, 1)), np.zeros((1, 1)), dz=0.0)


@pytest.mark.parametrize("floor", ("soft", "hard"))
def test_regional_maps_are_periodic_with_period_ds(floor: str) -> None:
    step, offsets = 3.0, 4
    depth = np.linspace(0.5, 40.0, 977)
    maps = regional_maps(depth, step, offsets, floor)
    shifted = regional_maps(depth + step, step, offsets, floor)
    assert maps.shape == (offsets, depth.size)
    # hard floor: away from the jumps (where rounding may put a value on either side)
    phase = depth / step * offsets
    ok = np.abs(phase - np.round(phase)) > 1e-3 if floor == "hard" else slice(None)
    np.testing.assert_allclose(maps[:, ok], shifted[:, ok], atol=1e-5)


@pytest.mark.parametrize("floor", ("soft", "hard"))
def test_offset_maps_are_phase_shifted_by_ds_over_dm(floor: str) -> None:
    step, offsets = 3.0, 4
    depth = np.linspace(0.1, 30.0, 641)
    maps = regional_maps(depth, step, offsets, floor)
    for k in range(offsets):
        shifted = regional_maps(depth + k * step / offsets, step, offsets, floor)[0]
        np.testing.assert_allclose(maps[k], shifted, atol=1e-5)
    assert not np.allclose(maps[0], maps[1])


def test_soft_floor_equals_hard_floor_at_integers_and_soft_maps_are_sinusoids() -> None:
    integers = np.arange(-5, 30, dtype=np.float64)
    np.testing.assert_allclose(soft_floor(integers), hard_floor(integers), atol=1e-12)
    x = np.linspace(0, 7, 301)
    assert (np.diff(soft_floor(x)) >= 0).all()  # monotone
    depth = np.linspace(0.0, 21.0, 301)
    maps = regional_maps(depth, 3.0, 4, "soft")
    for k in range(4):
        xk = depth / 3.0 + k / 4
        np.testing.assert_allclose(maps[k], xk - soft_floor(xk), atol=1e-6)
    hard = regional_maps(depth, 3.0, 4, "hard")
    assert hard.min() >= 0 and hard.max() < 1
    np.testing.assert_allclose(hard[0], depth / 3.0 - np.floor(depth / 3.0), atol=1e-6)
    assert np.abs(maps).max() <= 1 / (2 * np.pi) + 1e-7


def test_log_depth_and_z_normalization() -> None:
    depth = np.array([1.0, 10.0, 100.0, 0.1])
    np.testing.assert_allclose(log_depth(depth), [0, 1, 2, -1], atol=1e-7)
    z = z_normalize(log_depth(depth), mean=0.5, std=2.0)
    np.testing.assert_allclose(z, [-0.25, 0.25, 0.75, -0.75], atol=1e-7)


def test_moments_merge_equals_moments_of_the_union() -> None:
    rng = np.random.default_rng(1)
    parts = [rng.normal(3, 2, n) for n in (1, 17, 0, 250)]
    merged = Moments()
    for part in parts:
        merged = merged.merge(Moments.of(part))
    everything = np.concatenate(parts)
    assert merged.count == everything.size
    assert np.isclose(merged.mean, everything.mean())
    assert np.isclose(merged.std, everything.std())
