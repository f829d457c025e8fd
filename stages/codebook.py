"""Stage `codebook`: per-class k-means of the train shape codes (§3.8).

    python -m stages.codebook data/models/shape_ae.pt data/prepared/train.zarr data/depth/train.zarr \
        data/models/codebook.npz --val-prepared ... --val-depth ... --report reports/codebook.json \
        --timings logs/timings/codebook.json                          (dvc.yaml; = `daisnet codebook`)

The file records what it was built from (the autoencoder's sha256 and depth mode, K, copies);
figures (codewords per class, quantization error, val coverage) go to the report (plain JSON, not
DVC metrics), the build times to --timings.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from daisnet.atomic import refuse_overlap
from daisnet.errors import exit_on_input_error
from daisnet.params import Params
from daisnet.shape.codebook import CodebookConfig
from daisnet.shape.run import run_codebook
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


def codebook_config(params: Params) -> CodebookConfig:
    """The codebook's settings: `shape_prior.clusters/copies/kmeans_iterations` and `seed`."""
    prior = params.shape_prior
    return CodebookConfig(clusters=prior.clusters, copies=prior.copies, kmeans_iterations=prior.kmeans_iterations,
                          seed=params.seed)


def codebook(
    shape_ae: Annotated[Path, typer.Argument(help="Shape autoencoder (data/models/shape_ae.pt).")],
    prepared: Annotated[Path, typer.Argument(help="Prepared train store.")],
    depth: Annotated[Path, typer.Argument(help="Its depth store.")],
    out: Annotated[Path, typer.Argument(help="Codebook file to write (data/models/codebook.npz)."), OUT_FILE],
    val_prepared: Annotated[Path | None, typer.Option(help="Prepared val store, for the nearest-codeword IoU.")] = None,
    val_depth: Annotated[Path | None, typer.Option(help="Its depth store.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the build figures (JSON) here."), OUT_FILE] = None,
    timings: TimingsFile = None,
    params: ParamsFile = DEFAULT_PARAMS,
    clusters: Annotated[int | None, typer.Option(help="K: codewords per class (the paper: 1024) [shape_prior.clusters].")] = None,
    copies: Annotated[int | None, typer.Option(help="Flip/rotation copies of each crop [shape_prior.copies].")] = None,
    kmeans_iterations: Annotated[int | None, typer.Option(help="MiniBatchKMeans max_iter [shape_prior.kmeans_iterations].")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed [seed].")] = None,
) -> None:
    """Build the shape codebook (§3.8): per-class k-means of the train crops' codes and copies."""
    with exit_on_input_error():
        val = validation_pair(val_prepared, val_depth)
        config = codebook_config(stage_params(params, {
            "shape_prior.clusters": clusters, "shape_prior.copies": copies,
            "shape_prior.kmeans_iterations": kmeans_iterations, "seed": seed}))
        refuse_overlap([out, report, timings], [shape_ae, prepared, depth, *(val or ())])
        result = run_codebook(shape_ae, (prepared, depth), out, config, val, progress=sys.stderr.isatty())
        write_stage_reports(result, {}, None, report, timings)  # nothing compared: its report is plain
        coverage = f"; val nearest-codeword IoU {result['val_nearest_codeword_iou']:.3f}" if val else ""
        print(f"codebook: {result['codewords']} codewords in {result['build_seconds']} s{coverage} -> {out}")


if __name__ == "__main__":
    run(codebook)
