"""Reference scores of a split that no trained model is needed for: what the metric can reach.

- `visible_as_amodal`: the ground-truth visible masks submitted as amodal predictions, i.e. a
  perfect modal segmenter that knows nothing about the hidden parts.
- `mask_resolution_bound`: the ground-truth amodal masks passed through a Mask R-CNN mask head's
  grid and back. Training projects each mask into an R x R grid in its box (torchvision's
  `project_masks_on_boxes`: RoIAlign, 2 x 2 samples per bin), inference pastes the R x R
  probabilities into the image and thresholds them at 0.5 (`paste_masks_in_image`). A perfect
  detector with a perfect R x R mask head scores this: thin structures narrower than a grid cell
  (the synthetic cyclists' wheel rings, 2-4 px in a 50-100 px box) cannot survive it.

Both are scored with this project's protocol (`evaluate_segm`), every record at score 1.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.ops import roi_align

from daisnet.data.prepared import PreparedStore
from daisnet.evaluate.coco import ground_truths
from daisnet.evaluate.metrics import evaluate_segm


def through_mask_grid(masks: np.ndarray, boxes: np.ndarray, resolution: int = 28) -> np.ndarray:
    """(n, h, w) bool masks projected into an R x R grid in their (x0, y0, x1, y1) boxes and pasted back."""
    if len(masks) == 0:
        return np.zeros_like(masks, dtype=bool)
    tensor = torch.from_numpy(np.asarray(masks, dtype=np.float32))[:, None]
    box = torch.as_tensor(np.asarray(boxes, dtype=np.float32))
    rois = torch.cat([torch.arange(len(box), dtype=torch.float32)[:, None], box], 1)
    grid = roi_align(tensor, rois, (resolution, resolution), 1.0, 2, aligned=False)
    pasted = paste_masks_in_image(grid, box, tuple(tensor.shape[-2:]))[:, 0]
    return (pasted >= 0.5).numpy()


def _record(image_id: int, category: int, mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return {"image_id": image_id, "category_id": category, "segmentation": rle, "score": 1.0}


def _scores(evaluated: dict[str, Any]) -> dict[str, Any]:
    return {"summary": evaluated["summary"], "per_class": evaluated["per_class"]}


def visible_as_amodal(store: PreparedStore) -> dict[str, Any]:
    """Amodal AP of the ground-truth visible masks (a perfect modal segmenter)."""
    gt = ground_truths(store)
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"],
                "score": 1.0} for a in gt["visible"]["annotations"]]
    return _scores(evaluate_segm(gt["amodal"], results))


def mask_resolution_bound(store: PreparedStore, resolution: int = 28) -> dict[str, Any]:
    """Amodal AP of the ground truth through an R x R mask head, and the mean mask IoU per class."""
    results: list[dict[str, Any]] = []
    ious: dict[str, list[float]] = defaultdict(list)
    for i in range(len(store)):
        inst = store.instances(i)
        amodal = np.asarray(inst.amodal, dtype=bool)
        pasted = through_mask_grid(amodal, np.asarray(inst.amodal_box), resolution)
        for k in range(len(amodal)):
            union = (amodal[k] | pasted[k]).sum()
            name = store.categories[int(inst.category[k])]
            ious[name].append(float((amodal[k] & pasted[k]).sum() / union) if union else 1.0)
            results.append(_record(int(store.image_id[i]), int(inst.category[k]), pasted[k]))
    scored = _scores(evaluate_segm(ground_truths(store, ("amodal",))["amodal"], results))
    scored["mean_iou"] = {name: float(np.mean(v)) for name, v in sorted(ious.items())}
    scored["resolution"] = resolution
    return scored
