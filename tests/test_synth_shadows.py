"""Cast shadows of the synthetic scenes (issue "Paper fidelity", point 5)."""

from __future__ import annotations

import numpy as np
import pytest

from daisnet.data.synth.geometry import Box, Cutout, Cylinder
from daisnet.data.synth.render import render
from daisnet.data.synth.scene import SceneConfig, sample_scene
from daisnet.data.synth.shadows import in_shadow, light_frame


def brute_force_shadow(points, normals, light, occluders) -> np.ndarray:
    """Every shadow ray against every primitive, no culling: what `in_shadow` must equal."""
    origins = points + normals * 1e-3
    directions = np.broadcast_to(light, origins.shape)
    blocked = np.zeros(len(points), bool)
    for shape in occluders:
        if shape.corners() is None:
            continue
        t, _ = shape.intersect(origins, directions)
        blocked |= np.isfinite(t)
    return blocked


def test_light_frame_is_orthonormal():
    for light in ([0.0, 1.0, 0.0], [0.6, 0.8, 0.0], [0.36, 0.48, 0.8]):
        light = np.array(light)
        first, second = light_frame(light)
        basis = np.stack([first, second, light])
        np.testing.assert_allclose(basis @ basis.T, np.eye(3), atol=1e-12)


def test_a_box_shadows_the_ground_below_it_and_nothing_beside_it():
    roof = Box((0.0, 3.0, 10.0), (1.0, 0.1, 1.0))
    up = np.array([0.0, 1.0, 0.0])
    points = np.array([[0.0, 0.0, 10.0], [0.9, 0.0, 10.9], [1.2, 0.0, 10.0], [0.0, 0.0, 12.0]])
    normals = np.broadcast_to(up, points.shape)
    assert in_shadow(points, normals, up, [roof]).tolist() == [True, True, False, False]
    # A low sun from +x moves the shadow to -x by height / tan(elevation) = 3 m.
    sun = np.array([np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0])
    moved = np.array([[-3.0, 0.0, 10.0], [0.0, 0.0, 10.0]])
    assert in_shadow(moved, np.broadcast_to(up, moved.shape), sun, [roof]).tolist() == [True, False]


def test_every_primitive_kind_casts_a_shadow():
    up = np.array([0.0, 1.0, 0.0])
    point = np.array([[0.0, 0.0, 5.0]])
    wheel = Cylinder((0.0, 2.0, 5.0), 0.4, 0.2, yaw=0.3)
    # A cut-out (the plane z = 5, 1 to 2.8 m above the ground) under a sun behind it (towards -z):
    # its shadow starts 1 / tan(elevation) = 1.33 m behind it.
    person = Cutout((0.0, 1.0, 5.0), 0.6, 1.8, yaw=0.0, alpha=np.ones((8, 4), bool))
    sun = np.array([0.0, 0.6, -0.8])
    assert in_shadow(point, up[None], up, [wheel]).tolist() == [True]
    assert in_shadow(point, up[None], up, [person]).tolist() == [False]  # edge-on: no thickness
    behind = point + np.array([[0.0, 0.0, -0.5], [0.0, 0.0, 0.7], [0.0, 0.0, 2.0], [0.0, 0.0, 4.0]])
    assert in_shadow(behind, np.broadcast_to(up, behind.shape), sun, [person]).tolist() == [False, False, True, False]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_light_space_culling_is_exact(seed):
    """The culled search finds exactly the shadows of testing every ray against every primitive."""
    rng = np.random.default_rng(seed)
    scene = sample_scene(rng, SceneConfig())
    light = np.asarray(scene.light)
    occluders = [part.shape for obj in (*scene.clutter, *scene.objects) for part in obj.parts]
    # Surface points of the rendered scene: its depth along the camera rays, the ground's normal
    # where it is the ground, which is where most shadows fall.
    out = render(scene, 48, 160, 80.0, np.random.default_rng(0), focal=180.0)
    rows, cols = np.nonzero(out.depth < 80.0)
    cam = np.asarray(scene.camera.position)
    directions = np.stack([(cols + 0.5 - 80) / 180.0, -(rows + 0.5 - 24) / 180.0, np.ones(rows.size)], axis=-1)
    points = cam + directions * out.depth[rows, cols, None].astype(np.float64)
    points = points[np.abs(points[:, 1]) < 1e-3]  # ground hits: y = 0
    normals = np.broadcast_to(np.array([0.0, 1.0, 0.0]), points.shape)
    fast = in_shadow(points, normals, light, occluders)
    np.testing.assert_array_equal(fast, brute_force_shadow(points, normals, light, occluders))
    assert len(points) > 500


def test_shadows_only_darken_and_leave_depth_and_labels_alone():
    rng_state = 11
    scene = sample_scene(np.random.default_rng(rng_state), SceneConfig(street_fraction=1.0))
    lit = render(scene, 96, 320, 80.0, np.random.default_rng(4), cast_shadows=False)
    shaded = render(scene, 96, 320, 80.0, np.random.default_rng(4), cast_shadows=True)
    np.testing.assert_array_equal(lit.depth, shaded.depth)
    np.testing.assert_array_equal(lit.owner, shaded.owner)
    assert (shaded.rgb.astype(int) <= lit.rgb.astype(int)).all()
    darker = (shaded.rgb.astype(int).sum(-1) < lit.rgb.astype(int).sum(-1) - 30).mean()
    assert darker > 0.02  # a street scene: buildings and vehicles shadow part of the road
