"""The prepared store `data/prepared/{split}.zarr` (docs/artifacts.md): layout, writer, reader.

Per-image arrays (`images`, `depth_gt`) have one image per chunk; per-instance masks (`amodal`,
`visible`) one instance per chunk; both are sharded so that a split is tens of files. The small
per-image and per-instance arrays (ids, boxes, categories, `image_ptr`) are one chunk each: they
are read whole when a store is opened.

`PreparedStore` is the reader the training data loader builds on:

    store = PreparedStore("data/prepared/train.zarr")
    len(store)                      # images
    store.image(i)                  # uint8 (h, w, 3), cropped to the true size
    store.instances(i)              # Instances: masks (k, h, w) bool, boxes xyxy, categories, ...
    store.depth(i)                  # float32 (h, w) metres, or None when the store has no depth
    store.array("name", i)          # any per-image array by name, cropped (for inspect & co.)
    store.check_derived(group, path, "depth")  # another store's array is of these images

Opening checks that every chunk file is there (zarr would read a missing one as zeros); a read that
meets damaged bytes raises an InputError naming the store and the array.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from daisnet.data.shards import ShardReader
from daisnet.errors import InputError
from daisnet.stores import (
    CHECKSUM, WRITE_ALL_CHUNKS, check_complete, prepared_identity, reading, recorded_identity,
)

CHUNK_KEYS = {"name": "default", "separator": "."}
# Masks: measured at 1242 x 375, zstd level 3 without shuffle compresses ~770x at 0.2 ms per mask;
# bitshuffle gains 7% in size at twice the time (a bool is 1 bit in 8: shuffling adds little).
MASK_CODEC = BloscCodec(cname="zstd", clevel=3, shuffle="noshuffle")
# Images: photos barely compress losslessly (~1.4x); zstd level 1 with byte shuffle does it at ~4 ms
# per KINS image. Depth float32: byte shuffle groups exponent bytes (~1.5x).
IMAGE_CODEC = BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")
SMALL_CODEC = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")

# Per-instance metadata: name -> (dtype, trailing shape, units, description).
INSTANCE_FIELDS: dict[str, tuple[str, tuple[int, ...], str, str]] = {
    "category": ("int32", (), "KINS category id", "category of each instance (group attrs: categories)"),
    "amodal_box": ("float32", (4,), "px", "amodal box x0, y0, x1, y1 from the annotation (xywh -> xyxy)"),
    "visible_box": ("float32", (4,), "px", "visible box x0, y0, x1, y1 from the annotation (xywh -> xyxy)"),
    "occlusion": ("float32", (), "ratio", "1 - visible area / amodal area, clipped to [0, 1]"),
    "annotation_id": ("int64", (), "id", "KINS annotation id"),
    "oco_id": ("int32", (), "id", "KINS-2020 occlusion cluster id (0 = overlaps nothing); -1 when absent"),
    "ico_id": ("int32", (), "rank", "KINS-2020 order inside the occlusion cluster; -1 when absent"),
}
IMAGE_FIELDS: dict[str, tuple[str, tuple[int, ...], str, str]] = {
    "image_size": ("int32", (2,), "px", "true (height, width) of each image; the rest of the canvas is 0"),
    "image_id": ("int64", (), "id", "KINS image id"),
    "focal": ("float32", (), "px", "focal length of the camera; NaN where unknown"),
}


@dataclass(frozen=True)
class StoreLayout:
    """Sizes of a prepared store: what `create_store` needs to make every array up front."""

    images: int
    instances: int
    canvas: tuple[int, int]  # (H, W)
    depth: bool
    images_per_shard: int
    instances_per_shard: int


def _shard(count: int, per_shard: int) -> int:
    return max(1, min(per_shard, count))


def create_store(path: str | Path, layout: StoreLayout, attrs: dict[str, Any], masks: bool = True) -> zarr.Group:
    """Create every array of the prepared layout (empty), so that workers only fill whole shards.

    `masks=False` leaves the mask arrays to `create_mask_arrays`, once the instance count is known."""
    group = zarr.open_group(path, mode="w-", zarr_format=3)
    group.attrs.update(attrs)
    _big(group, "images", (layout.images, *layout.canvas, 3), "uint8", layout.images_per_shard, IMAGE_CODEC,
         "RGB 0-255", "images on the canvas, top-left aligned, zero padding (true size: image_size)")
    if layout.depth:
        _big(group, "depth_gt", (layout.images, *layout.canvas), "float32", layout.images_per_shard, IMAGE_CODEC,
             "m", "ground-truth depth in metres (0 outside the true image)")
    if masks:
        create_mask_arrays(group, layout)
    return group


def create_mask_arrays(group: zarr.Group, layout: StoreLayout) -> None:
    """The (empty) amodal and visible mask arrays of `layout.instances` instances."""
    for name, description in (("amodal", "amodal (full extent) mask of each instance, on the canvas"),
                              ("visible", "visible (modal) mask of each instance, on the canvas")):
        _big(group, name, (layout.instances, *layout.canvas), "bool", layout.instances_per_shard, MASK_CODEC,
             "mask", description)


def _big(group: zarr.Group, name: str, shape: tuple[int, ...], dtype: str, per_shard: int, codec: BloscCodec,
         units: str, description: str) -> None:
    array = group.create_array(
        name, shape=shape, dtype=dtype, chunks=(1, *shape[1:]),
        shards=(_shard(shape[0], per_shard), *shape[1:]), compressors=(codec, CHECKSUM),
        chunk_key_encoding=CHUNK_KEYS, fill_value=0,
    )
    array.attrs.update({"units": units, "description": description})


def write_small(group: zarr.Group, name: str, values: np.ndarray, units: str, description: str) -> None:
    """A small array in one chunk (read whole when the store is opened)."""
    values = np.ascontiguousarray(values)
    chunks = (max(1, values.shape[0]), *values.shape[1:])
    array = group.create_array(name, shape=values.shape, dtype=values.dtype, chunks=chunks,
                               compressors=(SMALL_CODEC, CHECKSUM), chunk_key_encoding=CHUNK_KEYS, fill_value=0,
                               config=WRITE_ALL_CHUNKS)
    array[...] = values
    array.attrs.update({"units": units, "description": description})


@dataclass
class Instances:
    """The instances of one image, as numpy arrays (k instances; masks cropped to the image)."""

    amodal: np.ndarray  # bool (k, h, w)
    visible: np.ndarray  # bool (k, h, w)
    amodal_box: np.ndarray  # float32 (k, 4) xyxy px
    visible_box: np.ndarray  # float32 (k, 4) xyxy px
    category: np.ndarray  # int32 (k,)
    occlusion: np.ndarray  # float32 (k,)
    annotation_id: np.ndarray  # int64 (k,)
    oco_id: np.ndarray  # int32 (k,)
    ico_id: np.ndarray  # int32 (k,)

    def __len__(self) -> int:
        return int(self.category.shape[0])


class PreparedStore:
    """Read a prepared store: images, instances, depth, any per-image array; fast random access.

    The small arrays (boxes, ids, `image_ptr`, ...) are read into memory once; each call reads the
    image's chunk(s) only. Safe to open once per data-loader worker (nothing is shared).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError("prepared store not found", path=self.path)
        try:
            self.group = zarr.open_group(self.path, mode="r")
        except Exception as exc:  # zarr raises several types for "not a group"
            raise InputError(f"not a Zarr group ({type(exc).__name__})", path=self.path) from None
        missing = [n for n in ("images", "image_ptr", "amodal", "visible", *INSTANCE_FIELDS, *IMAGE_FIELDS)
                   if n not in self.group]
        if missing:
            raise InputError(f"not a prepared store: missing arrays {missing}", path=self.path)
        for _, array in self.group.arrays():
            check_complete(array, self.path)
        self.attrs: dict[str, Any] = dict(self.group.attrs)
        self.image_ptr = np.asarray(self._small("image_ptr"), dtype=np.int64)
        self.image_size = np.asarray(self._small("image_size"), dtype=np.int64)
        self.image_id = self._small("image_id")
        self.focal = self._small("focal")
        self.meta = {name: self._small(name) for name in INSTANCE_FIELDS}
        self._images = self.group["images"]
        self._amodal = self.group["amodal"]
        self._visible = self.group["visible"]
        # Direct chunk reads (one pread per row, indexes cached): ~10x faster than zarr's path
        # for a sample's ~25 chunks. A store of another layout is read through zarr.
        self._readers: dict[str, ShardReader | None] = {}

    def _small(self, name: str) -> np.ndarray:
        with reading(self.path, name):
            return np.asarray(self.group[name][:])

    def __len__(self) -> int:
        return int(self.image_size.shape[0])

    @cached_property
    def identity(self) -> str:
        """What a depth or features store made from this one records (`daisnet.stores.prepared_identity`)."""
        return prepared_identity(self.group, self.path)

    @property
    def categories(self) -> dict[int, str]:
        return {int(k): v for k, v in self.attrs.get("categories", {}).items()}

    @property
    def canvas(self) -> tuple[int, int]:
        return tuple(self._images.shape[1:3])  # type: ignore[return-value]

    def file_name(self, i: int) -> str:
        return self.attrs["file_names"][i]

    def _check(self, i: int) -> int:
        if not -len(self) <= i < len(self):
            raise IndexError(f"image index {i} out of range for {len(self)} images")
        return i % len(self)

    def rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of a sharded array, full canvas (the fast path when the layout allows)."""
        if name not in self._readers:
            try:
                self._readers[name] = ShardReader(self.group[name])
            except ValueError:
                self._readers[name] = None
        reader = self._readers[name]
        with reading(self.path, name):
            return reader.read(start, stop) if reader is not None else self.group[name][start:stop]

    def image(self, i: int) -> np.ndarray:
        """uint8 (h, w, 3) RGB at the image's true size."""
        i = self._check(i)
        h, w = self.image_size[i]
        return self.rows("images", i, i + 1)[0, :h, :w]

    def instances(self, i: int) -> Instances:
        """The instances of image i; masks bool (k, h, w) at the image's true size."""
        i = self._check(i)
        h, w = self.image_size[i]
        a, b = int(self.image_ptr[i]), int(self.image_ptr[i + 1])
        meta = {name: values[a:b] for name, values in self.meta.items()}
        if b > a:
            amodal, visible = self.rows("amodal", a, b)[:, :h, :w], self.rows("visible", a, b)[:, :h, :w]
        else:
            amodal = visible = np.zeros((0, h, w), dtype=bool)
        return Instances(amodal=amodal, visible=visible, **meta)

    def depth(self, i: int) -> np.ndarray | None:
        """float32 (h, w) ground-truth depth in metres, or None when the store has none."""
        return self.array("depth_gt", i) if "depth_gt" in self.group else None

    def focal_length(self, i: int) -> float:
        value = float(self.focal[self._check(i)])
        return value if math.isfinite(value) else math.nan

    def array(self, name: str, i: int) -> np.ndarray:
        """Row i of any per-image array (N, ..., H, W) or (N, H, W, C), cropped to the true size."""
        if name not in self.group:
            raise InputError(f"no array {name!r} (has: {sorted(self.group.array_keys())})", path=self.path)
        i = self._check(i)
        with reading(self.path, name):
            return crop_row(self.group[name], i, tuple(self.image_size[i]), self.canvas)

    def check_derived(self, group: zarr.Group, path: str | Path, name: str) -> zarr.Array:
        """Array `name` of another store (depth, features), checked to be of this store's images: its
        chunk files all there, the same image count and canvas, made from this very store."""
        if name not in group:
            raise InputError(f"no array {name!r} (has: {sorted(group.array_keys())})", path=path)
        array = group[name]
        check_complete(array, path)
        if array.shape[0] != len(self):
            raise InputError(f"array {name!r} has {array.shape[0]} images, the prepared store {self.path} "
                             f"{len(self)}", path=path)
        if len(array.shape) >= 3 and self.canvas not in (tuple(array.shape[-2:]), tuple(array.shape[1:3])):
            raise InputError(f"array {name!r} is on another canvas (per image {list(array.shape[1:])}) than the "
                             f"prepared store {self.path} ({list(self.canvas)}): made from another prepared store",
                             path=path)
        theirs = recorded_identity(group, path)
        if theirs != self.identity:
            raise InputError(f"made from another prepared store than {self.path} ({self._difference(group, path)}): "
                             "give the stores made from it (or re-create them: `dvc repro` does)", path=path)
        return array

    def _difference(self, group: zarr.Group, path: str | Path) -> str:
        """What differs between this store and the one another store was made from, as far as it says."""
        theirs, ours = list(group.attrs.get("file_names", [])), list(self.attrs.get("file_names", []))
        for i, (a, b) in enumerate(zip(theirs, ours)):
            if a != b:
                return f"image {i} is {a} there, {b} here"
        if "image_size" in group:
            with reading(path, "image_size"):
                sizes = np.asarray(group["image_size"][:], dtype=np.int64)
            if sizes.shape == self.image_size.shape and (sizes != self.image_size).any():
                i = int(np.flatnonzero((sizes != self.image_size).any(axis=1))[0])
                return f"image {i} is {sizes[i].tolist()} px there, {self.image_size[i].tolist()} here"
        return "same file names and sizes, other image ids or annotations"


def crop_row(array: zarr.Array, i: int, size: tuple[int, int], canvas: tuple[int, int]) -> np.ndarray:
    """Row i of a per-image array, cropped to (h, w) on whichever axes hold the canvas."""
    h, w = (int(v) for v in size)
    shape = array.shape[1:]
    if len(shape) >= 2 and tuple(shape[-2:]) == tuple(canvas):  # (..., H, W)
        return array[(i, *[slice(None)] * (len(shape) - 2), slice(0, h), slice(0, w))]
    if len(shape) == 3 and tuple(shape[:2]) == tuple(canvas):  # (H, W, C)
        return array[i, :h, :w]
    return array[i]
