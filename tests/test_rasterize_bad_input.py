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
