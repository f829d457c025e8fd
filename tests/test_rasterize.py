"""Rasterize: masks equal pycocotools' decoding bit for bit (both releases), layout, report, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from PIL import Image
from pycocotools import mask as mask_utils
from typer.testing import CliRunner

from daisnet.pipeline.cli import app
from daisnet.data import rle as rle_utils
from daisnet.data.kins import load_kins
from daisnet.data.prepared import PreparedStore
from daisnet.data.rasterize import RasterizeConfig, rasterize, report_path
from kins_data import annotations_2019, annotations_2020, coco_masks, write_dataset

IN_PROCESS = RasterizeConfig(workers=0, images_per_shard=2, instances_per_shard=3, batch_images=1, batch_instances=2)


@pytest.mark.parametrize("seed", range(60))
def test_rle_paint_equals_pycocotools_decode(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 40, 2))
    mask = rng.random((h, w)) < rng.uniform(0, 1)
    if seed % 4 == 1:  # one block touching the bottom / right border: runs that wrap columns
        mask = np.zeros((h, w), bool)
        mask[rng.integers(0, h):, rng.integers(0, w):] = True
    elif seed % 4 == 2:
        mask[:] = seed % 8 == 2  # all set, or empty
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    decoded = rle_utils.decode(rle)
    assert decoded.flags.c_contiguous
    assert np.array_equal(decoded, mask_utils.decode(rle).astype(bool))
    # The run lengths themselves: the alternating runs of the column-major mask.
    flat = mask.ravel(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(np.concatenate(([0], flat, [1 - flat[-1]])))) if flat.size else []
    runs = np.diff(np.concatenate(([0], changes)))
    assert rle_utils.decode_counts(rle["counts"]).tolist() == [int(r) for r in runs if True][:len(runs)]


@pytest.mark.parametrize("release", ["2019", "2020"])
def test_masks_equal_pycocotools_bit_for_bit(tmp_path: Path, release: str) -> None:
    payload = annotations_2019() if release == "2019" else annotations_2020()
    ann_path, images_dir, _ = write_dataset(tmp_path, payload)
    out = tmp_path / "prepared.zarr"
    report = rasterize(ann_path, images_dir, out, config=IN_PROCESS)
    assert report["release"] == release
    expected = coco_masks(payload, release)
    store = PreparedStore(out)
    assert len(store) == 3
    assert store.canvas == (24, 32)
    seen = set()
    for i, entry in enumerate(payload["images"]):
        h, w = entry["height"], entry["width"]
        assert np.array_equal(store.image(i), np.asarray(Image.open(images_dir / entry["file_name"]).convert("RGB")))
        inst = store.instances(i)
        assert inst.amodal.shape[1:] == (h, w)
        for k, ann_id in enumerate(inst.annotation_id.tolist()):
            amodal, visible = expected[ann_id]
            assert np.array_equal(inst.amodal[k], amodal), f"amodal of annotation {ann_id}"
            assert np.array_equal(inst.visible[k], visible), f"visible of annotation {ann_id}"
            assert inst.visible[k].any()
            seen.add(ann_id)
    # Everything off the true image is zero on the canvas.
    group = zarr.open_group(out, mode="r")
    full = group["amodal"][:]
    ptr = group["image_ptr"][:]
    for i, entry in enumerate(payload["images"]):
        block = full[ptr[i]:ptr[i + 1]]
        assert not block[:, entry["height"]:].any() and not block[:, :, entry["width"]:].any()
    # Empty visible masks are skipped (2020: annotation 6, 2019: annotation 10), the rest kept.
    skipped = {6} if release == "2020" else {10}
    assert seen == {a["id"] for a in payload["annotations"]} - skipped
    assert report["skipped"]["empty_visible"] == 1
    assert report["instances"] == len(seen)
    assert json.loads(report_path(out).read_text()) == report


def test_instance_fields_and_layout(tmp_path: Path) -> None:
    payload = annotations_2020()
    ann_path, images_dir, depth_dir = write_dataset(tmp_path, payload, depth=True)
    out = tmp_path / "p.zarr"
    rasterize(ann_path, images_dir, out, depth_dir=depth_dir, config=IN_PROCESS)
    group = zarr.open_group(out, mode="r")
    assert group["image_ptr"][:].tolist() == [0, 2, 3, 4]  # image 7 lost its hidden van
    assert group["image_id"][:].tolist() == [11, 7, 3]
    assert group["image_size"][:].tolist() == [[20, 30], [24, 28], [18, 32]]
    assert group["annotation_id"][:].tolist() == [1, 2, 5, 9]
    assert group["category"][:].tolist() == [4, 2, 6, 1]
    assert group["oco_id"][:].tolist() == [1, 1, 0, 0] and group["ico_id"][:].tolist() == [2, 1, 0, 0]
    np.testing.assert_allclose(group["amodal_box"][0], [2, 3, 20, 15])  # xywh -> xyxy
    np.testing.assert_allclose(group["visible_box"][3], [3, 2, 10, 9])
    amodal, visible = group["amodal"][:], group["visible"][:]
    expected = 1 - visible.sum((1, 2)) / amodal.sum((1, 2))
    np.testing.assert_allclose(group["occlusion"][:], np.clip(expected, 0, 1), rtol=1e-6)
    assert group["amodal"].dtype == bool and group["images"].dtype == np.uint8
    focal = group["focal"][:]
    assert focal[0] == 100.0 and np.isnan(focal[1:]).all()
    attrs = dict(group.attrs)
    assert attrs["release"] == "2020" and attrs["canvas"] == [24, 32]
    assert attrs["file_names"] == ["a.png", "sub/b.png", "c.png"]
    assert attrs["categories"]["4"] == "car"
    for name in group.array_keys():
        assert {"units", "description"} <= set(group[name].attrs), name
    # Depth: metres = PNG / 256, float32, zero outside the image.
    store = PreparedStore(out)
    raw = np.asarray(Image.open(depth_dir / "sub/b.png"))
    depth = store.depth(1)
    assert depth.dtype == np.float32 and np.array_equal(depth, raw.astype(np.float32) / 256)
    assert not group["depth_gt"][2][18:].any()
    assert np.array_equal(store.array("depth_gt", 1), depth)


def test_2019_without_occlusion_order(tmp_path: Path) -> None:
    ann_path, images_dir, _ = write_dataset(tmp_path, annotations_2019())
    rasterize(ann_path, images_dir, tmp_path / "p.zarr", config=IN_PROCESS)
    group = zarr.open_group(tmp_path / "p.zarr", mode="r")
    assert (group["oco_id"][:] == -1).all() and (group["ico_id"][:] == -1).all()
    assert load_kins(ann_path).release == "2019"


def test_sharding_keeps_files_few_and_flat(tmp_path: Path) -> None:
    ann_path, images_dir, depth_dir = write_dataset(tmp_path, annotations_2020(), depth=True)
    out = tmp_path / "p.zarr"
    rasterize(ann_path, images_dir, out, depth_dir=depth_dir,
              config=RasterizeConfig(workers=0, images_per_shard=128, instances_per_shard=1024))
    files = [p for p in out.rglob("*") if p.is_file()]
    # 1 group + 15 arrays' metadata + one file of data each.
    assert len(files) <= 31
    assert all(p.parent.parent == out for p in files if p.name != "zarr.json")  # no nested chunk folders


def test_existing_cluster_of_two_processes_writes_the_same_bytes(tmp_path: Path, monkeypatch) -> None:
    """DASK_SCHEDULER_ADDRESS wins over `workers`: the tasks run on that cluster's processes."""
    from distributed import LocalCluster

    ann_path, images_dir, depth_dir = write_dataset(tmp_path, annotations_2020(), depth=True)
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    rasterize(ann_path, images_dir, a, depth_dir=depth_dir, config=IN_PROCESS)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        rasterize(ann_path, images_dir, b, depth_dir=depth_dir, config=IN_PROCESS)  # workers=0
        from distributed import Client

        with Client(cluster.scheduler_address) as client:
            executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
        # 1 planning task + 2 image shards + 2 x 2 mask shards, spread over the cluster's two processes.
        assert sum(executed.values()) == 7 and len(executed) == 2
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        if rel.name == "zarr.json" and rel.parent == Path("."):
            continue  # group attrs hold the params, workers included
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_cli_rasterize_and_inspect(tmp_path: Path) -> None:
    ann_path, images_dir, depth_dir = write_dataset(tmp_path, annotations_2020(), depth=True)
    out = tmp_path / "p.zarr"
    runner = CliRunner()
    result = runner.invoke(app, ["rasterize", str(ann_path), str(out), "--images", str(images_dir), "--depth", str(depth_dir),
                                 "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "4 instances" in result.output
    png = tmp_path / "sheet.png"
    result = runner.invoke(app, ["inspect", str(out), "--index", "0", "--out", str(png), "--array", "depth_gt",
                                 "--array", f"{out}:images"])
    assert result.exit_code == 0, result.output
    assert "car, occlusion 0.3" in result.output and "pedestrian" in result.output
    sheet = np.asarray(Image.open(png))
    assert sheet.shape[1] == 30 and sheet.shape[0] > 3 * 20  # image + depth + images panels
    result = runner.invoke(app, ["inspect", str(out), "--index", "0", "--array", "nope"])
    assert result.exit_code == 2 and "no array 'nope'" in result.output


def test_prepared_store_reads_are_cropped_and_checked(tmp_path: Path) -> None:
    ann_path, images_dir, _ = write_dataset(tmp_path, annotations_2020())
    rasterize(ann_path, images_dir, tmp_path / "p.zarr", config=IN_PROCESS)
    store = PreparedStore(tmp_path / "p.zarr")
    assert store.depth(0) is None
    assert store.image(-1).shape == (18, 32, 3)
    inst = store.instances(2)
    assert len(inst) == 1 and inst.amodal.dtype == bool and inst.amodal_box.dtype == np.float32
    assert store.categories[1] == "cyclist"
    with pytest.raises(IndexError):
        store.image(3)


def test_existing_store_survives_a_failed_run(tmp_path: Path) -> None:
    payload = annotations_2020()
    ann_path, images_dir, _ = write_dataset(tmp_path, payload)
    out = tmp_path / "p.zarr"
    rasterize(ann_path, images_dir, out, config=IN_PROCESS)
    before = sorted(p.read_bytes() for p in out.rglob("*") if p.is_file())
    (images_dir / "c.png").write_bytes(b"not a png")  # fails in a task, after the store was started
    with pytest.raises(Exception, match="cannot read image"):
        rasterize(ann_path, images_dir, out, config=IN_PROCESS)
    assert sorted(p.read_bytes() for p in out.rglob("*") if p.is_file()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations.json", "image_2", "p.report.json", "p.zarr"]
