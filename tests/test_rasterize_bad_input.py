"""Annotation anomalies that are skipped and counted, not fatal. The broken annotation sets that are
refused (one line, exit 2, nothing left behind) are cases of the corpus: tests/test_hostile_inputs.py."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from daisnet.pipeline.cli import app
from kins_data import annotations_2020, write_dataset


def test_skips_are_counted_not_fatal(tmp_path: Path) -> None:
    payload = annotations_2020()
    ann_path, images_dir, _ = write_dataset(tmp_path, payload)
    payload["annotations"][4]["iscrowd"] = 1
    # A degenerate (zero-area) amodal polygon: well formed, but covers no pixel.
    payload["annotations"][1]["a_segm"] = [[9, 1, 9, 10, 9, 19]]
    ann_path.write_text(json.dumps(payload))
    out = tmp_path / "prepared" / "train.zarr"
    result = CliRunner().invoke(app, ["rasterize", str(ann_path), str(out), "--images", str(images_dir), "--workers", "0"])
    assert result.exit_code == 0, result.output
    report = json.loads((out.parent / "train.report.json").read_text())
    assert report["skipped"] == {"crowd": 1, "empty_amodal": 1, "empty_visible": 1, "negative_visible_box": 0,
                                 "empty_visible_box": 0}
    assert report["instances"] == 2 and report["annotations"] == 5
    assert report["images_without_instances"] == 1  # image 3 lost its only (crowd) instance


def test_a_box_that_disagrees_with_its_mask_is_replaced_and_counted(tmp_path: Path) -> None:
    """A KINS box far from its polygon (issue 31, D) would train the detector on a wrong target: the
    mask's own box is stored instead, and the report counts and lists the record."""
    import numpy as np
    import zarr

    payload = annotations_2020()
    ann_path, images_dir, _ = write_dataset(tmp_path, payload)
    payload["annotations"][0]["a_bbox"] = [-50, -50, 10, 10]  # its polygon spans x 2-20, y 3-15
    payload["annotations"][4]["i_bbox"] = [0, 0, 1000, 1000]  # the whole image and more
    ann_path.write_text(json.dumps(payload))
    out = tmp_path / "prepared" / "train.zarr"
    result = CliRunner().invoke(app, ["rasterize", str(ann_path), str(out), "--images", str(images_dir), "--workers", "0"])
    assert result.exit_code == 0, result.output
    report = json.loads((out.parent / "train.report.json").read_text())
    assert report["kept_with_warning"]["amodal_box_mismatch"] >= 1
    assert report["kept_with_warning"]["visible_box_mismatch"] >= 1
    first = report["box_mismatch_examples"]["amodal_box_mismatch"][0]
    assert first["annotation_id"] == payload["annotations"][0]["id"] and first["declared"] == [-50, -50, -40, -40]
    assert "amodal box(es) disagree with their mask" in result.output
    store = zarr.open_group(out, mode="r")
    row = int(np.flatnonzero(store["annotation_id"][:] == payload["annotations"][0]["id"])[0])
    assert store["amodal_box"][row].tolist() == [2.0, 3.0, 20.0, 15.0]  # the mask's box
