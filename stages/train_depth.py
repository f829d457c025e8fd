"""Stage `train_depth`: train BTS on the synthetic ground-truth depth (paper §3.3, §4.2).

    python -m stages.train_depth data/prepared/train.zarr data/prepared/val.zarr data/models/bts.pt \
        --metrics reports/depth.json --details reports/depth.details.json \
        --timings logs/timings/train_depth.json                       (dvc.yaml; = `daisnet train-depth`)

--metrics: the numbers a user compares (DVC metrics): abs rel, delta<1.25 and the normal-angle error
on val and train. --details: the rest (every Eigen metric, the per-pixel-mean baseline, counts). Params: `depth.encoder`,
`depth.max_depth`, `depth.train.*`, `seed`; not `depth.source` or `depth.checkpoint`, so switching
the depth source never retrains.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from daisnet.atomic import refuse_overlap
from daisnet.depth.train import DepthTrainConfig, train_bts
from daisnet.errors import exit_on_input_error
from daisnet.params import Params
from stages.common import (
    DEFAULT_PARAMS,
    OUT_FILE,
    ParamsFile,
    TimingsFile,
    run,
    stage_params,
    write_stage_reports,
)

# What `dvc metrics` and `dvc exp show` compare (docs/metrics.md); the rest goes to --details.
COMPARED = {"val": ("abs_rel", "delta1", "normal_angle"), "train": ("abs_rel", "delta1", "normal_angle")}


def depth_train_config(params: Params) -> DepthTrainConfig:
    """BTS training settings: `depth.encoder`, `depth.max_depth`, `depth.train.*` and `seed`."""
    return DepthTrainConfig(encoder=params.depth.encoder, max_depth=params.depth.max_depth, seed=params.seed,
                            **params.depth.train.model_dump())


def train_depth(
    train: Annotated[Path, typer.Argument(help="Prepared train store with `depth_gt` (data/prepared/train.zarr).")],
    val: Annotated[Path, typer.Argument(help="Prepared val store with `depth_gt`.")],
    out: Annotated[Path, typer.Argument(help="Checkpoint to write (data/models/bts.pt)."), OUT_FILE],
    metrics: Annotated[Path | None, typer.Option(help="Write abs rel, delta<1.25, normal angle of val and train (JSON) here."), OUT_FILE] = None,
    details: Annotated[Path | None, typer.Option(help="Write the rest of the report (JSON) here: every metric, baseline, counts."), OUT_FILE] = None,
    timings: TimingsFile = None,
    params: ParamsFile = DEFAULT_PARAMS,
    encoder: Annotated[str | None, typer.Option(help="resnet18_bts, resnet34_bts, resnet50_bts, densenet161_bts [depth.encoder].")] = None,
    num_features: Annotated[int | None, typer.Option(help="Decoder width (official: 512) [depth.train.num_features].")] = None,
    iterations: Annotated[int | None, typer.Option(help="Training iterations [depth.train.iterations].")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per iteration [depth.train.batch_size].")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (AdamW) [depth.train.lr].")] = None,
    input_scale: Annotated[float | None, typer.Option(help="Train and predict at this image scale [depth.train.input_scale].")] = None,
    max_depth: Annotated[float | None, typer.Option(help="Depth range in metres [depth.max_depth].")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed [seed].")] = None,
    init: Annotated[Path | None, typer.Option(help="Fine-tune this BTS checkpoint (ours or official) [depth.train.init].")] = None,
) -> None:
    """Train BTS on synthetic ground-truth depth (§3.3); report Eigen metrics on val and the baseline."""
    with exit_on_input_error():
        config = depth_train_config(stage_params(params, {
            "depth.encoder": encoder, "depth.train.num_features": num_features, "depth.train.iterations": iterations,
            "depth.train.batch_size": batch_size, "depth.train.lr": lr, "depth.train.input_scale": input_scale,
            "depth.max_depth": max_depth, "seed": seed, "depth.train.init": None if init is None else str(init)}))
        refuse_overlap([out, metrics, details, timings], [train, val])
        result = train_bts(train, val, out, config, progress=sys.stderr.isatty())
        write_stage_reports({k: v for k, v in result.items() if k != "curve"}, COMPARED, metrics, details, timings)
        val_metrics, base = result["val"], result["baseline_pixel_mean"]
        print(f"val abs rel {val_metrics['abs_rel']:.3f} (per-pixel mean baseline {base['abs_rel']:.3f}), "
              f"RMSE {val_metrics['rmse']:.2f} m, delta<1.25 {val_metrics['delta1']:.3f}; "
              f"{result['train_seconds']:.0f} s training")


if __name__ == "__main__":
    run(train_depth)
