"""A corpus of broken annotation sets: each gets one clear line (file, record, problem), exit 2,
and no store (nor temporary) left behind."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from daisnet.pipeline.cli import app
from kins_data import annotations_2019, annotations_2020, write_dataset


def _set(index: int, key: str, value) -> Callable[[dict], None]:
    def edit(payload: dict) -> None:
        payload["annotations"][index][key] = value
    return edit


def _drop(index: int, key: str) -> Callable[[dict], None]:
    return lambda payload: payload["annotations"][index].pop(key)


def _image(index: int, key: str, value) -> Callable[[dict], None]:
    def edit(payload: dict) -> None:
        payload["images"][index][key] = value
    return edit


# (name, release, edit of the payload, expected record, expected words of the problem)
CASES = [
    ("missing top-level key", "2020", lambda p: p.pop("categories"), None, "missing top-level key 'categories'"),
    ("missing annotation key", "2020", _drop(2, "i_segm"), "annotation 5", "missing key 'i_segm'"),
    ("missing 2019 key", "2019", _drop(1, "inmodal_seg"), "annotation 2", "missing key 'inmodal_seg'"),
    ("missing image key", "2020", lambda p: p["images"][1].pop("height"), "image 7", "missing key 'height'"),
    ("unknown category", "2020", _set(1, "category_id", 42), "annotation 2", "unknown category_id 42"),
    ("2019 has no rider", "2019", _set(0, "category_id", 3), "annotation 1", "unknown category_id 3"),
    ("two points", "2020", _set(0, "a_segm", [[1, 1, 5, 5]]), "annotation 1", "has 2 points"),
    ("odd coordinates", "2020", _set(4, "i_segm", [[3, 2, 10, 5.5, 3]]), "annotation 9", "odd number of coordinates"),
    ("odd in 2nd polygon", "2020", _set(0, "i_segm", [[2, 3, 9, 3, 9, 15], [1, 2, 3, 4, 5, 6, 7]]), "annotation 1",
     "polygon 2 has an odd number"),
    ("far outside", "2020", _set(1, "a_segm", [[9, 1, 14, 1, 140, 19]]), "annotation 2", "far outside"),
    ("negative far outside", "2019", _set(3, "segmentation", [[3, 2, 16, -40, 3, 16]]), "annotation 9", "far outside"),
    ("not a number", "2020", _set(0, "a_segm", [[2, 3, "x", 3, 20, 15]]), "annotation 1", "not a finite number"),
    ("absolute file_name", "2020", _image(0, "file_name", "/etc/passwd"), "image 11", "is absolute"),
    ("dotdot file_name", "2020", _image(2, "file_name", "../c.png"), "image 3", "contains '..'"),
    ("windows absolute", "2020", _image(2, "file_name", "C:\\kins\\c.png"), "image 3", "is absolute"),
    ("duplicate annotation id", "2020", _set(3, "id", 1), "annotation 1", "duplicate annotation id"),
    ("duplicate image id", "2020", _image(2, "id", 7), "image 7", "duplicate image id"),
    ("missing image id", "2020", _set(4, "image_id", 99), "annotation 9", "image_id 99 is not in 'images'"),
    ("RLE size differs", "2019", lambda p: p["annotations"][0]["inmodal_seg"].update(size=[30, 20]), "annotation 1",
     "RLE size [30, 20] differs from the image size [20, 30]"),
    ("RLE counts too few", "2019", lambda p: p["annotations"][2]["inmodal_seg"]["counts"].pop(), "annotation 5",
     "uncompressed RLE counts"),
    ("RLE garbage string", "2019", lambda p: p["annotations"][1]["inmodal_seg"].update(counts="~~~"), "annotation 2",
     "not a valid compressed COCO RLE"),
    ("bad box", "2020", _set(0, "a_bbox", [1, 2, 3]), "annotation 1", "a_bbox must be 4 finite numbers"),
    # Anomalies of the visible part are skipped (tests/test_rasterize_anomalies.py); these are not:
    ("amodal box negative", "2020", _set(0, "a_bbox", [2, 3, -18, 12]), "annotation 1",
     "a_bbox has a negative width or height"),
    ("hidden, box not numbers", "2020", _set(3, "i_bbox", [-1, -1, "w", -1]), "annotation 6",
     "i_bbox must be 4 finite numbers"),
    ("hidden, unknown image", "2020", _set(3, "image_id", 99), "annotation 6", "image_id 99 is not in 'images'"),
    ("hidden, segm not a list", "2020", _set(3, "i_segm", "none"), "annotation 6", "i_segm: expected polygons"),
    ("empty beside a polygon", "2020", _set(0, "i_segm", [[], [2, 3, 9, 3, 9, 15]]), "annotation 1",
     "polygon 1 has 0 points"),
    ("area not a number", "2020", _set(0, "a_area", "216"), "annotation 1", "a_area must be a finite number"),
    ("2019 area null", "2019", _set(1, "area", None), "annotation 2", "area must be a finite number, found None"),
    ("no release keys", "2020", lambda p: [a.pop(k) for a in p["annotations"] for k in ("a_segm", "i_segm")],
     "annotation 1", "neither KINS-2020 keys"),
]


def _run(tmp_path: Path, payload: dict | None = None, raw: bytes | None = None,
         setup: Callable[[Path, Path], None] | None = None) -> tuple[int, str, Path]:
    # Images are written from the intact set of the same release; the broken JSON replaces it.
    release_2019 = payload is not None and "inmodal_seg" in json.dumps(payload)
    ann_path, images_dir, _ = write_dataset(tmp_path, annotations_2019() if release_2019 else annotations_2020())
    if payload is not None:
        ann_path.write_text(json.dumps(payload))
    if raw is not None:
        ann_path.write_bytes(raw)
    if setup is not None:
        setup(ann_path, images_dir)
    out = tmp_path / "prepared" / "train.zarr"
    result = CliRunner().invoke(app, ["rasterize", str(ann_path), str(out), "--images", str(images_dir), "--workers", "0"])
    return result.exit_code, result.output, out


def _assert_clean_failure(code: int, output: str, out: Path, record: str | None, problem: str) -> None:
    assert code == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    line = lines[0]
    assert line.startswith("error: ") and "annotations.json" in line, line
    if record is not None:
        assert f": {record}: " in line, line
    assert problem in line, line
    assert "Traceback" not in output
    # No store, no temporary sibling, no report.
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


@pytest.mark.parametrize("name, release, edit, record, problem", CASES, ids=[c[0] for c in CASES])
def test_broken_annotations(tmp_path: Path, name: str, release: str, edit, record, problem) -> None:
    payload = copy.deepcopy(annotations_2019() if release == "2019" else annotations_2020())
    edit(payload)
    code, output, out = _run(tmp_path, payload)
    _assert_clean_failure(code, output, out, record, problem)


def test_not_json(tmp_path: Path) -> None:
    code, output, out = _run(tmp_path, raw=b'{"images": [')
    _assert_clean_failure(code, output, out, None, "not valid JSON")


def test_not_an_object(tmp_path: Path) -> None:
    code, output, out = _run(tmp_path, raw=b"[1, 2]")
    _assert_clean_failure(code, output, out, None, "expected a JSON object")


def test_image_file_missing(tmp_path: Path) -> None:
    code, output, out = _run(tmp_path, setup=lambda ann, images: (images / "sub" / "b.png").unlink())
    _assert_clean_failure(code, output, out, "image 7", "sub/b.png not found")


def test_image_file_unreadable(tmp_path: Path) -> None:
    # Found at plan time (it exists) but fails in a worker task, after the store was created.
    code, output, out = _run(tmp_path, setup=lambda ann, images: (images / "c.png").write_bytes(b"\x89PNG broken"))
    _assert_clean_failure(code, output, out, "image 3", "cannot read image")


def test_image_size_differs_from_annotation(tmp_path: Path) -> None:
    payload = annotations_2020()
    payload["images"][0]["width"] = 31  # the PNG is 30 wide
    payload["annotations"][0]["a_segm"] = [[2, 3, 20, 3, 20, 15, 2, 15]]
    code, output, out = _run(tmp_path, payload)
    _assert_clean_failure(code, output, out, "image 11", "the annotation says 20 x 31")


def test_unreadable_image_in_a_worker_process(tmp_path: Path) -> None:
    """The same failure through real Dask worker processes: the message survives the trip."""
    ann_path, images_dir, _ = write_dataset(tmp_path, annotations_2020())
    (images_dir / "a.png").write_bytes(b"garbage")
    out = tmp_path / "prepared" / "train.zarr"
    result = CliRunner().invoke(app, ["rasterize", str(ann_path), str(out), "--images", str(images_dir), "--workers", "2",
                                      "--images-per-shard", "1"])
    _assert_clean_failure(result.exit_code, result.output, out, "image 11", "cannot read image")


def test_skips_are_counted_not_fatal(tmp_path: Path) -> None:
    payload = annotations_2020()
    payload["annotations"][4]["iscrowd"] = 1
    # A degenerate (zero-area) amodal polygon: well formed, but covers no pixel.
    payload["annotations"][1]["a_segm"] = [[9, 1, 9, 10, 9, 19]]
    code, output, out = _run(tmp_path, payload)
    assert code == 0, output
    report = json.loads((out.parent / "train.report.json").read_text())
    assert report["skipped"] == {"crowd": 1, "empty_amodal": 1, "empty_visible": 1, "negative_visible_box": 0,
                                 "empty_visible_box": 0}
    assert report["instances"] == 2 and report["annotations"] == 5
    assert report["images_without_instances"] == 1  # image 3 lost its only (crowd) instance
