"""KITTI depth ground truth in BTS's file-list format -> a depth-training store (§3.3, §4.2).

The paper pretrains BTS on KITTI's Eigen split, then fine-tunes it on its synthetic data. BTS's
lists (`eigen_train_files_with_gt.txt`) hold one sample per line:

    2011_09_26/2011_09_26_drive_0001_sync/image_02/data/0000000005.png \
        2011_09_26_drive_0001_sync/proj_depth/groundtruth/image_02/0000000005.png 721.5377

the image relative to the raw data folder, the depth PNG relative to the ground-truth folder (or
`None` where KITTI has none), the focal length in px. Depth PNGs are 16-bit, metres x 256, 0 where
the LiDAR saw nothing. The store written here has what `daisnet.depth.train.train_bts` reads from
a prepared store: `images`, `depth_gt` (0 = no measurement), `image_size`, `focal`, `image_id`, on a
canvas as large as the largest image (KITTI's drives differ by a few pixels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from PIL import Image

from daisnet.atomic import atomic_output, refuse_overlap
from daisnet.data.image_readers import read_depth, read_image
from daisnet.errors import InputError
from daisnet.progress import track
from daisnet.stores import CHUNK_KEYS, SMALL_COMPRESSORS, create_image_array, shard_ranges

IMAGES_PER_SHARD = 16


@dataclass(frozen=True)
class KittiSample:
    image: Path
    depth: Path
    focal: float
    line: int  # in the file list, for messages


def read_file_list(file_list: str | Path, data_path: str | Path, gt_path: str | Path) -> tuple[list[KittiSample], int]:
    """The samples of a BTS file list that have ground truth, checked; and how many lines had none."""
    file_list, data_path, gt_path = Path(file_list), Path(data_path), Path(gt_path)
    try:
        lines = file_list.read_text().splitlines()
    except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the file list ({type(exc).__name__})", path=file_list) from None
    samples, without_depth = [], 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split()
        record = f"line {number}"
        if len(fields) != 3:
            raise InputError(f"expected 'image depth focal', found {len(fields)} fields", path=file_list, record=record)
        image, depth, focal_text = fields
        if depth == "None":  # KITTI has no projected LiDAR for this frame
            without_depth += 1
            continue
        try:
            focal = float(focal_text)
        except ValueError:
            focal = math.nan
        if not (math.isfinite(focal) and focal > 0):
            raise InputError(f"focal {focal_text!r} is not a positive number", path=file_list, record=record)
        sample = KittiSample(data_path / image, gt_path / depth, focal, number)
        for kind, path in (("image", sample.image), ("depth", sample.depth)):
            if not path.is_file():
                raise InputError(f"{kind} file not found: {path}", path=file_list, record=record)
        samples.append(sample)
    if not samples:
        raise InputError("no sample with ground-truth depth: nothing to train on", path=file_list)
    return samples, without_depth


def image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:  # the header only
        return im.height, im.width


def write_kitti_store(file_list: str | Path, data_path: str | Path, gt_path: str | Path, out: str | Path, *,
                      images_per_shard: int = IMAGES_PER_SHARD, progress: bool = False) -> dict[str, Any]:
    """Write `out` (replaced atomically) from a BTS file list; returns a summary for the log."""
    refuse_overlap([out], [file_list, data_path, gt_path])
    samples, without_depth = read_file_list(file_list, data_path, gt_path)
    sizes = np.array([image_size(s.image) for s in samples], dtype=np.int32)
    canvas = (int(sizes[:, 0].max()), int(sizes[:, 1].max()))
    count = len(samples)
    measured = 0
    with atomic_output(out) as tmp:
        group = zarr.open_group(tmp, mode="w")
        group.attrs.update({"source": "kitti", "file_list": str(file_list), "canvas": list(canvas),
                            "file_names": [str(s.image.relative_to(Path(data_path))) for s in samples]})
        images = create_image_array(group, "images", (count, *canvas, 3), "uint8", images_per_shard=images_per_shard,
                                    units="RGB", description="the image at the top left of the canvas, 0 outside")
        depth = create_image_array(group, "depth_gt", (count, *canvas), "float32", images_per_shard=images_per_shard,
                                   units="m", description="KITTI's projected LiDAR depth; 0: no measurement")
        for start, stop in track(shard_ranges(count, images_per_shard), "kitti", unit="shard", bar=progress):
            rgb = np.zeros((stop - start, *canvas, 3), np.uint8)
            gt = np.zeros((stop - start, *canvas), np.float32)
            for row, sample in enumerate(samples[start:stop]):
                h, w = (int(v) for v in sizes[start + row])
                record = f"line {sample.line}"
                rgb[row, :h, :w] = read_image(sample.image, (h, w), record, str(file_list))
                gt[row, :h, :w] = read_depth(sample.depth, (h, w), record, str(file_list))
            measured += int((gt > 0).sum())
            images[start:stop] = rgb
            depth[start:stop] = gt
        for name, values, units in (("image_size", sizes, "px"), ("focal", np.array([s.focal for s in samples], np.float32), "px"),
                                    ("image_id", np.arange(count, dtype=np.int64), "")):
            array = group.create_array(name, data=values, chunk_key_encoding=CHUNK_KEYS, compressors=SMALL_COMPRESSORS)
            array.attrs.update({"units": units})
    return {"images": count, "without_depth": without_depth, "canvas": list(canvas),
            "measured_pixels": measured, "measured_fraction": round(measured / float(sizes.prod(1).sum()), 4)}
