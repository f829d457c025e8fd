"""Products of small vectors and matrices that give the same bits on every CPU.

numpy's `@` hands float arrays to BLAS, whose kernels are chosen at run time by CPU (OpenBLAS:
Haswell, SkylakeX, Zen, ...) and sum in different orders, with or without fused multiply-add. The
last bits of a ray direction then depend on the machine, and a renderer that rounds to uint8 turns
them into other pixels: 16 of 32 default images changed under OPENBLAS_CORETYPE=SkylakeX
(tests/test_data_bytes.py). These use only elementwise multiply and add in a fixed order, which
IEEE 754 rounds the same way everywhere (numpy never fuses two ufunc calls).
"""

from __future__ import annotations

import numpy as np


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum_k a[..., k] * b[..., k] (broadcast), summed in order k = 0, 1, ..."""
    a, b = np.asarray(a), np.asarray(b)
    out = a[..., 0] * b[..., 0]
    for k in range(1, a.shape[-1]):
        out = out + a[..., k] * b[..., k]
    return out


def matmul(a: np.ndarray, m: np.ndarray) -> np.ndarray:
    """a (..., k) @ m (k, n), each output summed in order k = 0, 1, ..."""
    a, m = np.asarray(a), np.asarray(m)
    out = a[..., 0, None] * m[0]
    for k in range(1, m.shape[0]):
        out = out + a[..., k, None] * m[k]
    return out
