"""Reading one image or depth file of a dataset into an array, refusing what is not what it should be.

`read_image`: an 8-bit RGB (or grey) image of the size its annotation gives, as (h, w, 3) uint8;
single-channel 16/32-bit images (`HIGH_DEPTH_MODES`) are refused, not clipped to white. `read_depth`:
a 16-bit integer PNG in metres x `DEPTH_PNG_SCALE` (KITTI's convention), as (h, w) float32 metres.
A file that cannot be read, or is of the wrong size or kind, is an `InputError` naming the file and
the record. Used by the rasterize image tasks (daisnet/data/rasterize_shards.py) and the KITTI
reader (daisnet/data/kitti.py); `HIGH_DEPTH_MODES` also by daisnet/predict.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from daisnet.errors import InputError

DEPTH_PNG_SCALE = 256.0  # KITTI convention: uint16 PNG = metres x 256
# PIL modes of single-channel images deeper than 8 bits: refused as RGB images.
HIGH_DEPTH_MODES = {"I;16": "16-bit", "I;16B": "16-bit", "I;16L": "16-bit", "I": "32-bit", "F": "32-bit float"}


def read_image(path: Path, size: tuple[int, int], record: str, annotations: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            mode = im.mode
            # Single-channel 16/32-bit modes would be clipped to 255 by the RGB conversion (all white).
            if mode not in HIGH_DEPTH_MODES:
                rgb = np.asarray(im.convert("RGB"))
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError... on broken files
        raise InputError(f"cannot read image {path} ({type(exc).__name__}: {exc})", path=annotations,
                         record=record) from None
    if mode in HIGH_DEPTH_MODES:
        raise InputError(f"image {path} is a {HIGH_DEPTH_MODES[mode]} single-channel image (PIL mode {mode}); "
                         "images must be 8-bit RGB (or grey) as KINS's: convert it", path=annotations, record=record)
    if rgb.shape[:2] != tuple(size):
        raise InputError(f"image {path} is {rgb.shape[0]} x {rgb.shape[1]} (h x w), the annotation says "
                         f"{size[0]} x {size[1]}", path=annotations, record=record)
    return rgb


def read_depth(path: Path, size: tuple[int, int], record: str, annotations: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            raw = np.asarray(im)
    except Exception as exc:
        raise InputError(f"cannot read depth {path} ({type(exc).__name__}: {exc})", path=annotations,
                         record=record) from None
    if raw.ndim != 2 or raw.shape != tuple(size) or raw.dtype.kind not in "ui":
        raise InputError(f"depth {path} must be a single-channel integer PNG of {size[0]} x {size[1]}, is "
                         f"{raw.dtype} {raw.shape}", path=annotations, record=record)
    if raw.dtype.itemsize < 2:  # 8 bits cannot hold metres x 256: every depth would read below 1 m
        raise InputError(f"depth {path} is an 8-bit PNG; depth must be 16-bit, metres x {DEPTH_PNG_SCALE:g} "
                         "(KITTI's convention)", path=annotations, record=record)
    return raw.astype(np.float32) / np.float32(DEPTH_PNG_SCALE)
