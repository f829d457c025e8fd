"""No library warning reaches a user: `daisnet predict`, `evaluate` and `depth` (ground truth and BTS)
run on valid tiny data with every warning turned into an error (issue 32).

Each command runs in its own interpreter with PYTHONWARNINGS=error, as a user would start it, so a
warning raised anywhere (torch, numpy, zarr, pycocotools) fails the command and this test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from daisnet.data.torch_dataset import AmodalDataset
from daisnet.depth.train import train_bts
from daisnet.train.loop import train
from stages.train import feature_meta
from test_depth_train import TINY as TINY_BTS
from test_train import TINY_MODEL, TINY_TRAIN

ROOT = Path(__file__).resolve().parents[1]
MODEL = replace(TINY_MODEL, inputs=("rgb", "depth", "normal"))


def daisnet(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "error", "PYTHONPATH": str(ROOT)}
    code = "from daisnet.pipeline.cli import app; app()"
    return subprocess.run([sys.executable, "-W", "error", "-c", code, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def assert_quiet(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stderr and "Warning" not in result.stdout, result.stderr[-3000:]


@pytest.fixture(scope="module")
def models(tiny_features, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("quiet")
    dataset = AmodalDataset(tiny_features["train"], MODEL, tiny_features["features_train"], tiny_features["depth_train"])
    train(MODEL, replace(TINY_TRAIN, iterations=2), dataset, root / "model.pt", root / "work",
          meta_extra=feature_meta(str(tiny_features["features_train"])))
    train_bts(tiny_features["train"], tiny_features["val"], root / "bts.pt", TINY_BTS, log=lambda _: None)
    return {"daisnet": root / "model.pt", "bts": root / "bts.pt", "root": root}


def test_predict_is_quiet(models, tiny_features, tmp_path):
    images = sorted((tiny_features["raw"] / "val" / "image_2").glob("*.png"))[:2]
    assert_quiet(daisnet("predict", *map(str, images), "--model", str(models["daisnet"]), "--out", str(tmp_path / "p"),
                         "--depth-dir", str(tiny_features["raw"] / "val" / "depth"), "--score-threshold", "0"))


def test_predict_with_bts_depth_is_quiet(models, tiny_features, tmp_path):
    """BTS predicts the depth from the image itself: the path of daisnet/depth/infer.py."""
    image = sorted((tiny_features["raw"] / "val" / "image_2").glob("*.png"))[0]
    assert_quiet(daisnet("predict", str(image), "--model", str(models["daisnet"]), "--out", str(tmp_path / "p"),
                         "--depth-checkpoint", str(models["bts"])))


def test_evaluate_is_quiet(models, tiny_features, tmp_path):
    assert_quiet(daisnet("evaluate", str(models["daisnet"]), str(tiny_features["val"]), "--out", str(tmp_path / "e"),
                         "--features", str(tiny_features["features_val"]), "--depth", str(tiny_features["depth_val"]),
                         "--device", "cpu"))


@pytest.mark.parametrize("source", ["ground_truth", "bts", "degraded"])
def test_depth_is_quiet(models, tiny_features, tmp_path, source):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["depth"].update(source=source, checkpoint=str(models["bts"]))
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert_quiet(daisnet("depth", str(tiny_features["val"]), str(tmp_path / "d.zarr"), "--params", str(path)))
