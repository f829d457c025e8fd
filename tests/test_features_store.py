"""The depth and features stores: train statistics, canvas padding, precision, errors, Dask, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from daisnet.pipeline.cli import app
from daisnet.depth.store import write_depth_store
from daisnet.errors import InputError
from daisnet.features.log_depth import Moments
from daisnet.features.normals import normal_map
from daisnet.features.regional import regional_maps
from daisnet.features.store import FeatureParams, compute_features

CANVAS = (24, 40)


def make_prepared(path: Path, depth: np.ndarray, sizes: list[tuple[int, int]], *, with_gt: bool = True) -> Path:
    """A tiny prepared store (the arrays the depth stage reads), padding filled with junk."""
    group = zarr.open_group(path, mode="w")
    depth = depth.astype(np.float32).copy()
    for image, (h, w) in zip(depth, sizes):
        image[h:, :] = -7.0  # junk outside the true size: must never reach statistics or features
        image[:, w:] = np.nan
    if with_gt:
        group.create_array("depth_gt", data=depth)
    # every chunk on disk, as the pipeline's writers do (zarr skips all-zero ones: a missing chunk is damage)
    group.create_array("images", data=np.zeros(depth.shape + (3,), np.uint8), config={"write_empty_chunks": True})
    group.create_array("image_size", data=np.asarray(sizes, np.int32))
    group.create_array("image_id", data=np.arange(len(sizes), dtype=np.int64) + 100)
    group.attrs["file_names"] = [f"{i:06d}.png" for i in range(len(sizes))]
    return path


def scene(rng: np.random.Generator, count: int, low: float, high: float) -> np.ndarray:
    """Planes plus boxes: depth with slopes and discontinuities."""
    rows, cols = np.mgrid[0 : CANVAS[0], 0 : CANVAS[1]]
    out = []
    for _ in range(count):
        d = rng.uniform(low, high) + rng.uniform(-0.2, 0.2) * cols + rng.uniform(0, 0.5) * rows
        d[5:12, 10:20] = rng.uniform(low, high)
        out.append(np.clip(d, 0.5, None))
    return np.stack(out)


@pytest.fixture()
def depth_stores(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    train_sizes = [(24, 40), (20, 33), (24, 31), (17, 40), (24, 40)]
    val_sizes = [(22, 38), (24, 40), (19, 27)]
    stores = {}
    for split, sizes, (low, high) in (("train", train_sizes, (2, 20)), ("val", val_sizes, (30, 60))):
        prepared = make_prepared(tmp_path / f"prepared_{split}.zarr", scene(rng, len(sizes), low, high), sizes)
        stores[split] = tmp_path / "depth" / f"{split}.zarr"
        summary = write_depth_store(prepared, stores[split], images_per_shard=2)
        assert summary["images"] == len(sizes)
    return stores


def features(depth_stores: dict[str, Path], out: Path, params: FeatureParams = FeatureParams(), **kw) -> Moments:
    return compute_features(depth_stores, {k: out / f"{k}.zarr" for k in depth_stores}, params,
                            stats_from=depth_stores["train"], workers=kw.pop("workers", 0), **kw)


def valid_log_depth(store: Path) -> np.ndarray:
    group = zarr.open_group(store, mode="r")
    return np.concatenate([np.log10(d[:h, :w]).ravel() for d, (h, w) in zip(group["depth"][:], group["image_size"][:])])


def test_depth_store_copies_ground_truth_and_zeroes_the_padding(depth_stores: dict[str, Path], tmp_path: Path) -> None:
    group = zarr.open_group(depth_stores["val"], mode="r")
    prepared = zarr.open_group(tmp_path / "prepared_val.zarr", mode="r")
    assert group.attrs["source"] == "ground_truth"
    assert group["depth"].dtype == np.float32 and group["depth"].attrs["units"] == "m"
    np.testing.assert_array_equal(group["image_size"][:], prepared["image_size"][:])
    np.testing.assert_array_equal(group["image_id"][:], [100, 101, 102])
    for d, gt, (h, w) in zip(group["depth"][:], prepared["depth_gt"][:], group["image_size"][:]):
        np.testing.assert_array_equal(d[:h, :w], gt[:h, :w])
        assert (d[h:] == 0).all() and (d[:, w:] == 0).all()


def test_depth_store_needs_ground_truth_or_a_predictor(tmp_path: Path) -> None:
    prepared = make_prepared(tmp_path / "p.zarr", np.ones((2, *CANVAS)), [CANVAS] * 2, with_gt=False)
    with pytest.raises(InputError, match="depth_gt"):
        write_depth_store(prepared, tmp_path / "d.zarr")
    # the slot for BTS: a function from canvas images to metric depth
    write_depth_store(prepared, tmp_path / "d.zarr", lambda images, sizes, focal: np.full(images.shape[:3], 5.0),
                      source="bts", attrs={"checkpoint": "x.pt"})
    group = zarr.open_group(tmp_path / "d.zarr", mode="r")
    assert group.attrs["source"] == "bts" and group.attrs["checkpoint"] == "x.pt"
    assert (group["depth"][:] == 5.0).all()


def test_bad_depth_names_the_image_and_leaves_no_store(tmp_path: Path) -> None:
    depth = np.full((3, *CANVAS), 4.0)
    depth[2, 3, 4] = 0.0
    prepared = make_prepared(tmp_path / "p.zarr", depth, [CANVAS] * 3)
    out = tmp_path / "depth" / "val.zarr"
    with pytest.raises(InputError, match=r"image 2 \(000002.png\): 1 pixels of depth are not finite and > 0"):
        write_depth_store(prepared, out, images_per_shard=2)
    assert not (tmp_path / "depth").exists()  # nothing, not even the folder made for it


def test_statistics_come_from_train_only_and_apply_unchanged_to_val(depth_stores: dict[str, Path], tmp_path: Path) -> None:
    stats = features(depth_stores, tmp_path / "features", FeatureParams(precision="float32"))
    train = valid_log_depth(depth_stores["train"])
    assert stats.count == train.size == 24 * 40 * 2 + 20 * 33 + 24 * 31 + 17 * 40  # padding excluded
    assert np.isclose(stats.mean, train.mean()) and np.isclose(stats.std, train.std())
    val_depth = zarr.open_group(depth_stores["val"], mode="r")
    for split in ("train", "val"):
        group = zarr.open_group(tmp_path / "features" / f"{split}.zarr", mode="r")
        assert group.attrs["log10_depth_mean"] == stats.mean and group.attrs["log10_depth_std"] == stats.std
        assert group.attrs["statistics_source"] == str(depth_stores["train"])
    group = zarr.open_group(tmp_path / "features" / "val.zarr", mode="r")
    for z, d, (h, w) in zip(group["log_depth"][:, 0], val_depth["depth"][:], val_depth["image_size"][:]):
        np.testing.assert_allclose(z[:h, :w], (np.log10(d[:h, :w]) - train.mean()) / train.std(), atol=1e-5)
    # val is far from train: normalized with its own statistics it would be centred on 0
    assert group["log_depth"][:].mean() > 1.0


def test_regional_maps_are_normalized_with_the_train_statistics(depth_stores: dict[str, Path], tmp_path: Path) -> None:
    """Eq. 5's maps span +-0.16; normalized per channel they have mean 0 and std 1 over the train split,
    like every other input channel, and val is normalized with the train split's statistics."""
    params = FeatureParams(precision="float32")
    assert params.normalize_regional
    features(depth_stores, tmp_path / "f", params)
    depth = zarr.open_group(depth_stores["train"], mode="r")
    train = zarr.open_group(tmp_path / "f" / "train.zarr", mode="r")
    sizes = depth["image_size"][:]
    valid = np.concatenate([train["regional"][i][:, :h, :w].reshape(4, -1) for i, (h, w) in enumerate(sizes)], axis=1)
    np.testing.assert_allclose(valid.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(valid.std(axis=1), 1.0, atol=1e-5)
    literal = np.concatenate([regional_maps(depth["depth"][i, :h, :w]).reshape(4, -1) for i, (h, w) in enumerate(sizes)],
                             axis=1)
    assert np.allclose(train.attrs["regional_mean"], literal.mean(axis=1), atol=1e-6)
    assert np.allclose(train.attrs["regional_std"], literal.std(axis=1), atol=1e-6) and max(literal.std(axis=1)) < 0.2
    val_depth = zarr.open_group(depth_stores["val"], mode="r")
    val = zarr.open_group(tmp_path / "f" / "val.zarr", mode="r")
    assert val.attrs["regional_mean"] == train.attrs["regional_mean"]
    h, w = val_depth["image_size"][0]
    expected = (regional_maps(val_depth["depth"][0, :h, :w]) - np.float32(train.attrs["regional_mean"])[:, None, None]) \
        / np.float32(train.attrs["regional_std"])[:, None, None]
    np.testing.assert_allclose(val["regional"][0][:, :h, :w], expected, atol=1e-5)
    assert not val["regional"][0][:, h:].any()


def test_features_are_the_formulas_on_the_true_image_and_zero_outside(depth_stores: dict[str, Path], tmp_path: Path) -> None:
    params = FeatureParams(step=2.0, offsets=3, floor="hard", kernel=5, dz=0.5, precision="float32",
                           normalize_regional=False)
    features(depth_stores, tmp_path / "f", params)
    depth = zarr.open_group(depth_stores["train"], mode="r")
    group = zarr.open_group(tmp_path / "f" / "train.zarr", mode="r")
    assert group["regional"].shape == (5, 3, *CANVAS) and group["normals"].shape == (5, 3, *CANVAS)
    assert group["log_depth"].shape == (5, 1, *CANVAS)
    assert group.attrs["params"]["kernel"] == 5 and group.attrs["depth_source"] == "ground_truth"
    for index, (h, w) in enumerate(depth["image_size"][:]):
        d = depth["depth"][index, :h, :w]
        np.testing.assert_allclose(group["regional"][index][:, :h, :w], regional_maps(d, 2.0, 3, "hard"), atol=1e-6)
        np.testing.assert_allclose(group["normals"][index][:, :h, :w], normal_map(d, 5, 0.5), atol=1e-6)
        for name in ("log_depth", "regional", "normals"):
            values = group[name][index]
            assert (values[:, h:] == 0).all() and (values[:, :, w:] == 0).all()


def test_float16_error_is_within_the_documented_bound(depth_stores: dict[str, Path], tmp_path: Path) -> None:
    for normalize in (True, False):
        features(depth_stores, tmp_path / f"f16{normalize}", FeatureParams(precision="float16", normalize_regional=normalize))
        features(depth_stores, tmp_path / f"f32{normalize}", FeatureParams(precision="float32", normalize_regional=normalize))
    # docs/features.md; the normalized maps span ~+-1.4 (std 1), the literal ones +-0.16
    for name, normalize, bound in (("log_depth", True, 2e-3), ("regional", True, 1e-3), ("regional", False, 1e-4),
                                   ("normals", True, 5e-4)):
        half = zarr.open_group(tmp_path / f"f16{normalize}" / "val.zarr", mode="r")[name]
        full = zarr.open_group(tmp_path / f"f32{normalize}" / "val.zarr", mode="r")[name]
        assert half.dtype == np.float16
        assert np.abs(half[:].astype(np.float32) - full[:]).max() < bound


def test_bad_depth_in_a_features_input_fails_cleanly(depth_stores: dict[str, Path], tmp_path: Path) -> None:
    group = zarr.open_group(depth_stores["val"], mode="r+")
    group["depth"][1, 2, 3] = np.nan
    with pytest.raises(InputError, match=r"val.zarr: image 1 \(000001.png\)"):
        features(depth_stores, tmp_path / "f")
    assert not (tmp_path / "f" / "val.zarr").exists()


def test_dask_cluster_writes_the_same_bytes_as_in_process(depth_stores: dict[str, Path], tmp_path: Path) -> None:
    features(depth_stores, tmp_path / "serial")
    features(depth_stores, tmp_path / "dask", workers=2)
    for split in ("train", "val"):
        serial = tmp_path / "serial" / f"{split}.zarr"
        for shard in sorted(p for p in serial.rglob("c.*")):
            assert shard.read_bytes() == (tmp_path / "dask" / f"{split}.zarr" / shard.relative_to(serial)).read_bytes()


def test_params_are_validated() -> None:
    from daisnet.params import load_params
    from stages.features import feature_params

    assert feature_params(load_params("params.yaml").features) == FeatureParams()
    with pytest.raises(InputError, match="features.normals.kernel"):
        FeatureParams(kernel=4).validate()
    with pytest.raises(InputError, match="features.regional.floor"):
        FeatureParams(floor="round").validate()


def test_cli_features(depth_stores: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["features", str(depth_stores["train"]), str(depth_stores["val"]),
                                      "--out-dir", str(out), "--kernel", "3", "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "mean" in result.output
    group = zarr.open_group(out / "val.zarr", mode="r")
    assert group.attrs["params"]["kernel"] == 3 and group.attrs["statistics_source"] == str(depth_stores["train"])


def test_cli_bad_input_is_one_line_and_exit_2(depth_stores: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    for args, message in (
        (["features", str(depth_stores["train"]), "--kernel", "4", "--workers", "0", "--out-dir", str(tmp_path)],
         "params.yaml with the command line's features.normals.kernel: features.normals.kernel: must be odd"),
        (["features", str(tmp_path / "missing.zarr"), "--workers", "0", "--out-dir", str(tmp_path)], "store not found"),
        (["depth", str(tmp_path / "nope.zarr"), str(tmp_path / "d.zarr")], "store not found"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.output


def test_inspect_shows_depth_each_regional_map_and_the_normals(tiny_features: dict[str, Path], tmp_path: Path) -> None:
    features_val = tiny_features["features_val"]
    png = tmp_path / "panel.png"
    result = CliRunner().invoke(app, [
        "inspect", str(tiny_features["val"]), "--index", "0", "--out", str(png),
        "--array", f"{tiny_features['depth_val']}:depth",
        "--array", f"{features_val}:regional", "--array", f"{features_val}:normals",
    ])
    assert result.exit_code == 0, result.output
    from PIL import Image

    offsets = zarr.open_group(features_val, mode="r")["regional"].shape[1]
    h = int(zarr.open_group(features_val, mode="r")["image_size"][0, 0])
    with Image.open(png) as image:  # image, depth, Dm regional maps, normals: one panel each
        assert image.size[1] >= (3 + offsets) * h
