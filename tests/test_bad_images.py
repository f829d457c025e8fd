"""Images and depth PNGs that used to be read wrongly without a word (a 16-bit image stored as all
white, an 8-bit depth PNG read as 0.996 m everywhere), and an empty split, are refused with one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from daisnet.pipeline.cli import app
from kins_data import annotations_2020, write_dataset


def rasterize(ann: Path, images: Path, out: Path, depth: Path | None = None) -> tuple[int, list[str]]:
    args = ["rasterize", str(ann), str(out), "--images", str(images), "--workers", "0"]
    if depth is not None:
        args += ["--depth", str(depth)]
    result = CliRunner().invoke(app, args)
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


def test_a_16_bit_image_is_refused_not_stored_white(tmp_path: Path) -> None:
    payload = annotations_2020()
    ann, images, _ = write_dataset(tmp_path, payload)
    first = images / payload["images"][0]["file_name"]
    height, width = payload["images"][0]["height"], payload["images"][0]["width"]
    Image.fromarray(np.full((height, width), 40000, np.uint16)).save(first)
    assert Image.open(first).mode.startswith("I")
    code, lines = rasterize(ann, images, tmp_path / "out.zarr")
    assert code == 2 and len(lines) == 1 and "16-bit single-channel image" in lines[0], lines
    assert not (tmp_path / "out.zarr").exists()


@pytest.mark.parametrize("bits", [8, 16])
def test_depth_png_must_be_16_bit(tmp_path: Path, bits: int) -> None:
    payload = annotations_2020()
    ann, images, depth = write_dataset(tmp_path, payload, depth=True)
    assert depth is not None
    if bits == 8:
        entry = payload["images"][0]
        Image.fromarray(np.full((entry["height"], entry["width"]), 200, np.uint8)).save(depth / entry["file_name"])
    code, lines = rasterize(ann, images, tmp_path / "out.zarr", depth)
    if bits == 16:
        assert code == 0, lines
    else:
        assert code == 2 and len(lines) == 1 and "8-bit PNG; depth must be 16-bit" in lines[0], lines
        assert not (tmp_path / "out.zarr").exists()


def test_an_empty_split_is_refused(tmp_path: Path) -> None:
    payload = annotations_2020()
    payload["images"], payload["annotations"] = [], []
    ann, images, _ = write_dataset(tmp_path, payload)
    images.mkdir(exist_ok=True)
    code, lines = rasterize(ann, images, tmp_path / "out.zarr")
    assert code == 2 and len(lines) == 1 and "no images" in lines[0], lines
    assert not (tmp_path / "out.zarr").exists()
