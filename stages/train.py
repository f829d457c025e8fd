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


def feature_meta(path: str) -> dict:
    """What `daisnet predict` needs to recompute the features of a new image like the train split's."""
    attrs = dict(zarr.open_group(path, mode="r").attrs)
    return {"features": {"params": attrs.get("params"), "log10_depth_mean": attrs.get("log10_depth_mean"),
                         "log10_depth_std": attrs.get("log10_depth_std")}}


def main(params: dict) -> None:
    _, train_config, _ = configs_from_params(params)  # bad params fail here, before any process starts
    launch(train_process, (params,), train_config.processes)


def train_process(params: dict) -> None:
    """One training process (of `train.processes`; rank 0 writes the model, curves and summary)."""
    model_config, train_config, augment = configs_from_params(params)
    shape_prior = None
    fingerprint_extra: dict = {}
    if model_config.shape_prior == "on":
        # Checked before anything runs: a codebook of another autoencoder or depth mode is refused.
        model_config = configure_shape_prior(model_config, SHAPE_AE, CODEBOOK)
        shape_prior = (SHAPE_AE, CODEBOOK)
        fingerprint_extra["codebook_sha256"] = sha256_file(CODEBOOK)
    dataset = AmodalDataset(PREPARED, model_config, FEATURES, DEPTH, augment, seed=train_config.seed,
                            crop_width=train_config.crop_width)
    stats = None if model_config.weights == "imagenet" else rgb_statistics(dataset.store)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    resume = (WORK / "last.pt").exists()
    if rank0 and not resume and LIVE.exists():
        shutil.rmtree(LIVE)
    logger = DvcLiveLogger(LIVE, resume=resume) if rank0 else None
    summary = train(model_config, train_config, dataset, OUT, WORK, logger, rgb_stats=stats,
                    fingerprint_extra={"train_images": len(dataset), **fingerprint_extra},
                    meta_extra=feature_meta(FEATURES), shape_prior=shape_prior)
    if logger is not None:
        logger.close()
    if rank0:
        SUMMARY.parent.mkdir(exist_ok=True)
        SUMMARY.write_text(json.dumps({"train_seconds": round(summary["seconds"], 1),
                                       "iterations": summary["iterations"],
                                       "resumed_from": summary["start_iteration"]}, indent=2))


if __name__ == "__main__":
    run_stage(main)
