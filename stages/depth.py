"""Stage `depth`: a prepared store -> its depth store (metric depth per image on the canvas).

    python -m stages.depth data/prepared/train.zarr data/depth/train.zarr     (dvc.yaml; = `daisnet depth`)

`depth.source: ground_truth` copies the synthetic ground truth; `degraded` writes it with one
controlled defect (`depth.degrade`: the study's depth-quality axis, docs/depth.md); `bts` (predicted
depth, §3.3) plugs BTS inference into the same writer: `depth.checkpoint` is ours (stage `train_depth`) or an
official release file for `depth.encoder` (docs/depth.md).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from daisnet.depth.store import PredictFn, write_depth_store
from daisnet.errors import exit_on_input_error
from daisnet.params import Depth
from stages.common import DEFAULT_PARAMS, OUT_STORE, ParamsFile, run, stage_params


def predictor(depth: Depth) -> tuple[PredictFn | None, dict]:
    """The depth source: (None for the ground truth, or BTS as a PredictFn; the store's attrs)."""
    if depth.source in ("ground_truth", "degraded"):
        return None, {}
    from daisnet.depth.bts import BtsConfig
    from daisnet.depth.checkpoint import load_bts
    from daisnet.depth.infer import bts_predictor
    from daisnet.device import resolve_device

    expected = BtsConfig(encoder=depth.encoder, max_depth=depth.max_depth, focal_reference=depth.focal_reference)
    device = resolve_device(depth.device, "depth.device")
    model, info = load_bts(depth.checkpoint, expected)
    predict = bts_predictor(model, batch_size=depth.batch_size, default_focal=depth.focal, device=device)
    attrs = {"checkpoint": depth.checkpoint, "checkpoint_sha256": info["sha256"],
             "checkpoint_format": info["format"], "bts": info["bts"]}
    return predict, attrs


def depth(
    prepared: Annotated[Path, typer.Argument(help="Prepared store (data/prepared/{split}.zarr).")],
    out: Annotated[Path, typer.Argument(help="Depth store to write (replaced atomically), e.g. data/depth/train.zarr."), OUT_STORE],
    params: ParamsFile = DEFAULT_PARAMS,
    source: Annotated[str | None, typer.Option(help="ground_truth: copy `depth_gt` (synthetic data); bts: predict; degraded: the ground truth with depth.degrade's defect [depth.source].")] = None,
    degrade_kind: Annotated[str | None, typer.Option(help="Source degraded: noise, resolution or scale [depth.degrade.kind].")] = None,
    degrade_level: Annotated[float | None, typer.Option(help="Source degraded: sigma (noise, scale) or whole factor (resolution) [depth.degrade.level].")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="BTS checkpoint: ours or an official file [depth.checkpoint].")] = None,
    encoder: Annotated[str | None, typer.Option(help="Encoder of an official file: resnet50_bts or densenet161_bts.")] = None,
    max_depth: Annotated[float | None, typer.Option(help="Depth range of an official file (KITTI 80, NYU 10).")] = None,
    focal: Annotated[float | None, typer.Option(help="Focal length (px) where the store has none (real KINS).")] = None,
    focal_reference: Annotated[float | None, typer.Option(help="Official KITTI files scale by focal / this.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per forward (bounds memory) [depth.batch_size].")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N [depth.device].")] = None,
) -> None:
    """Write a depth store: metric depth per image on the prepared canvas (ground truth or BTS)."""
    with exit_on_input_error():
        settings = stage_params(params, {
            "depth.source": source, "depth.degrade.kind": degrade_kind, "depth.degrade.level": degrade_level,
            "depth.checkpoint": None if checkpoint is None else str(checkpoint),
            "depth.encoder": encoder, "depth.max_depth": max_depth, "depth.focal": focal,
            "depth.focal_reference": focal_reference, "depth.batch_size": batch_size, "depth.device": device}).depth
        predict_fn, attrs = predictor(settings)
        degrade = (settings.degrade.kind, settings.degrade.level) if settings.source == "degraded" else None
        summary = write_depth_store(prepared, out, predict_fn, source=settings.source, attrs=attrs, degrade=degrade,
                                    progress=sys.stderr.isatty())
        print(f"{out}: {summary}")


if __name__ == "__main__":
    run(depth)
