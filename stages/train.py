"""Stage `train`: DAISnet on the prepared train split (+ depth and features) -> data/models/daisnet.pt.

Resumes from data/cache/train/last.pt when that run had the same params (a killed `dvc repro`
picks up where it stopped). Curves go to dvclive/train for `dvc plots show`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import zarr

from daisnet.data.torch_dataset import AmodalDataset
from daisnet.train.loop import train
from daisnet.train.logging import DvcLiveLogger
from daisnet.train.params import configs_from_params, rgb_statistics
from stages.common import run_stage

PREPARED = "data/prepared/train.zarr"
FEATURES = "data/features/train.zarr"
DEPTH = "data/depth/train.zarr"
OUT = Path("data/models/daisnet.pt")
WORK = Path("data/cache/train")
LIVE = Path("dvclive/train")
SUMMARY = Path("reports/train.json")


def feature_meta(path: str) -> dict:
    """What `daisnet predict` needs to recompute the features of a new image like the train split's."""
    attrs = dict(zarr.open_group(path, mode="r").attrs)
    return {"features": {"params": attrs.get("params"), "log10_depth_mean": attrs.get("log10_depth_mean"),
                         "log10_depth_std": attrs.get("log10_depth_std")}}


def main(params: dict) -> None:
    model_config, train_config, augment = configs_from_params(params)
    dataset = AmodalDataset(PREPARED, model_config, FEATURES, DEPTH, augment, seed=train_config.seed)
    stats = None if model_config.weights == "imagenet" else rgb_statistics(dataset.store)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    resume = (WORK / "last.pt").exists()
    if rank0 and not resume and LIVE.exists():
        shutil.rmtree(LIVE)
    logger = DvcLiveLogger(LIVE, resume=resume) if rank0 else None
    summary = train(model_config, train_config, dataset, OUT, WORK, logger, rgb_stats=stats,
                    fingerprint_extra={"train_images": len(dataset)}, meta_extra=feature_meta(FEATURES))
    if logger is not None:
        logger.close()
    if rank0:
        SUMMARY.parent.mkdir(exist_ok=True)
        SUMMARY.write_text(json.dumps({"train_seconds": round(summary["seconds"], 1),
                                       "iterations": summary["iterations"],
                                       "resumed_from": summary["start_iteration"]}, indent=2))


if __name__ == "__main__":
    run_stage(main)
