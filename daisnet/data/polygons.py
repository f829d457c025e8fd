"""Exact bitmask -> COCO polygon conversion (for exporting synthetic labels in KINS format).

Pixel (r, c) is the unit square [c, c+1] x [r, r+1]; pycocotools rasterizes a polygon whose vertices
are those integer pixel corners back to exactly the same pixels (measured: tests/test_polygons.py).
So we trace the pixel-edge boundary of each 4-connected component, outer loop and holes alike, and
join its loops into one polygon with zero-width bridges: pycocotools fills a polygon by the even-odd
rule, so a bridge walked there and back cancels out and a hole stays a hole. Contour tracers that
put vertices at pixel centres (OpenCV's) lose half a pixel all round, which costs small objects far
more than the 2% IoU our labels may lose.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# Unit steps (dx, dy) in image coordinates (y down), in clockwise order.
_RIGHT, _DOWN, _LEFT, _UP = (1, 0), (0, 1), (-1, 0), (0, -1)
_CLOCKWISE = [_RIGHT, _DOWN, _LEFT, _UP]


def _boundary_edges(mask: np.ndarray) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Directed boundary edges, interior on the right of the walking direction (clockwise loops)."""
    padded = np.pad(mask, 1)
    inner = padded[1:-1, 1:-1]
    edges: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def add(rows: np.ndarray, cols: np.ndarray, start: tuple[int, int], step: tuple[int, int]) -> None:
        for r, c in zip(rows.tolist(), cols.tolist()):
            x0, y0 = c + start[0], r + start[1]
            edges.setdefault((x0, y0), []).append(step)

    r, c = np.nonzero(inner & ~padded[:-2, 1:-1])  # outside above: top edge, left -> right
    add(r, c, (0, 0), _RIGHT)
    r, c = np.nonzero(inner & ~padded[1:-1, 2:])  # outside right: right edge, downwards
    add(r, c, (1, 0), _DOWN)
    r, c = np.nonzero(inner & ~padded[2:, 1:-1])  # outside below: bottom edge, right -> left
    add(r, c, (1, 1), _LEFT)
    r, c = np.nonzero(inner & ~padded[1:-1, :-2])  # outside left: left edge, upwards
    add(r, c, (0, 1), _UP)
    return edges


def _trace_loops(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """Closed loops of corner vertices (collinear ones dropped) covering every boundary edge once."""
    edges = _boundary_edges(mask)
    loops = []
    while edges:
        start = min(edges)  # deterministic
        vertex, heading = start, None
        loop: list[tuple[int, int]] = []
        while True:
            steps = edges[vertex]
            if heading is None or len(steps) == 1:
                step = steps[0]
            else:
                # A pinch (two pixels touching at a corner): keep turning right, towards the
                # interior, so each loop stays simple.
                right_turn = _CLOCKWISE[(_CLOCKWISE.index(heading) + 1) % 4]
                step = right_turn if right_turn in steps else steps[0]
            steps.remove(step)
            if not steps:
                del edges[vertex]
            if step != heading:
                loop.append(vertex)
            heading = step
            vertex = (vertex[0] + step[0], vertex[1] + step[1])
            if vertex == start and (start not in edges):
                break
        loops.append(loop)
    return loops


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons (flat [x0, y0, x1, y1, ...]) that pycocotools decodes back to `mask` exactly.

    One polygon per 4-connected component; its holes are joined to it by zero-width bridges.
    """
    mask = np.asarray(mask, dtype=bool)
    labels, count = ndimage.label(mask)
    polygons = []
    for index, window in enumerate(ndimage.find_objects(labels), start=1):
        component = labels[window] == index
        loops = _trace_loops(component)
        dy, dx = window[0].start, window[1].start
        anchor = loops[0][0]
        path = list(loops[0])
        path.append(anchor)
        for loop in loops[1:]:
            # anchor -> hole -> around the hole -> back to anchor: the bridge cancels (even-odd).
            path.extend(loop)
            path.append(loop[0])
            path.append(anchor)
        flat: list[float] = []
        for x, y in path:
            flat.extend((float(x + dx), float(y + dy)))
        polygons.append(flat)
    return polygons
