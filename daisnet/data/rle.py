"""COCO masks: pycocotools rasterizes, and we paint its run-length encoding onto a C-order canvas.

pycocotools turns polygons into a run-length encoding (RLE) and unions them (`frPyObjects`,
`merge`); it also gives areas and boxes from the RLE without expanding it. All of that is used as
is: it defines what a KINS mask *is*. Only the last step differs. `pycocotools.mask.decode` writes
every pixel of the image, in Fortran (column-major) order, and turning that into the C order Zarr
needs (a transpose) costs more than the decode itself (measured at 1242 x 375: 0.5 ms decode,
0.7 ms transpose per mask). Here the RLE is expanded only over the columns of the mask's box and
copied into the canvas as a small strided block: the same bits (tests/test_rle.py checks them
against `pycocotools.mask.decode`), at a fraction of the cost.

The RLE (pycocotools' format): `counts` are run lengths over the pixels in column-major order,
alternating 0s and 1s and starting with 0s; the compressed form is a string with 6 bits per
character (5 data bits and a continuation bit), each count stored as the difference to the count
two places before it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

Rle = dict[str, Any]  # {"size": [h, w], "counts": bytes}: pycocotools' compressed RLE


def to_rle(segmentation: list | dict, height: int, width: int) -> Rle:
    """One compressed RLE for a COCO segmentation: polygons (unioned), or an RLE dict.

    The segmentation is expected to be valid (daisnet.data.kins validates it first).
    """
    if isinstance(segmentation, list) and not segmentation:
        # No polygon at all (a fully hidden object): pycocotools cannot merge nothing.
        return mask_utils.encode(np.zeros((height, width), dtype=np.uint8, order="F"))
    if isinstance(segmentation, list):
        # Several polygons are one object (a visible mask split by an occluder): union them.
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    counts = segmentation["counts"]
    if isinstance(counts, list):  # uncompressed RLE
        return mask_utils.frPyObjects(segmentation, height, width)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return {"size": [int(v) for v in segmentation["size"]], "counts": counts}


def area(rle: Rle) -> int:
    return int(mask_utils.area(rle))


def intersection_area(a: Rle, b: Rle) -> int:
    return int(mask_utils.area(mask_utils.merge([a, b], intersect=True)))


def box_xyxy(rle: Rle) -> tuple[int, int, int, int]:
    """Tight pixel box [x0, y0, x1, y1) of the mask (exclusive ends), (0, 0, 0, 0) when empty."""
    x, y, w, h = (int(v) for v in mask_utils.toBbox(rle))
    return x, y, x + w, y + h


def decode_counts(counts: bytes | str) -> np.ndarray:
    """Run lengths (int64) from pycocotools' compressed `counts` string, vectorized.

    Each value is a little-endian sequence of 5-bit groups in characters offset by 48; bit 0x20
    says another group follows, bit 0x10 of the last group is the sign. From the fourth value on,
    a value is stored as the difference to the value two places before.
    """
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    chars = np.frombuffer(counts, dtype=np.uint8).astype(np.int64) - 48
    if chars.size == 0:
        return np.zeros(0, dtype=np.int64)
    last = (chars & 0x20) == 0  # the last character of each value
    value_of_char = np.concatenate(([0], np.cumsum(last)[:-1]))
    starts = np.flatnonzero(np.concatenate(([True], last[:-1])))
    position = np.arange(chars.size) - starts[value_of_char]  # group index k inside its value
    values = np.add.reduceat((chars & 0x1F) << (5 * position), starts)
    groups = np.diff(np.append(starts, chars.size))
    negative = (chars[last] & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * groups[negative])
    # Undo the delta coding: from index 3 on, x[m] += x[m - 2]; odd and even indices are two
    # independent running sums (index 2 is stored as is, so the even sum starts there).
    out = values.copy()
    out[1::2] = np.cumsum(values[1::2])
    out[2::2] = np.cumsum(values[2::2])
    return out


def paint(rle: Rle, out: np.ndarray) -> None:
    """Set the pixels of `rle` in `out` (a C-order bool (h', w') view, h' <= h, w' <= w).

    Only the columns of the mask's box are expanded; `out` must be zero there beforehand (we
    assign the mask's block, we do not OR it). Pixels beyond `out` (an image larger than the
    canvas) cannot occur: the canvas is the largest image.
    """
    height, width = (int(v) for v in rle["size"])
    x0, y0, x1, y1 = box_xyxy(rle)
    if x1 <= x0 or y1 <= y0:
        return
    runs = decode_counts(rle["counts"])
    ends = np.cumsum(runs)
    begins = ends - runs
    # Keep the runs inside columns [x0, x1): flat column-major indices [x0*h, x1*h).
    lo, hi = x0 * height, x1 * height
    lengths = np.clip(ends, lo, hi) - np.clip(begins, lo, hi)
    values = (np.arange(runs.size) & 1).astype(bool)  # runs alternate 0, 1, 0, ...
    columns = np.repeat(values, lengths).reshape(x1 - x0, height)  # (columns, rows)
    out[y0:y1, x0:x1] = columns[:, y0:y1].T


def decode(rle: Rle) -> np.ndarray:
    """The (h, w) C-order bool mask of an RLE (equal to `pycocotools.mask.decode`)."""
    height, width = (int(v) for v in rle["size"])
    mask = np.zeros((height, width), dtype=bool)
    paint(rle, mask)
    return mask
