"""Shared fixtures: tiny data made by the tests themselves (nothing is downloaded)."""

from __future__ import annotations

import os

# Deterministic, and polite to the 2-core machine the suite runs on.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory) -> dict[str, Path]:
    """A tiny synthetic dataset taken through synth and rasterize: {split: prepared store path}."""
    from daisnet.data.rasterize import RasterizeConfig, rasterize
    from daisnet.data.synth.dataset import SynthConfig, generate

    root = tmp_path_factory.mktemp("pipeline")
    raw = root / "raw"
    generate(replace(SynthConfig(), train_images=6, val_images=3, height=64, width=128, workers=1), raw)
    paths = {"root": root, "raw": raw}
    for split in ("train", "val"):
        out = root / "prepared" / f"{split}.zarr"
        rasterize(raw / "annotations" / f"{split}.json", raw / split / "image_2", out,
                  depth_dir=raw / split / "depth", config=RasterizeConfig(workers=0))
        paths[split] = out
    return paths


@pytest.fixture(scope="session")
def tiny_features(tiny_pipeline) -> dict[str, Path]:
    """Depth (ground truth) and features stores for the tiny dataset: {"depth_train", "features_val", ...}."""
    from daisnet.depth.store import write_depth_store
    from daisnet.features.store import FeatureParams, compute_features

    root = tiny_pipeline["root"]
    paths = dict(tiny_pipeline)
    for split in ("train", "val"):
        paths[f"depth_{split}"] = root / "depth" / f"{split}.zarr"
        write_depth_store(tiny_pipeline[split], paths[f"depth_{split}"], None, source="ground_truth")
        paths[f"features_{split}"] = root / "features" / f"{split}.zarr"
    compute_features({s: paths[f"depth_{s}"] for s in ("train", "val")},
                     {s: paths[f"features_{s}"] for s in ("train", "val")},
                     FeatureParams(), stats_from=paths["depth_train"], workers=0)
    return paths
