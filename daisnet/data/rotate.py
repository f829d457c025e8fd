"""§4.2's rotation and colour-filter augmentations, on the model's input channels and the masks.

A rotation moves every pixel about the image centre: continuous channels are resampled bilinearly
(0 outside the rotated image), masks by nearest neighbour, and the normal-tangent map's (x, y)
components turn with the image (a vector field rotates, it is not only moved). Boxes are then
recomputed from the masks by the dataset.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def rotation_matrix(degrees: float) -> np.ndarray:
    """(row, col) coordinates: a counter-clockwise turn on screen (rows grow downwards)."""
    t = math.radians(degrees)
    return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])


def rotate_grid(array: np.ndarray, degrees: float, order: int) -> np.ndarray:
    """Rotate (..., h, w) about the centre; `order` 1 (bilinear) or 0 (nearest); 0 outside."""
    h, w = array.shape[-2:]
    forward = rotation_matrix(degrees)
    inverse = forward.T  # output (row, col) -> input (row, col), about the centre
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    offset = centre - inverse @ centre
    flat = array.reshape(-1, h, w)
    out = np.stack([ndimage.affine_transform(plane, inverse, offset=offset, order=order, mode="constant", cval=0)
                    for plane in flat]) if len(flat) else flat.copy()
    return out.reshape(array.shape)


def rotate_sample(image: np.ndarray, amodal: np.ndarray, visible: np.ndarray, degrees: float,
                  normal_channel: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate an image (C, h, w) float32 and its masks (k, h, w) bool by `degrees`.

    `normal_channel`: the first of the three normal-tangent channels (x, y, z), whose x and y turn
    with the image."""
    rotated = rotate_grid(image.astype(np.float32, copy=False), degrees, order=1).astype(np.float32)
    if normal_channel is not None:
        nx, ny = rotated[normal_channel].copy(), rotated[normal_channel + 1].copy()
        (a, b), (c, d) = rotation_matrix(degrees)  # acts on (row, col) = (y, x)
        rotated[normal_channel + 1] = a * ny + b * nx
        rotated[normal_channel] = c * ny + d * nx
    masks = rotate_grid(np.concatenate([amodal, visible]).astype(np.uint8), degrees, order=0).astype(bool)
    return rotated, masks[: len(amodal)], masks[len(amodal):]


def colour_filter(rgb: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A random colour filter: each channel of (3, h, w) in [0, 1] scaled by a gain in [1 - s, 1 + s]."""
    gains = rng.uniform(1 - strength, 1 + strength, size=3).astype(np.float32)
    return np.clip(rgb * gains[:, None, None], 0.0, 1.0)
