"""Procedural 2D silhouettes for the thin cut-out pedestrians and cyclists of §3.2."""

from __future__ import annotations

import numpy as np

from daisnet.data.synth.vec import dot

ROWS = 96  # silhouette raster resolution (rows, top-down); objects are rarely taller on screen


def _canvas(width_ratio: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cols = max(8, int(round(ROWS * width_ratio)))
    yy, xx = np.mgrid[0:ROWS, 0:cols]
    # Normalized coordinates: u across in [0, 1], v down in [0, 1].
    return np.zeros((ROWS, cols), bool), (xx + 0.5) / cols, (yy + 0.5) / ROWS


def _capsule(u, v, a, b, radius, aspect):
    """Points within `radius` of segment a-b (in (u, v) units, u scaled by `aspect`)."""
    p = np.stack([u * aspect, v], -1)
    a = np.array([a[0] * aspect, a[1]])
    b = np.array([b[0] * aspect, b[1]])
    ab = b - a
    t = np.clip(dot(p - a, ab) / max(float(dot(ab, ab)), 1e-9), 0, 1)
    closest = a + t[..., None] * ab
    return np.linalg.norm(p - closest, axis=-1) <= radius


def pedestrian(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A walking person: head, torso, arms, legs at a random stride. Returns (alpha, width/height)."""
    width_ratio = 0.42
    alpha, u, v = _canvas(width_ratio)
    aspect = width_ratio
    stride = rng.uniform(0.0, 0.16)
    swing = rng.uniform(-0.1, 0.1)
    cx = 0.5
    alpha |= (((u - cx) * aspect) ** 2 + (v - 0.07) ** 2) <= 0.055**2  # head
    alpha |= _capsule(u, v, (cx, 0.17), (cx, 0.5), rng.uniform(0.07, 0.09), aspect)  # torso
    alpha |= _capsule(u, v, (cx - 0.05, 0.2), (cx - 0.12 + swing, 0.52), 0.03, aspect)  # arms
    alpha |= _capsule(u, v, (cx + 0.05, 0.2), (cx + 0.12 - swing, 0.52), 0.03, aspect)
    alpha |= _capsule(u, v, (cx, 0.5), (cx - stride * 2.2, 0.98), 0.042, aspect)  # legs
    alpha |= _capsule(u, v, (cx, 0.5), (cx + stride * 2.2, 0.98), 0.042, aspect)
    return alpha, width_ratio


def cyclist(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A person on a bicycle seen from the side: two wheels, frame, rider. (alpha, width/height)."""
    width_ratio = 1.0
    alpha, u, v = _canvas(width_ratio)
    wheel_r = rng.uniform(0.17, 0.2)
    ring = 0.035
    for cx in (0.2, 0.8):
        d = np.hypot(u - cx, v - (1 - wheel_r))
        alpha |= (d <= wheel_r) & (d >= wheel_r - ring)
    hub_y = 1 - wheel_r
    alpha |= _capsule(u, v, (0.2, hub_y), (0.45, 0.62), 0.02, 1.0)  # frame
    alpha |= _capsule(u, v, (0.45, 0.62), (0.8, hub_y), 0.02, 1.0)
    alpha |= _capsule(u, v, (0.45, 0.62), (0.72, 0.5), 0.02, 1.0)
    alpha |= _capsule(u, v, (0.45, 0.55), (0.5, 0.22), 0.07, 1.0)  # rider torso
    alpha |= ((u - 0.53) ** 2 + (v - 0.12) ** 2) <= 0.065**2  # head
    alpha |= _capsule(u, v, (0.5, 0.28), (0.72, 0.48), 0.03, 1.0)  # arm to handlebar
    alpha |= _capsule(u, v, (0.45, 0.55), (0.55, 0.8), 0.035, 1.0)  # leg
    return alpha, width_ratio
