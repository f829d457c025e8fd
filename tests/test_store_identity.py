"""Stores carry their identity, and damaged stores are refused (issue "Never lose a user's data", point 3).

Each case was found accepted silently or ending in a traceback: a deleted shard read as black images,
a features store of another dataset with the same image count, garbage bytes in a shard, a store on
another canvas. Now each is one line naming the store, exit 2.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import zarr
from torch.utils.data import DataLoader
from typer.testing import CliRunner

from daisnet.data.prepared import PreparedStore
from daisnet.data.rasterize import RasterizeConfig, rasterize
from daisnet.data.synth.dataset import SynthConfig, generate
from daisnet.data.torch_dataset import AmodalDataset, collate
from daisnet.depth.store import write_depth_store
from daisnet.errors import InputError
from daisnet.features.store import FeatureParams, compute_features
from daisnet.pipeline.cli import app
from daisnet.train.loop import train
from test_train import TINY_MODEL, TINY_TRAIN

DEPTH_MODEL = replace(TINY_MODEL, inputs=("rgb", "depth"))  # reads the features store


def refused(args: list[str], *words: str) -> str:
    """The command's one `error:` line (exit 2), checked to hold every word."""
    result = CliRunner().invoke(app, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def copy(path: Path, to: Path) -> Path:
    """A private copy of a shared store (the tests damage it), in a folder named after its kind."""
    return Path(shutil.copytree(path, to / path.parent.name / path.name))


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """val stores of two other datasets with the tiny val split's 3 images: another seed (the same file
    names, ids and sizes: only the scenes differ), and another canvas."""
    root = tmp_path_factory.mktemp("other")
    stores = {}
    for name, seed, width in (("seed", 1, 128), ("canvas", 0, 160)):
        raw = root / name / "raw"
        config = replace(SynthConfig(), train_images=1, val_images=3, height=64, width=width, workers=1, seed=seed)
        generate(config, raw)
        prepared, depth, features = (root / name / kind / "val.zarr" for kind in ("prepared", "depth", "features"))
        rasterize(raw / "annotations" / "val.json", raw / "val" / "image_2", prepared,
                  depth_dir=raw / "val" / "depth", config=RasterizeConfig(workers=0))
        write_depth_store(prepared, depth)
        compute_features({"val": depth}, {"val": features}, FeatureParams(), stats_from=depth, workers=0)
        stores[f"{name}_depth"], stores[f"{name}_features"] = depth, features
    return stores


@pytest.fixture(scope="module")
def model(tiny_features: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("model")
    dataset = AmodalDataset(tiny_features["train"], DEPTH_MODEL, tiny_features["features_train"])
    train(DEPTH_MODEL, replace(TINY_TRAIN, iterations=1), dataset, root / "model.pt", root / "work")
    return root / "model.pt"


def evaluate(model: Path, prepared: Path, features: Path, out: Path) -> list[str]:
    return ["evaluate", str(model), str(prepared), "--features", str(features), "--out", str(out), "--device", "cpu"]


def test_the_depth_and_features_stores_record_the_prepared_store(tiny_features: dict, tmp_path: Path) -> None:
    identity = PreparedStore(tiny_features["val"]).identity
    assert len(identity) == 64 and identity != PreparedStore(tiny_features["train"]).identity
    assert PreparedStore(copy(tiny_features["val"], tmp_path)).identity == identity  # not where it lies
    for kind in ("depth_val", "features_val"):
        assert zarr.open_group(tiny_features[kind], mode="r").attrs["prepared_identity"] == identity


def test_a_deleted_shard_is_refused_by_inspect_not_read_as_black(tiny_features: dict, tmp_path: Path) -> None:
    prepared = copy(tiny_features["val"], tmp_path)
    (prepared / "images" / "c.0.0.0.0").unlink()
    refused(["inspect", str(prepared)], str(prepared), "images/c.0.0.0.0", "chunk file missing")
    features = copy(tiny_features["features_val"], tmp_path)
    (features / "normals" / "c.0.0.0.0").unlink()
    refused(["inspect", str(tiny_features["val"]), "--array", f"{features}:normals"], str(features),
            "normals/c.0.0.0.0", "chunk file missing")


def test_a_deleted_small_array_chunk_is_refused(tiny_features: dict, tmp_path: Path) -> None:
    # image_ptr read as zeros would give every image no instances
    prepared = copy(tiny_features["val"], tmp_path)
    (prepared / "image_ptr" / "c.0").unlink()
    with pytest.raises(InputError, match=r"val.zarr: image_ptr/c.0: chunk file missing"):
        PreparedStore(prepared)


def test_a_deleted_features_shard_is_refused_by_the_dataset_and_evaluate(tiny_features: dict, model: Path,
                                                                          tmp_path: Path) -> None:
    features = copy(tiny_features["features_val"], tmp_path)
    (features / "regional" / "c.0.0.0.0").unlink()
    with pytest.raises(InputError, match="regional/c.0.0.0.0: chunk file missing") as error:
        AmodalDataset(tiny_features["val"], DEPTH_MODEL, features)
    assert str(features) in str(error.value)
    out = tmp_path / "eval"
    refused(evaluate(model, tiny_features["val"], features, out), str(features), "regional/c.0.0.0.0")
    assert not out.exists()


def test_features_of_another_dataset_with_as_many_images_are_refused(tiny_features: dict, other: dict, model: Path,
                                                                      tmp_path: Path) -> None:
    prepared, features = tiny_features["val"], other["seed_features"]
    out = tmp_path / "eval"
    line = refused(evaluate(model, prepared, features, out), str(features), f"made from another prepared store "
                   f"than {prepared}")
    assert "other image ids or annotations" in line  # file names and sizes are the same: it says so
    assert not out.exists()
    with pytest.raises(InputError, match="made from another prepared store"):  # train builds the same dataset
        AmodalDataset(prepared, DEPTH_MODEL, features)
    with pytest.raises(InputError, match="made from another prepared store"):  # and the depth store too
        AmodalDataset(prepared, replace(DEPTH_MODEL, occlusion_edge="fcn"), tiny_features["features_val"],
                      other["seed_depth"])
    refused(["inspect", str(prepared), "--array", f"{other['seed_depth']}:depth"], str(other["seed_depth"]),
            "made from another prepared store")


def test_a_store_on_another_canvas_is_refused(tiny_features: dict, other: dict) -> None:
    features = other["canvas_features"]
    with pytest.raises(InputError, match=r"array 'regional' is on another canvas \(per image \[4, 64, 160\]\)"
                                         r" than the prepared store .*\[64, 128\]") as error:
        AmodalDataset(tiny_features["val"], DEPTH_MODEL, features)
    assert str(features) in str(error.value)
    refused(["inspect", str(tiny_features["val"]), "--array", f"{other['canvas_depth']}:depth"],
            str(other["canvas_depth"]), "on another canvas")


def test_a_store_written_before_identities_is_refused_with_what_to_do(tiny_features: dict, tmp_path: Path) -> None:
    depth = copy(tiny_features["depth_val"], tmp_path)
    group = zarr.open_group(depth, mode="r+")
    del group.attrs["prepared_identity"]
    with pytest.raises(InputError, match=r"records no prepared store .*dvc repro"):
        AmodalDataset(tiny_features["val"], replace(TINY_MODEL, occlusion_edge="fcn"), depth=depth)
    with pytest.raises(InputError, match="records no prepared store"):
        compute_features({"val": depth}, {"val": tmp_path / "f" / "val.zarr"}, FeatureParams(), stats_from=depth,
                         workers=0)
    assert not (tmp_path / "f" / "val.zarr").exists()


def test_garbage_in_a_shard_is_one_line_naming_the_store(tiny_features: dict, tmp_path: Path) -> None:
    prepared = copy(tiny_features["val"], tmp_path)
    shard = prepared / "amodal" / "c.0.0.0"
    shard.write_bytes(np.random.default_rng(0).bytes(shard.stat().st_size))  # its index fails the checksum
    refused(["inspect", str(prepared)], str(prepared), "amodal: shard file c.0.0.0 is corrupt")


def damage_first_image(store: Path) -> None:
    """Overwrite the first image's compressed bytes, the shard index intact: found only when read."""
    shard = store / "images" / "c.0.0.0.0"
    data = bytearray(shard.read_bytes())
    data[:64] = b"\xab" * 64
    shard.write_bytes(bytes(data))


def test_garbage_in_a_chunk_is_one_line_naming_the_store_and_array(tiny_features: dict, tmp_path: Path) -> None:
    prepared = copy(tiny_features["val"], tmp_path)
    damage_first_image(prepared)
    store = PreparedStore(prepared)
    # each chunk's CRC32C finds it before the decompressor does (issue 31)
    with pytest.raises(InputError, match=r"val.zarr: images: cannot be read \(ShardError: .* fails its checksum"):
        store.image(0)
    refused(["inspect", str(prepared), "--out", str(tmp_path / "sheet.png")], str(prepared), "images: cannot be read")
    assert not (tmp_path / "sheet.png").exists()


def test_garbage_met_in_a_data_loader_worker_is_still_one_line(tiny_features: dict, tmp_path: Path) -> None:
    # torch re-raises a worker's error as InputError(message=<its traceback>): it used to be a TypeError
    prepared = copy(tiny_features["val"], tmp_path)
    damage_first_image(prepared)
    loader = DataLoader(AmodalDataset(prepared, TINY_MODEL), batch_size=1, num_workers=1, collate_fn=collate)
    with pytest.raises(InputError) as error:
        next(iter(loader))
    message = error.value.message()
    assert message.startswith(f"{prepared}: images: cannot be read (") and "\n" not in message
