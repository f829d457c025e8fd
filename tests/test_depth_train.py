"""train_depth and the depth stage's BTS path, on the tiny synthetic pipeline (seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from daisnet.depth.checkpoint import load_bts
from daisnet.hashing import sha256_file
from daisnet.depth.metrics import METRIC_NAMES
from daisnet.depth.store import write_depth_store
from daisnet.depth.train import DepthTrainConfig, open_split, train_bts
from daisnet.errors import InputError
from stages.depth import predictor
from daisnet.params import load_params
from stages.train_depth import depth_train_config

TINY = DepthTrainConfig(num_features=32, iterations=2, batch_size=2, lr=1e-3, warmup=1, input_scale=0.5,
                        eval_batch_size=2, log_every=1)


@pytest.fixture(scope="module")
def trained(tiny_pipeline: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bts")
    logs: list[str] = []
    metrics = train_bts(tiny_pipeline["train"], tiny_pipeline["val"], out / "bts.pt", TINY, log=logs.append)
    return {"metrics": metrics, "checkpoint": out / "bts.pt", "logs": logs,
            "train": tiny_pipeline["train"]}


def test_train_writes_checkpoint_and_metrics(trained: dict) -> None:
    on_disk = json.loads(json.dumps(trained["metrics"]))
    assert set(on_disk["val"]) == {*METRIC_NAMES, "normal_angle"} == set(on_disk["baseline_pixel_mean"])
    assert set(on_disk["train"]) == set(on_disk["val"]) and on_disk["train_images_scored"] == 6  # the tiny train split
    assert on_disk["train_val_abs_rel_ratio"] == pytest.approx(on_disk["val"]["abs_rel"] / on_disk["train"]["abs_rel"],
                                                               abs=1e-3)
    assert on_disk["iterations"] == 2 and on_disk["val_images"] == 3
    assert len(trained["logs"]) == 2 and "silog loss" in trained["logs"][0]
    model, info = load_bts(trained["checkpoint"])
    assert info["format"] == "daisnet-bts-1" and info["train"]["iterations"] == 2
    assert model.config.input_scale == 0.5 and model.config.num_features == 32
    # the focal reference is the training camera's focal at the training scale: factor 1 there
    focal = float(zarr.open_group(str(trained["train"]), mode="r")["focal"][0])
    assert model.config.focal_reference == pytest.approx(focal * 0.5, rel=1e-4)


def test_curve_scores_val_during_training_without_counting_it(tiny_pipeline: dict[str, Path], tmp_path: Path) -> None:
    from dataclasses import replace

    metrics = train_bts(tiny_pipeline["train"], tiny_pipeline["val"], tmp_path / "bts.pt",
                        replace(TINY, iterations=4, eval_every=2, train_eval_images=0), log=lambda _: None)
    assert [point["iteration"] for point in metrics["curve"]] == [2]  # the last iteration is the final score
    assert set(metrics["curve"][0]) == {"iteration", "train_seconds", "abs_rel", "delta1", "rmse", "normal_angle"}
    assert metrics["curve"][0]["train_seconds"] <= metrics["train_seconds"]
    assert metrics["train"] == {}  # no train images asked


def test_stage_splits_metrics_details_and_timings(tiny_pipeline: dict[str, Path], tmp_path: Path) -> None:
    """--metrics: the few numbers DVC compares; --details: the rest; --timings: wall times, nowhere else."""
    from typer.testing import CliRunner

    from daisnet.pipeline.cli import app

    params = tmp_path / "params.yaml"
    raw = load_params("params.yaml").model_dump()
    raw["depth"]["train"].update(num_features=32, iterations=2, batch_size=2, warmup=1)
    import yaml

    params.write_text(yaml.safe_dump(raw))
    files = {name: tmp_path / f"{name}.json" for name in ("metrics", "details", "timings")}
    result = CliRunner().invoke(app, ["train-depth", str(tiny_pipeline["train"]), str(tiny_pipeline["val"]),
                                      str(tmp_path / "bts.pt"), "--params", str(params),
                                      *[arg for name, path in files.items() for arg in (f"--{name}", str(path))]])
    assert result.exit_code == 0, result.output
    metrics, details, timings = (json.loads(files[name].read_text()) for name in ("metrics", "details", "timings"))
    assert {split: set(values) for split, values in metrics.items()} == {
        "val": {"abs_rel", "delta1", "normal_angle"}, "train": {"abs_rel", "delta1", "normal_angle"}}
    assert set(timings) == {"train_seconds", "eval_seconds"}
    assert not any(key.endswith("_seconds") for key in details) and "curve" not in details
    assert "rmse" in details["val"] and "abs_rel" not in details["val"] and "abs_rel" in details["baseline_pixel_mean"]


def test_depth_stage_bts_source(trained: dict, tiny_pipeline: dict[str, Path], tmp_path: Path) -> None:
    settings = load_params("params.yaml", {"depth.source": "bts", "depth.checkpoint": str(trained["checkpoint"]),
                                           "depth.batch_size": 2}).depth
    predict_fn, attrs = predictor(settings)
    source = settings.source
    assert attrs["checkpoint_sha256"] == sha256_file(trained["checkpoint"])
    out = tmp_path / "val.zarr"
    write_depth_store(tiny_pipeline["val"], out, predict_fn, source=source, attrs=attrs)
    group = zarr.open_group(str(out), mode="r")
    prepared = zarr.open_group(str(tiny_pipeline["val"]), mode="r")
    depth = group["depth"][:]
    assert depth.shape == prepared["depth_gt"].shape and depth.dtype == np.float32
    assert (depth > 0).all() and (depth <= 80.0).all()  # full frame: no zero band from the padding
    assert group.attrs["source"] == "bts" and group.attrs["checkpoint"] == str(trained["checkpoint"])
    assert group.attrs["bts"]["encoder"] == "resnet18_bts"


def test_depth_stage_refuses_wrong_encoder_for_checkpoint(trained: dict) -> None:
    settings = load_params("params.yaml", {"depth.source": "bts", "depth.checkpoint": str(trained["checkpoint"]),
                                           "depth.encoder": "resnet50_bts", "depth.device": "cpu"}).depth
    with pytest.raises(InputError, match="expected encoder resnet50_bts"):
        predictor(settings)


def test_store_without_ground_truth_cannot_train(tmp_path: Path) -> None:
    group = zarr.open_group(str(tmp_path / "kins.zarr"), mode="w")
    group.create_array("images", data=np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(InputError, match="no ground-truth depth"):
        open_split(tmp_path / "kins.zarr")


def test_train_config_comes_from_params_yaml() -> None:
    from daisnet.params import load_params

    config = depth_train_config(load_params("params.yaml", {"depth.train.iterations": 5}))
    assert config.iterations == 5 and config.input_scale == 0.5 and config.encoder == "resnet18_bts"
    assert config.upsample == "guided" and config.threads == 2


def test_cli_bad_checkpoint_is_one_line_and_exit_2(tiny_pipeline: dict[str, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from daisnet.pipeline.cli import app

    bad = tmp_path / "bts.pt"
    bad.write_bytes(b"PK\x03\x04 not really a checkpoint")
    result = CliRunner().invoke(app, ["depth", str(tiny_pipeline["val"]),
                                      str(tmp_path / "d.zarr"), "--source", "bts", "--checkpoint", str(bad)])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(bad) in lines[0] and "truncated or corrupted" in lines[0]
    assert not (tmp_path / "d.zarr").exists()


def test_depth_source_reaches_only_the_depth_stage() -> None:
    """`dvc exp run -S depth.source=...` re-runs depth and downstream, never train_depth or upstream."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((root / "params.yaml").read_text())

    def names(stage: dict) -> list[str]:
        body = stage.get("do", stage)
        return [p if isinstance(p, str) else next(iter(p)) for p in body.get("params", [])]

    for name, stage in stages.items():
        touches = [p for p in names(stage) if p in ("depth", "depth.source") or "depth.source".startswith(p + ".")]
        assert bool(touches) == (name == "depth"), name
    assert not any(p in ("depth", "depth.source", "depth.checkpoint") for p in names(stages["train_depth"]))
    # the default checkpoint is train_depth's output, so the DAG trains BTS before predicting with it
    assert params["depth"]["checkpoint"] in stages["train_depth"]["outs"]
    assert "${depth.checkpoint}" in stages["depth"]["do"]["deps"]
    assert "reports/depth.json" in [next(iter(m)) for m in stages["train_depth"]["metrics"]]


def test_store_with_no_valid_depth_is_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "empty_depth.zarr"
    group = zarr.open_group(str(store), mode="w")
    every = {"write_empty_chunks": True}  # all-zero chunks on disk, as the pipeline writes them
    group.create_array("images", data=np.zeros((4, 32, 64, 3), np.uint8), config=every)
    group.create_array("depth_gt", data=np.zeros((4, 32, 64), np.float32), config=every)
    group.create_array("image_size", data=np.tile(np.array([32, 64], np.int32), (4, 1)))
    group.create_array("focal", data=np.full(4, 100.0, np.float32))
    config = DepthTrainConfig(num_features=32, iterations=4, batch_size=2, augment=False)
    with pytest.raises(InputError, match="no valid depth pixel") as err:
        train_bts(store, store, tmp_path / "bts.pt", config, log=lambda _: None)
    assert str(store) in err.value.message() and not (tmp_path / "bts.pt").exists()


def test_fine_tuning_starts_from_an_official_checkpoint(tiny_pipeline: dict[str, Path], tmp_path: Path) -> None:
    """§3.3/§4.2: BTS pretrained elsewhere (an official-format file) is fine-tuned on our data; the
    model training starts from gives the checkpoint's own forward, bit for bit."""
    from dataclasses import replace

    import torch

    from daisnet.depth.bts import build_bts
    from daisnet.depth.train import initial_model

    torch.manual_seed(3)
    official = build_bts("resnet18_bts", num_features=32).eval()
    path = tmp_path / "bts_eigen_v2_pytorch_resnet18"
    torch.save({"global_step": np.int64(7), "model": {f"module.{k}": v for k, v in official.state_dict().items()},
                "best_eval_steps": np.zeros(9, dtype=np.int32)}, path)
    config = replace(TINY, init=str(path), iterations=1)
    model, init = initial_model(config, focal_reference=500.0)
    assert init == {"path": str(path), "sha256": sha256_file(path), "format": "official"}
    x, focal = torch.randn(1, 3, 64, 96), torch.tensor([721.5377])
    with torch.no_grad():
        assert torch.equal(model.eval()(x, focal), official(x, focal))
    train_bts(tiny_pipeline["train"], tiny_pipeline["val"], tmp_path / "tuned.pt", config)
    _, info = load_bts(tmp_path / "tuned.pt")
    assert info["init"]["sha256"] == sha256_file(path) and info["bts"]["focal_reference"] == official.config.focal_reference


def test_fine_tuning_refuses_a_checkpoint_of_another_width(tmp_path: Path) -> None:
    from dataclasses import replace

    import torch

    from daisnet.depth.bts import build_bts
    from daisnet.depth.train import initial_model

    torch.save({"model": build_bts("resnet18_bts", num_features=64).state_dict()}, tmp_path / "wide.pt")
    with pytest.raises(InputError, match=r"wide.pt: does not fit .*model \(32, 512, 3, 3\), file \(64, 512, 3, 3\)"):
        initial_model(replace(TINY, init=str(tmp_path / "wide.pt")), focal_reference=500.0)
