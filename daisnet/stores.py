"""Zarr store conventions shared by the per-image stores (depth, features): docs/artifacts.md.

One image per chunk on the image axis, many images per shard (a store is tens of files, not
thousands), `.`-separated chunk keys (no nested directories). Writers write whole shards only: a
shard is one file, so two tasks writing parts of the same shard would race.

Every chunk is written, even an all-zero one, so that a store's completeness can be checked where
it is opened (`check_complete`): zarr itself reads a missing chunk as zeros, without a word. A
derived store (depth, features) records the identity of the prepared store it was made from
(`prepared_identity`), checked wherever stores are combined (`PreparedStore.check_derived`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec
from zarr.storage import LocalStore

from daisnet.data.shards import ShardError, verify_shards
from daisnet.errors import InputError

CHUNK_KEYS = {"name": "default", "separator": "."}
# zstd level 1 + byte shuffle: on a KINS-size float16 feature image 30 ms and 8.7x, against 52 ms and
# 9.2x at level 3 (compression was a third of the features stage's time).
COMPRESSOR = BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")
# Every chunk of every array carries its CRC32C (Zarr v3's crc32c codec, after the compressor):
# damaged bytes fail the read with the array's name instead of being read as data (issue 31).
CHECKSUM = Crc32cCodec()
SMALL_COMPRESSORS = (BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"), CHECKSUM)  # small whole arrays
# zarr skips all-zero chunks by default; written, a missing chunk file can only mean damage.
WRITE_ALL_CHUNKS = {"write_empty_chunks": True}
# What zarr, numcodecs and our shard reader raise on damaged bytes (checksums, decompression, offsets).
READ_ERRORS = (ValueError, RuntimeError, OSError, ArithmeticError)
# The arrays of a prepared store that make its images and annotations what they are (not the pixels).
IDENTITY_ARRAYS = ("image_id", "image_size", "focal", "image_ptr", "annotation_id", "category", "amodal_box",
                   "visible_box")
RERUN = "re-create it (`dvc repro` does)"


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
        name, shape=shape, dtype=dtype, chunks=chunks, shards=shards, compressors=(COMPRESSOR, CHECKSUM),
        chunk_key_encoding=CHUNK_KEYS, fill_value=0, config=WRITE_ALL_CHUNKS,
    )
    array.attrs.update({"units": units, "description": description, **(attrs or {})})
    return array


def write_all_chunks(array: zarr.Array) -> zarr.Array:
    """The array, reopened to write all-zero chunks too (the setting is not stored with the array)."""
    return array.with_config(WRITE_ALL_CHUNKS)


def open_store(path: str | Path) -> zarr.Group:
    """Open an existing store read-only, with one clear error when it is not there or not Zarr."""
    path = Path(path)
    if not path.exists():
        raise InputError("store not found", path=path)
    try:
        return zarr.open_group(path, mode="r")
    except Exception as exc:  # zarr raises several types for "not a group"
        raise InputError(f"not a Zarr group ({type(exc).__name__})", path=path) from None


def chunk_keys(array: zarr.Array) -> list[str]:
    """The chunk (when sharded: shard) file names that the array's shape needs, e.g. `c.0.0.0`."""
    outer = array.shards or array.chunks
    grid = [-(-size // step) for size, step in zip(array.shape, outer)]
    return [array.metadata.encode_chunk_key(index) for index in itertools.product(*(range(n) for n in grid))]


def check_complete(array: zarr.Array, path: str | Path) -> None:
    """Every chunk file the array needs is on disk, and every shard's index is intact (its CRC32C).

    A directory listing and one small read per shard: milliseconds on a KINS-size store."""
    store = array.store_path.store
    if not isinstance(store, LocalStore):
        return  # only a folder can be listed
    name = array.basename or str(path)
    root = Path(store.root) / array.path
    present = {Path(folder, f).relative_to(root).as_posix() for folder, _, files in os.walk(root) for f in files}
    needed = chunk_keys(array)
    missing = [key for key in needed if key not in present]
    if missing:
        raise InputError(f"chunk file missing ({len(missing)} of {len(needed)} in the array; zarr would read it "
                         f"as zeros): the store is incomplete, {RERUN}", path=path, record=f"{name}/{missing[0]}")
    try:
        verify_shards(array)
    except ShardError as exc:
        raise InputError(f"{exc}: the store is damaged, {RERUN}", path=path, record=name) from None


@contextmanager
def reading(path: str | Path, name: str) -> Iterator[None]:
    """Damaged bytes met while reading array `name` of the store at `path`: one InputError naming both."""
    try:
        yield
    except READ_ERRORS as exc:
        detail = " ".join(str(exc).split())[:200]
        raise InputError(f"cannot be read ({type(exc).__name__}: {detail}): the store is damaged, {RERUN}",
                         path=path, record=name) from None


def prepared_identity(group: zarr.Group, path: str | Path) -> str:
    """sha256 of what makes a prepared store's data what it is, short of its pixels: the file names,
    the canvas, the image ids, true sizes and focal lengths, each instance's id, category and boxes.

    Read from the small arrays (milliseconds on KINS). Arrays a store lacks are left out."""
    canvas = group["images"].shape[1:3] if "images" in group else group["depth_gt"].shape[1:3]
    digest = hashlib.sha256(json.dumps({"file_names": list(group.attrs.get("file_names", [])),
                                        "canvas": [int(v) for v in canvas]}).encode())
    for name in IDENTITY_ARRAYS:
        if name in group:
            check_complete(group[name], path)
            with reading(path, name):
                values = np.ascontiguousarray(group[name][:])
            digest.update(f"{name} {values.dtype.str} {values.shape}".encode())
            digest.update(values.tobytes())
    return digest.hexdigest()


def recorded_identity(group: zarr.Group, path: str | Path) -> str:
    """The prepared store a store was made from (its `prepared_identity` attr); a prepared store's own."""
    if "prepared_identity" in group.attrs:
        return str(group.attrs["prepared_identity"])
    if "image_ptr" in group and "images" in group:
        return prepared_identity(group, path)
    raise InputError(f"records no prepared store (no `prepared_identity` attr: written before stores recorded it); "
                     f"{RERUN}", path=path)


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
