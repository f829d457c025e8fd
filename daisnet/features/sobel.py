"""Generalized Sobel kernels of any odd size N (eq. 17-21), as resolved in shared/DESIGN.md.

Entry A_yx of the N x N kernel (1-based row y, column x) has the offset from the centre
`j = y - (N-1)/2 - 1`, `i = x - (N-1)/2 - 1` (eq. 18-19) and the weights
`Kx = 2 i / (i^2 + j^2)`, `Ky = 2 j / (i^2 + j^2)` (eq. 20-21 times 2), 0 at the centre. The factor 2
makes N = 3 the Sobel operator of eq. 14 exactly; N = 5 is eq. 22 divided by 10. Rows grow downwards
(the image's y), so Ky = Kx transposed, and both are antisymmetric (K(-i, -j) = -K(i, j)).

Gain: on a plane Z = a x + b y the kernels give Dx = a (N^2 - 1), Dy = b (N^2 - 1) (sum of
2 i^2 / (i^2 + j^2) over the square, which by the i <-> j symmetry is the number of non-centre
entries). With `normalize=True` the kernels are divided by this gain, so Dx, Dy are depth slopes per
pixel whatever N; the paper's kernels (default) are not normalized.
"""

from __future__ import annotations

import numpy as np


def kernel_offsets(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 18-19: the column offsets i and row offsets j of every entry from the centre, (N, N) each."""
    if size < 3 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and >= 3, not {size}")
    half = (size - 1) // 2
    j, i = np.mgrid[-half : half + 1, -half : half + 1]
    return i.astype(np.float64), j.astype(np.float64)


def kernel_gain(size: int) -> float:
    """Response of Kx to a unit slope in x (and of Ky to one in y): N^2 - 1."""
    return float(size * size - 1)


def sobel_kernels(size: int, normalize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 20-21 (times 2): the (Kx, Ky) pair of size N, float64, 0 at the centre.

    `normalize` divides both by `kernel_gain(N)` (see module docstring)."""
    i, j = kernel_offsets(size)
    r2 = i * i + j * j
    r2[r2 == 0] = np.inf  # the centre weighs 0 (its difference with itself is 0)
    kx = 2.0 * i / r2
    ky = 2.0 * j / r2
    if normalize:
        gain = kernel_gain(size)
        kx, ky = kx / gain, ky / gain
    return kx, ky
