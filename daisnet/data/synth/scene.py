"""Sampling a synthetic street scene (§3.2 of the paper).

Two scenarios, as the paper's Unity set-up: `street` (a 100+ m street with sidewalks, buildings and
clutter; few vehicles, about three pedestrians per vehicle) and `openroad` (a wide road with many
vehicles in traffic). Camera and vehicles follow eq. 1: camera x in [-5, 5], height in [1, 2],
z in [0, 50]; vehicles at `[r(-10, 10), gamma, z + r(10, 50)]` with a random yaw. Objects whose
footprints collide are re-placed until they fit (the paper moves them until they do).

Occlusion is what the task is about, so a share of the objects (`line_of_sight`) is placed on the
camera's line of sight to an object already placed, a few metres nearer or farther (measured on a
prototype: this is what yields KINS-like occlusion rates).

The road is wide enough for eq. 1's lateral range: vehicles stay on it (`street_half_width`), and
the sidewalks, buildings and trees start at its edge. The sun casts shadows (render.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from daisnet.data.categories import NAME_TO_ID
from daisnet.data.synth import silhouettes
from daisnet.data.synth.geometry import Box, Cutout, Cylinder, Primitive
from daisnet.data.synth.vec import dot, matmul


@dataclass(frozen=True)
class SceneConfig:
    """Every knob of a scene (params.yaml `synth.*`)."""

    street_fraction: float = 0.5
    street_vehicles: tuple[int, int] = (2, 3)  # eq. 1: Vn = r(2, 3)
    street_pedestrians_per_vehicle: float = 3.0  # §3.2: vehicles to pedestrians about 1:3
    openroad_vehicles: tuple[int, int] = (6, 12)
    openroad_pedestrians: tuple[int, int] = (0, 2)
    cyclist_fraction: float = 0.25
    vehicle_distance: tuple[float, float] = (10.0, 50.0)  # eq. 1: z + r(10, 50)
    vehicle_x: tuple[float, float] = (-10.0, 10.0)  # eq. 1: r(-10, 10)
    # Half widths of the road (kerb to kerb, m). Vehicles keep 1.2 m inside it, so a street of
    # 11.2 m holds eq. 1's x range on the road; sidewalks and buildings start at the kerb.
    street_half_width: float = 11.2
    openroad_half_width: float = 12.0
    pedestrian_distance: tuple[float, float] = (5.0, 40.0)
    line_of_sight: float = 0.7
    line_of_sight_gap: tuple[float, float] = (3.0, 12.0)
    max_placement_tries: int = 50


@dataclass
class Part:
    """One primitive of an object with its surface: base colour (RGB 0-1) and texture noise."""

    shape: Primitive
    color: tuple[float, float, float]
    noise: float = 0.04


@dataclass
class SceneObject:
    """An annotated object (`category_id` set) or clutter (`category_id` None)."""

    parts: list[Part]
    category_id: int | None
    footprint: tuple[float, float, float, float, float] | None = None  # x, z, half-x, half-z, yaw


@dataclass
class Camera:
    position: tuple[float, float, float]


@dataclass
class Scene:
    scenario: str
    camera: Camera
    objects: list[SceneObject]  # annotated, in placement order
    clutter: list[SceneObject]
    light: tuple[float, float, float]  # unit direction towards the light
    ambient: float
    sky_top: tuple[float, float, float]
    sky_bottom: tuple[float, float, float]
    ground_color: tuple[float, float, float]
    lane_half_width: float
    extra: dict = field(default_factory=dict)


VEHICLE_KERB_GAP = 1.2  # m: a vehicle's centre stays this far inside the road's edge

# Vehicle classes: (KINS name, length, width, body height, cabin spec, weight in the mix).
_VEHICLES = {
    "car": dict(length=(3.8, 4.6), width=(1.65, 1.85), body=(0.65, 0.8), cabin=(0.55, 0.7), weight=0.65),
    "van": dict(length=(4.6, 5.4), width=(1.9, 2.05), body=(1.5, 1.8), cabin=(0.0, 0.0), weight=0.22),
    "truck": dict(length=(6.5, 9.0), width=(2.3, 2.5), body=(2.4, 3.0), cabin=(0.0, 0.0), weight=0.13),
}
_VEHICLE_COLORS = [
    (0.75, 0.75, 0.78), (0.1, 0.1, 0.12), (0.55, 0.08, 0.08), (0.1, 0.2, 0.5), (0.85, 0.85, 0.8),
    (0.35, 0.35, 0.38), (0.6, 0.5, 0.2), (0.1, 0.35, 0.2),
]


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _vehicle(rng: np.random.Generator, kind: str, x: float, z: float, yaw: float) -> SceneObject:
    spec = _VEHICLES[kind]
    length, width = _uniform(rng, spec["length"]), _uniform(rng, spec["width"])
    body_h = _uniform(rng, spec["body"])
    wheel_r = 0.32 if kind == "car" else 0.42
    clearance = wheel_r * 0.7
    color = _VEHICLE_COLORS[rng.integers(len(_VEHICLE_COLORS))]
    rot = np.array([[math.cos(yaw), math.sin(yaw)], [-math.sin(yaw), math.cos(yaw)]])

    def at(local_x: float, local_z: float) -> tuple[float, float]:
        # Local x across the vehicle, local z along it; rotate by yaw about y.
        wx, wz = matmul(np.array([local_x, local_z]), rot.T)  # rot @ (x, z)
        return x + float(wx), z + float(wz)

    parts: list[Part] = []
    cx, cz = at(0.0, 0.0)
    parts.append(Part(Box((cx, clearance + body_h / 2, cz), (width / 2, body_h / 2, length / 2), yaw), color))
    glass = (0.12, 0.15, 0.2)
    if kind == "car":
        cabin_h = _uniform(rng, spec["cabin"])
        cabin_len = length * rng.uniform(0.45, 0.55)
        ox, oz = at(0.0, -length * rng.uniform(0.02, 0.1))
        parts.append(Part(Box((ox, clearance + body_h + cabin_h / 2, oz),
                              (width / 2 * 0.88, cabin_h / 2, cabin_len / 2), yaw), glass, 0.02))
    elif kind == "truck":
        cab_len = 1.9
        ox, oz = at(0.0, length / 2 + cab_len / 2 + 0.15)
        cab_h = body_h * 0.8
        parts.append(Part(Box((ox, clearance + cab_h / 2, oz), (width / 2, cab_h / 2, cab_len / 2), yaw),
                          tuple(min(1.0, c * 1.2 + 0.1) for c in color)))
        length += cab_len + 0.15
        cz_shift = (cab_len + 0.15) / 2
        cx, cz = at(0.0, cz_shift)
    else:  # van: a windscreen band on the front
        ox, oz = at(0.0, length / 2 - 0.3)
        parts.append(Part(Box((ox, clearance + body_h * 0.72, oz), (width / 2 * 1.01, body_h * 0.14, 0.31), yaw),
                          glass, 0.02))
    half_len = length / 2
    for along in (-0.33, 0.33) if kind != "truck" else (-0.35, 0.0, 0.45):
        for side in (-1, 1):
            wx, wz = at(side * (width / 2 - 0.12), along * (length if kind != "truck" else length - 1.0))
            parts.append(Part(Cylinder((wx, wheel_r, wz), wheel_r, 0.12, yaw), (0.05, 0.05, 0.05), 0.02))
    return SceneObject(parts, NAME_TO_ID[kind], (cx, cz, width / 2 + 0.1, half_len + 0.1, yaw))


def _person(rng: np.random.Generator, kind: str, x: float, z: float, yaw: float) -> SceneObject:
    if kind == "cyclist":
        alpha, ratio = silhouettes.cyclist(rng)
        height = rng.uniform(1.6, 1.85)
    else:
        alpha, ratio = silhouettes.pedestrian(rng)
        height = rng.uniform(1.5, 1.9)
    color = tuple(float(c) for c in rng.uniform(0.05, 0.8, 3))
    cutout = Cutout((x, 0.0, z), height * ratio, height, yaw, alpha)
    half = height * ratio / 2
    # The paper's "very thin collision box".
    return SceneObject([Part(cutout, color, 0.08)], NAME_TO_ID[kind], (x, z, half, 0.3, yaw))


def _footprint_corners(fp: tuple[float, float, float, float, float]) -> np.ndarray:
    x, z, hx, hz, yaw = fp
    c, s = math.cos(yaw), math.sin(yaw)
    local = np.array([[-hx, -hz], [hx, -hz], [hx, hz], [-hx, hz]])
    rot = np.array([[c, s], [-s, c]])
    return matmul(local, rot.T) + np.array([x, z])


def footprints_collide(a: tuple, b: tuple) -> bool:
    """Separating-axis test of two oriented rectangles on the ground."""
    ca, cb = _footprint_corners(a), _footprint_corners(b)
    for corners in (ca, cb):
        for i in range(2):
            edge = corners[i + 1] - corners[i]
            axis = np.array([-edge[1], edge[0]])
            pa, pb = dot(ca, axis), dot(cb, axis)
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def _street_clutter(rng: np.random.Generator, cam_z: float, lane: float) -> list[SceneObject]:
    """Sidewalks, buildings with gaps, poles and trees: things the network must learn to ignore."""
    clutter: list[SceneObject] = []
    walk = 3.0
    for side in (-1, 1):
        clutter.append(SceneObject([Part(Box((side * (lane + walk / 2), 0.075, cam_z + 75.0),
                                             (walk / 2, 0.075, 90.0)), (0.55, 0.55, 0.52), 0.05)], None))
        z = cam_z - 10.0
        while z < cam_z + 150.0:
            length = rng.uniform(8.0, 25.0)
            if rng.random() < 0.85:
                depth = rng.uniform(6.0, 12.0)
                height = rng.uniform(5.0, 20.0)
                color = tuple(float(c) for c in rng.uniform(0.25, 0.75, 3))
                x = side * (lane + walk + rng.uniform(0.0, 2.0) + depth / 2)
                clutter.append(SceneObject([Part(Box((x, height / 2, z + length / 2),
                                                     (depth / 2, height / 2, length / 2)), color, 0.06)], None))
            z += length + rng.uniform(0.0, 3.0)
        z = cam_z + rng.uniform(2.0, 10.0)
        while z < cam_z + 80.0:
            x = side * (lane + 0.4)
            if rng.random() < 0.5:  # pole
                clutter.append(SceneObject([Part(Box((x, 2.5, z), (0.06, 2.5, 0.06)), (0.3, 0.3, 0.3))], None))
            else:  # tree: trunk and crown
                crown = rng.uniform(1.0, 1.8)
                clutter.append(SceneObject([
                    Part(Box((x, 1.5, z), (0.12, 1.5, 0.12)), (0.3, 0.2, 0.1)),
                    Part(Box((x, 3.0 + crown, z), (crown, crown, crown), rng.uniform(0, math.pi)),
                         (0.15, rng.uniform(0.3, 0.5), 0.12), 0.12),
                ], None))
            z += rng.uniform(8.0, 20.0)
    return clutter


def _openroad_clutter(rng: np.random.Generator, cam_z: float, lane: float) -> list[SceneObject]:
    clutter: list[SceneObject] = []
    for side in (-1, 1):
        z = cam_z + rng.uniform(5.0, 20.0)
        while z < cam_z + 120.0:
            crown = rng.uniform(1.5, 3.0)
            x = side * (lane + rng.uniform(3.0, 15.0))
            clutter.append(SceneObject([
                Part(Box((x, 1.5, z), (0.15, 1.5, 0.15)), (0.3, 0.2, 0.1)),
                Part(Box((x, 3.0 + crown, z), (crown, crown, crown), rng.uniform(0, math.pi)),
                     (0.12, rng.uniform(0.3, 0.5), 0.1), 0.12),
            ], None))
            z += rng.uniform(6.0, 25.0)
    return clutter


def sample_scene(rng: np.random.Generator, config: SceneConfig) -> Scene:
    """One random scene; deterministic given the generator's state."""
    street = rng.random() < config.street_fraction
    cam = (float(rng.uniform(-5, 5)), float(rng.uniform(1, 2)), float(rng.uniform(0, 50)))  # eq. 1
    lane = config.street_half_width if street else config.openroad_half_width
    if street:
        vehicles = int(rng.integers(config.street_vehicles[0], config.street_vehicles[1] + 1))
        pedestrians = int(round(vehicles * config.street_pedestrians_per_vehicle * rng.uniform(0.7, 1.3)))
        clutter = _street_clutter(rng, cam[2], lane)
        sun = (0.95, 0.97, 1.0)
    else:
        vehicles = int(rng.integers(config.openroad_vehicles[0], config.openroad_vehicles[1] + 1))
        pedestrians = int(rng.integers(config.openroad_pedestrians[0], config.openroad_pedestrians[1] + 1))
        clutter = _openroad_clutter(rng, cam[2], lane)
        sun = (1.0, 0.95, 0.85)
    kinds = ["vehicle"] * vehicles + ["person"] * pedestrians
    rng.shuffle(kinds)

    objects: list[SceneObject] = []
    for kind in kinds:
        placed = _place(rng, config, kind, street, cam, lane, objects)
        if placed is not None:
            objects.append(placed)

    elevation = rng.uniform(0.3, 1.2)
    azimuth = rng.uniform(0, 2 * math.pi)
    light = (math.cos(elevation) * math.cos(azimuth), math.sin(elevation), math.cos(elevation) * math.sin(azimuth))
    haze = rng.uniform(0.0, 0.3)
    return Scene(
        scenario="street" if street else "openroad",
        camera=Camera(cam),
        objects=objects,
        clutter=clutter,
        light=light,
        ambient=float(rng.uniform(0.25, 0.45)),
        sky_top=(0.25 + haze, 0.45 + haze, 0.85),
        sky_bottom=(0.7 + haze * 0.5, 0.8, 0.92),
        ground_color=tuple(float(c) for c in (np.array([0.28, 0.28, 0.3]) * rng.uniform(0.8, 1.2))),
        lane_half_width=lane,
        extra={"sun": sun},
    )


def _place(rng, config: SceneConfig, kind: str, street: bool, cam, lane: float,
           placed: list[SceneObject]) -> SceneObject | None:
    """Place one object, re-drawing its position until its footprint collides with nothing."""
    for _ in range(config.max_placement_tries):
        if kind == "vehicle":
            if placed and rng.random() < config.line_of_sight:
                x, z = _on_line_of_sight(rng, config, cam, placed)
            else:
                x = _uniform(rng, config.vehicle_x)  # eq. 1
                z = cam[2] + _uniform(rng, config.vehicle_distance)
            if abs(x) > lane - VEHICLE_KERB_GAP:
                continue
            # Street: any yaw (eq. 1); open road: vehicles follow the road.
            yaw = rng.uniform(0, 2 * math.pi) if street else rng.choice([0.0, math.pi]) + rng.normal(0, 0.08)
            names = list(_VEHICLES)
            weights = np.array([_VEHICLES[n]["weight"] for n in names])
            obj = _vehicle(rng, str(rng.choice(names, p=weights / weights.sum())), x, z, float(yaw))
        else:
            if placed and rng.random() < config.line_of_sight:
                x, z = _on_line_of_sight(rng, config, cam, placed)
            else:
                x = rng.uniform(-lane - 2.5, lane + 2.5) if street else rng.uniform(-lane, lane)
                z = cam[2] + _uniform(rng, config.pedestrian_distance)
            if abs(x) > lane + 2.7:
                continue
            category = "cyclist" if rng.random() < config.cyclist_fraction else "pedestrian"
            yaw = rng.uniform(-1.0, 1.0) if category == "pedestrian" else rng.choice([-1, 1]) * math.pi / 2 + rng.normal(0, 0.3)
            obj = _person(rng, category, x, z, float(yaw))
        if z - cam[2] < 3.0:
            continue
        if obj.footprint is not None and any(footprints_collide(obj.footprint, o.footprint) for o in placed):
            continue
        return obj
    return None


def _on_line_of_sight(rng, config: SceneConfig, cam, placed: list[SceneObject]) -> tuple[float, float]:
    target = placed[int(rng.integers(len(placed)))].footprint
    tx, tz = target[0], target[1]
    gap = _uniform(rng, config.line_of_sight_gap) * (1 if rng.random() < 0.5 else -1)
    z = tz + gap
    scale = (z - cam[2]) / max(tz - cam[2], 1e-3)
    x = cam[0] + (tx - cam[0]) * scale + rng.uniform(-1.5, 1.5)
    return float(x), float(z)
