"""Exact rendering of a sampled scene: RGB, metric depth, and each object's amodal and visible mask.

A z-buffer over ray-cast primitives. Each annotated object is cast on its own (its amodal mask is
every pixel its own surface covers, whatever lies in front), and a label z-buffer records which
object owns each pixel (its visible mask). Labels are therefore exact by construction: visible masks
never overlap and each lies in its amodal mask (tests/test_synth.py checks both).

Labels are drawn the way KINS annotators draw them (`fill_label_holes`, default on): as outlines. A
KINS mask is the union of outline polygons, so it has no holes, while a rendered cyclist has a hole
in each wheel and between its frame tubes, which a 28 x 28 mask head cannot represent
(`daisnet bounds`, docs/metrics.md: ground-truth cyclist masks through that grid score 10.3 AP
with the holes, 18.1 filled). So an object's label is its own surface with the holes filled; a
filled pixel takes the depth of the nearest pixel of that surface when the label z-buffer decides
who is in front.
The RGB and the depth map are unchanged: through a wheel one still sees what is behind it. With
holes kept, the label z-buffer is the scene's, and the visible masks' union is exactly the object
pixels of the depth map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from daisnet.data.synth.geometry import GroundPlane
from daisnet.data.synth.shadows import in_shadow
from daisnet.data.synth.vec import dot
from daisnet.data.synth.scene import Part, Scene, SceneObject

KITTI_FOCAL = 721.5377  # px at 1242 px width: our focal scales with the image width
KITTI_WIDTH = 1242


@dataclass
class Rendering:
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres, clipped at max_depth (sky = max_depth)
    owner: np.ndarray  # (H, W) int32: index of the annotated object whose visible label has the pixel, else -1
    amodal: list[tuple[tuple[slice, slice], np.ndarray]]  # per object: window and its mask in it
    object_depth: np.ndarray  # (objects,) mean depth of each object's own surface (nan if unseen)
    focal: float


def focal_for_width(width: int) -> float:
    return KITTI_FOCAL * width / KITTI_WIDTH


def _window(corners: np.ndarray | None, cam: np.ndarray, focal: float, h: int, w: int) -> tuple[slice, slice] | None:
    """The pixel window a primitive can cover (its projected 3D bounding box), None if off screen."""
    if corners is None:
        return slice(0, h), slice(0, w)
    rel = corners - cam
    if (rel[:, 2] <= 0.05).all():
        return None
    if (rel[:, 2] <= 0.05).any():
        return slice(0, h), slice(0, w)
    u = rel[:, 0] / rel[:, 2] * focal + w / 2
    v = -rel[:, 1] / rel[:, 2] * focal + h / 2
    c0, c1 = int(np.floor(u.min())) - 1, int(np.ceil(u.max())) + 1
    r0, r1 = int(np.floor(v.min())) - 1, int(np.ceil(v.max())) + 1
    c0, c1, r0, r1 = max(c0, 0), min(c1, w), max(r0, 0), min(r1, h)
    if c0 >= c1 or r0 >= r1:
        return None
    return slice(r0, r1), slice(c0, c1)


def _outline(own_depth: np.ndarray) -> np.ndarray:
    """An object's label depth: its own surface's, holes filled with the nearest surface pixel's.

    inf outside the outline. What an annotator's outline polygon covers: holes in the surface
    (wheels, gaps between a cyclist's frame tubes) become part of the object.
    """
    surface = np.isfinite(own_depth)
    holes = ndimage.binary_fill_holes(surface) & ~surface
    if not holes.any():
        return own_depth
    _, (rows, cols) = ndimage.distance_transform_edt(~surface, return_indices=True)
    return np.where(holes, own_depth[rows, cols], own_depth)


def render(scene: Scene, height: int, width: int, max_depth: float, rng: np.random.Generator,
           focal: float | None = None, fill_label_holes: bool = True, cast_shadows: bool = True) -> Rendering:
    """Ray-cast `scene`; `focal` in px (None: KITTI's, scaled to `width`), principal point at the centre.

    `fill_label_holes`: labels as outlines, the way KINS draws them (module docstring).
    `cast_shadows`: every primitive shadows what lies behind it from the sun (daisnet/data/synth/shadows.py).
    """
    focal = focal_for_width(width) if focal is None else float(focal)
    cam = np.asarray(scene.camera.position, dtype=np.float64)
    directions = _pixel_rays(height, width, focal)
    buffers = _Buffers.empty(height, width)
    _draw_ground(buffers, scene, cam, directions)
    _draw_clutter(buffers, scene, cam, directions, focal)
    owner, amodal, object_depth = _draw_objects(buffers, scene, cam, directions, focal, fill_label_holes)
    depth = np.minimum(buffers.z, max_depth).astype(np.float32)
    rgb = _shade(scene, directions, cam, buffers.z, buffers.normal, buffers.albedo, buffers.noise_amp,
                 buffers.is_ground, height, rng, cast_shadows)
    return Rendering(rgb, depth, owner, amodal, object_depth, focal)


def _pixel_rays(height: int, width: int, focal: float) -> np.ndarray:
    """(H, W, 3) camera-frame ray directions through the pixel centres, z = 1."""
    v, u = np.mgrid[0:height, 0:width]
    return np.stack(
        [(u + 0.5 - width / 2) / focal, -(v + 0.5 - height / 2) / focal, np.ones((height, width))], axis=-1
    )


@dataclass
class _Buffers:
    """The scene's z-buffer: per pixel, the distance along the ray to the nearest surface and that surface's
    normal, albedo, texture noise amplitude and whether it is the ground (what `_shade` needs)."""

    z: np.ndarray  # (H, W) float64, inf where no surface
    normal: np.ndarray  # (H, W, 3)
    albedo: np.ndarray  # (H, W, 3)
    noise_amp: np.ndarray  # (H, W)
    is_ground: np.ndarray  # (H, W) bool

    @classmethod
    def empty(cls, height: int, width: int) -> _Buffers:
        return cls(np.full((height, width), np.inf), np.zeros((height, width, 3)), np.zeros((height, width, 3)),
                   np.zeros((height, width)), np.zeros((height, width), bool))

    def draw(self, part: Part, window: tuple[slice, slice], t: np.ndarray, n: np.ndarray) -> None:
        """Keep the pixels of `window` where `part` (hit at distances `t`, normals `n`) is nearer."""
        zb = self.z[window]
        nearer = t < zb
        zb[nearer] = t[nearer]
        self.normal[window][nearer] = n[nearer]
        self.albedo[window][nearer] = part.color
        self.noise_amp[window][nearer] = part.noise
        self.is_ground[window][nearer] = False


def _draw_ground(buffers: _Buffers, scene: Scene, cam: np.ndarray, directions: np.ndarray) -> None:
    """The ground plane, first: every pixel whose ray meets it."""
    ground = GroundPlane()
    t, n = ground.intersect(cam, directions)
    hit = np.isfinite(t)
    buffers.z[hit] = t[hit]
    buffers.normal[hit] = n[hit]
    buffers.albedo[hit] = scene.ground_color
    buffers.noise_amp[hit] = 0.06
    buffers.is_ground[hit] = True


def _draw_clutter(buffers: _Buffers, scene: Scene, cam: np.ndarray, directions: np.ndarray, focal: float) -> None:
    """The unannotated objects (buildings, trees, ...), each part in its on-screen window."""
    height, width = buffers.z.shape
    for obj in scene.clutter:
        for part in obj.parts:
            window = _window(part.shape.corners(), cam, focal, height, width)
            if window is not None:
                t, n = part.shape.intersect(cam, directions[window])
                buffers.draw(part, window, t, n)


def _draw_objects(buffers: _Buffers, scene: Scene, cam: np.ndarray, directions: np.ndarray, focal: float,
                  fill_label_holes: bool) -> tuple[np.ndarray, list[tuple[tuple[slice, slice], np.ndarray]], np.ndarray]:
    """The annotated objects, drawn into `buffers`, and their labels: (owner, amodal, object_depth) of `Rendering`."""
    height, width = buffers.z.shape
    owner = np.full((height, width), -1, dtype=np.int32)
    # Who is in front, for the labels: ground and clutter as drawn, objects as outlines.
    label_z = buffers.z.copy()
    amodal: list[tuple[tuple[slice, slice], np.ndarray]] = []
    object_depth = np.full(len(scene.objects), np.nan)
    for index, obj in enumerate(scene.objects):
        cast = _cast_object(buffers, obj, cam, directions, focal)
        if cast is None:
            amodal.append(((slice(0, 0), slice(0, 0)), np.zeros((0, 0), bool)))
            continue
        window, own = cast
        surface = np.isfinite(own)
        if surface.any():
            object_depth[index] = float(own[surface].mean())
        label_depth = _outline(own) if fill_label_holes else own
        nearer = label_depth < label_z[window]
        label_z[window][nearer] = label_depth[nearer]
        owner[window][nearer] = index
        amodal.append((window, np.isfinite(label_depth)))
    return owner, amodal, object_depth


def _cast_object(buffers: _Buffers, obj: SceneObject, cam: np.ndarray, directions: np.ndarray,
                 focal: float) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """Draw one object's parts into `buffers`; return its own z-buffer and the window it spans (None: off screen)."""
    height, width = buffers.z.shape
    windows = [_window(p.shape.corners(), cam, focal, height, width) for p in obj.parts]
    visible_windows = [w for w in windows if w is not None]
    if not visible_windows:
        return None
    # The object's own z-buffer over the union of its parts' windows.
    r0 = min(w[0].start for w in visible_windows)
    r1 = max(w[0].stop for w in visible_windows)
    c0 = min(w[1].start for w in visible_windows)
    c1 = max(w[1].stop for w in visible_windows)
    own = np.full((r1 - r0, c1 - c0), np.inf)
    for part, window in zip(obj.parts, windows):
        if window is None:
            continue
        t, n = part.shape.intersect(cam, directions[window])
        local = (slice(window[0].start - r0, window[0].stop - r0), slice(window[1].start - c0, window[1].stop - c0))
        np.minimum(own[local], t, out=own[local])
        buffers.draw(part, window, t, n)
    return (slice(r0, r1), slice(c0, c1)), own


def _shade(scene: Scene, directions, cam, z_buffer, normal, albedo, noise_amp, is_ground, height, rng,
           cast_shadows: bool) -> np.ndarray:
    """Lambertian shading under a random sun with cast shadows, textures as noise, lane marks, sky, haze."""
    light = np.asarray(scene.light)
    sun = np.asarray(scene.extra.get("sun", (1.0, 1.0, 1.0)))
    lambert = np.clip(dot(normal, light), 0.0, 1.0)
    if cast_shadows:
        lit = np.flatnonzero((lambert > 0) & np.isfinite(z_buffer))
        rows, cols = np.unravel_index(lit, z_buffer.shape)
        points = cam + directions[rows, cols] * z_buffer[rows, cols, None]
        occluders = [part.shape for obj in (*scene.clutter, *scene.objects) for part in obj.parts]
        shadowed = in_shadow(points, normal[rows, cols], light, occluders)
        lambert[rows[shadowed], cols[shadowed]] = 0.0
    shade = scene.ambient + (1.0 - scene.ambient) * lambert
    color = albedo * shade[..., None] * sun

    # Ground texture: dashed lane marks and the road edge, in world coordinates.
    hit = cam + directions * np.where(np.isfinite(z_buffer), z_buffer, 0.0)[..., None]
    x, z = hit[..., 0], hit[..., 2]
    dashed = (np.abs(x) < 0.08) & ((z % 9.0) < 4.5)
    edge = np.abs(np.abs(x) - (scene.lane_half_width - 0.3)) < 0.08
    road = np.abs(x) < scene.lane_half_width
    marks = is_ground & (dashed | edge)
    color[marks] = 0.85 * shade[marks, None]
    if scene.scenario == "openroad":
        grass = is_ground & ~road
        color[grass] = np.array([0.2, 0.38, 0.15]) * shade[grass, None]

    texture = rng.normal(0.0, 1.0, z_buffer.shape)
    color *= 1.0 + noise_amp[..., None] * texture[..., None] * 2.0

    sky = ~np.isfinite(z_buffer)
    rows = np.linspace(0.0, 1.0, height)[:, None, None]
    sky_color = np.asarray(scene.sky_top) * (1 - rows) + np.asarray(scene.sky_bottom) * rows
    color = np.where(sky[..., None], np.broadcast_to(sky_color, color.shape), color)

    # Aerial perspective: far surfaces fade towards the horizon colour.
    fog = 1.0 - np.exp(-np.where(np.isfinite(z_buffer), z_buffer, 0.0) / 250.0)
    color = color * (1 - fog[..., None]) + np.asarray(scene.sky_bottom) * fog[..., None]
    color += rng.normal(0.0, 0.01, color.shape)
    return (np.clip(color, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
