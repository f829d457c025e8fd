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

This module is the entry point (`RasterizeConfig`, `rasterize`, steps 1, 3 and 4); step 2 is
daisnet/data/rasterize_plan.py, the shard-writing tasks of step 3 daisnet/data/rasterize_shards.py
(image and depth files read by daisnet/data/image_readers.py), the report
daisnet/data/rasterize_report.py.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from daisnet.atomic import atomic_output, refuse_overlap
from daisnet.cluster import (
    dask_client,
    gather_tasks,
    settle_tasks,
    submit_tasks,
)
from daisnet.data import anomalies
from daisnet.data.kins import load_kins
from daisnet.data.prepared import (
    IMAGE_FIELDS,
    INSTANCE_FIELDS,
    StoreLayout,
    create_mask_arrays,
    create_store,
    write_small,
)
from daisnet.data.rasterize_plan import Plan, canvas_of, check_files, merge_plan, plan_chunks, plan_images
from daisnet.data.rasterize_report import make_report, report_path
from daisnet.data.rasterize_shards import image_tasks, mask_tasks, write_image_shard, write_mask_shard
from daisnet.errors import InputError, is_int


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
