"""Stage `train`: DAISnet on the prepared train split (+ depth and features) -> a model checkpoint.

    python -m stages.train data/prepared/train.zarr data/models/daisnet.pt --features data/features/train.zarr \
        --depth data/depth/train.zarr --work-dir data/cache/train --live dvclive/train \
        --summary reports/train.json --timings logs/timings/train.json    (dvc.yaml; = `daisnet train`)

With `model.shape_prior: on` the shape autoencoder and codebook (stages `shape_ae`, `codebook`)
are loaded into the model and saved with it. Resumes from WORK_DIR/last.pt when that run had the
same params (a killed `dvc repro` picks up where it stopped). `train.processes` local processes
train with DistributedDataParallel (daisnet/train/launch.py); under `torchrun` its count wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
import zarr

from daisnet.data.torch_dataset import AmodalDataset, AugmentConfig
from daisnet.errors import InputError, exit_on_input_error
from daisnet.hashing import sha256_file
from daisnet.model.config import ModelConfig
from daisnet.params import Params
from daisnet.shape.codebook import configure_shape_prior
from daisnet.train.launch import launch
from daisnet.train.loop import TrainConfig, train as train_loop
from daisnet.train.statistics import rgb_statistics
from stages.common import (
    DEFAULT_PARAMS,
    OUT_FILE,
    OUT_LIVE,
    OUT_PARENT,
    ParamsFile,
    TimingsFile,
    run,
    stage_params,
    write_json,
    write_timings,
)


@dataclass(frozen=True)
class TrainPaths:
    """Where a training run reads and writes."""

    prepared: Path
    out: Path
    features: Path | None
    depth: Path | None
    work: Path
    shape_ae: Path | None = None  # the shape prior's files (model.shape_prior: on)
    codebook: Path | None = None
    live: Path | None = None  # dvclive curves (`dvc plots show`); None: none
    summary: Path | None = None  # the run's summary (JSON); None: none
    timings: Path | None = None  # wall time and resume point (JSON, outside git); None: none
    snapshots: Path | None = None  # models along the run (`train.snapshot_every`); None: none


def model_config(params: Params, source: str | Path = "params.yaml") -> ModelConfig:
    """`model.*`, with what the model takes from other sections passed explicitly: the regional
    map count (`features.regional.offsets`) and, when the prior is on, `shape_prior.depth/top_k/fusion_width`."""
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in params.model.model_dump().items()}
    prior = params.shape_prior
    # Only when the prior is on: a run without it keeps the same config (and resumable fingerprint).
    shape = ({"shape_prior_depth": prior.depth, "shape_prior_k": prior.top_k, "shape_prior_width": prior.fusion_width}
             if params.model.shape_prior == "on" else {})
    config = ModelConfig(**values, **shape, regional_channels=params.features.regional.offsets)
    config.validate(source)  # a problem names the user's params file
    return config


def train_config(params: Params) -> TrainConfig:
    """`train.*` and `seed`."""
    values = params.train.model_dump()
    return TrainConfig(**{**values, "decay_milestones": tuple(values["decay_milestones"])}, seed=params.seed)


def augment_config(params: Params) -> AugmentConfig:
    """`augment.*` (§4.2 post-processing)."""
    return AugmentConfig(**params.augment.model_dump())


def feature_meta(path: Path | None) -> dict:
    """What `daisnet predict` needs to recompute the features of a new image like the train split's."""
    if path is None:
        return {}
    attrs = dict(zarr.open_group(path, mode="r").attrs)
    return {"features": {"params": attrs.get("params"), "log10_depth_mean": attrs.get("log10_depth_mean"),
                         "log10_depth_std": attrs.get("log10_depth_std"), "regional_mean": attrs.get("regional_mean"),
                         "regional_std": attrs.get("regional_std")}}


def train_process(params: Params, paths: TrainPaths) -> None:
    """One training process (of `train.processes`; rank 0 writes the model, curves and summary)."""
    config, schedule, augment = model_config(params), train_config(params), augment_config(params)
    shape_prior = None
    fingerprint_extra: dict = {}
    if config.shape_prior == "on":
        if paths.shape_ae is None or paths.codebook is None:
            raise InputError("model.shape_prior: on needs --shape-ae and --codebook (stages shape_ae, codebook)")
        shape_ae, codebook = paths.shape_ae, paths.codebook
        # Checked before anything runs: a codebook of another autoencoder or depth mode is refused.
        config = configure_shape_prior(config, shape_ae, codebook)
        shape_prior = (shape_ae, codebook)
        fingerprint_extra["codebook_sha256"] = sha256_file(codebook)
    dataset = AmodalDataset(paths.prepared, config, paths.features, paths.depth, augment, seed=schedule.seed,
                            crop_width=schedule.crop_width)
    stats = None if config.weights == "imagenet" else rgb_statistics(dataset.store)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    logger = None
    if rank0 and paths.live is not None:
        from daisnet.pipeline.live import DvcLiveLogger

        logger = DvcLiveLogger(paths.live)  # opened by the loop, once it knows whether it resumes
    summary = train_loop(config, schedule, dataset, paths.out, paths.work, logger, rgb_stats=stats,
                         fingerprint_extra={"train_images": len(dataset), **fingerprint_extra},
                         meta_extra=feature_meta(paths.features), shape_prior=shape_prior,
                         snapshot_dir=paths.snapshots)
    if logger is not None:
        logger.close()
    if rank0 and paths.summary is not None:
        write_json(paths.summary, {"iterations": summary["iterations"]})
    if rank0:  # a resumed run gives the same model: where it resumed is no result, like its time
        write_timings(paths.timings, {"train_seconds": summary["seconds"], "resumed_from": summary["start_iteration"]})


def train(
    prepared: Annotated[Path, typer.Argument(help="Prepared train store (data/prepared/train.zarr).")],
    out: Annotated[Path, typer.Argument(help="Model checkpoint to write (data/models/daisnet.pt)."), OUT_FILE],
    features: Annotated[Path | None, typer.Option(help="Features store (needed by the depth, depth_raw, normal inputs).")] = None,
    depth: Annotated[Path | None, typer.Option(help="Depth store (needed by the occlusion-edge head and the shape prior).")] = None,
    work_dir: Annotated[Path, typer.Option(help="Resume point of an interrupted run (last.pt)."), OUT_PARENT] = Path("data/cache/train"),
    shape_ae: Annotated[Path | None, typer.Option(help="Shape autoencoder (model.shape_prior: on).")] = None,
    codebook: Annotated[Path | None, typer.Option(help="Shape codebook (model.shape_prior: on).")] = None,
    live: Annotated[Path | None, typer.Option(help="dvclive folder for the training curves (`dvc plots show`)."), OUT_LIVE] = None,
    summary: Annotated[Path | None, typer.Option(help="Write the run's summary (JSON: iterations) here."), OUT_FILE] = None,
    timings: TimingsFile = None,
    snapshots: Annotated[Path | None, typer.Option(help="Keep the model every `train.snapshot_every` iterations in "
                                                        "this folder (model-<iteration>.pt), for AP curves."),
                         OUT_PARENT] = None,
    params: ParamsFile = DEFAULT_PARAMS,
    iterations: Annotated[int | None, typer.Option(help="Training iterations [train.iterations].")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N [train.device].")] = None,
    processes: Annotated[int | None, typer.Option(help="Local DDP processes [train.processes].")] = None,
) -> None:
    """Train DAISnet (`train.processes` processes); resumes from WORK_DIR/last.pt when the settings match."""
    with exit_on_input_error():
        settings = stage_params(params, {"train.iterations": iterations, "train.device": device,
                                         "train.processes": processes})
        model_config(settings, params)  # bad params fail here, before any process starts
        paths = TrainPaths(prepared, out, features, depth, work_dir, shape_ae, codebook, live, summary, timings,
                           snapshots)
        launch(train_process, (settings, paths), settings.train.processes)
        print(f"trained -> {out}")


if __name__ == "__main__":
    run(train)
