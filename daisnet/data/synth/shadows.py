"""Cast shadows from a directional sun: one shadow ray per lit pixel (§3.2's rendered shadows).

A pixel is in shadow when the ray from its surface point towards the sun hits any primitive of the
scene. Testing every ray against every primitive would cost rays x primitives intersections, so the
rays are first culled in light space: along the sun's direction a primitive can only shadow the
points whose projection on the plane perpendicular to the sun falls in the projection of its
corners, and that lie below its highest corner (measured along the sun). Points are sorted by one
light-space coordinate once, so each primitive looks at a contiguous slice of them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from daisnet.data.synth.geometry import Primitive
from daisnet.data.synth.vec import dot

# Shadow rays start this far off the surface (metres, along its normal): without it a surface
# shadows itself through rounding ("shadow acne").
SURFACE_BIAS = 1e-3


def light_frame(light: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to `light` and to each other (light-space axes)."""
    helper = np.array([0.0, 1.0, 0.0]) if abs(light[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    first = np.cross(helper, light)
    first = first / np.sqrt(dot(first, first))
    return first, np.cross(light, first)


def in_shadow(points: np.ndarray, normals: np.ndarray, light: np.ndarray,
              occluders: Iterable[Primitive]) -> np.ndarray:
    """(N,) bool: whether the ray from each surface point (N, 3) towards the sun hits an occluder.

    `normals` (N, 3) are the surfaces' unit normals (the ray starts `SURFACE_BIAS` off the surface),
    `light` the unit direction towards the sun.
    """
    light = np.asarray(light, dtype=np.float64)
    origins = points + normals * SURFACE_BIAS
    across, up = light_frame(light)
    a, b, h = dot(origins, across), dot(origins, up), dot(origins, light)
    order = np.argsort(a, kind="stable")
    a_sorted = a[order]
    blocked = np.zeros(len(origins), bool)
    for shape in occluders:
        corners = shape.corners()
        if corners is None:  # the ground plane: the sun is always above it
            continue
        ca, cb, ch = dot(corners, across), dot(corners, up), dot(corners, light)
        first = np.searchsorted(a_sorted, ca.min(), side="left")
        last = np.searchsorted(a_sorted, ca.max(), side="right")
        rays = order[first:last]
        rays = rays[(b[rays] >= cb.min()) & (b[rays] <= cb.max()) & (h[rays] < ch.max()) & ~blocked[rays]]
        if rays.size == 0:
            continue
        t, _ = shape.intersect(origins[rays], np.broadcast_to(light, (rays.size, 3)))
        blocked[rays[np.isfinite(t)]] = True
    return blocked
