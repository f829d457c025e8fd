"""dvc.yaml: a change of `features.*` re-runs `features` and downstream, never the stages upstream."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def stage_params(stage: dict) -> list[str]:
    body = stage.get("do", stage)
    return [p if isinstance(p, str) else next(iter(p)) for p in body.get("params", [])]


def test_features_params_reach_only_the_features_stage_and_downstream() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert all(p == "features" or p.startswith("features.") for p in stage_params(stages["features"]))
    assert "features" in stage_params(stages["features"])
    for upstream in ("synth", "rasterize", "depth"):
        assert not any(p.startswith("features") for p in stage_params(stages[upstream])), upstream
    # features reads the depth stores and writes both splits' features (train statistics feed val)
    features = stages["features"]
    assert {"data/depth/train.zarr", "data/depth/val.zarr"} <= set(features["deps"])
    assert set(features["outs"]) == {"data/features/train.zarr", "data/features/val.zarr"}
    assert stages["depth"]["do"]["outs"] == ["data/depth/${item}.zarr"]
