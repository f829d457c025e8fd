"""KITTI depth ground truth in BTS's file-list format: the store BTS is pretrained on (§4.2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from PIL import Image
from typer.testing import CliRunner

from daisnet.data.kitti import write_kitti_store
from daisnet.depth.train import DepthTrainConfig, train_bts
from daisnet.errors import InputError
from daisnet.pipeline.cli import app

SIZES = [(64, 128), (62, 126), (64, 124)]  # KITTI's drives differ by a few pixels


def kitti_tree(root: Path) -> Path:
    """raw/<drive>/image_02/data/*.png, gt/<drive>/proj_depth/groundtruth/image_02/*.png, a file list."""
    rng = np.random.default_rng(0)
    lines = []
    for i, (h, w) in enumerate(SIZES):
        image = Path("2011_09_26/drive_0001_sync/image_02/data") / f"{i:010d}.png"
        depth = Path("drive_0001_sync/proj_depth/groundtruth/image_02") / f"{i:010d}.png"
        (root / "raw" / image).parent.mkdir(parents=True, exist_ok=True)
        (root / "gt" / depth).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / "raw" / image)
        sparse = np.where(rng.random((h, w)) < 0.3, rng.integers(256, 80 * 256, (h, w)), 0).astype(np.uint16)
        Image.fromarray(sparse).save(root / "gt" / depth)
        lines.append(f"{image} {depth} 721.5377")
    lines.append("2011_09_26/drive_0001_sync/image_02/data/0000000099.png None 721.5377")
    (root / "eigen_train_files_with_gt.txt").write_text("\n".join(lines) + "\n")
    return root / "eigen_train_files_with_gt.txt"


def test_kitti_file_list_becomes_a_store_bts_trains_on(tmp_path: Path) -> None:
    file_list = kitti_tree(tmp_path)
    out = tmp_path / "kitti.zarr"
    result = CliRunner().invoke(app, ["kitti", str(file_list), str(tmp_path / "raw"), str(tmp_path / "gt"), str(out)])
    assert result.exit_code == 0, result.output
    assert "3 images with ground truth (1 lines without), canvas 64 x 128" in result.output
    group = zarr.open_group(out, mode="r")
    second = np.asarray(Image.open(tmp_path / "gt" / "drive_0001_sync/proj_depth/groundtruth/image_02/0000000001.png"))
    depth = group["depth_gt"][1]
    assert np.array_equal(depth[:62, :126], second.astype(np.float32) / 256) and not depth[62:].any()
    assert group["image_size"][:].tolist() == [list(s) for s in SIZES] and group["focal"][0] == np.float32(721.5377)
    config = DepthTrainConfig(num_features=32, iterations=1, batch_size=2, warmup=1, input_scale=0.5, threads=1)
    metrics = train_bts(out, out, tmp_path / "bts.pt", config)
    assert np.isfinite(metrics["val"]["abs_rel"])


@pytest.mark.parametrize("line, words", [
    ("a.png b.png", "line 1: expected 'image depth focal', found 2 fields"),
    ("a.png b.png f", "line 1: focal 'f' is not a positive number"),
    ("a.png b.png 721.5", "line 1: image file not found"),
    ("x None 721.5", "no sample with ground-truth depth"),
])
def test_bad_file_lists_are_one_line(tmp_path: Path, line: str, words: str) -> None:
    (tmp_path / "list.txt").write_text(line + "\n")
    with pytest.raises(InputError, match=words) as info:
        write_kitti_store(tmp_path / "list.txt", tmp_path / "raw", tmp_path / "gt", tmp_path / "out.zarr")
    assert str(tmp_path / "list.txt") in info.value.message() and not (tmp_path / "out.zarr").exists()


def test_an_8_bit_depth_png_is_refused(tmp_path: Path) -> None:
    file_list = kitti_tree(tmp_path)
    first = tmp_path / "gt" / "drive_0001_sync/proj_depth/groundtruth/image_02/0000000000.png"
    Image.fromarray(np.full(SIZES[0], 9, np.uint8)).save(first)
    with pytest.raises(InputError, match="line 1: depth .* is an 8-bit PNG"):
        write_kitti_store(file_list, tmp_path / "raw", tmp_path / "gt", tmp_path / "out.zarr")
    assert not (tmp_path / "out.zarr").exists()
