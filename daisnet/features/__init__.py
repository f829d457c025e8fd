"""Depth features of §3.3-3.4: log depth (eq. 2-3), regional depth normalization (eq. 4-5) and
normal-tangent maps from generalized Sobel kernels (eq. 14-22). One concept per module; the Dask
computation over a depth store is in `daisnet.features.store`. Decisions are in docs/features.md.
"""
