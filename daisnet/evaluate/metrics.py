"""pycocotools COCOeval on amodal or visible masks: the Table 1 columns, per-class AP, AP by
occlusion level and precision-recall curves, each bucket with its definition (DEFINITIONS).

Area buckets are COCO's own (pycocotools `areaRng`, bounds inclusive), on the ground-truth
mask's pixel count: the amodal mask when evaluating amodal masks, the visible mask for visible.

Occlusion buckets use the very same mechanism with the occlusion ratio in place of the area:
every ground truth's `area` is replaced by its occlusion (1 - visible / amodal area) and every
detection's `area` by its predicted occlusion (the same formula on its binarized masks), then
COCOeval runs with `areaRng` = the occlusion ranges. So, exactly as for APs/APm/APl, in a bucket:
ground truth outside the bucket is ignored (a detection matched to it is neither TP nor FP),
and an unmatched detection counts as a false positive only when its own predicted occlusion lies
in the bucket. Two shortcuts that look similar are wrong: COCO's `ignore` flag is overwritten
by `iscrowd` in `COCOeval._prepare` (so it cannot mark GT as ignored), and replacing only the
GT area (as VRSP-Net / AISFormer's modified pycocotools do, with ranges like [0, 0.85]) leaves
the detections' pixel areas outside every occlusion range, so that no unmatched detection is
ever a false positive and precision is inflated.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

# Table 1 columns: (name, AP or AR, IoU threshold or None = .50:.95, area range label, max detections).
COLUMNS: tuple[tuple[str, bool, float | None, str, int], ...] = (
    ("AP", True, None, "all", 100),
    ("AP50", True, 0.5, "all", 100),
    ("AP75", True, 0.75, "all", 100),
    ("APs", True, None, "small", 100),
    ("APm", True, None, "medium", 100),
    ("APl", True, None, "large", 100),
    ("AR1", False, None, "all", 1),
    ("AR10", False, None, "all", 10),
    ("AR100", False, None, "all", 100),
)

# Occlusion levels on the GT ratio 1 - visible / amodal area: half-open [lo, hi) except the last.
OCCLUSION_BUCKETS: dict[str, tuple[float, float]] = {
    "none": (0.0, 0.01),
    "partial": (0.01, 0.5),
    "heavy": (0.5, 1.0),
}

# Short, because `dvc metrics show` prints them as columns; docs/metrics.md has the long form.
DEFINITIONS: dict[str, str] = {
    "AP": "COCOeval segm, IoU .50:.05:.95, 100 dets/img, mean over classes with GT, x100",
    "AP50": "as AP at mask IoU 0.50",
    "AP75": "as AP at mask IoU 0.75",
    "APs": "COCO area bucket: GT mask area <= 32^2 px (amodal mask for amodal, visible for visible)",
    "APm": "COCO area bucket: 32^2 <= GT mask area <= 96^2 px",
    "APl": "COCO area bucket: GT mask area >= 96^2 px",
    "AR1": "COCO recall, IoU .50:.95, at most 1 det/img, x100",
    "AR10": "as AR1 with at most 10 dets/img",
    "AR100": "as AR1 with at most 100 dets/img",
    "per_class": "AP of each KINS category with GT in the split",
    "occlusion": "AP by GT occlusion = 1 - visible/amodal area; COCO areaRng rules with area := occlusion",
    "occlusion.none": "GT occlusion in [0, 0.01)",
    "occlusion.partial": "GT occlusion in [0.01, 0.5)",
    "occlusion.heavy": "GT occlusion in [0.5, 1]",
    "masks": "predicted mask = probability > 0.5 at the image's true size",
    "counts": "GT instances and detections evaluated, in all and per occlusion level",
}


def _quiet(fn: Any, *args: Any) -> Any:
    """Call a pycocotools function that prints progress, without the prints."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def coco_from_dict(dataset: Mapping[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = dict(dataset)
    _quiet(coco.createIndex)
    return coco


def coco_results(coco_gt: COCO, results: list[dict]) -> COCO:
    """pycocotools' loadRes (it fills area, bbox, ids), also for an empty result list (loadRes fails)."""
    records = [dict(r) for r in results]  # loadRes writes into the records: keep the caller's intact
    if records:
        return _quiet(coco_gt.loadRes, records)
    return coco_from_dict({"images": list(coco_gt.dataset["images"]), "annotations": [],
                           "categories": copy.deepcopy(coco_gt.dataset["categories"])})


def run_cocoeval(coco_gt: COCO, coco_dt: COCO, iou_type: str,
                 area_ranges: dict[str, tuple[float, float]] | None = None,
                 max_dets: list[int] | None = None) -> COCOeval:
    """COCOeval evaluate + accumulate, optionally with other area ranges (label -> [lo, hi]) and
    detection limits (the per-image matching, evaluateImg, is most of the time: ~6 ms per image
    and area range at KINS size, so the occlusion pass asks only for what it reports)."""
    evaluator = COCOeval(coco_gt, coco_dt, iou_type)
    if area_ranges is not None:
        evaluator.params.areaRng = [list(r) for r in area_ranges.values()]
        evaluator.params.areaRngLbl = list(area_ranges)
    if max_dets is not None:
        evaluator.params.maxDets = list(max_dets)
    _quiet(evaluator.evaluate)
    _quiet(evaluator.accumulate)
    return evaluator


def _mean_valid(values: np.ndarray) -> float | None:
    """Mean of the entries > -1 (COCO's "no ground truth" marker), x100; None when there are none."""
    valid = values[values > -1]
    return float(np.mean(valid)) * 100.0 if valid.size else None


def summary_value(evaluator: COCOeval, ap: bool, iou: float | None, area: str, max_dets: int) -> float | None:
    """One number of COCOeval.summarize(), without printing (same indexing as pycocotools)."""
    p = evaluator.params
    a = p.areaRngLbl.index(area)
    m = p.maxDets.index(max_dets)
    values = evaluator.eval["precision" if ap else "recall"]  # [T, R, K, A, M] or [T, K, A, M]
    if iou is not None:
        values = values[np.where(np.isclose(p.iouThrs, iou))[0]]
    values = values[:, :, :, a, m] if ap else values[:, :, a, m]
    return _mean_valid(values)


def table1(evaluator: COCOeval) -> dict[str, float | None]:
    """AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100 (x100); None where no GT falls in a bucket."""
    return {name: summary_value(evaluator, ap, iou, area, dets) for name, ap, iou, area, dets in COLUMNS}


def per_class_ap(evaluator: COCOeval, names: Mapping[int, str]) -> dict[str, float]:
    """AP (IoU .50:.95, all areas, 100 detections) per category that has ground truth."""
    p = evaluator.params
    out = {}
    for k, cat_id in enumerate(p.catIds):
        value = _mean_valid(evaluator.eval["precision"][:, :, k, 0, -1])
        if value is not None:
            out[names.get(cat_id, str(cat_id))] = value
    return out


def pr_curves(evaluator: COCOeval, ious: tuple[float, ...] = (0.5, 0.75)) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """{IoU: (recall points, precision)}: COCO's interpolated precision averaged over categories with GT."""
    p = evaluator.params
    out = {}
    for iou in ious:
        t = int(np.where(np.isclose(p.iouThrs, iou))[0][0])
        precision = evaluator.eval["precision"][t, :, :, 0, -1]  # [R, K]
        present = (precision > -1).all(axis=0)  # a category without GT is -1 everywhere
        mean = precision[:, present].mean(axis=1) if present.any() else np.zeros(len(p.recThrs))
        out[iou] = (np.asarray(p.recThrs), mean)
    return out


def occlusion_ranges() -> dict[str, tuple[float, float]]:
    """COCOeval areaRng for the occlusion buckets: inclusive bounds, so [lo, hi) becomes [lo, hi - ulp]."""
    ranges = {}
    last = list(OCCLUSION_BUCKETS)[-1]
    for name, (lo, hi) in OCCLUSION_BUCKETS.items():
        ranges[name] = (lo, hi if name == last else float(np.nextafter(hi, -np.inf)))
    return ranges


def occlusion_ap(gt: Mapping[str, Any], results: list[dict], iou_type: str) -> dict[str, dict[str, float | None]]:
    """AP, AP50, AP75 per occlusion bucket (COCO area-bucket rules with area := occlusion ratio)."""
    dataset = dict(gt)
    dataset["annotations"] = [{**ann, "area": float(ann["occlusion"])} for ann in gt["annotations"]]
    coco_gt = coco_from_dict(dataset)
    coco_dt = coco_results(coco_gt, results)
    for ann in coco_dt.anns.values():  # loadRes set area to the pixel count: put the occlusion back
        ann["area"] = float(ann["occlusion"])
    ranges = occlusion_ranges()
    evaluator = run_cocoeval(coco_gt, coco_dt, iou_type, ranges, max_dets=[100])
    out = {}
    for name in OCCLUSION_BUCKETS:
        lo, hi = ranges[name]
        out[name] = {
            "AP": summary_value(evaluator, True, None, name, 100),
            "AP50": summary_value(evaluator, True, 0.5, name, 100),
            "AP75": summary_value(evaluator, True, 0.75, name, 100),
            "gt": sum(lo <= a["area"] <= hi for a in dataset["annotations"]),
            "detections": sum(lo <= a["area"] <= hi for a in coco_dt.anns.values()),
        }
    return out


def evaluate_segm(gt: Mapping[str, Any], results: list[dict], iou_type: str = "segm") -> dict[str, Any]:
    """Evaluate COCO results against a COCO ground truth (both dicts as made by coco.py).

    Returns {"summary": Table 1 columns, "per_class": {name: AP}, "occlusion": {bucket: {...}} (only
    when every GT and result carries `occlusion`), "pr": {IoU: (recall, precision)}}; numbers x100,
    None where a bucket has no ground truth.
    """
    coco_gt = coco_from_dict(gt)
    evaluator = run_cocoeval(coco_gt, coco_results(coco_gt, results), iou_type)
    names = {c["id"]: c["name"] for c in gt["categories"]}
    out: dict[str, Any] = {"summary": table1(evaluator), "per_class": per_class_ap(evaluator, names),
                           "pr": pr_curves(evaluator)}
    if all("occlusion" in a for a in gt["annotations"]) and all("occlusion" in r for r in results):
        out["occlusion"] = occlusion_ap(gt, results, iou_type)
    return out
