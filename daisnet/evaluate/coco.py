"""COCO dicts for evaluation: ground truth from a prepared store, model outputs as COCO results.

Ground truth (`ground_truth(store, "amodal" | "visible")`): one COCO annotation per instance of
the store, `segmentation` = compressed RLE of the amodal (or visible) mask, `area` = its pixel
count, `bbox` = the instance's amodal (or visible) box as xywh, `iscrowd` 0, and `occlusion`
(1 - visible / amodal area, as stored) so that AP can be split by occlusion level (metrics.py).
Annotation ids are the instance's row in the store + 1: pycocotools' matcher treats id 0 as "no
match", so ids must be >= 1 and unique (KINS ids are kept as `kins_id`).

Results (`image_results`): the model's per-image output (torchvision convention plus
`amodal_masks`, `visible_masks`; probabilities at the image's true size) becomes two lists of COCO
result records (amodal, visible): RLE of mask > 0.5 with `counts` as str (JSON), `score`, `bbox`,
`category_id` = label, and the predicted `occlusion` (1 - visible / amodal area of the binarized
masks) which the occlusion buckets need for unmatched detections (metrics.py).

`load_results(path, gt)` reads a results JSON written by us or anyone else and refuses, with one
line naming the file and the record, anything pycocotools would choke on or silently misread.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from daisnet.data.prepared import PreparedStore
from daisnet.data.rle import decode_counts
from daisnet.errors import InputError, is_int, is_number

KINDS = ("amodal", "visible")
MASK_THRESHOLD = 0.5  # a pixel belongs to the predicted mask when its probability is > 0.5


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """Compressed RLE of a bool (h, w) mask, `counts` as str so that it goes into JSON."""
    return _json_rle(mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8)))


def encode_masks(masks: np.ndarray) -> list[dict[str, Any]]:
    """pycocotools RLEs (counts as bytes) of bool (n, h, w) masks, in one call.

    pycocotools wants (h, w, n) in Fortran order, i.e. (n, w, h) in C order: one transposing copy
    for all masks, ~35% faster than encoding them one by one at KINS size.
    """
    if masks.shape[0] == 0:
        return []
    return mask_utils.encode(np.asfortranarray(masks.astype(np.uint8).transpose(1, 2, 0)))


def _json_rle(rle: dict[str, Any]) -> dict[str, Any]:
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def xyxy_to_xywh(box: np.ndarray) -> list[float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


def ground_truth(store: PreparedStore, kind: str) -> dict[str, Any]:
    """The COCO dataset dict of a split, with amodal or visible masks as the segmentation."""
    return ground_truths(store, (kind,))[kind]


def ground_truths(store: PreparedStore, kinds: tuple[str, ...] = KINDS) -> dict[str, dict[str, Any]]:
    """{kind: COCO dataset dict} for several kinds in one pass over the store (masks are read once)."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"kinds must be among {KINDS}, got {unknown}")
    images, annotations = [], {kind: [] for kind in kinds}
    for i in range(len(store)):
        h, w = (int(v) for v in store.image_size[i])
        image_id = int(store.image_id[i])
        images.append({"id": image_id, "height": h, "width": w, "file_name": store.file_name(i)})
        inst = store.instances(i)
        first = int(store.image_ptr[i])
        for kind in kinds:
            masks = inst.amodal if kind == "amodal" else inst.visible
            boxes = inst.amodal_box if kind == "amodal" else inst.visible_box
            for k, raw in enumerate(encode_masks(masks)):
                rle = _json_rle(raw)
                annotations[kind].append({
                    "id": first + k + 1,
                    "kins_id": int(inst.annotation_id[k]),
                    "image_id": image_id,
                    "category_id": int(inst.category[k]),
                    "segmentation": rle,
                    "area": float(mask_utils.area(rle)),
                    "bbox": xyxy_to_xywh(boxes[k]),
                    "iscrowd": 0,
                    "occlusion": float(inst.occlusion[k]),
                })
    categories = [{"id": cid, "name": name} for cid, name in sorted(store.categories.items())]
    return {kind: {"images": images, "annotations": annotations[kind], "categories": categories} for kind in kinds}


def _numpy(value: Any) -> np.ndarray:
    """A numpy array from a numpy array or a torch tensor (on any device), without importing torch."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _masks(output: Mapping[str, Any], key: str, n: int, size: tuple[int, int], record: str) -> np.ndarray:
    """(n, h, w) probabilities from (n, 1, h, w) or (n, h, w); the size must be the image's."""
    if key not in output:
        raise InputError(f"missing {key!r}", record=record)
    masks = _numpy(output[key])
    if masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.ndim != 3 or masks.shape[0] != n or tuple(masks.shape[1:]) != size:
        raise InputError(f"{key} has shape {tuple(masks.shape)}, expected ({n}, 1, {size[0]}, {size[1]}) "
                         f"or ({n}, {size[0]}, {size[1]}): the image's true size", record=record)
    return masks


def image_results(output: Mapping[str, Any], image_id: int, size: tuple[int, int],
                  categories: set[int]) -> tuple[list[dict], list[dict]]:
    """COCO result records (amodal, visible) of one image's model output."""
    record = f"predictions for image {image_id}"
    for key in ("boxes", "labels", "scores"):
        if key not in output:
            raise InputError(f"missing {key!r}", record=record)
    boxes, labels, scores = (_numpy(output[k]) for k in ("boxes", "labels", "scores"))
    n = int(labels.shape[0]) if labels.ndim == 1 else -1
    if n < 0 or boxes.shape != (n, 4) or scores.shape != (n,):
        raise InputError(f"boxes {tuple(boxes.shape)}, labels {tuple(labels.shape)}, scores {tuple(scores.shape)}: "
                         "expected (n, 4), (n,), (n,)", record=record)
    if n and not np.isfinite(scores).all():
        raise InputError("scores must be finite", record=record)
    unknown = sorted({int(v) for v in labels} - categories)
    if unknown:
        raise InputError(f"labels {unknown} are not categories of the split {sorted(categories)}", record=record)
    amodal_rles = encode_masks(_masks(output, "amodal_masks", n, size, record) > MASK_THRESHOLD)
    visible_rles = encode_masks(_masks(output, "visible_masks", n, size, record) > MASK_THRESHOLD)
    amodal_out, visible_out = [], []
    for k in range(n):
        a_area, v_area = float(mask_utils.area(amodal_rles[k])), float(mask_utils.area(visible_rles[k]))
        # Predicted occlusion, the GT formula on the binarized masks; an empty amodal mask is
        # "fully hidden" (it can match nothing anyway).
        occlusion = min(1.0, max(0.0, 1.0 - v_area / a_area)) if a_area else 1.0
        common = {"image_id": image_id, "category_id": int(labels[k]), "score": float(scores[k]),
                  "occlusion": occlusion}
        amodal_out.append({**common, "segmentation": _json_rle(amodal_rles[k]), "bbox": xyxy_to_xywh(boxes[k])})
        visible_out.append({**common, "segmentation": _json_rle(visible_rles[k]),
                            "bbox": [float(v) for v in mask_utils.toBbox(visible_rles[k])]})
    return amodal_out, visible_out


def _check_counts(counts: str, size: tuple[int, int]) -> str | None:
    """Why a compressed `counts` string is not a valid mask of `size`, or None when it is.

    pycocotools decodes without bounds checks: runs that do not add up to h * w would make it
    write outside the mask, so they are refused here.
    """
    try:
        runs = decode_counts(counts.encode("ascii"))
    except (UnicodeEncodeError, ValueError):
        return "segmentation counts is not a compressed COCO RLE string"
    if (runs < 0).any() or int(runs.sum()) != size[0] * size[1]:
        return f"segmentation counts do not describe a {size[0]} x {size[1]} mask"
    return None


def check_result(record: Any, images: Mapping[int, tuple[int, int]], categories: set[int]) -> str | None:
    """Why one COCO result record is malformed, or None when it is fine."""
    if not isinstance(record, dict):
        return f"expected an object, got {type(record).__name__}"
    missing = [k for k in ("image_id", "category_id", "score", "segmentation") if k not in record]
    if missing:
        return f"missing {missing}"
    image_id, category = record["image_id"], record["category_id"]
    if not is_int(image_id):
        return f"image_id {image_id!r} is not an integer"
    if image_id not in images:
        return f"image_id {image_id} is not an image of the split"
    if not isinstance(category, int) or category not in categories:
        return f"category_id {category!r} is not a category of the split {sorted(categories)}"
    score = record["score"]
    if not is_number(score):
        return f"score {score!r} is not a finite number"
    occlusion = record.get("occlusion", 0.0)
    if not isinstance(occlusion, (int, float)) or not 0.0 <= occlusion <= 1.0:
        return f"occlusion {occlusion!r} is not a number in [0, 1]"
    seg = record["segmentation"]
    if not isinstance(seg, dict) or not isinstance(seg.get("counts"), str) or "size" not in seg:
        return "segmentation must be a compressed RLE {'size': [h, w], 'counts': str}"
    size = images[image_id]
    if list(seg["size"]) != list(size):
        return f"segmentation size {seg['size']} is not the image's size {list(size)}"
    return _check_counts(seg["counts"], size)


def validate_results(results: Any, gt: Mapping[str, Any], path: object = None) -> list[dict]:
    """The results, checked record by record against the ground truth's images and categories."""
    if not isinstance(results, list):
        raise InputError(f"expected a JSON list of COCO result records, got {type(results).__name__}", path=path)
    images = {img["id"]: (img["height"], img["width"]) for img in gt["images"]}
    categories = {c["id"] for c in gt["categories"]}
    for index, record in enumerate(results):
        problem = check_result(record, images, categories)
        if problem:
            raise InputError(problem, path=path, record=f"record {index}")
    return results


def load_results(path: str | Path, gt: Mapping[str, Any]) -> list[dict]:
    """Read and validate a COCO results JSON file against the ground truth of the split."""
    path = Path(path)
    if not path.is_file():
        raise InputError("predictions file not found", path=path)
    try:
        results = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not JSON ({exc})", path=path) from None
    return validate_results(results, gt, path=path)
