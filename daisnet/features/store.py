"""The features stage: depth store in, `data/features/{split}.zarr` out, on Dask over image shards.

Per image (`image_features`), on its true size only (canvas padding cropped away first, and 0 in
every output channel there, like the zero-padded RGB canvas):
- `log_depth` (1, H, W): z-normalized log10 depth (eq. 2-3) with the train split's mean and std;
- `regional` (Dm, H, W): regional maps (eq. 4-5);
- `normals` (3, H, W): unit normal-tangent map (eq. 14-22), edge-replicated at the image border.

Statistics (`depth_statistics`) are the mean and std of log10 depth over every valid pixel of the
train split; they are stored in the attrs of every split's store and applied unchanged to val.

The store copies the depth store's `prepared_identity` (the prepared store both were made from):
a depth store without one (written before it was recorded) is refused.

Tasks are shard-aligned blocks of images: each reads its images, computes, and writes whole shards
(one file each), so tasks never race and memory is bounded by one shard, not by the split.
Outputs are stored as `features.precision` (float16 by default: max error measured in
docs/features.md), computed in float32/float64.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from daisnet.atomic import atomic_output, refuse_overlap
from daisnet.cluster import dask_client, run_tasks
from daisnet.errors import InputError
from daisnet.features.log_depth import Moments, log_depth, z_normalize
from daisnet.features.normals import normal_map
from daisnet.features.regional import FLOORS, regional_maps, standardize_maps
from daisnet.stores import (
    CHUNK_KEYS, SMALL_COMPRESSORS, WRITE_ALL_CHUNKS, canvas_mask, check_complete, check_depth, create_image_array,
    image_sizes, open_store, reading, recorded_identity, require_array, shard_ranges, write_all_chunks,
)

IMAGES_PER_SHARD = 16
PRECISIONS = ("float16", "float32")


@dataclass(frozen=True)
class FeatureParams:
    """`features.*` of params.yaml (defaults: the paper's)."""

    step: float = 3.0  # Ds, metres
    offsets: int = 4  # Dm
    floor: str = "soft"
    kernel: int = 5  # N
    dz: float = 0.8
    normalize_kernel: bool = False
    precision: str = "float16"
    # z-score each regional map with the train split's per-channel statistics (not in the paper:
    # eq. 5's maps span +-0.16; `standardize_maps`). False: eq. 4-5 as printed.
    normalize_regional: bool = True

    def validate(self) -> FeatureParams:
        """Raise an InputError (naming params.yaml and the key) for any value out of range."""
        checks = [
            ("features.regional.step", self.step > 0, "must be > 0"),
            ("features.regional.offsets", isinstance(self.offsets, int) and self.offsets >= 1, "must be an integer >= 1"),
            ("features.regional.floor", self.floor in FLOORS, f"must be one of {list(FLOORS)}"),
            ("features.normals.kernel", isinstance(self.kernel, int) and self.kernel >= 3 and self.kernel % 2 == 1,
             "must be an odd integer >= 3"),
            ("features.normals.dz", self.dz > 0, "must be > 0"),
            ("features.precision", self.precision in PRECISIONS, f"must be one of {list(PRECISIONS)}"),
        ]
        for key, ok, problem in checks:
            if not ok:
                raise InputError(f"{problem}, not {getattr(self, key.split('.')[-1], None)!r}", record=key)
        return self


RegionalStats = tuple[list[float], list[float]]  # per-channel (mean, std) of the regional maps


def image_features(depth: np.ndarray, size: tuple[int, int], params: FeatureParams, stats: Moments,
                   regional: RegionalStats | None = None) -> dict[str, np.ndarray]:
    """The three feature maps of one canvas depth map (H, W), float32, 0 outside the true (h, w).

    `regional`: the train split's per-channel statistics of the regional maps, required when
    `params.normalize_regional` (`regional_statistics`)."""
    height, width = depth.shape
    h, w = int(size[0]), int(size[1])
    crop = np.asarray(depth[:h, :w], dtype=np.float32)
    maps = {
        "log_depth": z_normalize(log_depth(crop), stats.mean, stats.std)[None],
        "regional": regional_maps(crop, params.step, params.offsets, params.floor),  # type: ignore[arg-type]
        "normals": normal_map(crop, params.kernel, params.dz, params.normalize_kernel),
    }
    if params.normalize_regional:
        if regional is None:
            raise ValueError("normalize_regional needs the regional maps' statistics (regional_statistics)")
        maps["regional"] = standardize_maps(maps["regional"], *regional)
    out = {}
    for name, values in maps.items():
        full = np.zeros((values.shape[0], height, width), dtype=np.float32)
        full[:, :h, :w] = values
        out[name] = full
    return out


def channels(params: FeatureParams) -> dict[str, int]:
    """Channels of each output array."""
    return {"log_depth": 1, "regional": params.offsets, "normals": 3}


def _read_block(depth_path: str, start: int, stop: int) -> tuple[zarr.Group, np.ndarray, np.ndarray]:
    """Depth (B, H, W) and true sizes (B, 2) of images [start, stop), checked (finite, > 0 inside)."""
    group = open_store(depth_path)
    depth = require_array(group, depth_path, "depth", 3, "f")
    sizes = image_sizes(group, depth_path, depth.shape[0], depth.shape[1:])[start:stop]
    with reading(depth_path, "depth"):
        block = np.asarray(depth[start:stop], dtype=np.float32)
    check_depth(block, canvas_mask(sizes, depth.shape[1:]), group, depth_path, start)
    return group, block, sizes


def block_moments(depth_path: str, start: int, stop: int) -> Moments:
    """Moments of log10 depth over the valid pixels of images [start, stop) (a Dask task)."""
    _, block, sizes = _read_block(depth_path, start, stop)
    moments = Moments()
    for depth, (h, w) in zip(block, sizes):
        moments = moments.merge(Moments.of(log_depth(depth[:h, :w])))
    return moments


def depth_statistics(depth_path: str | Path, client: Any = None, *, images_per_task: int = IMAGES_PER_SHARD,
                     progress: bool = False) -> Moments:
    """Mean and std of log10 depth over every valid pixel of a split (eq. 2's mu, sigma for eq. 3)."""
    group = open_store(depth_path)
    depth = require_array(group, depth_path, "depth", 3, "f")
    check_complete(depth, depth_path)  # once here, not in every task
    count = depth.shape[0]
    if count == 0:
        raise InputError("no images: statistics need at least one", path=depth_path)
    parts = run_tasks(client, block_moments, [(str(depth_path), a, b) for a, b in shard_ranges(count, images_per_task)],
                      progress=progress, label="statistics")
    total = Moments()
    for part in parts:  # merged in block order: same bytes whatever the scheduler
        total = total.merge(part)
    if not total.std > 0:
        raise InputError("log10 depth has zero variance: cannot z-normalize", path=depth_path)
    return total


def block_regional_moments(depth_path: str, start: int, stop: int, params: FeatureParams) -> list[Moments]:
    """Per-channel moments of the regional maps over images [start, stop) (a Dask task)."""
    _, block, sizes = _read_block(depth_path, start, stop)
    moments = [Moments()] * params.offsets
    for depth, (h, w) in zip(block, sizes):
        maps = regional_maps(depth[:h, :w], params.step, params.offsets, params.floor)  # type: ignore[arg-type]
        moments = [m.merge(Moments.of(channel)) for m, channel in zip(moments, maps)]
    return moments


def regional_statistics(depth_path: str | Path, params: FeatureParams, client: Any = None, *,
                        images_per_task: int = IMAGES_PER_SHARD, progress: bool = False) -> RegionalStats:
    """Per-channel mean and std of the regional maps over a split (the train split's normalize all)."""
    group = open_store(depth_path)
    count = require_array(group, depth_path, "depth", 3, "f").shape[0]
    parts = run_tasks(client, block_regional_moments,
                      [(str(depth_path), a, b, params) for a, b in shard_ranges(count, images_per_task)],
                      progress=progress, label="regional statistics")
    total = [Moments()] * params.offsets
    for part in parts:  # merged in block order: same bytes whatever the scheduler
        total = [t.merge(p) for t, p in zip(total, part)]
    if any(not m.std > 0 for m in total):
        raise InputError("a regional map is constant over the split: cannot normalize it "
                         "(features.regional.normalize: false)", path=depth_path)
    return [m.mean for m in total], [m.std for m in total]


def write_block(depth_path: str, out_path: str, start: int, stop: int, params: FeatureParams, stats: Moments,
                regional: RegionalStats | None = None) -> None:
    """Compute and write the features of images [start, stop) (one whole shard; a Dask task)."""
    _, block, sizes = _read_block(depth_path, start, stop)
    out = zarr.open_group(out_path, mode="r+")
    dtype = np.dtype(params.precision)
    buffers = {name: np.zeros((stop - start, c) + block.shape[1:], dtype=dtype) for name, c in channels(params).items()}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a one-image cast: extra threads only spin against the other workers
    try:
        for index, (depth, size) in enumerate(zip(block, sizes)):
            for name, values in image_features(depth, tuple(size), params, stats, regional).items():
                # Cast image by image (bounded memory); torch's float16 cast is vectorized, numpy's
                # is ~15x slower and was the largest cost of the stage.
                torch.from_numpy(buffers[name][index]).copy_(torch.from_numpy(values))
    finally:
        torch.set_num_threads(threads)
    for name, values in buffers.items():
        write_all_chunks(out[name])[start:stop] = values


DESCRIPTIONS = {
    "log_depth": ("1", "log10 depth z-normalized with the train split's mean and std (eq. 2-3); 0 outside the image"),
    "regional": ("1", "regional depth maps x_k - floor(x_k), x_k = d / Ds + k / Dm (eq. 4-5), z-scored per channel "
                      "with the train split's regional_mean/std when params.normalize_regional; 0 outside the image"),
    "normals": ("1", "unit normal-tangent map (-Dx, -Dy, Dz) / norm (eq. 14-22); 0 outside the image"),
}


def write_features_store(depth_path: str | Path, out_path: str | Path, params: FeatureParams, stats: Moments, *,
                         stats_source: str, regional: RegionalStats | None = None, client: Any = None,
                         images_per_shard: int = IMAGES_PER_SHARD, progress: bool = False) -> dict[str, Any]:
    """Write `out_path` (replaced atomically): `log_depth`, `regional`, `normals`, `image_size`."""
    params.validate()
    if params.normalize_regional and regional is None:
        raise ValueError("normalize_regional needs the regional maps' statistics (regional_statistics)")
    depth_group = open_store(depth_path)
    depth = require_array(depth_group, depth_path, "depth", 3, "f")
    count, height, width = depth.shape
    for array in (depth, require_array(depth_group, depth_path, "image_size", 2, "iu")):
        check_complete(array, depth_path)
    sizes = image_sizes(depth_group, depth_path, count, (height, width))
    identity = recorded_identity(depth_group, depth_path)
    with atomic_output(out_path) as tmp:
        group = zarr.open_group(tmp, mode="w")
        group.attrs.update({
            "log10_depth_mean": stats.mean, "log10_depth_std": stats.std, "statistics_pixels": stats.count,
            "statistics_source": stats_source, "depth": str(depth_path),
            "depth_source": depth_group.attrs.get("source"), "params": asdict(params),
            "file_names": depth_group.attrs.get("file_names", []), "canvas": [height, width],
            "prepared_identity": identity,
            **({"regional_mean": regional[0], "regional_std": regional[1]} if params.normalize_regional and regional else {}),
        })
        for name, c in channels(params).items():
            units, description = DESCRIPTIONS[name]
            create_image_array(group, name, (count, c, height, width), params.precision,
                               images_per_shard=images_per_shard, units=units, description=description)
        group.create_array("image_size", data=sizes.astype(np.int32), chunk_key_encoding=CHUNK_KEYS,
                           compressors=SMALL_COMPRESSORS, config=WRITE_ALL_CHUNKS).attrs.update(
            {"units": "px", "description": "true (height, width) of each image"})
        tasks = [(str(depth_path), str(tmp), a, b, params, stats, regional) for a, b in shard_ranges(count, images_per_shard)]
        run_tasks(client, write_block, tasks, progress=progress, label=f"features {Path(out_path).stem}")
    return {"images": count, "canvas": [height, width]}


def compute_features(depth_paths: dict[str, str | Path], out_paths: dict[str, str | Path], params: FeatureParams, *,
                     stats_from: str | Path, workers: int = 2, progress: bool = False) -> Moments:
    """A features store `out_paths[k]` for every depth store `depth_paths[k]`, all normalized with
    the statistics of the depth store `stats_from` (the train split's)."""
    params.validate()
    refuse_overlap(out_paths.values(), [*depth_paths.values(), stats_from])
    with dask_client(workers) as client:
        stats = depth_statistics(stats_from, client, progress=progress)
        regional = regional_statistics(stats_from, params, client, progress=progress) if params.normalize_regional else None
        for key, depth_path in depth_paths.items():
            write_features_store(depth_path, out_paths[key], params, stats, client=client, progress=progress,
                                 stats_source=str(stats_from), regional=regional)
    return stats
