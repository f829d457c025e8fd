"""The evaluation entry point: model outputs of a split in, the `evaluate` stage's folder out.

    metrics = evaluate_predictions(store, predictions, Path("data/results/eval"))

`predictions` is any iterable of per-image model outputs (torchvision convention plus
`amodal_masks`, `visible_masks`, optionally `occlusion_edges`), consumed one at a time: each output
is turned into RLE records at once, so memory stays bounded by one image's masks however large the
split (a KINS image with 100 detections is ~190 MB of float masks). An output is matched to its image
by its `image_id` key when it has one, else by position (the i-th output is the store's i-th image).
Every image of the split must get an output (an empty one when nothing is detected).

The folder, written atomically (a failure leaves the previous one untouched):
    metrics.json                 numbers a user compares (DVC metrics): Table 1 columns (amodal, visible),
                                 per_class AP, occlusion.<kind>.<level>.AP; with an edge head,
                                 edge.precision/recall/f1 (its own target, daisnet/evaluate/edges.py)
    details.json                 the rest, plain JSON: AP50/AP75 per occlusion level, counts, definitions
    predictions_amodal.json      COCO results (RLE of mask > 0.5), also carrying the predicted `occlusion`
    predictions_visible.json
    plots/pr_amodal.json         precision-recall curves at IoU 0.5 and 0.75 for `dvc plots`
    plots/pr_visible.json
    samples/*.png                a few images: ground truth vs prediction (samples.py)
metrics.json, details.json and plots/ go to a separate folder instead when `reports_dir` is given.
`full_metrics` merges the two files back into the one dict `evaluate_predictions` returns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from daisnet.atomic import atomic_output, check_replaceable
from daisnet.data.prepared import PreparedStore
from daisnet.errors import InputError
from daisnet.evaluate.edges import COMPARED as EDGE_COMPARED
from daisnet.evaluate.edges import EdgeTally
from daisnet.evaluate.coco import KINDS, ground_truths, image_results, load_results
from daisnet.evaluate.metrics import DEFINITIONS, OCCLUSION_BUCKETS, evaluate_segm
from daisnet.evaluate.samples import pick_samples, write_samples
from daisnet.params import deep_merge


def convert_predictions(store: PreparedStore, predictions: Iterable[Mapping[str, Any]],
                        sample_indices: Iterable[int] = ()) -> tuple[dict[str, list[dict]], dict[int, tuple]]:
    """COCO result records {kind: [...]} of every image, and the records (+ edges) of the sample images."""
    index_of = {int(v): i for i, v in enumerate(store.image_id)}
    categories = set(store.categories)
    wanted = set(sample_indices)
    results: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    samples: dict[int, tuple] = {}
    seen: set[int] = set()
    for position, output in enumerate(predictions):
        if not isinstance(output, Mapping):
            raise InputError(f"expected a dict of arrays, got {type(output).__name__}", record=f"prediction {position}")
        if "image_id" in output:
            image_id = int(np.asarray(output["image_id"]).reshape(-1)[0])
            if image_id not in index_of:
                raise InputError(f"image_id {image_id} is not an image of the split", path=store.path,
                                 record=f"prediction {position}")
            index = index_of[image_id]
        else:
            if position >= len(store):
                raise InputError(f"more predictions than the {len(store)} images of the split", path=store.path,
                                 record=f"prediction {position}")
            index = position
        if index in seen:
            raise InputError(f"a second prediction for image {int(store.image_id[index])}", path=store.path,
                             record=f"prediction {position}")
        seen.add(index)
        size = tuple(int(v) for v in store.image_size[index])
        amodal, visible = image_results(output, int(store.image_id[index]), size, categories)
        results["amodal"] += amodal
        results["visible"] += visible
        if index in wanted:
            edges = output.get("occlusion_edges")
            edges = None if edges is None else np.asarray(edges.detach().cpu() if hasattr(edges, "detach") else edges)
            samples[index] = (amodal, visible, edges)
    missing = [int(store.image_id[i]) for i in range(len(store)) if i not in seen]
    if missing:
        raise InputError(f"no prediction for {len(missing)} of {len(store)} images (image ids {missing[:5]}...)",
                         path=store.path)
    return results, samples


def pr_rows(curves: Mapping[float, tuple[np.ndarray, np.ndarray]]) -> list[dict[str, float]]:
    """One row per recall point with a precision column per IoU: x = recall, y = both columns."""
    ious = sorted(curves)
    recall = curves[ious[0]][0]
    return [{"recall": round(float(r), 4),
             **{f"precision_iou{round(iou * 100)}": round(float(curves[iou][1][j]), 6) for iou in ious}}
            for j, r in enumerate(recall)]


def build_metrics(store: PreparedStore, gt: Mapping[str, dict], evaluated: Mapping[str, dict],
                  results: Mapping[str, list]) -> dict[str, Any]:
    """metrics.json: nested dicts that `dvc metrics show` flattens to amodal.AP, occlusion.amodal.heavy.AP, ..."""
    metrics: dict[str, Any] = {kind: evaluated[kind]["summary"] for kind in KINDS}
    metrics["per_class"] = {kind: evaluated[kind]["per_class"] for kind in KINDS}
    metrics["occlusion"] = {kind: {name: {k: v for k, v in bucket.items() if k not in ("gt", "detections")}
                                   for name, bucket in evaluated[kind]["occlusion"].items()} for kind in KINDS}
    occlusion = evaluated["amodal"]["occlusion"]
    metrics["counts"] = {
        "images": len(store),
        "gt_instances": len(gt["amodal"]["annotations"]),
        "detections": len(results["amodal"]),
        "gt_by_occlusion": {name: occlusion[name]["gt"] for name in OCCLUSION_BUCKETS},
        "detections_by_occlusion": {name: occlusion[name]["detections"] for name in OCCLUSION_BUCKETS},
    }
    metrics["definitions"] = dict(DEFINITIONS)
    return metrics


def split_metrics(metrics: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics.json, details.json): the numbers `dvc exp show` compares, and everything else.

    Few numbers and no strings in the registered file keep `dvc exp show` readable (docs/metrics.md);
    `full_metrics` is the inverse."""
    compared = {kind: metrics[kind] for kind in KINDS if kind in metrics}
    details = {key: value for key, value in metrics.items()
               if key not in compared and key not in ("occlusion", "per_class", "edge")}
    if "per_class" in metrics:  # the task's masks: amodal per class is compared, visible per class is detail
        compared["per_class"] = {k: v for k, v in metrics["per_class"].items() if k == "amodal"}
        details["per_class"] = {k: v for k, v in metrics["per_class"].items() if k != "amodal"}
    if "occlusion" in metrics:
        compared["occlusion"] = {kind: {level: {"AP": bucket["AP"]} for level, bucket in levels.items() if "AP" in bucket}
                                 for kind, levels in metrics["occlusion"].items()}
        details["occlusion"] = {kind: {level: {k: v for k, v in bucket.items() if k != "AP"}
                                       for level, bucket in levels.items()} for kind, levels in metrics["occlusion"].items()}
    if "edge" in metrics:  # the edge head's quality (O rows): its scores compared, its pixel counts detail
        compared["edge"] = {k: v for k, v in metrics["edge"].items() if k in EDGE_COMPARED}
        details["edge"] = {k: v for k, v in metrics["edge"].items() if k not in EDGE_COMPARED}
    return compared, details


def full_metrics(folder: str | Path) -> dict[str, Any]:
    """metrics.json and details.json of an evaluation folder as one dict (what `evaluate_predictions` returned)."""
    folder = Path(folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    details = folder / "details.json"
    return deep_merge(metrics, json.loads(details.read_text())) if details.exists() else metrics


def _drop_none(value: Any) -> Any:
    """None (no ground truth in a bucket) is left out: DVC drops nulls anyway, and a 0 would lie."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def _write_json(path: Path, payload: Any, indent: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=indent, allow_nan=False) + "\n")


def evaluate_predictions(store: PreparedStore, predictions: Iterable[Mapping[str, Any]], out_dir: str | Path, *,
                         samples: int = 4, sample_score: float = 0.5,
                         reports_dir: str | Path | None = None) -> dict[str, Any]:
    """Evaluate a split's model outputs; write the folder described above; return metrics.json's content.

    With `reports_dir`, metrics.json and plots/ go there instead (its own atomic folder): DVC
    refuses metrics and plots inside a stage's output folder. `out_dir` is replaced as a whole: it
    must be new, empty, or an earlier evaluation's folder (checked before any work).
    """
    check_replaceable(out_dir, "folder")
    sample_indices = pick_samples(store, samples)
    edges = EdgeTally()
    results, sample_records = convert_predictions(store, edges.observe(predictions), sample_indices)
    gt = ground_truths(store)
    evaluated = {kind: evaluate_segm(gt[kind], results[kind]) for kind in KINDS}
    metrics = _drop_none(build_metrics(store, gt, evaluated, results))
    if (edge := edges.metrics()) is not None:
        metrics["edge"] = edge
    with atomic_output(out_dir) as tmp:
        tmp.mkdir()
        for kind in KINDS:
            _write_json(tmp / f"predictions_{kind}.json", results[kind])
        write_samples(store, sample_records, tmp / "samples", sample_score)
        if reports_dir is None:
            write_reports(tmp, metrics, evaluated)
    if reports_dir is not None:
        with atomic_output(reports_dir) as tmp:
            tmp.mkdir()
            write_reports(tmp, metrics, evaluated)
    return metrics


def write_reports(folder: Path, metrics: Mapping[str, Any], evaluated: Mapping[str, dict]) -> None:
    """metrics.json, details.json and the precision-recall curves (plots/pr_{kind}.json) into `folder`."""
    compared, details = split_metrics(metrics)
    _write_json(folder / "metrics.json", compared, indent=2)
    _write_json(folder / "details.json", details, indent=2)
    for kind in KINDS:
        _write_json(folder / "plots" / f"pr_{kind}.json", pr_rows(evaluated[kind]["pr"]), indent=1)


def format_metrics(metrics: Mapping[str, Any]) -> str:
    """A few lines for a terminal: the Table 1 columns of amodal and visible masks."""
    from daisnet.evaluate.metrics import COLUMNS

    names = [c[0] for c in COLUMNS]
    lines = ["         " + " ".join(f"{n:>6}" for n in names)]
    for kind in KINDS:
        values = metrics.get(kind, {})
        lines.append(f"{kind:<8} " + " ".join(f"{values[n]:6.2f}" if n in values else f"{'-':>6}" for n in names))
    if "edge" in metrics:
        edge = metrics["edge"]
        lines.append(f"edge head vs its target: precision {edge['precision']:.3f}, recall {edge['recall']:.3f}, "
                     f"F1 {edge['f1']:.3f}")
    return "\n".join(lines)


def score_results_file(store: PreparedStore, path: str | Path, kind: str = "amodal") -> dict[str, Any]:
    """Score a COCO results file (ours, or another method's) against a split's amodal or visible
    masks under this protocol: {"summary", "per_class", "occlusion" (when every record carries
    `occlusion`)}. The file is validated first (coco.load_results)."""
    if kind not in KINDS:
        raise InputError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    gt = ground_truths(store, (kind,))[kind]
    evaluated = evaluate_segm(gt, load_results(path, gt))
    return _drop_none({key: value for key, value in evaluated.items() if key != "pr"})
