"""KINS annotations + images -> the prepared Zarr store, in parallel on Dask worker processes.

1. Read and validate the annotation file (daisnet.data.kins): any bad record stops here.
2. Plan: each instance's masks become pycocotools RLEs (small: a few hundred bytes), which give
   areas, so the skip rules below and every instance's row in the store are known before any
   pixel is written. The conversion runs on the workers, 128 images per task (done in the
   stage's process it capped the 2-worker speed-up at ~1.5x); image files are checked to exist.
3. Create the arrays of the store (the mask arrays once the plan gives the instance count; the
   image tasks start beside the planning), and run two kinds of tasks, each writing whole shards
   only (a shard is one file: two writers would race): image tasks read the images (and depth
   PNGs) of one image shard; mask tasks paint the RLEs of one instance shard. A task streams its
   shard `batch` rows at a time (daisnet.data.shards), so its memory is one batch, not the data.
4. Write the small arrays (ids, boxes, `image_ptr`, ...) and the attrs; rename into place; write
   the report beside the store.

Skip rules (daisnet/data/anomalies.py: counted by reason in the report with the first few
(image id, annotation id), never an error): a crowd region, a visible box of negative or zero
size, an empty amodal or visible mask. Counted, kept: `visible_outside_amodal` (visible pixels
outside the amodal mask: annotation noise; occlusion is then computed from areas and clipped at
0), images without instances, declared areas far from the decoded masks' (`area_mismatch`), and
declared boxes far from their mask's box (`amodal_box_mismatch`, `visible_box_mismatch`: the mask's
box is stored, so that no detector learns a box its mask contradicts).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from PIL import Image

from daisnet.atomic import atomic_output, refuse_overlap
from daisnet.cluster import (
    dask_client,
    gather_tasks,
    settle_tasks,
    submit_tasks,
)
from daisnet.data import anomalies
from daisnet.data import rle as rle_utils
from daisnet.data.anomalies import Tally
from daisnet.data.kins import InstanceRecord, KinsAnnotations, load_kins
from daisnet.data.prepared import (
    IMAGE_FIELDS,
    INSTANCE_FIELDS,
    StoreLayout,
    create_mask_arrays,
    create_store,
    write_small,
)
from daisnet.data.shards import ShardWriter
from daisnet.errors import InputError, is_int

DEPTH_PNG_SCALE = 256.0  # KITTI convention: uint16 PNG = metres x 256
# PIL modes of single-channel images deeper than 8 bits: refused as RGB images.
HIGH_DEPTH_MODES = {"I;16": "16-bit", "I;16B": "16-bit", "I;16L": "16-bit", "I": "32-bit", "F": "32-bit float"}


@dataclass(frozen=True)
class RasterizeConfig:
    """Knobs of the rasterize stage (params.yaml `rasterize`)."""

    workers: int = 2  # Dask worker processes; 0 = in this process (no cluster)
    images_per_shard: int = 128
    instances_per_shard: int = 1024
    batch_images: int = 16  # rows written at a time by an image task (bounds its memory)
    batch_instances: int = 128  # rows written at a time by a mask task

    def validate(self) -> None:
        for name, value in asdict(self).items():
            minimum = 0 if name == "workers" else 1
            if not is_int(value) or value < minimum:
                raise InputError(f"rasterize.{name} must be an integer >= {minimum}, found {value!r}",
                                 path="rasterize params")


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
            for a, b in _ranges(len(kins.images), images_per_task)]


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


# ---------------------------------------------------------------------------------------------
# Tasks: each writes whole shards of one array group, `batch` rows at a time. They run on Dask
# workers (other processes, maybe other machines), so they take plain, picklable arguments.


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


def _ranges(count: int, per_shard: int) -> list[tuple[int, int]]:
    return [(a, min(a + per_shard, count)) for a in range(0, count, per_shard)]


def image_tasks(kins: KinsAnnotations, image_files: list[Path], depth_files: list[Path] | None, store: Path,
                config: RasterizeConfig) -> list[tuple]:
    """Arguments of the `write_image_shard` tasks (they need no plan: they can run beside it)."""
    jobs = []
    for a, b in _ranges(len(kins.images), config.images_per_shard):
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
        for a, b in _ranges(total, config.instances_per_shard):
            jobs.append((str(store), name, a, b, rles[a:b], plan_.rle_sizes[a:b], config.batch_instances))
    return jobs


def report_path(out: Path) -> Path:
    """Where the report of a store goes: beside it, `train.zarr` -> `train.report.json`."""
    return out.with_name(out.name.removesuffix(".zarr") + ".report.json")


def rasterize(annotations: str | Path, images_dir: str | Path, out: str | Path, *,
              depth_dir: str | Path | None = None, config: RasterizeConfig = RasterizeConfig(),
              progress: bool = False, client: Any = None) -> dict:
    """Build the prepared store `out` (replaced atomically) and its report; return the report.

    `client`: an existing `distributed.Client` to run on (otherwise `daisnet.cluster.dask_client`:
    `DASK_SCHEDULER_ADDRESS`, a local cluster of `config.workers` processes, or this process).
    """
    config.validate()
    annotations, images_dir, out = Path(annotations), Path(images_dir), Path(out)
    refuse_overlap([out], [annotations, images_dir, depth_dir])
    if not images_dir.is_dir():
        raise InputError("images folder not found", path=images_dir)
    if depth_dir is not None and not Path(depth_dir).is_dir():
        raise InputError("depth folder not found", path=depth_dir)
    kins = load_kins(annotations)
    if not kins.images:
        raise InputError("the split has no images: nothing to rasterize (and nothing to train on)", path=annotations)
    image_files, depth_files = check_files(kins, images_dir, Path(depth_dir) if depth_dir is not None else None)
    canvas = canvas_of(kins)
    layout = StoreLayout(images=len(kins.images), instances=0, canvas=canvas, depth=depth_dir is not None,
                         images_per_shard=config.images_per_shard, instances_per_shard=config.instances_per_shard)
    attrs = {
        "file_names": [im.file_name for im in kins.images],
        "source": str(annotations),
        "images_dir": str(images_dir),
        "depth_dir": str(depth_dir) if depth_dir is not None else None,
        "release": kins.release,
        "categories": {str(k): v for k, v in sorted(kins.categories.items())},
        "canvas": list(canvas),
        "params": asdict(config),
        "skip_rules": anomalies.STORE_SKIP_RULES,
    }
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(dask_client(config.workers))
        tmp = stack.enter_context(atomic_output(out))
        group = create_store(tmp, layout, attrs, masks=False)
        # Planning first, then the image shards, which need no plan: the workers read images while
        # this process merges the plan and creates the mask arrays; no worker waits on the plan.
        planning = submit_tasks(client, plan_images, plan_chunks(kins))
        writing = submit_tasks(client, write_image_shard, image_tasks(kins, image_files, depth_files, tmp, config))
        try:
            plan_ = merge_plan(kins, image_files, depth_files, gather_tasks(client, planning))
            create_mask_arrays(group, replace(layout, instances=len(plan_.amodal_rles)))
            writing += submit_tasks(client, write_mask_shard, mask_tasks(plan_, tmp, config))
        except BaseException:
            settle_tasks(client, writing)
            raise
        gather_tasks(client, writing, progress=progress, label="rasterize")
        _write_small_arrays(group, plan_)
    report = make_report(plan_, out)
    path = report_path(out)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    for line in anomalies.notes(report):  # on stdout: stderr is for errors (daisnet/progress.py)
        print(f"note: {annotations}: {line} (all in {path})", flush=True)
    return report


def _write_small_arrays(group: zarr.Group, plan_: Plan) -> None:
    kins = plan_.kins
    values = {
        "image_size": np.asarray([(im.height, im.width) for im in kins.images], dtype=np.int32).reshape(-1, 2),
        "image_id": np.asarray([im.id for im in kins.images], dtype=np.int64),
        "focal": np.asarray([im.focal for im in kins.images], dtype=np.float32),
    }
    for name, (_, _, units, description) in IMAGE_FIELDS.items():
        write_small(group, name, values[name], units, description)
    write_small(group, "image_ptr", plan_.image_ptr, "row",
                "instances of image i are rows image_ptr[i]:image_ptr[i+1] of the instance arrays")
    for name, (_, _, units, description) in INSTANCE_FIELDS.items():
        write_small(group, name, plan_.fields[name], units, description)


def make_report(plan_: Plan, out: Path) -> dict:
    kins = plan_.kins
    occlusion = plan_.fields["occlusion"]
    per_class = {kins.categories[c]: int((plan_.fields["category"] == c).sum()) for c in sorted(kins.categories)}
    return {
        "store": str(out),
        "source": str(kins.path),
        "release": kins.release,
        "images": len(kins.images),
        "annotations": kins.instance_count,
        "instances": len(plan_.amodal_rles),
        **anomalies.report_fields(plan_.tally),
        "images_without_instances": int((np.diff(plan_.image_ptr) == 0).sum()),
        "per_class": per_class,
        "canvas": list(plan_.canvas),
        # None, not NaN, when there is no instance: the report must stay strict JSON (DVC metrics).
        "occlusion_mean": round(float(occlusion.mean()), 6) if occlusion.size else None,
        "occlusion_above_0.2": round(float((occlusion > 0.2).mean()), 6) if occlusion.size else None,
    }
