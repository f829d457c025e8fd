"""Exact ray casting of the few primitives synthetic scenes are built from.

Rays are cast from a level pinhole camera with directions `((u - cx) / f, -(v - cy) / f, 1)` (world y
up, image v down), so the ray parameter `t` of a hit *is* its camera-space depth z: the depth the
KITTI convention (and BTS) uses, with no conversion.

Every `intersect` takes ray origins `o`, one (3,) or one per ray (..., 3), and directions `d`
(..., 3), and returns `(t, normal)`: `t` is +inf where the ray misses, `normal` the unit world normal at the hit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from daisnet.data.synth.vec import dot, matmul

EPS = 1e-6


def _yaw_matrix(yaw: float) -> np.ndarray:
    """Rotation about the world y axis (up): local x/z -> world x/z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@dataclass(frozen=True)
class Box:
    """An oriented box: `center` (3,), `half` half-sizes (3,) along its local axes, `yaw` about y."""

    center: tuple[float, float, float]
    half: tuple[float, float, float]
    yaw: float = 0.0

    def corners(self) -> np.ndarray:
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        return matmul(signs * np.asarray(self.half), _yaw_matrix(self.yaw).T) + np.asarray(self.center)

    def intersect(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rot = _yaw_matrix(self.yaw)
        o_local = matmul(o - np.asarray(self.center), rot)  # rot.T @ (o - c)
        d_local = matmul(d, rot)  # == (rot.T @ d.T).T
        half = np.asarray(self.half)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / d_local
            t1 = (-half - o_local) * inv
            t2 = (half - o_local) * inv
        t_near = np.minimum(t1, t2)
        t_far = np.maximum(t1, t2)
        t_near = np.nan_to_num(t_near, nan=-np.inf)
        t_far = np.nan_to_num(t_far, nan=np.inf)
        t_enter = t_near.max(axis=-1)
        t_exit = t_far.min(axis=-1)
        hit = (t_exit >= t_enter) & (t_enter > EPS)
        t = np.where(hit, t_enter, np.inf)
        axis = t_near.argmax(axis=-1)
        normal_local = np.zeros_like(d_local)
        picked = np.take_along_axis(d_local, axis[..., None], axis=-1)[..., 0]
        np.put_along_axis(normal_local, axis[..., None], -np.sign(picked)[..., None], axis=-1)
        return t, matmul(normal_local, rot.T)


@dataclass(frozen=True)
class Cylinder:
    """A capped cylinder (a wheel): axis along the local x of a frame rotated by `yaw`."""

    center: tuple[float, float, float]
    radius: float
    half_width: float
    yaw: float = 0.0

    def corners(self) -> np.ndarray:
        return Box(self.center, (self.half_width, self.radius, self.radius), self.yaw).corners()

    def intersect(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rot = _yaw_matrix(self.yaw)
        ol = matmul(o - np.asarray(self.center), rot)  # rot.T @ (o - c)
        dl = matmul(d, rot)
        r, hw = self.radius, self.half_width
        # Side: (oy + t dy)^2 + (oz + t dz)^2 = r^2.
        a = dl[..., 1] ** 2 + dl[..., 2] ** 2
        b = 2.0 * (ol[..., 1] * dl[..., 1] + ol[..., 2] * dl[..., 2])
        c = ol[..., 1] ** 2 + ol[..., 2] ** 2 - r * r
        disc = b * b - 4.0 * a * c
        with np.errstate(divide="ignore", invalid="ignore"):
            t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)
            x_side = ol[..., 0] + t_side * dl[..., 0]
            side_ok = (disc >= 0) & (a > EPS) & (t_side > EPS) & (np.abs(x_side) <= hw)
            t_side = np.where(side_ok, t_side, np.inf)
            # Caps: the planes x = +-hw.
            cap_plane = np.where(ol[..., 0] > 0, hw, -hw)
            t_cap = (cap_plane - ol[..., 0]) / dl[..., 0]
            y_cap = ol[..., 1] + t_cap * dl[..., 1]
            z_cap = ol[..., 2] + t_cap * dl[..., 2]
            cap_ok = (t_cap > EPS) & (y_cap**2 + z_cap**2 <= r * r)
            t_cap = np.where(cap_ok, t_cap, np.inf)
        t = np.minimum(t_side, t_cap)
        on_side = t_side <= t_cap
        normal_local = np.zeros_like(dl)
        ts = np.where(np.isfinite(t_side), t_side, 0.0)
        normal_local[..., 1] = np.where(on_side, (ol[..., 1] + ts * dl[..., 1]) / r, 0.0)
        normal_local[..., 2] = np.where(on_side, (ol[..., 2] + ts * dl[..., 2]) / r, 0.0)
        normal_local[..., 0] = np.where(on_side, 0.0, np.sign(cap_plane))
        return t, matmul(normal_local, rot.T)


@dataclass(frozen=True)
class Cutout:
    """A thin vertical 2D cut-out (pedestrians, cyclists: the paper's §3.2 choice).

    `base` is the bottom centre on the ground, `width` x `height` metres, `yaw` turns its normal
    (0 faces -z, towards a camera behind it); `alpha` (rows top-down) is the silhouette.
    """

    base: tuple[float, float, float]
    width: float
    height: float
    yaw: float
    alpha: np.ndarray = field(repr=False, compare=False)

    def _frame(self) -> tuple[np.ndarray, np.ndarray]:
        rot = _yaw_matrix(self.yaw)
        return rot[:, 0].copy(), -rot[:, 2]  # rot @ (1, 0, 0), rot @ (0, 0, -1)

    def corners(self) -> np.ndarray:
        across, _ = self._frame()
        base = np.asarray(self.base)
        up = np.array([0.0, self.height, 0.0])
        half = across * self.width / 2
        return np.stack([base - half, base + half, base - half + up, base + half + up])

    def intersect(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        across, normal = self._frame()
        base = np.asarray(self.base)
        # A ray parallel to the plane gives t = inf and NaN coordinates: masked out by `inside`.
        with np.errstate(divide="ignore", invalid="ignore"):
            denom = dot(d, normal)
            t = dot(base - o, normal) / denom
            hit_point = o + t[..., None] * d
            s = dot(hit_point - base, across) / self.width + 0.5
            h = 1.0 - hit_point[..., 1] / self.height
            rows, cols = self.alpha.shape
            inside = (t > EPS) & (s >= 0) & (s < 1) & (h >= 0) & (h < 1)
            r = np.clip((h * rows).astype(np.int64, copy=False), 0, rows - 1)
            c = np.clip((s * cols).astype(np.int64, copy=False), 0, cols - 1)
        inside &= self.alpha[r, c]
        t = np.where(inside, t, np.inf)
        facing = np.where((denom < 0)[..., None], normal, -normal)
        return t, np.broadcast_to(facing, d.shape).copy()


@dataclass(frozen=True)
class GroundPlane:
    """The plane y = 0, everywhere."""

    def corners(self) -> None:
        return None

    def intersect(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -o[1] / d[..., 1]
        t = np.where((d[..., 1] < 0) & (t > EPS), t, np.inf)
        normal = np.zeros_like(d)
        normal[..., 1] = 1.0
        return t, normal


Primitive = Box | Cylinder | Cutout | GroundPlane
