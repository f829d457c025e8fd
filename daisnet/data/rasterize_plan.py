"""The plan of a rasterize run: everything known before any pixel is written.

The stage's process checks that every image (and depth PNG) file exists (`check_files`); planning
tasks (`plan_images`, run on the Dask workers, `plan_chunks` images each) turn each instance's
polygons into pycocotools RLEs, apply the skip rules of daisnet/data/anomalies.py and collect the
instance fields of the store; `merge_plan` joins their results, in image order, into one `Plan`:
the row of every instance, the RLEs the mask tasks paint, and the tally of skips and warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from daisnet.data import anomalies
from daisnet.data import rle as rle_utils
from daisnet.data.anomalies import Tally
from daisnet.data.kins import InstanceRecord, KinsAnnotations
from daisnet.data.prepared import INSTANCE_FIELDS
from daisnet.errors import InputError
from daisnet.stores import shard_ranges


@dataclass
class Plan:
    """Everything known before any pixel is written: rows of the store and the RLEs to paint."""

    kins: KinsAnnotations
    image_files: list[Path]
    depth_files: list[Path] | None
    canvas: tuple[int, int]
    image_ptr: np.ndarray  # int64 (N + 1,)
    amodal_rles: list[bytes]  # compressed counts, one per kept instance
    visible_rles: list[bytes]
    rle_sizes: np.ndarray  # int32 (M, 2): each RLE's (h, w)
    fields: dict[str, np.ndarray]  # INSTANCE_FIELDS
    tally: Tally  # skips and warnings, counted with examples


def resolve_file(root: Path, file_name: str, record: str, annotations: Path, what: str) -> Path:
    """`root / file_name`, which must exist (file_name was checked to be relative, without '..')."""
    path = root / file_name
    if not path.is_file():
        raise InputError(f"{what} {path} not found", path=annotations, record=record)
    return path


def check_files(kins: KinsAnnotations, images_dir: Path, depth_dir: Path | None) -> tuple[list[Path], list[Path] | None]:
    """Every image (and depth PNG) file of the split, which must exist."""
    image_files, depth_files = [], [] if depth_dir is not None else None
    for image in kins.images:
        record = f"image {image.id}"
        image_files.append(resolve_file(images_dir, image.file_name, record, kins.path, "image file"))
        if depth_files is not None:
            # Depth PNGs carry the image's file name, as KITTI's depth maps do (PNG either way).
            name = str(Path(image.file_name).with_suffix(".png"))
            depth_files.append(resolve_file(depth_dir, name, record, kins.path, "depth file"))
    return image_files, depth_files


def plan_images(images: list[tuple[int, int, list[InstanceRecord]]]) -> dict[str, Any]:
    """Plan a run of images (height, width, instances): RLEs, skip decisions and instance fields.

    A task: the pycocotools polygon -> RLE conversion is most of the stage's CPU outside the
    pixel writes, so it runs on the workers (`plan_chunks`). Returns plain lists and a `Tally`.
    """
    part: dict[str, Any] = {"kept": [], "amodal": [], "visible": [], "sizes": [],
                            "fields": {name: [] for name in INSTANCE_FIELDS}, "tally": Tally()}
    for height, width, instances in images:
        kept = 0
        for inst in instances:
            planned = _plan_instance(inst, height, width, part["tally"])
            if planned is None:
                continue
            amodal, visible, occlusion = planned
            part["amodal"].append(amodal)
            part["visible"].append(visible)
            part["sizes"].append((height, width))
            # a declared box far from its mask is replaced by the mask's box, and counted
            boxes = {kind: anomalies.checked_box(inst, kind, {"size": [height, width], "counts": counts},
                                                 part["tally"]) for kind, counts in (("amodal", amodal),
                                                                                     ("visible", visible))}
            values = {"category": inst.category_id, "amodal_box": boxes["amodal"],
                      "visible_box": boxes["visible"], "occlusion": occlusion,
                      "annotation_id": inst.id, "oco_id": inst.oco_id, "ico_id": inst.ico_id}
            for name in INSTANCE_FIELDS:
                part["fields"][name].append(values[name])
            kept += 1
        part["kept"].append(kept)
    return part


def _plan_instance(inst: InstanceRecord, height: int, width: int, tally: Tally) -> tuple[bytes, bytes, float] | None:
    """(amodal counts, visible counts, occlusion) of a kept instance; None (counted in `tally`) if skipped."""
    rule = anomalies.skip_before_decoding(inst)
    if rule is None:
        amodal = rle_utils.to_rle(inst.amodal, height, width)
        visible = rle_utils.to_rle(inst.visible, height, width)
        amodal_area, visible_area = rle_utils.area(amodal), rle_utils.area(visible)
        anomalies.check_areas(inst, {"amodal": (amodal_area, amodal), "visible": (visible_area, visible)}, tally)
        rule = anomalies.skip_after_decoding(inst, amodal_area, visible_area)
    if rule is not None:
        tally.add(rule, inst)
        return None
    if rle_utils.intersection_area(amodal, visible) < visible_area:
        tally.add("visible_outside_amodal", inst)
    return amodal["counts"], visible["counts"], min(1.0, max(0.0, 1.0 - visible_area / amodal_area))


def plan_chunks(kins: KinsAnnotations, images_per_task: int = 128) -> list[tuple]:
    """Arguments of the `plan_images` tasks: 128 images (~1.5k instances, ~0.5 s of work) each,
    so that Dask's per-task cost stays small."""
    return [([(im.height, im.width, kins.instances_of(im.id)) for im in kins.images[a:b]],)
            for a, b in shard_ranges(len(kins.images), images_per_task)]


def merge_plan(kins: KinsAnnotations, image_files: list[Path], depth_files: list[Path] | None,
               parts: list[dict[str, Any]]) -> Plan:
    """The `plan_images` results, in image order, as one `Plan`."""
    tally = Tally()
    kept: list[int] = []
    amodal_rles: list[bytes] = []
    visible_rles: list[bytes] = []
    sizes: list[tuple[int, int]] = []
    fields: dict[str, list] = {name: [] for name in INSTANCE_FIELDS}
    for part in parts:
        kept += part["kept"]
        amodal_rles += part["amodal"]
        visible_rles += part["visible"]
        sizes += part["sizes"]
        for name in INSTANCE_FIELDS:
            fields[name] += part["fields"][name]
        tally.merge(part["tally"])
    arrays = {}
    for name, (dtype, tail, _, _) in INSTANCE_FIELDS.items():
        arrays[name] = np.asarray(fields[name], dtype=dtype).reshape(-1, *tail)
    ptr = np.zeros(len(kept) + 1, dtype=np.int64)
    np.cumsum(kept, out=ptr[1:])
    return Plan(kins, image_files, depth_files, canvas_of(kins), ptr, amodal_rles, visible_rles,
                np.asarray(sizes, dtype=np.int32).reshape(-1, 2), arrays, tally)


def canvas_of(kins: KinsAnnotations) -> tuple[int, int]:
    """The fixed canvas every image is placed on: the largest height and width of the split."""
    return (max((im.height for im in kins.images), default=1), max((im.width for im in kins.images), default=1))
