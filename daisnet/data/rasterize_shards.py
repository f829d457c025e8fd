"""The Dask tasks that write the pixels of the store: image shards and mask shards.

Each task writes whole shards of one array group (a shard is one file: two writers would race),
`batch` rows at a time (daisnet.data.shards), so its memory is one batch, not the data.
`write_image_shard` reads the images (and depth PNGs) of one image shard and needs no plan;
`write_mask_shard` paints the RLEs of one instance shard of the plan (daisnet/data/rasterize_plan.py).
`image_tasks` and `mask_tasks` give their arguments. Dask pickles a task by reference to its
module-level function: the tasks stay module-level functions of this module.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import zarr

from daisnet.data import rle as rle_utils
from daisnet.data.image_readers import read_depth, read_image
from daisnet.data.kins import KinsAnnotations
from daisnet.data.rasterize_plan import Plan
from daisnet.data.shards import ShardWriter
from daisnet.stores import shard_ranges

if TYPE_CHECKING:  # rasterize.py imports this module: the config is only named here, never built
    from daisnet.data.rasterize import RasterizeConfig


# Tasks: each writes whole shards of one array group, `batch` rows at a time. They run on Dask
# workers (other processes, maybe other machines), so they take plain, picklable arguments.


def write_image_shard(store: str, start: int, stop: int, files: list[str], depth_files: list[str] | None,
                      sizes: list[tuple[int, int]], image_ids: list[int], annotations: str, batch: int) -> None:
    """Fill rows [start, stop) of `images` (and `depth_gt`): one image shard, streamed."""
    group = zarr.open_group(store, mode="r+")
    images = group["images"]
    shard = start // images.shards[0]
    H, W = images.shape[1:3]
    with contextlib.ExitStack() as stack:
        image_writer = stack.enter_context(ShardWriter(images, shard))
        depth_writer = stack.enter_context(ShardWriter(group["depth_gt"], shard)) if depth_files is not None else None
        for a in range(start, stop, batch):
            b = min(a + batch, stop)
            rgb = np.zeros((b - a, H, W, 3), dtype=np.uint8)
            dep = np.zeros((b - a, H, W), dtype=np.float32) if depth_writer is not None else None
            for row in range(a, b):
                k, record = row - start, f"image {image_ids[row - start]}"
                h, w = sizes[k]
                rgb[row - a, :h, :w] = read_image(Path(files[k]), (h, w), record, annotations)
                if dep is not None:
                    dep[row - a, :h, :w] = read_depth(Path(depth_files[k]), (h, w), record, annotations)
            image_writer.append(rgb)
            if depth_writer is not None:
                depth_writer.append(dep)


def write_mask_shard(store: str, name: str, start: int, stop: int, counts: list[bytes],
                     sizes: np.ndarray, batch: int) -> None:
    """Fill rows [start, stop) of the bool mask array `name`: one instance shard, streamed."""
    array = zarr.open_group(store, mode="r+")[name]
    H, W = array.shape[1:]
    with ShardWriter(array, start // array.shards[0]) as writer:
        for a in range(start, stop, batch):
            b = min(a + batch, stop)
            masks = np.zeros((b - a, H, W), dtype=bool)  # C order: what Zarr's codecs expect
            for row in range(a, b):
                h, w = (int(v) for v in sizes[row - start])
                rle_utils.paint({"size": [h, w], "counts": counts[row - start]}, masks[row - a])
            writer.append(masks)


def image_tasks(kins: KinsAnnotations, image_files: list[Path], depth_files: list[Path] | None, store: Path,
                config: RasterizeConfig) -> list[tuple]:
    """Arguments of the `write_image_shard` tasks (they need no plan: they can run beside it)."""
    jobs = []
    for a, b in shard_ranges(len(kins.images), config.images_per_shard):
        sizes = [(im.height, im.width) for im in kins.images[a:b]]
        depth = [str(p) for p in depth_files[a:b]] if depth_files is not None else None
        jobs.append((str(store), a, b, [str(p) for p in image_files[a:b]], depth, sizes,
                     [im.id for im in kins.images[a:b]], str(kins.path), config.batch_images))
    return jobs


def mask_tasks(plan_: Plan, store: Path, config: RasterizeConfig) -> list[tuple]:
    """Arguments of the `write_mask_shard` tasks, amodal and visible."""
    total = len(plan_.amodal_rles)
    jobs = []
    for name, rles in (("amodal", plan_.amodal_rles), ("visible", plan_.visible_rles)):
        for a, b in shard_ranges(total, config.instances_per_shard):
            jobs.append((str(store), name, a, b, rles[a:b], plan_.rle_sizes[a:b], config.batch_instances))
    return jobs
