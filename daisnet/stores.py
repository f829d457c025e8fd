"""Zarr store conventions shared by the per-image stores (depth, features): docs/artifacts.md.

One image per chunk on the image axis, many images per shard (a store is tens of files, not
thousands), `.`-separated chunk keys (no nested directories). Writers write whole shards only: a
shard is one file, so two tasks writing parts of the same shard would race.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from daisnet.errors import InputError

CHUNK_KEYS = {"name": "default", "separator": "."}
# zstd level 1 + byte shuffle: on a KINS-size float16 feature image 30 ms and 8.7x, against 52 ms and
# 9.2x at level 3 (compression was a third of the features stage's time).
COMPRESSOR = BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")


def shard_ranges(count: int, per_shard: int) -> list[tuple[int, int]]:
    """[start, stop) image ranges aligned with the shards of an array of `count` images."""
    return [(start, min(start + per_shard, count)) for start in range(0, count, per_shard)]


def create_image_array(
    group: zarr.Group, name: str, shape: tuple[int, ...], dtype: str, *, images_per_shard: int,
    units: str, description: str, attrs: dict[str, Any] | None = None,
) -> zarr.Array:
    """An (N, ...) array chunked one image per chunk and sharded `images_per_shard` images per file."""
    chunks = (1,) + tuple(shape[1:])
    shards = (max(1, min(images_per_shard, shape[0])),) + tuple(shape[1:])
    array = group.create_array(
        name, shape=shape, dtype=dtype, chunks=chunks, shards=shards, compressors=COMPRESSOR,
        chunk_key_encoding=CHUNK_KEYS, fill_value=0,
    )
    array.attrs.update({"units": units, "description": description, **(attrs or {})})
    return array


def open_store(path: str | Path) -> zarr.Group:
    """Open an existing store read-only, with one clear error when it is not there or not Zarr."""
    path = Path(path)
    if not path.exists():
        raise InputError("store not found", path=path)
    try:
        return zarr.open_group(path, mode="r")
    except Exception as exc:  # zarr raises several types for "not a group"
        raise InputError(f"not a Zarr group ({type(exc).__name__})", path=path) from None


def require_array(group: zarr.Group, path: str | Path, name: str, ndim: int, kind: str) -> zarr.Array:
    """The array `name` of a store, checked for its rank and dtype kind ('f', 'i', 'u', 'b')."""
    if name not in group:
        raise InputError(f"no array {name!r} (has: {sorted(group.array_keys())})", path=path)
    array = group[name]
    if not isinstance(array, zarr.Array) or array.ndim != ndim or np.dtype(array.dtype).kind not in kind:
        raise InputError(f"array {name!r} must be {ndim}-d of kind {kind!r}, is {array.dtype} {array.shape}", path=path)
    return array


def image_sizes(group: zarr.Group, path: str | Path, count: int, canvas: tuple[int, int]) -> np.ndarray:
    """`image_size` (N, 2) true (h, w) of each image, checked against the canvas."""
    sizes = np.asarray(require_array(group, path, "image_size", 2, "iu")[:], dtype=np.int64)
    if sizes.shape != (count, 2):
        raise InputError(f"image_size has shape {sizes.shape}, expected ({count}, 2)", path=path)
    bad = np.flatnonzero((sizes < 1).any(axis=1) | (sizes[:, 0] > canvas[0]) | (sizes[:, 1] > canvas[1]))
    if bad.size:
        raise InputError(f"true size {sizes[bad[0]].tolist()} is empty or exceeds the canvas {list(canvas)}",
                         path=path, record=f"image {int(bad[0])}")
    return sizes


def record_name(group: zarr.Group, index: int) -> str:
    """'image i (file name)' for error messages, using the group's `file_names` attr when present."""
    names = group.attrs.get("file_names")
    if isinstance(names, list) and index < len(names):
        return f"image {index} ({names[index]})"
    return f"image {index}"


def canvas_mask(sizes: np.ndarray, canvas: tuple[int, int]) -> np.ndarray:
    """(B, H, W) bool: True inside each image's true (h, w), top-left aligned on the canvas."""
    rows = np.arange(canvas[0])[None, :, None] < np.asarray(sizes)[:, 0, None, None]
    cols = np.arange(canvas[1])[None, None, :] < np.asarray(sizes)[:, 1, None, None]
    return rows & cols


def check_depth(depth: np.ndarray, inside: np.ndarray, group: zarr.Group, path: str | Path, first: int) -> None:
    """Raise an InputError naming the first image of a block whose depth is not finite and > 0 inside."""
    bad = ~(np.isfinite(depth) & (depth > 0)) & inside
    counts = bad.reshape(len(bad), -1).sum(axis=1)
    if counts.any():
        index = int(np.flatnonzero(counts)[0])
        sample = depth[index][bad[index]][0]
        raise InputError(f"{int(counts[index])} pixels of depth are not finite and > 0 (e.g. {sample})",
                         path=path, record=record_name(group, first + index))
