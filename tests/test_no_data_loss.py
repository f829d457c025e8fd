"""No command destroys its own inputs or a user's folder (each case was found destroying data).

Every refusal: exit 2, one line on stderr naming the path, and every input byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from daisnet.atomic import atomic_output, remove_stale_temporaries
from daisnet.data.torch_dataset import AmodalDataset
from daisnet.model import checkpoint
from daisnet.pipeline.cli import app
from daisnet.train.loop import train
from test_train import TINY_MODEL, TINY_TRAIN


def snapshot(*paths: Path) -> dict[str, str]:
    """sha256 of every file under the given paths (files or folders)."""
    out = {}
    for root in paths:
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.is_file():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def refused(args: list[str], *protected: Path, words: str) -> None:
    before = snapshot(*protected)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], result.output
    assert snapshot(*protected) == before


@pytest.fixture
def raw(tiny_pipeline: dict, tmp_path: Path) -> Path:
    """A private copy of the tiny raw dataset (a failing check must not harm the shared one)."""
    return Path(shutil.copytree(tiny_pipeline["raw"], tmp_path / "raw"))


def test_rasterize_output_is_its_annotation_file(raw: Path) -> None:
    ann = raw / "annotations" / "val.json"
    refused(["rasterize", str(ann), str(ann), "--images", str(raw / "val" / "image_2")], raw, words="the output is the input")


def test_rasterize_output_contains_its_images(raw: Path) -> None:
    refused(["rasterize", str(raw / "annotations" / "val.json"), str(raw / "val"), "--images", str(raw / "val" / "image_2")],
            raw, words="the output contains the input")


def test_rasterize_output_inside_its_images(raw: Path) -> None:
    images = raw / "val" / "image_2"
    refused(["rasterize", str(raw / "annotations" / "val.json"), str(images / "out.zarr"), "--images", str(images)],
            raw, words="sits inside the input")


def test_depth_output_is_its_prepared_store(tiny_pipeline: dict, tmp_path: Path) -> None:
    store = Path(shutil.copytree(tiny_pipeline["val"], tmp_path / "val.zarr"))
    refused(["depth", str(store), str(store)], store, words="the output is the input")


def test_features_output_folder_is_the_depth_folder(tiny_features: dict, tmp_path: Path) -> None:
    depth = tmp_path / "depth"
    depth.mkdir()
    store = Path(shutil.copytree(tiny_features["depth_val"], depth / "val.zarr"))
    refused(["features", str(store), "--out-dir", str(depth)], depth, words="the output is the input")


@pytest.fixture(scope="module")
def model(tiny_pipeline: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("model")
    dataset = AmodalDataset(tiny_pipeline["train"], TINY_MODEL)
    train(TINY_MODEL, replace(TINY_TRAIN, iterations=1), dataset, root / "model.pt", root / "work")
    return root / "model.pt"


def test_predict_never_replaces_a_folder_it_did_not_write(model: Path, raw: Path, tmp_path: Path) -> None:
    images = raw / "val" / "image_2"
    image = next(images.glob("*.png"))
    # the folder of the input images itself, and a folder with a file of the user's
    refused(["predict", str(image), "--model", str(model), "--out", str(images)], raw, words="contains the input")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    refused(["predict", str(image), "--model", str(model), "--out", str(mine)], mine, words="did not write")
    # its own earlier output is replaced, as the help says
    out = tmp_path / "pred"
    for _ in range(2):
        result = CliRunner().invoke(app, ["predict", str(image), "--model", str(model), "--out", str(out)])
        assert result.exit_code == 0, result.output


def test_predict_refuses_two_images_with_one_name(model: Path, raw: Path, tmp_path: Path) -> None:
    a = next((raw / "val" / "image_2").glob("*.png"))
    other = tmp_path / "other"
    other.mkdir()
    b = Path(shutil.copy(a, other / a.name))
    refused(["predict", str(a), str(b), "--model", str(model), "--out", str(tmp_path / "out")], raw,
            words="would both write")
    assert not (tmp_path / "out").exists()


def test_evaluate_never_replaces_a_folder_it_did_not_write(model: Path, tiny_pipeline: dict, tmp_path: Path) -> None:
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "paper.tex").write_text("keep me")
    refused(["evaluate", str(model), str(tiny_pipeline["val"]), "--out", str(mine), "--device", "cpu"], mine,
            words="did not write")


def test_a_killed_writers_temporary_is_removed_by_the_next_run(tmp_path: Path) -> None:
    target = tmp_path / "out.zarr"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.zarr.{int(dead.stdout)}-abc.tmp"
    live = tmp_path / f".out.zarr.{os.getppid()}-def.tmp"  # a live process (our parent): another writer
    for folder in (stale, live):
        (folder / "out.zarr").mkdir(parents=True)
    with atomic_output(target) as tmp:
        tmp.write_text("done")
    assert target.read_text() == "done"
    assert not stale.exists() and live.exists()
    assert remove_stale_temporaries(target) == []


def test_a_failed_checkpoint_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    checkpoint.save(path, {"model": {"w": torch.ones(2)}})
    before = path.read_bytes()
    with pytest.raises(Exception):
        checkpoint.save(path, {"model": lambda: None})  # cannot be pickled: the write fails midway
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
