"""`daisnet predict` and `daisnet evaluate` from a trained checkpoint, on real tiny stores."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from daisnet.pipeline.cli import app
from daisnet.data.torch_dataset import AmodalDataset
from daisnet.errors import InputError
from daisnet.predict import Predictor, predict_images
from daisnet.train.loop import train
from stages.train import feature_meta
from test_train import TINY_MODEL, TINY_TRAIN

DEPTH_MODEL = replace(TINY_MODEL, inputs=("rgb", "depth", "normal"), occlusion_edge="fcn", edge_head_width=8)


@pytest.fixture(scope="module")
def trained(tiny_features, tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    dataset = AmodalDataset(tiny_features["train"], DEPTH_MODEL, tiny_features["features_train"],
                            tiny_features["depth_train"])
    out = root / "model.pt"
    train(DEPTH_MODEL, replace(TINY_TRAIN, iterations=2), dataset, out, root / "work",
          meta_extra=feature_meta(str(tiny_features["features_train"])))
    return out


def test_predict_recomputes_the_features_of_the_store(trained, tiny_features):
    """The inputs built for a new image equal those the dataset reads from the stores."""
    raw = tiny_features["raw"]
    dataset = AmodalDataset(tiny_features["val"], DEPTH_MODEL, tiny_features["features_val"], tiny_features["depth_val"])
    predictor = Predictor(trained, depth_dir=raw / "val" / "depth")
    name = dataset.store.file_name(0)
    image_path = raw / "val" / "image_2" / name
    rgb = np.asarray(Image.open(image_path).convert("RGB"))
    ours = predictor.inputs(image_path, rgb)
    stored = dataset.channels(0)
    assert ours.shape == stored.shape
    # Stored features are float16 (docs/features.md): equal to that precision.
    assert np.allclose(ours, stored, atol=2e-3, rtol=2e-3)


def test_predict_writes_overlay_and_json(trained, tiny_features, tmp_path):
    raw = tiny_features["raw"]
    images = sorted((raw / "val" / "image_2").glob("*.png"))[:2]
    out = tmp_path / "pred"
    result = CliRunner().invoke(app, ["predict", *map(str, images), "--model", str(trained), "--out", str(out),
                                      "--depth-dir", str(raw / "val" / "depth"), "--score-threshold", "0"])
    assert result.exit_code == 0, result.output
    for image in images:
        payload = json.loads((out / f"{image.stem}.json").read_text())
        assert payload["height"] == 64 and payload["width"] == 128
        for det in payload["detections"]:
            assert 0 <= det["occlusion"] <= 1 and det["category"]
        assert Image.open(out / f"{image.stem}.png").size == (128, 64)


def test_predict_without_depth_is_refused(trained, tiny_features, tmp_path):
    image = next((tiny_features["raw"] / "val" / "image_2").glob("*.png"))
    with pytest.raises(InputError, match="need depth"):
        predict_images(trained, [image], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_evaluate_command_writes_metrics(trained, tiny_features, tmp_path):
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["evaluate", str(trained), str(tiny_features["val"]), "--out", str(out),
                                      "--features", str(tiny_features["features_val"]),
                                      "--depth", str(tiny_features["depth_val"]), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["amodal"]["AP"] <= 100
    assert (out / "predictions_amodal.json").exists()


def test_predict_refuses_depth_without_values(trained, tiny_features, tmp_path):
    """An all-zero depth PNG (no depth anywhere) is refused, as the depth stage refuses such depth (issue 31, D)."""
    image = sorted((tiny_features["raw"] / "val" / "image_2").glob("*.png"))[0]
    depth_dir = tmp_path / "depth"
    depth_dir.mkdir()
    Image.fromarray(np.zeros((64, 128), np.uint16)).save(depth_dir / image.name)
    result = CliRunner().invoke(app, ["predict", str(image), "--model", str(trained), "--out", str(tmp_path / "p"),
                                      "--depth-dir", str(depth_dir)])
    assert result.exit_code == 2, result.output
    assert "8192 of 8192 pixels have no depth" in result.output and str(depth_dir / image.name) in result.output
    assert not (tmp_path / "p").exists()


def test_predict_refuses_its_own_folder_once_a_user_file_is_added(trained, tiny_features, tmp_path):
    """Issue 31, B: a folder `predict` wrote, with the user's work added later, is not replaced."""
    image = sorted((tiny_features["raw"] / "val" / "image_2").glob("*.png"))[0]
    out = tmp_path / "pred"
    args = ["predict", str(image), "--model", str(trained), "--out", str(out),
            "--depth-dir", str(tiny_features["raw"] / "val" / "depth")]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert CliRunner().invoke(app, args).exit_code == 0  # its own folder: replaced
    (out / "mywork").mkdir()
    (out / "mywork" / "thesis.tex").write_text("chapter 1")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "holds mywork/thesis.tex that daisnet did not write" in result.output
    assert (out / "mywork" / "thesis.tex").read_text() == "chapter 1"
