"""Stage `shape_ae`: the shape autoencoder of the 3D shape prior (§3.8).

    python -m stages.shape_ae data/prepared/train.zarr data/depth/train.zarr data/models/shape_ae.pt \
        --val-prepared data/prepared/val.zarr --val-depth data/depth/val.zarr \
        --metrics reports/shape_ae.json --details reports/shape_ae.details.json \
        --timings logs/timings/shape_ae.json                          (dvc.yaml; = `daisnet shape-ae`)

Trained on the ground-truth crops (amodal mask + local depth) of the train split. --metrics: the val
reconstruction IoU (DVC metrics); --details: train and val IoU, pooled IoU, depth error, counts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from daisnet.atomic import refuse_overlap
from daisnet.errors import exit_on_input_error
from daisnet.params import Params
from daisnet.shape.autoencoder import AETrainConfig
from daisnet.shape.run import run_shape_ae
from stages.common import (
    DEFAULT_PARAMS,
    OUT_FILE,
    ParamsFile,
    TimingsFile,
    run,
    stage_params,
    write_stage_reports,
    validation_pair,
)

COMPARED = {"val": ("iou",)}  # what `dvc exp show` compares (docs/metrics.md)


def shape_ae_config(params: Params) -> AETrainConfig:
    """The autoencoder's settings: `shape_prior.depth/iterations/batch_size/lr` and `seed`."""
    prior = params.shape_prior
    return AETrainConfig(depth=prior.depth, iterations=prior.iterations, batch_size=prior.batch_size, lr=prior.lr,
                         seed=params.seed)


def shape_ae(
    prepared: Annotated[Path, typer.Argument(help="Prepared train store (data/prepared/train.zarr).")],
    depth: Annotated[Path, typer.Argument(help="Its depth store (data/depth/train.zarr).")],
    out: Annotated[Path, typer.Argument(help="Autoencoder checkpoint to write (data/models/shape_ae.pt)."), OUT_FILE],
    val_prepared: Annotated[Path | None, typer.Option(help="Prepared val store, for reconstruction metrics.")] = None,
    val_depth: Annotated[Path | None, typer.Option(help="Its depth store.")] = None,
    metrics: Annotated[Path | None, typer.Option(help="Write the val reconstruction IoU (JSON) here."), OUT_FILE] = None,
    details: Annotated[Path | None, typer.Option(help="Write the rest of the report (JSON) here."), OUT_FILE] = None,
    timings: TimingsFile = None,
    params: ParamsFile = DEFAULT_PARAMS,
    depth_mode: Annotated[str | None, typer.Option("--depth-mode", help="Local depth in the code: all | visible | none [shape_prior.depth].")] = None,
    iterations: Annotated[int | None, typer.Option(help="Training steps [shape_prior.iterations].")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Crops per step [shape_prior.batch_size].")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate [shape_prior.lr].")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed [seed].")] = None,
) -> None:
    """Train the 3D shape prior's autoencoder (§3.8) on ground-truth amodal crops + local depth."""
    with exit_on_input_error():
        val = validation_pair(val_prepared, val_depth)
        config = shape_ae_config(stage_params(params, {
            "shape_prior.depth": depth_mode, "shape_prior.iterations": iterations,
            "shape_prior.batch_size": batch_size, "shape_prior.lr": lr, "seed": seed}))
        refuse_overlap([out, metrics, details, timings], [prepared, depth, *(val or ())])
        result = run_shape_ae((prepared, depth), val, out, config, progress=sys.stderr.isatty())
        write_stage_reports(result, COMPARED, metrics, details, timings)
        print(f"shape autoencoder ({config.depth} depth): train IoU {result['train']['iou']:.3f}"
              + (f", val IoU {result['val']['iou']:.3f}" if val else "") + f", {result['train_seconds']} s -> {out}")


if __name__ == "__main__":
    run(shape_ae)
