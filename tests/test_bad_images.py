"""A valid 16-bit depth PNG is read as metres x 256. The images and depth PNGs that used to be read
wrongly without a word (a 16-bit image stored as all white, an 8-bit depth PNG read as 0.996 m
everywhere) and an empty split are refused: cases of the corpus, tests/test_hostile_inputs.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from daisnet.data.prepared import PreparedStore
from daisnet.pipeline.cli import app
from kins_data import annotations_2020, write_dataset


def test_a_16_bit_depth_png_is_read_as_metres_times_256(tmp_path: Path) -> None:
    payload = annotations_2020()
    ann, images, depth = write_dataset(tmp_path, payload, depth=True)
    assert depth is not None
    entry = payload["images"][0]
    Image.fromarray(np.full((entry["height"], entry["width"]), 2560, np.uint16)).save(depth / entry["file_name"])
    out = tmp_path / "out.zarr"
    result = CliRunner().invoke(app, ["rasterize", str(ann), str(out), "--images", str(images), "--workers", "0",
                                      "--depth", str(depth)])
    assert result.exit_code == 0, result.output
    store = PreparedStore(out)
    index = [store.file_name(i) for i in range(len(store))].index(entry["file_name"])
    assert np.all(store.array("depth_gt", index)[:entry["height"], :entry["width"]] == 10.0)
