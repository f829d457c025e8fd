"""How far pycocotools' pixel count of a polygon is from the polygon's own (shoelace) area.

    .venv/bin/python benchmarks/bench_area_tolerance.py [--outlines 20000]

A KINS record's declared area may be either; rasterize (daisnet/data/anomalies.py) flags a record
whose declared area is beyond a tolerance of its decoded mask's pixel count. This prints, for
random KINS-like outlines (star-shaped, 3 to 40 vertices, radii 1 to 150 px, some rotated, on a
1242 x 375 image), the share beyond a plain `10% + 4 px` and beyond the tolerance used (figures in
docs/rasterize.md).
"""

from __future__ import annotations

import argparse

import numpy as np
from pycocotools import mask as mask_utils

from daisnet.data import rle as rle_utils
from daisnet.data.anomalies import AREA_RELATIVE, AREA_SLACK_PX

H, W = 375, 1242


def outline(rng: np.random.Generator) -> list[float]:
    rx, ry = np.exp(rng.uniform(0, np.log(150))), np.exp(rng.uniform(0, np.log(100)))
    n = int(rng.integers(3, 40))
    t, r = np.sort(rng.uniform(0, 2 * np.pi, n)), rng.uniform(0.75, 1.0, n)
    x, y = rx * r * np.cos(t), ry * r * np.sin(t)
    angle = rng.choice([0.0, rng.uniform(0, np.pi)])
    c, s = np.cos(angle), np.sin(angle)
    cx, cy = rng.uniform(150, 1000), rng.uniform(100, 270)
    return np.round(np.stack([cx + c * x - s * y, cy + s * x + c * y], 1).ravel(), 2).tolist()


def shoelace(polygon: list[float]) -> float:
    x, y = np.asarray(polygon[0::2]), np.asarray(polygon[1::2])
    return 0.5 * abs(float(x @ np.roll(y, -1) - y @ np.roll(x, -1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outlines", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    for _ in range(args.outlines):
        polygon = outline(rng)
        rle = rle_utils.to_rle([polygon], H, W)
        _, _, w, h = mask_utils.toBbox(rle)
        rows.append((shoelace(polygon), rle_utils.area(rle), w + h))
    declared, decoded, half_perimeter = np.asarray(rows).T
    difference = np.abs(declared - decoded)
    plain = AREA_RELATIVE * np.maximum(declared, decoded) + AREA_SLACK_PX
    used = plain + half_perimeter
    for name, bound in (("10% + 4 px", plain), ("the tolerance used (+ box width + height)", used)):
        beyond = difference > bound
        sizes = "none"
        if beyond.any():
            sizes = f"decoded px of those: median {np.median(decoded[beyond]):.0f}, max {decoded[beyond].max():.0f}"
        print(f"beyond {name}: {beyond.sum()} of {len(rows)} ({beyond.mean():.2%}), "
              f"worst {np.max(difference / bound):.1f}x the bound; {sizes}")


if __name__ == "__main__":
    main()
