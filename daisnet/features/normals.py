"""Normal-tangent maps (eq. 14-16) with the generalized Sobel kernels of `sobel.py` (eq. 17-21).

`Dx = Kx * Z`, `Dy = Ky * Z`, `T = (-Dx, -Dy, Dz)`, normals `T / |T|`, Z the depth in metres.

Decisions (docs/features.md):
- "*" is correlation, as in a CNN layer: on Z = a x, Dx = a (N^2 - 1) > 0 (depth growing to the right).
- Same-size output, padded at the image border by replicating the edge pixel (not zeros, as eq. 14's
  "1x1 padding" would be read: a zero border is a fake depth cliff of tens of metres that turns the
  whole frame of the normal map into edges). The caller crops canvas padding away first
  (`daisnet.features.store`), so the border is the true image's border.
- Computed by FFT (scipy.fft, float32) for every kernel size: cost is nearly independent of N
  (N = 71 is as fast as N = 5, ~1000x faster than direct convolution), and exact to float32
  rounding. The depth's mean is subtracted first: the kernels sum to 0, so Dx, Dy are unchanged,
  while the FFT rounding error, which scales with the magnitude of the signal, shrinks.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft

from daisnet.features.sobel import sobel_kernels


@functools.lru_cache(maxsize=16)
def _kernel_spectra(size: int, normalize: bool, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """rfft2 of the flipped kernels zero-padded to `shape` (flipped: correlation by convolution)."""
    spectra = []
    for kernel in sobel_kernels(size, normalize):
        padded = np.zeros(shape, dtype=np.float32)
        padded[:size, :size] = kernel[::-1, ::-1]
        spectra.append(scipy.fft.rfft2(padded, workers=1))
    return spectra[0], spectra[1]


def _complex_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b for complex arrays, from separate real multiplies and adds.

    numpy's complex multiply uses fused multiply-add on CPUs that have it (AVX2, AVX-512) and not
    on the x86-64 baseline: 40% of the stored normals differed between the two in the last float16
    bit. Separate IEEE operations round the same everywhere (tests/test_data_bytes.py).
    """
    real = a.real * b.real - a.imag * b.imag
    imag = a.real * b.imag + a.imag * b.real
    out = np.empty(np.broadcast_shapes(a.shape, b.shape), dtype=np.result_type(a, b))
    out.real, out.imag = real, imag
    return out


def depth_gradients(depth: np.ndarray, size: int = 5, normalize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 14 generalized (eq. 17-21): `(Dx, Dy)` of an (H, W) depth map, same size, float32.

    Edge-replicate padding by N // 2, then a circular FFT convolution whose wrap-around only
    touches the discarded first 2 (N // 2) rows and columns."""
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), not {depth.shape}")
    half = size // 2
    height, width = depth.shape
    # Centred for the FFT's precision. By the mid-range, not the mean: a float sum's last bit depends
    # on the CPU's SIMD kernels, and every gradient would inherit it; min and max are exact.
    centred = depth - (depth.min() + depth.max()) / np.float32(2)
    padded = np.pad(centred, half, mode="edge")
    shape = (scipy.fft.next_fast_len(padded.shape[0], real=True), scipy.fft.next_fast_len(padded.shape[1], real=True))
    kx, ky = _kernel_spectra(size, normalize, shape)
    spectrum = scipy.fft.rfft2(padded, s=shape, workers=1)
    crop = (slice(2 * half, 2 * half + height), slice(2 * half, 2 * half + width))
    dx = scipy.fft.irfft2(_complex_product(spectrum, kx), s=shape, workers=1)[crop]
    dy = scipy.fft.irfft2(_complex_product(spectrum, ky), s=shape, workers=1)[crop]
    return dx.astype(np.float32, copy=False), dy.astype(np.float32, copy=False)


def tangent_normals(dx: np.ndarray, dy: np.ndarray, dz: float = 0.8) -> np.ndarray:
    """Eq. 15-16: `T = (-Dx, -Dy, Dz)`, returned as unit vectors `T / |T|`, float32 (3, H, W)."""
    if not dz > 0:
        raise ValueError(f"dz must be > 0, not {dz}")
    dx = np.asarray(dx, dtype=np.float32)
    dy = np.asarray(dy, dtype=np.float32)
    dz32 = np.float32(dz)
    inverse = np.float32(1.0) / np.sqrt(dx * dx + dy * dy + dz32 * dz32)  # float32: |n| = 1 to ~1e-7
    out = np.empty((3,) + dx.shape, dtype=np.float32)
    np.multiply(-dx, inverse, out=out[0])
    np.multiply(-dy, inverse, out=out[1])
    np.multiply(dz32, inverse, out=out[2])
    return out


def normal_map(depth: np.ndarray, size: int = 5, dz: float = 0.8, normalize: bool = False) -> np.ndarray:
    """Eq. 14-22 end to end: the (3, H, W) unit normal-tangent map of an (H, W) depth map in metres."""
    dx, dy = depth_gradients(depth, size, normalize)
    return tangent_normals(dx, dy, dz)
