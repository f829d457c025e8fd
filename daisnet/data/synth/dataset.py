"""The synthetic KINS-format dataset: render scenes and export them as KINS-2020 annotation files.

Layout written under the output folder (the same shape as a KINS download, plus depth):

    {split}/image_2/000000.png   RGB
    {split}/depth/000000.png     ground-truth depth, uint16 PNG, metres x 256 (KITTI's convention;
                                 0 never occurs: the sky is stored as max_depth)
    annotations/{split}.json     KINS-2020 format (a_segm/i_segm polygons, a_bbox/i_bbox, areas,
                                 oco_id/ico_id); image entries also carry `focal` (px)
    report.json                  counts and the occlusion histogram per split

Every image is drawn from its own generator, seeded by (seed, split, index): the output does not
depend on the number of worker processes.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from daisnet.atomic import atomic_output
from daisnet.data.categories import categories_json
from daisnet.data.polygons import mask_to_polygons
from daisnet.data.synth.render import render
from daisnet.data.synth.scene import SceneConfig, sample_scene
from daisnet.errors import InputError
from daisnet.progress import track

DEPTH_PNG_SCALE = 256.0  # KITTI depth PNGs: uint16 = metres x 256
MIN_HEIGHT, MIN_WIDTH = 64, 128
SPLIT_KEYS = {"train": 0, "val": 1}
OCCLUSION_BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True)
class SynthConfig:
    train_images: int = 400
    val_images: int = 100
    height: int = 192
    width: int = 640
    max_depth: float = 80.0
    min_visible_area: int = 16  # px: objects less visible than this are not annotated (hidden)
    # Camera focal length in px. None: KITTI's 721.5 px scaled to `width` (the whole KINS field of
    # view, objects shrunk with the image); a number: that focal (721.5 at any size = a window of
    # a KINS camera, objects at KINS's pixel sizes). docs/profiles.md says why the default is the latter.
    focal: float | None = 721.5377
    seed: int = 0
    workers: int = 2
    # Labels as KINS draws them, outlines without holes (daisnet/data/synth/render.py says why).
    fill_label_holes: bool = True
    # Shadows cast by every object, building and tree from the sun (§3.2's rendered scenes).
    cast_shadows: bool = True
    scene: SceneConfig = field(default_factory=SceneConfig)

    def validate(self) -> None:
        problems = []
        if self.train_images < 1 or self.val_images < 1:
            problems.append(f"image counts must be >= 1 (train {self.train_images}, val {self.val_images})")
        if self.height < MIN_HEIGHT or self.width < MIN_WIDTH:
            problems.append(f"image size {self.height} x {self.width} is below the minimum {MIN_HEIGHT} x {MIN_WIDTH}")
        if self.height > 4096 or self.width > 4096:
            problems.append(f"image size {self.height} x {self.width} is above the maximum 4096 x 4096")
        if not 0 < self.max_depth <= 255:
            problems.append(f"max_depth {self.max_depth} must be in (0, 255] m (uint16 PNG at 1/256 m)")
        if self.focal is not None and not 10 <= self.focal <= 10000:
            problems.append(f"focal {self.focal} must be null or a length in px in [10, 10000]")
        if self.min_visible_area < 1:
            problems.append(f"min_visible_area {self.min_visible_area} must be >= 1 px")
        if self.workers < 1:
            problems.append(f"workers {self.workers} must be >= 1")
        for name in ("fill_label_holes", "cast_shadows"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} {getattr(self, name)!r} must be true or false")
        sc = self.scene
        if not 0 <= sc.street_fraction <= 1 or not 0 <= sc.line_of_sight <= 1 or not 0 <= sc.cyclist_fraction <= 1:
            problems.append("street_fraction, line_of_sight and cyclist_fraction must be in [0, 1]")
        for name in ("street_vehicles", "openroad_vehicles", "openroad_pedestrians"):
            lo, hi = getattr(sc, name)
            if lo < 0 or hi < lo:
                problems.append(f"{name} {list(getattr(sc, name))} must be a range [low, high] with 0 <= low <= high")
        if sc.vehicle_x[0] > sc.vehicle_x[1]:
            problems.append(f"vehicle_x {list(sc.vehicle_x)} must be a range [low, high]")
        if min(sc.street_half_width, sc.openroad_half_width) < 2.5:
            problems.append("street_half_width and openroad_half_width must be >= 2.5 m (a vehicle's width)")
        if sc.street_pedestrians_per_vehicle < 0:
            problems.append("street_pedestrians_per_vehicle must be >= 0")
        if problems:
            raise InputError("; ".join(problems), path="synth params")


@dataclass
class RenderedImage:
    rgb: np.ndarray
    depth: np.ndarray
    scenario: str
    focal: float
    instances: list[dict]  # category_id, amodal (H, W) bool, visible (H, W) bool, depth (m)


def render_image(config: SynthConfig, split: str, index: int) -> RenderedImage:
    """Render image `index` of `split`, with the exact masks of every annotated instance."""
    rng = np.random.default_rng([config.seed, SPLIT_KEYS[split], index])
    scene = sample_scene(rng, config.scene)
    out = render(scene, config.height, config.width, config.max_depth, rng, config.focal, config.fill_label_holes,
                 config.cast_shadows)
    instances = []
    for obj_index, obj in enumerate(scene.objects):
        visible = out.owner == obj_index
        if visible.sum() < config.min_visible_area:
            continue
        window, local = out.amodal[obj_index]
        amodal = np.zeros_like(visible)
        amodal[window] = local
        instances.append({
            "category_id": obj.category_id,
            "amodal": amodal,
            "visible": visible,
            "depth": float(out.object_depth[obj_index]),
        })
    return RenderedImage(out.rgb, out.depth, scene.scenario, out.focal, instances)


def occlusion_order(instances: list[dict]) -> list[tuple[int, int]]:
    """KINS-2020 `(oco_id, ico_id)` per instance.

    Instances whose amodal masks overlap form an occlusion cluster (connected components of the
    overlap graph), numbered from 1 in order of first instance; inside a cluster `ico_id` ranks the
    instances front to back from 1 (by mean depth of their own surface). An instance that overlaps
    nothing gets (0, 0): KINS's "not overlapping".
    """
    n = len(instances)
    if n == 0:
        return []
    flat = np.stack([inst["amodal"].ravel() for inst in instances]).astype(np.float32)
    overlap = (flat @ flat.T) > 0
    np.fill_diagonal(overlap, False)
    from scipy.sparse.csgraph import connected_components

    _, labels = connected_components(overlap, directed=False)
    result = [(0, 0)] * n
    cluster_id = 0
    seen: dict[int, int] = {}
    for i in range(n):
        if not overlap[i].any():
            continue
        if labels[i] not in seen:
            cluster_id += 1
            seen[labels[i]] = cluster_id
    for label, cid in seen.items():
        members = [i for i in range(n) if labels[i] == label]
        members.sort(key=lambda i: instances[i]["depth"])
        for rank, i in enumerate(members, start=1):
            result[i] = (cid, rank)
    return result


def _bbox(rle: dict) -> list[float]:
    return [float(v) for v in mask_utils.toBbox(rle)]


def annotate(image: RenderedImage, image_id: int, first_annotation_id: int) -> list[dict]:
    """KINS-2020 annotation records for one rendered image."""
    records = []
    order = occlusion_order(image.instances)
    for offset, (inst, (oco, ico)) in enumerate(zip(image.instances, order)):
        a_rle = mask_utils.encode(np.asfortranarray(inst["amodal"].astype(np.uint8)))
        i_rle = mask_utils.encode(np.asfortranarray(inst["visible"].astype(np.uint8)))
        records.append({
            "id": first_annotation_id + offset,
            "image_id": image_id,
            "category_id": int(inst["category_id"]),
            "a_segm": mask_to_polygons(inst["amodal"]),
            "a_bbox": _bbox(a_rle),
            "a_area": int(inst["amodal"].sum()),
            "i_segm": mask_to_polygons(inst["visible"]),
            "i_bbox": _bbox(i_rle),
            "i_area": int(inst["visible"].sum()),
            "oco_id": int(oco),
            "ico_id": int(ico),
            "iscrowd": 0,
        })
    return records


def _render_and_save(args: tuple[SynthConfig, str, int, str]) -> tuple[dict, list[dict], str]:
    config, split, index, root = args
    image = render_image(config, split, index)
    name = f"{index:06d}.png"
    Image.fromarray(image.rgb).save(Path(root) / split / "image_2" / name, compress_level=1)
    depth_png = np.round(image.depth * DEPTH_PNG_SCALE).astype(np.uint16)
    Image.fromarray(depth_png).save(Path(root) / split / "depth" / name, compress_level=1)
    entry = {"id": index + 1, "file_name": name, "height": config.height, "width": config.width,
             "focal": round(image.focal, 4), "scenario": image.scenario}
    # Annotation ids are made unique by the caller; here they count from 0 within the image.
    return entry, annotate(image, index + 1, 0), image.scenario


def _worker_init() -> None:
    # Two processes each with a full thread pool ran 8x slower than one-thread processes.
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # threadpoolctl comes with scikit-learn; only speed is at stake
        pass


def occlusion_histogram(records: list[dict]) -> dict:
    ratios = np.array([1.0 - r["i_area"] / r["a_area"] for r in records]) if records else np.zeros(0)
    counts, _ = np.histogram(ratios, bins=OCCLUSION_BINS)
    return {
        "bins": list(OCCLUSION_BINS),
        "counts": counts.tolist(),
        "fraction_above_0.2": float((ratios > 0.2).mean()) if len(ratios) else 0.0,
        "fraction_above_0.5": float((ratios > 0.5).mean()) if len(ratios) else 0.0,
    }


def generate(config: SynthConfig, out_dir: str | Path, progress: bool = False) -> dict:
    """Render both splits into `out_dir` (atomically) and return the report."""
    config.validate()
    report: dict = {"config": {"height": config.height, "width": config.width, "seed": config.seed,
                               "max_depth": config.max_depth}}
    with atomic_output(out_dir) as tmp:
        (tmp / "annotations").mkdir(parents=True)
        for split, count in (("train", config.train_images), ("val", config.val_images)):
            (tmp / split / "image_2").mkdir(parents=True)
            (tmp / split / "depth").mkdir(parents=True)
            jobs = [(config, split, i, str(tmp)) for i in range(count)]
            if config.workers > 1:
                with ProcessPoolExecutor(config.workers, initializer=_worker_init) as pool:
                    results = list(track(pool.map(_render_and_save, jobs, chunksize=4), f"synth {split}",
                                         total=len(jobs), unit="img", bar=progress))
            else:
                results = [_render_and_save(job) for job in track(jobs, f"synth {split}", unit="img", bar=progress)]
            images, annotations, scenarios = [], [], []
            for entry, records, scenario in results:
                images.append(entry)
                scenarios.append(scenario)
                for record in records:
                    record["id"] = len(annotations) + 1
                    annotations.append(record)
            payload = {"images": images, "annotations": annotations, "categories": categories_json()}
            with open(tmp / "annotations" / f"{split}.json", "w") as f:
                json.dump(payload, f, separators=(",", ":"))
            per_class: dict[str, int] = {}
            for cat in categories_json():
                per_class[cat["name"]] = sum(1 for a in annotations if a["category_id"] == cat["id"])
            report[split] = {
                "images": len(images),
                "instances": len(annotations),
                "instances_per_image": len(annotations) / max(len(images), 1),
                "street_images": scenarios.count("street"),
                "openroad_images": scenarios.count("openroad"),
                "per_class": per_class,
                "occlusion": occlusion_histogram(annotations),
            }
        with open(tmp / "report.json", "w") as f:
            json.dump(report, f, indent=2)
    return report


def format_histogram(hist: dict, width: int = 40) -> str:
    """The occlusion histogram as text bars, for the stage's log."""
    lines = []
    total = max(sum(hist["counts"]), 1)
    for lo, hi, count in zip(hist["bins"][:-1], hist["bins"][1:], hist["counts"]):
        bar = "#" * int(round(width * count / total))
        lines.append(f"  occlusion {lo:.1f}-{hi:.1f}: {count:6d} {bar}")
    lines.append(f"  > 0.2: {hist['fraction_above_0.2']:.1%}   > 0.5: {hist['fraction_above_0.5']:.1%}")
    return "\n".join(lines)
