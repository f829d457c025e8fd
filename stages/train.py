"""Stage `train`: DAISnet on the prepared train split (+ depth and features) -> data/models/daisnet.pt.

With `model.shape_prior: on` the shape autoencoder and codebook (stages `shape_ae`, `codebook`)
are loaded into the model and saved with it.

Resumes from data/cache/train/last.pt when that run had the same params (a killed `dvc repro`
picks up where it stopped). Curves go to dvclive/train for `dvc plots show`. `train.processes`
local processes train with DistributedDataParallel (daisnet/train/launch.py); under `torchrun`
its process count is used instead.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import zarr

from daisnet.data.torch_dataset import AmodalDataset
from daisnet.hashing import sha256_file
from daisnet.shape.codebook import configure_shape_prior
from daisnet.train.launch import launch
from daisnet.pipeline.live import DvcLiveLogger
from daisnet.train.loop import train
from daisnet.train.params import configs_from_params, rgb_statistics
from stages.common import run_stage

PREPARED = "data/prepared/train.zarr"
FEATURES = "data/features/train.zarr"
DEPTH = "data/depth/train.zarr"
OUT = Path("data/models/daisnet.pt")
WORK = Path("data/cache/train")
LIVE = Path("dvclive/train")
SUMMARY = Path("reports/train.json")
# The 3D shape prior's stage outputs, used when model.shape_prior is on (dvc.yaml lists them as deps
# always: DVC deps cannot be conditional).
SHAPE_AE = "data/models/shape_ae.pt"
CODEBOOK = "data/models/codebook.npz"


@dataclass(frozen=True)
class TrainPaths:
    """Where a training run reads and writes (the stage's paths, or those given to `daisnet train`)."""

    prepared: str | Path
    features: str | Path | None
    depth: str | Path | None
    out: Path
    work: Path
    live: Path | None = None  # dvclive curves (`dvc plots show`); None: none
    summary: Path | None = None  # reports/train.json; None: none
    shape_ae: str | Path = SHAPE_AE
    codebook: str | Path = CODEBOOK


STAGE_PATHS = TrainPaths(PREPARED, FEATURES, DEPTH, OUT, WORK, LIVE, SUMMARY)


def feature_meta(path: str | Path | None) -> dict:
    """What `daisnet predict` needs to recompute the features of a new image like the train split's."""
    if path is None:
        return {}
    attrs = dict(zarr.open_group(path, mode="r").attrs)
    return {"features": {"params": attrs.get("params"), "log10_depth_mean": attrs.get("log10_depth_mean"),
                         "log10_depth_std": attrs.get("log10_depth_std")}}


def main(params: dict) -> None:
    run_training(params, STAGE_PATHS)


def run_training(params: dict, paths: TrainPaths) -> None:
    """Train with `train.processes` local processes (the stage, and `daisnet train`)."""
    _, train_config, _ = configs_from_params(params)  # bad params fail here, before any process starts
    launch(train_process, (params, paths), train_config.processes)


def train_process(params: dict, paths: TrainPaths) -> None:
    """One training process (of `train.processes`; rank 0 writes the model, curves and summary)."""
    model_config, train_config, augment = configs_from_params(params)
    shape_prior = None
    fingerprint_extra: dict = {}
    if model_config.shape_prior == "on":
        # Checked before anything runs: a codebook of another autoencoder or depth mode is refused.
        model_config = configure_shape_prior(model_config, paths.shape_ae, paths.codebook)
        shape_prior = (paths.shape_ae, paths.codebook)
        fingerprint_extra["codebook_sha256"] = sha256_file(paths.codebook)
    dataset = AmodalDataset(paths.prepared, model_config, paths.features, paths.depth, augment, seed=train_config.seed,
                            crop_width=train_config.crop_width)
    stats = None if model_config.weights == "imagenet" else rgb_statistics(dataset.store)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    resume = (paths.work / "last.pt").exists()
    if rank0 and paths.live is not None and not resume and paths.live.exists():
        shutil.rmtree(paths.live)
    logger = DvcLiveLogger(paths.live, resume=resume) if rank0 and paths.live is not None else None
    summary = train(model_config, train_config, dataset, paths.out, paths.work, logger, rgb_stats=stats,
                    fingerprint_extra={"train_images": len(dataset), **fingerprint_extra},
                    meta_extra=feature_meta(paths.features), shape_prior=shape_prior)
    if logger is not None:
        logger.close()
    if rank0 and paths.summary is not None:
        paths.summary.parent.mkdir(parents=True, exist_ok=True)
        paths.summary.write_text(json.dumps({"train_seconds": round(summary["seconds"], 1),
                                             "iterations": summary["iterations"],
                                             "resumed_from": summary["start_iteration"]}, indent=2))


if __name__ == "__main__":
    run_stage(main)
