"""Tiny hand-made KINS annotation sets, in both releases, for the rasterize tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from daisnet.data.categories import categories_json

# Three images of different sizes (the canvas is the largest of each axis: 24 x 32).
IMAGES = [
    {"id": 11, "file_name": "a.png", "height": 20, "width": 30, "focal": 100.0},
    {"id": 7, "file_name": "sub/b.png", "height": 24, "width": 28},
    {"id": 3, "file_name": "c.png", "height": 18, "width": 32},
]


def _rle_of(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _uncompressed(mask: np.ndarray) -> dict:
    flat = mask.astype(np.uint8).ravel(order="F")
    counts, value, run = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def annotations_2020() -> dict:
    """Polygons everywhere; multi-polygon visible masks; one polygon reaching past the border."""
    anns = [
        # image 11: a car and a pedestrian in front of it
        {"id": 1, "image_id": 11, "category_id": 4,
         "a_segm": [[2, 3, 20, 3, 20, 15, 2, 15]], "a_bbox": [2, 3, 18, 12], "a_area": 216,
         "i_segm": [[2, 3, 9, 3, 9, 15, 2, 15], [14.5, 3, 20, 3, 20, 15, 14.5, 15]],
         "i_bbox": [2, 3, 18, 12], "i_area": 150, "oco_id": 1, "ico_id": 2},
        {"id": 2, "image_id": 11, "category_id": 2,
         "a_segm": [[9, 1, 14.5, 1.5, 14, 19, 9.2, 18.7]], "a_bbox": [9, 1, 5.5, 18], "a_area": 95,
         "i_segm": [[9, 1, 14.5, 1.5, 14, 19, 9.2, 18.7]], "i_bbox": [9, 1, 5.5, 18], "i_area": 95,
         "oco_id": 1, "ico_id": 1},
        # image 7: a truck cut by the right border (amodal polygon reaches outside the image)
        {"id": 5, "image_id": 7, "category_id": 6,
         "a_segm": [[15, 4, 33, 4, 33, 20, 15, 20]], "a_bbox": [15, 4, 13, 16], "a_area": 208,
         "i_segm": [[15, 4, 28, 4, 28, 12, 15, 12], [15, 14, 20, 14, 20, 20]], "i_bbox": [15, 4, 13, 16],
         "i_area": 120, "oco_id": 0, "ico_id": 0},
        # image 7: a fully hidden van (no visible polygon): skipped and counted
        {"id": 6, "image_id": 7, "category_id": 7,
         "a_segm": [[1, 1, 8, 1, 8, 8, 1, 8]], "a_bbox": [1, 1, 7, 7], "a_area": 49,
         "i_segm": [], "i_bbox": [0, 0, 0, 0], "i_area": 0, "oco_id": 0, "ico_id": 0},
        # image 3: a cyclist, a triangle
        {"id": 9, "image_id": 3, "category_id": 1,
         "a_segm": [[3, 2, 16, 9, 3, 16]], "a_bbox": [3, 2, 13, 14], "a_area": 91,
         "i_segm": [[3, 2, 10, 5.5, 3, 9]], "i_bbox": [3, 2, 7, 7], "i_area": 25, "oco_id": 0, "ico_id": 0},
    ]
    return {"images": copy.deepcopy(IMAGES), "annotations": anns, "categories": categories_json()}


def annotations_2019() -> dict:
    """Amodal polygons, visible masks as compressed RLE (KINS-2019) and one uncompressed RLE."""
    vis_car = np.zeros((20, 30), bool)
    vis_car[3:15, 2:9] = True
    vis_car[3:15, 15:20] = True  # two pieces around the pedestrian
    vis_ped = np.zeros((20, 30), bool)
    vis_ped[1:19, 9:15] = True
    vis_truck = np.zeros((24, 28), bool)
    vis_truck[4:20, 15:28] = True  # touches the right border: runs wrap over columns
    vis_cyc = np.zeros((18, 32), bool)
    vis_cyc[2:18, 3:8] = True  # touches the bottom border
    anns = [
        {"id": 1, "image_id": 11, "category_id": 4, "segmentation": [[2, 3, 20, 3, 20, 15, 2, 15]],
         "bbox": [2, 3, 18, 12], "area": 216, "inmodal_seg": _rle_of(vis_car), "inmodal_bbox": [2, 3, 18, 12],
         "iscrowd": 0},
        {"id": 2, "image_id": 11, "category_id": 2, "segmentation": [[9, 1, 15, 1, 15, 19, 9, 19]],
         "bbox": [9, 1, 6, 18], "area": 108, "inmodal_seg": _rle_of(vis_ped), "inmodal_bbox": [9, 1, 6, 18],
         "iscrowd": 0},
        {"id": 5, "image_id": 7, "category_id": 6, "segmentation": [[15, 4, 30, 4, 30, 20, 15, 20]],
         "bbox": [15, 4, 13, 16], "area": 208, "inmodal_seg": _uncompressed(vis_truck),
         "inmodal_bbox": [15, 4, 13, 16], "iscrowd": 0},
        {"id": 9, "image_id": 3, "category_id": 1, "segmentation": [[3, 2, 16, 9, 3, 18], [20, 2, 25, 2, 25, 6]],
         "bbox": [3, 2, 22, 16], "area": 100, "inmodal_seg": _rle_of(vis_cyc), "inmodal_bbox": [3, 2, 5, 16],
         "iscrowd": 0},
        {"id": 10, "image_id": 3, "category_id": 8, "segmentation": [[26, 1, 30, 1, 30, 5, 26, 5]],
         "bbox": [26, 1, 4, 4], "area": 16, "inmodal_seg": _rle_of(np.zeros((18, 32), bool)),
         "inmodal_bbox": [0, 0, 0, 0], "iscrowd": 0},  # empty visible RLE: skipped
    ]
    categories = [c for c in categories_json() if c["id"] != 3]
    return {"images": copy.deepcopy(IMAGES), "annotations": anns, "categories": categories}


def write_dataset(root: Path, payload: dict, depth: bool = False, seed: int = 0) -> tuple[Path, Path, Path | None]:
    """Write images (random RGB PNGs), optional depth PNGs and the JSON; return the three paths."""
    rng = np.random.default_rng(seed)
    images_dir = root / "image_2"
    depth_dir = root / "depth" if depth else None
    for entry in payload["images"]:
        path = images_dir / entry["file_name"]
        path.parent.mkdir(parents=True, exist_ok=True)
        shape = (entry["height"], entry["width"])
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(path)
        if depth_dir is not None:
            dpath = depth_dir / entry["file_name"]
            dpath.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(256, 80 * 256, shape, dtype=np.uint16)).save(dpath)
    annotations = root / "annotations.json"
    annotations.write_text(json.dumps(payload))
    return annotations, images_dir, depth_dir


def coco_masks(payload: dict, release: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """pycocotools' own decoding (COCO.annToMask) of every annotation: {id: (amodal, visible)}."""
    from pycocotools.coco import COCO

    amodal_key, visible_key = ("segmentation", "inmodal_seg") if release == "2019" else ("a_segm", "i_segm")
    result = {}
    for key, slot in ((amodal_key, 0), (visible_key, 1)):
        data = copy.deepcopy(payload)
        for ann in data["annotations"]:
            ann["segmentation"] = ann[key]
        coco = COCO()
        coco.dataset = data
        coco.createIndex()
        for ann_id, ann in coco.anns.items():
            if ann["segmentation"] == []:  # pycocotools cannot decode "no polygon"
                img = coco.imgs[ann["image_id"]]
                mask = np.zeros((img["height"], img["width"]), bool)
            else:
                mask = coco.annToMask(ann).astype(bool)
            result.setdefault(ann_id, [None, None])[slot] = mask
    return {k: (v[0], v[1]) for k, v in result.items()}
