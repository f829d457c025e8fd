"""Evaluation cost at KINS scale: COCOeval on 1000 synthetic 375 x 1242 images.

    .venv/bin/python benchmarks/bench_evaluate.py [--images 1000] [--gt 12] [--predictions 20]

Each image has ~12 ground-truth objects (boxes of KINS-like sizes with a random occluder cutting
the visible mask) and ~20 predictions: the ground truth jittered by a few pixels plus false
positives, with random scores. Prints the time of
  - turning one image's model output (20 float masks) into RLE records (coco.image_results),
  - plain pycocotools COCOeval (evaluate + accumulate) on the amodal masks,
  - our evaluate_segm (the same + AP by occlusion level, a second COCOeval) for one mask kind.
The inference side (model forward per image) is to be added next to it for the comparison.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from daisnet.evaluate.coco import encode_mask, image_results
from daisnet.evaluate.metrics import coco_from_dict, coco_results, evaluate_segm, run_cocoeval

HEIGHT, WIDTH = 375, 1242
CATEGORIES = [1, 2, 4, 5, 6, 7, 8]


def random_box(rng: np.random.Generator) -> tuple[int, int, int, int]:
    """KINS-like sizes: many small, some large (log-uniform side lengths)."""
    w = int(np.exp(rng.uniform(np.log(8), np.log(400))))
    h = int(np.clip(w * rng.uniform(0.4, 1.6), 8, HEIGHT - 1))
    x0, y0 = int(rng.integers(0, WIDTH - w)), int(rng.integers(0, HEIGHT - h))
    return x0, y0, x0 + w, y0 + h


def box_mask(box: tuple[int, int, int, int], dx: int = 0, dy: int = 0) -> np.ndarray:
    x0, y0, x1, y1 = box
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[max(0, y0 + dy):max(0, y1 + dy), max(0, x0 + dx):max(0, x1 + dx)] = True
    return mask


def synthetic(images: int, gt_per_image: int, predictions_per_image: int,
              seed: int = 0) -> tuple[dict, list[dict], float]:
    """GT COCO dict, amodal result records, and the mean seconds of image_results per image."""
    rng = np.random.default_rng(seed)
    gt = {"images": [], "annotations": [], "categories": [{"id": c, "name": str(c)} for c in CATEGORIES]}
    results, convert = [], 0.0
    for image_id in range(1, images + 1):
        gt["images"].append({"id": image_id, "height": HEIGHT, "width": WIDTH})
        n_gt = int(rng.poisson(gt_per_image))
        boxes = [random_box(rng) for _ in range(n_gt)]
        labels = rng.choice(CATEGORIES, n_gt)
        for box, label in zip(boxes, labels):
            amodal = box_mask(box)
            x0, y0, x1, y1 = box
            cut = int(rng.integers(x0, x1 + 1))  # an occluder hides the columns left of `cut`
            occlusion = (cut - x0) / max(1, x1 - x0)
            rle = encode_mask(amodal)
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image_id,
                                      "category_id": int(label), "segmentation": rle, "area": float(amodal.sum()),
                                      "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0, "occlusion": occlusion})
        n_pred = max(0, int(rng.poisson(predictions_per_image)))
        pred_boxes = [boxes[k % n_gt] if n_gt and k < n_gt else random_box(rng) for k in range(n_pred)]
        jitter = rng.integers(-3, 4, (n_pred, 2))
        masks = np.stack([box_mask(b, *j) for b, j in zip(pred_boxes, jitter)]).astype(np.float32) if n_pred else \
            np.zeros((0, HEIGHT, WIDTH), np.float32)
        output = {"boxes": np.array(pred_boxes, np.float32).reshape(n_pred, 4),
                  "labels": np.array([labels[k] if k < n_gt else rng.choice(CATEGORIES) for k in range(n_pred)]),
                  "scores": rng.random(n_pred).astype(np.float32),
                  "amodal_masks": masks[:, None], "visible_masks": masks[:, None] * 0.9}
        start = time.perf_counter()
        amodal, _ = image_results(output, image_id, (HEIGHT, WIDTH), set(CATEGORIES))
        convert += time.perf_counter() - start
        results += amodal
    return gt, results, convert / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--gt", type=int, default=12)
    parser.add_argument("--predictions", type=int, default=20)
    args = parser.parse_args()
    start = time.perf_counter()
    gt, results, convert = synthetic(args.images, args.gt, args.predictions)
    print(f"{args.images} images {WIDTH}x{HEIGHT}: {len(gt['annotations'])} GT, {len(results)} predictions "
          f"(made in {time.perf_counter() - start:.1f} s)")
    print(f"model output -> RLE records: {convert * 1000:.1f} ms per image ({args.predictions} masks x 2 kinds)")
    coco_gt = coco_from_dict(gt)
    start = time.perf_counter()
    run_cocoeval(coco_gt, coco_results(coco_gt, results), "segm")
    plain = time.perf_counter() - start
    print(f"pycocotools COCOeval (evaluate + accumulate): {plain:.1f} s ({plain / args.images * 1000:.1f} ms per image)")
    start = time.perf_counter()
    metrics = evaluate_segm(gt, results)
    ours = time.perf_counter() - start
    print(f"evaluate_segm, one mask kind (+ occlusion buckets): {ours:.1f} s  AP {metrics['summary']['AP']:.1f}")
    print(f"both kinds (amodal + visible), estimated: {2 * ours:.1f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak resident memory of this process: {peak:.0f} MiB (GT + results + COCOeval state)")


if __name__ == "__main__":
    main()
