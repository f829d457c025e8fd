"""Evaluation: perfect predictions score 100, worse ones less, bad input is refused, and our numbers
are pycocotools' own on the files we write (tiny real prepared stores, real COCOeval, no mocks)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from daisnet.data.categories import categories_json
from daisnet.data.prepared import PreparedStore
from daisnet.data.rasterize import RasterizeConfig, rasterize
from daisnet.errors import InputError
from daisnet.evaluate import evaluate_predictions
from daisnet.evaluate.coco import encode_mask, ground_truth, load_results
from daisnet.evaluate.metrics import COLUMNS, OCCLUSION_BUCKETS, evaluate_segm
from daisnet.evaluate.run import full_metrics
from kins_data import write_dataset

IN_PROCESS = RasterizeConfig(workers=0, images_per_shard=4, instances_per_shard=8, batch_images=2, batch_instances=4)
HEIGHT, WIDTH = 48, 64
CATEGORIES = (1, 2, 4, 6, 7)


def _rect_mask(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """pycocotools' own rasterization of the rectangle polygon (what the store will hold)."""
    rle = mask_utils.frPyObjects([[x0, y0, x1, y0, x1, y1, x0, y1]], HEIGHT, WIDTH)
    return mask_utils.decode(mask_utils.merge(rle)).astype(bool)


def kins_2019(seed: int = 0, images: int = 8) -> dict:
    """Random rectangles; later objects stand in front (the visible mask is what they leave over).
    KINS-2019 layout: amodal polygons, visible masks as compressed RLE, area = amodal pixel count."""
    rng = np.random.default_rng(seed)
    image_entries, anns = [], []
    for i in range(images):
        image_id = 100 + 7 * i  # ids are not indices
        image_entries.append({"id": image_id, "file_name": f"{i:03d}.png", "height": HEIGHT, "width": WIDTH})
        boxes = []
        for _ in range(int(rng.integers(2, 6))):
            w, h = int(rng.integers(6, 34)), int(rng.integers(6, 30))
            x0, y0 = int(rng.integers(0, WIDTH - w)), int(rng.integers(0, HEIGHT - h))
            boxes.append((x0, y0, x0 + w, y0 + h))
        amodal = [_rect_mask(*box) for box in boxes]
        for k, box in enumerate(boxes):
            visible = amodal[k] & ~np.any(amodal[k + 1:], axis=0) if k + 1 < len(boxes) else amodal[k]
            if not visible.any():
                continue
            x0, y0, x1, y1 = box
            rle = encode_mask(visible)
            anns.append({
                "id": len(anns) + 1, "image_id": image_id, "category_id": int(rng.choice(CATEGORIES)),
                "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]], "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": int(amodal[k].sum()), "inmodal_seg": rle,
                "inmodal_bbox": [float(v) for v in mask_utils.toBbox(rle)], "iscrowd": 0,
            })
    categories = [c for c in categories_json() if c["id"] != 3]
    return {"images": image_entries, "annotations": anns, "categories": categories}


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[PreparedStore, Path, dict]:
    root = tmp_path_factory.mktemp("kins")
    payload = kins_2019()
    annotations, images_dir, _ = write_dataset(root, payload)
    rasterize(annotations, images_dir, root / "val.zarr", config=IN_PROCESS)
    return PreparedStore(root / "val.zarr"), annotations, payload


def _shift(mask: np.ndarray, dx: int) -> np.ndarray:
    out = np.zeros_like(mask)
    if dx > 0:
        out[:, dx:] = mask[:, :-dx]
    else:
        out[:] = mask
    return out


def perfect_outputs(store: PreparedStore, shift: int = 0) -> list[dict]:
    """The ground truth as model outputs (float probabilities, (n, 1, h, w)), masks moved `shift` px right."""
    outputs = []
    for i in range(len(store)):
        inst = store.instances(i)
        amodal = np.stack([_shift(m, shift) for m in inst.amodal]) if len(inst) else inst.amodal
        visible = np.stack([_shift(m, shift) for m in inst.visible]) if len(inst) else inst.visible
        outputs.append({
            "boxes": inst.amodal_box.astype(np.float32), "labels": inst.category.astype(np.int64),
            "scores": np.linspace(1.0, 0.5, len(inst)).astype(np.float32),
            "amodal_masks": amodal[:, None].astype(np.float32), "visible_masks": visible[:, None].astype(np.float32),
        })
    return outputs


def noisy_outputs(store: PreparedStore, seed: int = 1) -> list[dict]:
    """Jittered ground truth with random scores, some misses and some false positives: AP far from 0 and 100."""
    rng = np.random.default_rng(seed)
    outputs = []
    for i in range(len(store)):
        inst = store.instances(i)
        h, w = inst.amodal.shape[1:]
        amodal, visible, boxes, labels = [], [], [], []
        for k in range(len(inst)):
            if rng.random() < 0.15:
                continue  # a miss
            dx = int(rng.integers(0, 4))
            amodal.append(_shift(inst.amodal[k], dx))
            visible.append(_shift(inst.visible[k], dx))
            boxes.append(inst.amodal_box[k] + [dx, 0, dx, 0])
            labels.append(int(inst.category[k]) if rng.random() > 0.1 else int(rng.choice(CATEGORIES)))
        for _ in range(int(rng.integers(0, 3))):  # false positives
            x0, y0 = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 8))
            mask = np.zeros((h, w), bool)
            mask[y0:y0 + 8, x0:x0 + 8] = True
            amodal.append(mask)
            visible.append(mask & (rng.random((h, w)) < 0.7))
            boxes.append(np.array([x0, y0, x0 + 8, y0 + 8], np.float32))
            labels.append(int(rng.choice(CATEGORIES)))
        n = len(labels)
        outputs.append({
            "image_id": int(store.image_id[i]),
            "boxes": np.array(boxes, np.float32).reshape(n, 4), "labels": np.array(labels, np.int64),
            "scores": rng.random(n).astype(np.float32),
            # Soft probabilities: the 0.5 threshold must give back the masks.
            "amodal_masks": np.array(amodal, np.float32).reshape(n, h, w) * 0.4 + 0.3,
            "visible_masks": np.array(visible, np.float32).reshape(n, h, w) * 0.4 + 0.3,
        })
    return outputs[::-1]  # matched by image_id, not by position


def test_ground_truth_as_predictions_scores_100(split, tmp_path: Path) -> None:
    store, _, _ = split
    out = tmp_path / "eval"
    metrics = evaluate_predictions(store, perfect_outputs(store), out, samples=2)
    for kind in ("amodal", "visible"):
        for name in ("AP", "AP50", "AP75", "AR10", "AR100"):
            assert metrics[kind][name] == pytest.approx(100.0), (kind, name)
        assert metrics[kind]["AR1"] < 100.0  # images have several objects: one detection cannot recall all
        assert all(v == pytest.approx(100.0) for v in metrics["per_class"][kind].values())
        for bucket in OCCLUSION_BUCKETS:
            assert metrics["occlusion"][kind][bucket]["AP"] == pytest.approx(100.0), (kind, bucket)
    counts = metrics["counts"]
    assert counts["gt_instances"] == int(store.image_ptr[-1]) == counts["detections"]
    assert sum(counts["gt_by_occlusion"].values()) == counts["gt_instances"]
    assert min(counts["gt_by_occlusion"].values()) > 0  # the fixture has every occlusion level
    # Every bucket and column is defined next to the numbers.
    assert {c[0] for c in COLUMNS} | {f"occlusion.{b}" for b in OCCLUSION_BUCKETS} <= set(metrics["definitions"])
    # metrics.json: numbers only (what DVC compares); details.json the rest; together, the whole
    registered = json.loads((out / "metrics.json").read_text())
    assert full_metrics(out) == metrics
    assert set(registered) == {"amodal", "visible", "per_class", "occlusion"} and set(registered["per_class"]) == {"amodal"}
    assert registered["occlusion"]["amodal"]["heavy"] == {"AP": metrics["occlusion"]["amodal"]["heavy"]["AP"]}
    assert "definitions" in json.loads((out / "details.json").read_text())
    curve = json.loads((out / "plots" / "pr_amodal.json").read_text())
    assert len(curve) == 101 and all(row["precision_iou50"] == 1.0 and row["precision_iou75"] == 1.0 for row in curve)
    samples = sorted((out / "samples").glob("*.png"))
    assert len(samples) == 2
    assert Image.open(samples[0]).size[0] == 2 * WIDTH


def test_shifted_masks_score_lower(split, tmp_path: Path) -> None:
    store, _, _ = split
    ap = {}
    for shift in (1, 4):
        reports = tmp_path / "reports" if shift == 4 else None
        metrics = evaluate_predictions(store, perfect_outputs(store, shift), tmp_path / f"eval{shift}", samples=0,
                                       reports_dir=reports)
        ap[shift] = (metrics["amodal"]["AP"], metrics["visible"]["AP"])
    # With reports_dir, metrics and curves live apart from the predictions (DVC: no metrics inside outs).
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [".daisnet-output", "details.json", "metrics.json", "plots"]
    assert sorted(p.name for p in (tmp_path / "eval4").iterdir()) == [".daisnet-output", "predictions_amodal.json",
                                                                      "predictions_visible.json", "samples"]
    assert json.loads((tmp_path / "reports" / "metrics.json").read_text())["amodal"]["AP"] == ap[4][0]
    assert 0 < ap[4][0] < ap[1][0] < 100.0
    assert 0 < ap[4][1] < ap[1][1] < 100.0


def test_prediction_for_an_image_not_in_the_split_is_refused(split, tmp_path: Path) -> None:
    store, _, _ = split
    outputs = perfect_outputs(store)
    outputs[2]["image_id"] = 99999
    with pytest.raises(InputError, match="image_id 99999 is not an image of the split"):
        evaluate_predictions(store, outputs, tmp_path / "eval")
    assert not (tmp_path / "eval").exists()  # nothing half-written


def test_missing_duplicate_and_malformed_outputs_are_refused(split, tmp_path: Path) -> None:
    store, _, _ = split
    with pytest.raises(InputError, match="no prediction for 1 of 8 images"):
        evaluate_predictions(store, perfect_outputs(store)[:-1], tmp_path / "eval")
    twice = perfect_outputs(store)
    twice[1]["image_id"] = int(store.image_id[0])
    twice[0]["image_id"] = int(store.image_id[0])
    with pytest.raises(InputError, match="second prediction"):
        evaluate_predictions(store, twice, tmp_path / "eval")
    bad = perfect_outputs(store)
    bad[3]["amodal_masks"] = bad[3]["amodal_masks"][:, :, :-1]
    with pytest.raises(InputError, match=r"predictions for image 121: amodal_masks has shape"):
        evaluate_predictions(store, bad, tmp_path / "eval")
    bad = perfect_outputs(store)
    bad[0]["labels"] = bad[0]["labels"] * 0 + 42
    with pytest.raises(InputError, match=r"labels \[42\] are not categories"):
        evaluate_predictions(store, bad, tmp_path / "eval")


def _results_file(tmp_path: Path, records: list) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(records))
    return path


def test_results_file_naming_an_unknown_image_is_refused(split, tmp_path: Path) -> None:
    store, _, _ = split
    gt = ground_truth(store, "amodal")
    record = {"image_id": 99999, "category_id": 4, "score": 0.9,
              "segmentation": encode_mask(np.ones((HEIGHT, WIDTH), bool))}
    path = _results_file(tmp_path, [record])
    with pytest.raises(InputError) as info:
        load_results(path, gt)
    assert info.value.message() == f"{path}: record 0: image_id 99999 is not an image of the split"


@pytest.mark.parametrize("change, problem", [
    ({"score": None}, "score None is not a finite number"),
    ({"category_id": 42}, "category_id 42 is not a category"),
    ({"image_id": "100"}, "image_id '100' is not an integer"),
    ({"segmentation": [[1, 2, 3, 4, 5, 6]]}, "segmentation must be a compressed RLE"),
    ({"segmentation": {"size": [HEIGHT, WIDTH + 1], "counts": "0"}}, "segmentation size"),
    ({"segmentation": {"size": [HEIGHT, WIDTH], "counts": "PPYo1"}}, "segmentation counts do not describe a 48 x 64 mask"),
    ({"occlusion": 1.5}, "occlusion 1.5 is not a number in [0, 1]"),
])
def test_malformed_result_records_are_refused(split, tmp_path: Path, change: dict, problem: str) -> None:
    store, _, _ = split
    gt = ground_truth(store, "amodal")
    good = {"image_id": int(store.image_id[1]), "category_id": 4, "score": 0.9,
            "segmentation": encode_mask(np.ones((HEIGHT, WIDTH), bool))}
    path = _results_file(tmp_path, [good, {**good, **change}])
    with pytest.raises(InputError, match="record 1: " + problem.replace("[", r"\[").replace("]", r"\]")):
        load_results(path, gt)
    assert len(load_results(_results_file(tmp_path, [good]), gt)) == 1


def _pycocotools_stats(gt_file: Path, results_file: Path) -> np.ndarray:
    """COCOeval exactly as its README runs it, on files."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_file))
        coco_dt = coco_gt.loadRes(str(results_file))
        evaluator = COCOeval(coco_gt, coco_dt, "segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats * 100.0


def test_our_numbers_equal_an_independent_cocoeval(split, tmp_path: Path) -> None:
    store, annotations, payload = split
    out = tmp_path / "eval"
    metrics = evaluate_predictions(store, noisy_outputs(store), out, samples=0)
    assert 20.0 < metrics["amodal"]["AP"] < 90.0  # a non-trivial case
    # Amodal: the ground truth is the original KINS-2019 annotation file (polygons), not our conversion.
    stats = _pycocotools_stats(annotations, out / "predictions_amodal.json")
    ours = [metrics["amodal"].get(name, -100.0) for name, *_ in COLUMNS]  # -1 x 100: pycocotools' "no GT"
    assert ours == pytest.approx(stats[:9].tolist(), abs=1e-9)  # stats[9:]: ARs, ARm, ARl
    # Visible: the KINS visible masks (inmodal_seg) as the segmentation of the same file.
    visible = {**payload, "annotations": [{**a, "segmentation": a["inmodal_seg"],
                                          "area": float(mask_utils.area(a["inmodal_seg"]))}
                                         for a in payload["annotations"]]}
    (tmp_path / "visible_gt.json").write_text(json.dumps(visible))
    stats = _pycocotools_stats(tmp_path / "visible_gt.json", out / "predictions_visible.json")
    ours = [metrics["visible"].get(name, -100.0) for name, *_ in COLUMNS]
    assert ours == pytest.approx(stats[:9].tolist(), abs=1e-9)  # stats[9:]: ARs, ARm, ARl
    # The files are valid results by our own check too.
    assert len(load_results(out / "predictions_amodal.json", ground_truth(store, "amodal"))) == metrics["counts"]["detections"]


def _gt(occlusions: list[float]) -> dict:
    """Ground truth of one 40 x 40 image: object k is a 6 x 6 square on row 4, column 8k."""
    anns = []
    for k, occ in enumerate(occlusions):
        mask = np.zeros((40, 40), bool)
        mask[4:10, 8 * k:8 * k + 6] = True
        anns.append({"id": k + 1, "image_id": 1, "category_id": 4, "segmentation": encode_mask(mask),
                     "area": 36.0, "bbox": [8 * k, 4, 6, 6], "iscrowd": 0, "occlusion": occ})
    return {"images": [{"id": 1, "height": 40, "width": 40}], "annotations": anns,
            "categories": [{"id": 4, "name": "car"}]}


def _det(gt: dict, k: int, score: float, occlusion: float) -> dict:
    return {**{key: gt["annotations"][k][key] for key in ("image_id", "category_id", "segmentation")},
            "score": score, "occlusion": occlusion}


def _false_positive(score: float, occlusion: float) -> dict:
    mask = np.zeros((40, 40), bool)
    mask[30:36, 30:36] = True
    return {"image_id": 1, "category_id": 4, "segmentation": encode_mask(mask), "score": score, "occlusion": occlusion}


def test_occlusion_buckets_ignore_other_levels_like_coco_area_buckets() -> None:
    gt = _gt([0.0, 0.3, 0.7])  # one object per level
    # Only the partly occluded object is found: it is perfect in its bucket, the others have AP 0.
    found = evaluate_segm(gt, [_det(gt, 1, 0.9, 0.3)])["occlusion"]
    assert [found[b]["AP"] for b in ("none", "partial", "heavy")] == pytest.approx([0.0, 100.0, 0.0])
    # A false positive ranked first counts only in the bucket of its predicted occlusion.
    results = [_det(gt, k, 0.5, occ) for k, occ in enumerate((0.0, 0.3, 0.7))] + [_false_positive(0.9, 0.8)]
    occ = evaluate_segm(gt, results)["occlusion"]
    assert occ["none"]["AP"] == pytest.approx(100.0) and occ["partial"]["AP"] == pytest.approx(100.0)
    assert occ["heavy"]["AP"] < 99.0
    assert (occ["heavy"]["gt"], occ["heavy"]["detections"]) == (1, 2)
    # A detection of an object of another level is ignored, not a false positive, even with a
    # predicted occlusion in the bucket; the bucket bounds are half-open: 0.5 is heavy.
    gt = _gt([0.0, 0.5])
    occ = evaluate_segm(gt, [_det(gt, 0, 0.9, 0.9), _det(gt, 1, 0.5, 0.5)])["occlusion"]
    assert occ["heavy"]["AP"] == pytest.approx(100.0) and occ["none"]["AP"] == pytest.approx(100.0)
    assert occ["partial"]["AP"] is None  # no ground truth at that level: no number, not a 0


def test_no_detections_at_all_score_zero(split, tmp_path: Path) -> None:
    store, _, _ = split
    empty = [{"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64), "scores": np.zeros(0, np.float32),
              "amodal_masks": np.zeros((0, 1, HEIGHT, WIDTH), np.float32),
              "visible_masks": np.zeros((0, 1, HEIGHT, WIDTH), np.float32)} for _ in range(len(store))]
    metrics = evaluate_predictions(store, empty, tmp_path / "eval", samples=1)
    assert metrics["amodal"]["AP"] == 0.0 and metrics["visible"]["AR100"] == 0.0
    assert metrics["counts"]["detections"] == 0
    assert json.loads((tmp_path / "eval" / "predictions_amodal.json").read_text()) == []


def test_cli_score_a_results_file(split, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from daisnet.pipeline.cli import app

    store, _, _ = split
    evaluate_predictions(store, perfect_outputs(store), tmp_path / "eval", samples=0)
    runner = CliRunner()
    result = runner.invoke(app, ["score", str(store.path), str(tmp_path / "eval" / "predictions_visible.json"),
                                 "--kind", "visible"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["summary"]["AP"] == pytest.approx(100.0)
    # Visible predictions scored as amodal masks: a perfect modal segmenter is not a perfect amodal one.
    result = runner.invoke(app, ["score", str(store.path), str(tmp_path / "eval" / "predictions_visible.json")])
    assert 0 < json.loads(result.output)["summary"]["AP"] < 90.0
    records = json.loads((tmp_path / "eval" / "predictions_amodal.json").read_text())
    records[3]["image_id"] = 5
    bad = _results_file(tmp_path, records)
    result = runner.invoke(app, ["score", str(store.path), str(bad)])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {bad}: record 3: image_id 5 is not an image of the split"


def test_mask_grid_keeps_solid_shapes_and_loses_rings_thinner_than_a_cell() -> None:
    from daisnet.evaluate.bounds import through_mask_grid

    yy, xx = np.mgrid[0:100, 0:100]
    solid = (np.abs(xx - 50) < 30) & (np.abs(yy - 50) < 30)
    radius = np.hypot(xx - 50, yy - 50)
    ring = (radius <= 30) & (radius >= 28)  # 2 px wide in a 60 px box: cells of ~2 px at 28 x 28
    boxes = np.array([[20, 20, 80, 80]] * 2, np.float32)
    out = through_mask_grid(np.stack([solid, ring]), boxes, 28)
    iou = [(m & o).sum() / (m | o).sum() for m, o in zip((solid, ring), out)]
    assert iou[0] > 0.95 and iou[1] < 0.6
    fine = through_mask_grid(ring[None], boxes[:1], 112)[0]
    assert (ring & fine).sum() / (ring | fine).sum() > iou[1] + 0.2


def test_cli_bounds_of_a_split(split) -> None:
    from typer.testing import CliRunner

    from daisnet.pipeline.cli import app

    store, _, _ = split
    result = CliRunner().invoke(app, ["bounds", str(store.path), "--resolution", "56"])
    assert result.exit_code == 0, result.output
    bounds = json.loads(result.output)
    assert 0 < bounds["visible_as_amodal"]["summary"]["AP"] < 90.0  # the fixture has occluded objects
    grid = bounds["mask_resolution"]
    assert grid["resolution"] == 56 and 50.0 < grid["summary"]["AP"] <= 100.0
    assert all(0.5 < v <= 1.0 for v in grid["mean_iou"].values())
