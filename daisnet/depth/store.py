"""The depth store `data/depth/{split}.zarr` (docs/artifacts.md), from a prepared store.

Where the depth comes from is a `predict_fn`: None copies the prepared store's ground truth
(`depth_gt`, synthetic data), or with `degrade` = (kind, level) writes it degraded in one controlled
way (`daisnet.depth.degrade`, source "degraded"); a monocular model (BTS, `daisnet.depth.bts*`) plugs in as a function
from a batch of canvas images to metric depth. Either way the writer

- goes shard by shard (memory bounded by one shard, whatever the split size),
- zeroes the canvas padding outside each image's true size (no scene there; a model's output there
  is meaningless),
- refuses depth that is not finite and > 0 inside an image (log depth and normals need it), naming
  the image, and writes nothing in that case (`atomic_output`),
- copies `image_size` and `image_id` so the depth store is self-contained for `features`,
- records the prepared store's identity (`prepared_identity` attr, `daisnet.stores`): the stores
  that combine it with a prepared store refuse one made from another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from daisnet.atomic import atomic_output, refuse_overlap
from daisnet.depth.degrade import check_degradation, degrade_depth
from daisnet.errors import InputError
from daisnet.progress import track
from daisnet.stores import (
    CHUNK_KEYS, SMALL_COMPRESSORS, WRITE_ALL_CHUNKS, canvas_mask, check_complete, check_depth, create_image_array,
    image_sizes, open_store, prepared_identity, reading, require_array, shard_ranges,
)

# (images uint8 (B, H, W, 3) on the canvas, true sizes int (B, 2), focal px float (B,), NaN where
# unknown) -> depth float32 (B, H, W) metres
PredictFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

IMAGES_PER_SHARD = 16
SOURCES = ("ground_truth", "bts", "degraded")


def write_depth_store(
    prepared_path: str | Path, out_path: str | Path, predict_fn: PredictFn | None = None, *,
    source: str = "ground_truth", attrs: dict[str, Any] | None = None, degrade: tuple[str, float] | None = None,
    images_per_shard: int = IMAGES_PER_SHARD, progress: bool = False,
) -> dict[str, Any]:
    """Write `out_path` (replaced atomically) with `depth` (N, H, W) float32 metres on the canvas.

    `predict_fn` None: copy `depth_gt` (source must be "ground_truth"). Otherwise `predict_fn` is
    called on shard-sized batches of `images` (with their true sizes and `focal`) and `source` / `attrs` (e.g. checkpoint path and
    sha256) describe it. Returns a summary (images, min/max depth) for the stage's log."""
    if source not in SOURCES:
        raise InputError(f"depth source must be one of {SOURCES}, not {source!r}", path="params.yaml")
    if (predict_fn is None) != (source in ("ground_truth", "degraded")) or (degrade is None) != (source != "degraded"):
        raise ValueError("predict_fn must be given exactly for source bts, and degrade exactly for source degraded")
    if degrade is not None:
        check_degradation(*degrade)
    refuse_overlap([out_path], [prepared_path])
    prepared = open_store(prepared_path)
    if predict_fn is None:
        if "depth_gt" not in prepared:
            raise InputError(f"no ground-truth depth (`depth_gt`) in this store: real KINS has none, so depth.source "
                             f"{source} cannot be used; use depth.source: bts", path=prepared_path)
        inputs = require_array(prepared, prepared_path, "depth_gt", 3, "f")
        count, height, width = inputs.shape
    else:
        inputs = require_array(prepared, prepared_path, "images", 4, "u")
        count, height, width = inputs.shape[:3]
    canvas = (height, width)
    check_complete(inputs, prepared_path)
    identity = prepared_identity(prepared, prepared_path)  # checks the small arrays' chunks too
    sizes = image_sizes(prepared, prepared_path, count, canvas)
    image_id = prepared["image_id"][:] if "image_id" in prepared else np.arange(count, dtype=np.int64)
    focal = (np.asarray(prepared["focal"][:], dtype=np.float32) if "focal" in prepared
             else np.full(count, np.nan, dtype=np.float32))
    low, high = np.inf, -np.inf
    with atomic_output(out_path) as tmp:
        group = zarr.open_group(tmp, mode="w")
        group.attrs.update({
            "source": source, "prepared": str(prepared_path),
            "file_names": prepared.attrs.get("file_names", []), "canvas": [height, width], **(attrs or {}),
            **({"degrade": {"kind": degrade[0], "level": degrade[1]}} if degrade else {}),
            "prepared_identity": identity,
        })
        depth_out = create_image_array(
            group, "depth", (count, height, width), "float32", images_per_shard=images_per_shard,
            units="m", description="metric depth on the canvas; 0 outside the true image size")
        size_out = group.create_array("image_size", data=sizes.astype(np.int32), chunk_key_encoding=CHUNK_KEYS,
                                      compressors=SMALL_COMPRESSORS,
                                      config=WRITE_ALL_CHUNKS)
        size_out.attrs.update({"units": "px", "description": "true (height, width) of each image"})
        id_out = group.create_array("image_id", data=np.asarray(image_id, dtype=np.int64),
                                    chunk_key_encoding=CHUNK_KEYS, compressors=SMALL_COMPRESSORS,
                                    config=WRITE_ALL_CHUNKS)
        id_out.attrs.update({"units": "", "description": "KINS image id"})
        blocks = shard_ranges(count, images_per_shard)
        blocks = track(blocks, f"depth {Path(out_path).stem}", unit="shard", bar=progress)
        for start, stop in blocks:
            with reading(prepared_path, inputs.basename):
                rows = inputs[start:stop]
            if predict_fn is not None:
                rows = predict_fn(rows, sizes[start:stop], focal[start:stop])
            elif degrade is not None:
                rows = degrade_depth(np.asarray(rows), sizes[start:stop], start, *degrade)
            block = np.asarray(rows, dtype=np.float32)
            if block.shape != (stop - start, height, width):
                raise ValueError(f"predict_fn returned {block.shape}, expected {(stop - start, height, width)}")
            inside = canvas_mask(sizes[start:stop], canvas)
            check_depth(block, inside, prepared, prepared_path, start)
            block = np.where(inside, block, np.float32(0))
            depth_out[start:stop] = block
            low, high = min(low, float(block[inside].min())), max(high, float(block[inside].max()))
    return {"images": int(count), "canvas": [height, width], "source": source,
            "depth_min": low if count else None, "depth_max": high if count else None}

