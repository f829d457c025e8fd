"""BTS at the default settings trains to a finite loss under small perturbations (slow: ~12 minutes).

Once, `train_depth` at params.yaml's settings went to NaN at iteration 29 on a machine whose input
bytes differed from ours in a few pixels (docs/depth.md). Training on the edge of stability is not
reproducible, so this test perturbs what a fresh machine could: the seed (0-4) and the images
(+-1 uint8 noise, a new draw per seed). Every run must end finite and reach val abs rel at most half
of the per-pixel-mean baseline's, on the default synthetic dataset rendered here. Seed 0 runs the
default schedule whole; the perturbed runs stop at 200 iterations: the divergence came in the first
50 steps after the warm-up, at peak lr, which a 200-iteration schedule keeps (and 5 full runs would
cost CI 25 minutes).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import zarr

from daisnet.data.rasterize import RasterizeConfig, rasterize
from daisnet.data.synth.dataset import generate
from daisnet.depth.train import train_bts
from daisnet.params import load_params
from stages.synth import synth_config
from stages.train_depth import depth_train_config

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The default synthetic dataset (params.yaml), rendered and rasterized: {split: prepared store}."""
    params = load_params(ROOT / "params.yaml")
    root = tmp_path_factory.mktemp("default_data")
    generate(synth_config(params), root / "raw")
    stores = {}
    for split in ("train", "val"):
        stores[split] = root / f"{split}.zarr"
        rasterize(root / "raw" / "annotations" / f"{split}.json", root / "raw" / split / "image_2", stores[split],
                  depth_dir=root / "raw" / split / "depth", config=RasterizeConfig(workers=0))
    return stores


def with_uint8_noise(store: Path, out: Path, seed: int) -> Path:
    """A copy of a prepared store whose images carry +-1 (or 0) uint8 noise, clipped to [0, 255]."""
    shutil.copytree(store, out)
    images = zarr.open_group(out, mode="r+")["images"]
    rng = np.random.default_rng(seed)
    for start in range(0, images.shape[0], 64):
        block = images[start : start + 64].astype(np.int16)
        block += rng.integers(-1, 2, size=block.shape, dtype=np.int16)
        images[start : start + 64] = np.clip(block, 0, 255).astype(np.uint8)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_default_bts_training_is_stable(default_data: dict[str, Path], tmp_path: Path, seed: int) -> None:
    config = replace(depth_train_config(load_params(ROOT / "params.yaml")), seed=seed, train_eval_images=0)
    if seed:
        config = replace(config, iterations=min(config.iterations, 200))
    # seed 0 on the exact images is the default run itself; the others also perturb the pixels
    train = default_data["train"] if seed == 0 else with_uint8_noise(default_data["train"], tmp_path / "noisy.zarr", seed)
    metrics = train_bts(train, default_data["val"], tmp_path / "bts.pt", config, log=lambda _: None)
    ours, baseline = metrics["val"]["abs_rel"], metrics["baseline_pixel_mean"]["abs_rel"]
    assert np.isfinite(ours)
    print(f"seed {seed}: val abs rel {ours:.4f}, per-pixel-mean baseline {baseline:.4f} ({ours / baseline:.3f}x)")
    assert ours <= 0.5 * baseline, f"seed {seed}: abs rel {ours} vs baseline {baseline}"
