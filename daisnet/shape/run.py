"""The `shape_ae` and `codebook` steps end to end (paths in, paths out): shared by the stages and the CLI."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from daisnet.atomic import refuse_overlap
from daisnet.hashing import sha256_file
from daisnet.shape.autoencoder import (
    AETrainConfig,
    load_autoencoder,
    reconstruction_metrics,
    save_autoencoder,
    train_autoencoder,
)
from daisnet.shape.codebook import CodebookConfig, build_codebook, codeword_iou, save_codebook
from daisnet.shape.crops import extract_crops


def _round(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}


def run_shape_ae(train: tuple[str | Path, str | Path], val: tuple[str | Path, str | Path] | None,
                 out: str | Path, config: AETrainConfig, progress: bool | None = None) -> dict[str, Any]:
    """Train the autoencoder on `train` = (prepared, depth store) crops; metrics on `val` crops.
    Returns the report (counts, reconstruction metrics, `train_seconds`)."""
    config.validate()
    refuse_overlap([out], [*train, *(val or ())])  # before the training, not after
    train_crops = extract_crops(*train, progress=progress)
    model, info = train_autoencoder(train_crops, config, progress=progress)
    metrics: dict[str, Any] = {"train_instances": len(train_crops), "train_seconds": round(info["seconds"], 1),
                               "train": _round(reconstruction_metrics(model, train_crops.inputs(config.depth)))}
    if val is not None:
        val_crops = extract_crops(*val, progress=progress)
        metrics["val_instances"] = len(val_crops)
        metrics["val"] = _round(reconstruction_metrics(model, val_crops.inputs(config.depth)))
    # No timings in the checkpoint: the same settings must give the same file (docs/reproducibility.md).
    untimed = {k: v for k, v in metrics.items() if not k.endswith("_seconds")}
    save_autoencoder(out, model, {"train_config": asdict(config), "train_store": str(train[0]),
                                  "depth_store": str(train[1]), "metrics": untimed})
    return metrics


def run_codebook(ae_path: str | Path, train: tuple[str | Path, str | Path], out: str | Path,
                 config: CodebookConfig, val: tuple[str | Path, str | Path] | None = None,
                 progress: bool | None = None, log=None) -> dict[str, Any]:
    """Build the codebook of the train crops with the autoencoder at `ae_path`; record what it came from.
    Returns the build figures (per-class counts and error, val coverage, `*_seconds` timings)."""
    config.validate()
    refuse_overlap([out], [ae_path, *train, *(val or ())])
    model, meta = load_autoencoder(ae_path)
    crops = extract_crops(*train, progress=progress)
    built_from = {"shape_ae": str(ae_path), "shape_ae_sha256": sha256_file(ae_path), "train_store": str(train[0]),
                  "depth_store": str(train[1])}
    book, report = build_codebook(model, crops, config, built_from, log=log)
    metrics: dict[str, Any] = {"codewords": report["codewords"], "build_seconds": round(report["seconds"], 1),
                               "encode_seconds": round(report["encode_seconds"], 1),
                               "cluster_seconds": round(report["cluster_seconds"], 1),
                               "classes": {k: _round(v) for k, v in report["classes"].items()}}
    if val is not None:
        # How well the codebook covers unseen shapes: IoU of each val crop with its nearest prototype.
        metrics["val_nearest_codeword_iou"] = round(codeword_iou(model, book, extract_crops(*val, progress=progress)), 4)
    save_codebook(out, book)
    return metrics
