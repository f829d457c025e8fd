"""Per-record anomalies of real KINS (fully hidden objects, declared areas off the masks) are skipped
or flagged, counted with examples, and printed; the rest of the split is rasterized as without them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from daisnet.data.anomalies import Tally
from daisnet.data.kins import InstanceRecord
from daisnet.data.rasterize import RasterizeConfig, rasterize, report_path
from daisnet.pipeline.cli import app
from kins_data import annotations_2019, annotations_2020, write_dataset

IN_PROCESS = RasterizeConfig(workers=0, images_per_shard=2, instances_per_shard=3, batch_images=1, batch_instances=2)
NO_SKIPS = {"crowd": 0, "negative_visible_box": 0, "empty_amodal": 0, "empty_visible": 0, "empty_visible_box": 0}
CAR = [[2, 3, 9, 3, 9, 15, 2, 15]]  # a visible polygon of image 11 (20 x 30)


def _hidden(ann_id: int, **fields) -> dict:
    """A 2020 record of image 11: amodal car, visible part as `fields` say."""
    record = {"id": ann_id, "image_id": 11, "category_id": 4, "a_segm": [[2, 3, 20, 3, 20, 15, 2, 15]],
              "a_bbox": [2, 3, 18, 12], "a_area": 216, "i_segm": CAR, "i_bbox": [2, 3, 7, 12], "i_area": 84}
    return {**record, **fields}


def _cli(tmp_path: Path, payload: dict, name: str) -> tuple[str, dict, Path]:
    """Rasterize `payload` through the CLI (exit 0 asserted): (output, report, store)."""
    ann_path, images_dir, _ = write_dataset(tmp_path / name, payload)
    out = tmp_path / name / "prepared" / "train.zarr"
    result = CliRunner().invoke(app, ["rasterize", str(ann_path), str(out), "--images", str(images_dir), "--workers", "0",
                                      "--images-per-shard", "2", "--instances-per-shard", "3"])
    assert result.exit_code == 0, result.output
    return result.output, json.loads(report_path(out).read_text()), out


def _same_arrays(a: Path, b: Path) -> None:
    ga, gb = zarr.open_group(a, mode="r"), zarr.open_group(b, mode="r")
    assert sorted(ga.array_keys()) == sorted(gb.array_keys())
    for name in ga.array_keys():
        assert np.array_equal(ga[name][:], gb[name][:], equal_nan=ga[name].dtype.kind == "f"), name


def test_visible_anomalies_are_skipped_counted_and_printed(tmp_path: Path) -> None:
    clean = annotations_2020()
    payload = annotations_2020()
    payload["annotations"] += [
        _hidden(20, i_segm=[], i_bbox=[-1, -1, -1, -1], i_area=-1),  # how KINS marks a fully hidden object
        _hidden(21, i_bbox=[2, 3, -7, 12]),  # negative width, though the polygon has pixels
        _hidden(22, i_bbox=[2, 3, 0, 12]),  # zero width box around a non-empty mask
        _hidden(23, i_segm=[[]], i_bbox=[0, 0, 0, 0], i_area=0),  # only an empty polygon
        _hidden(24, i_segm=[[5, 5, 5, 9, 5, 12]], i_area=0),  # a polygon covering no pixel
    ]
    output, report, out = _cli(tmp_path, payload, "anomalies")
    _, _, clean_out = _cli(tmp_path, clean, "clean")
    # Annotation 6 of the set has no visible polygon: empty_visible with 23 and 24.
    assert report["skipped"] == {**NO_SKIPS, "negative_visible_box": 2, "empty_visible": 3, "empty_visible_box": 1}
    assert report["skipped_examples"] == {
        "negative_visible_box": [{"image_id": 11, "annotation_id": 20}, {"image_id": 11, "annotation_id": 21}],
        "empty_visible": [{"image_id": 11, "annotation_id": a} for a in (23, 24)]
                         + [{"image_id": 7, "annotation_id": 6}],
        "empty_visible_box": [{"image_id": 11, "annotation_id": 22}]}
    assert report["annotations"] == 10 and report["instances"] == 4
    assert set(report["skip_rules"]) == set(NO_SKIPS)
    _same_arrays(out, clean_out)  # the rest of the split exactly as without the anomalies
    notes = [line for line in output.splitlines() if line.startswith("note: ")]
    assert len(notes) == 3, output
    assert "skipped 2 annotation(s), negative_visible_box" in notes[0]
    assert "first: image 11 annotation 20, image 11 annotation 21" in notes[0]
    assert "skipped 1 annotation(s), empty_visible_box" in notes[2] and str(report_path(out)) in notes[2]
    assert "'negative_visible_box': 2" in output  # the CLI's summary line


def test_2019_visible_box_anomalies(tmp_path: Path) -> None:
    payload = annotations_2019()
    payload["annotations"][1]["inmodal_bbox"] = [-1, -1, -1, -1]
    payload["annotations"][2]["inmodal_bbox"] = [15, 4, 13, 0]  # the RLE has pixels
    _, report, _ = _cli(tmp_path, payload, "kins2019")
    assert report["skipped"] == {**NO_SKIPS, "negative_visible_box": 1, "empty_visible": 1, "empty_visible_box": 1}
    assert report["skipped_examples"]["empty_visible_box"] == [{"image_id": 7, "annotation_id": 5}]
    assert report["instances"] == 2


@pytest.mark.parametrize("declared, counted", [(277, False), (279, True), (161, False), (160, True)])
def test_area_tolerance_boundary(tmp_path: Path, declared: float, counted: bool) -> None:
    """Annotation 1: 216 px decoded, box 18 x 12: 10% of the larger + 18 + 12 + 4 px."""
    payload = annotations_2020()
    payload["annotations"][0]["a_area"] = declared
    report = rasterize(*write_dataset(tmp_path, payload)[:2], tmp_path / "p.zarr", config=IN_PROCESS)
    assert report["area_mismatch"]["a_area"] == int(counted)


def test_area_mismatch_counted_and_listed(tmp_path: Path) -> None:
    payload = annotations_2020()
    payload["annotations"][0]["a_area"] = 400  # 216 px decoded
    payload["annotations"][2]["i_area"] = 30  # 118 px decoded
    payload["annotations"][3]["i_area"] = 50  # a hidden object declared visible: its skip does not hide it
    output, report, out = _cli(tmp_path, payload, "areas")
    assert report["area_checked"] == {"area": 0, "a_area": 5, "i_area": 5}
    assert report["area_mismatch"] == {"area": 0, "a_area": 1, "i_area": 2}
    assert report["area_mismatch_examples"] == {
        "a_area": [{"image_id": 11, "annotation_id": 1, "declared": 400.0, "decoded": 216}],
        "i_area": [{"image_id": 7, "annotation_id": 5, "declared": 30.0, "decoded": 118},
                   {"image_id": 7, "annotation_id": 6, "declared": 50.0, "decoded": 0}]}
    assert report["instances"] == 4  # counted, not skipped
    assert "note: " in output and "a_area differs from the decoded amodal mask's pixel count in 1 of 5" in output
    assert "image 11 annotation 1 (400 declared, 216 decoded)" in output


def test_2019_area_is_the_amodal_area(tmp_path: Path) -> None:
    payload = annotations_2019()
    payload["annotations"][1]["area"] = 30  # the amodal mask has 108 px, the visible one 108 too
    ann, images, _ = write_dataset(tmp_path, payload)
    report = rasterize(ann, images, tmp_path / "p.zarr", config=IN_PROCESS)
    assert report["area_checked"]["area"] == 5 and report["area_mismatch"]["area"] == 1


def test_many_anomalies_list_only_the_first_examples(tmp_path: Path) -> None:
    payload = annotations_2020()
    payload["annotations"] += [_hidden(100 + k, i_bbox=[-1, -1, -1, -1]) for k in range(7)]
    ann, images, _ = write_dataset(tmp_path, payload)
    report = rasterize(ann, images, tmp_path / "p.zarr", config=IN_PROCESS)
    assert report["skipped"]["negative_visible_box"] == 7
    assert [e["annotation_id"] for e in report["skipped_examples"]["negative_visible_box"]] == [100, 101, 102, 103, 104]


def test_tallies_of_planning_tasks_merge_in_file_order() -> None:
    """The first examples of the split are the first of the earliest tasks, whatever each task found."""
    records = [_record(k) for k in range(9)]
    first, second, total = Tally(), Tally(), Tally()
    for record in records[:3]:
        first.add("empty_visible", record)
    for record in records[3:]:
        second.add("empty_visible", record)
    second.area_checked["a_area"] = 4
    total.merge(first)
    total.merge(second)
    assert total.counts["empty_visible"] == 9 and total.area_checked["a_area"] == 4
    assert [e["annotation_id"] for e in total.examples["empty_visible"]] == [0, 1, 2, 3, 4]


def _record(ann_id: int) -> InstanceRecord:
    return InstanceRecord(id=ann_id, image_id=1, category_id=4, amodal=[], visible=[],
                          amodal_bbox=(0, 0, 1, 1), visible_bbox=(0, 0, 1, 1))


def test_synthetic_data_has_no_anomaly(tiny_pipeline) -> None:
    """The synth stage's areas are the masks' pixel counts and its polygons trace them exactly."""
    for split in ("train", "val"):
        report = json.loads(report_path(tiny_pipeline[split]).read_text())
        assert report["skipped"] == NO_SKIPS, split
        assert report["area_mismatch"] == {"area": 0, "a_area": 0, "i_area": 0}, split
        checked = report["area_checked"]
        assert checked["a_area"] == checked["i_area"] == report["instances"] > 0 and checked["area"] == 0
        assert report["skipped_examples"] == {} and report["area_mismatch_examples"] == {}
