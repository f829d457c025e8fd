"""Stage `codebook`: per-class k-means of the train shape codes -> data/models/codebook.npz (§3.8).

The file records what it was built from (the autoencoder's sha256 and depth mode, K, copies);
figures (codewords per class, quantization error, build time, val coverage) go to
reports/codebook.json.
"""

from __future__ import annotations

from daisnet.params import section
from daisnet.shape.codebook import CodebookConfig
from daisnet.shape.run import run_codebook
from stages.common import run_stage

AE = "data/models/shape_ae.pt"
TRAIN = ("data/prepared/train.zarr", "data/depth/train.zarr")
VAL = ("data/prepared/val.zarr", "data/depth/val.zarr")
OUT = "data/models/codebook.npz"
METRICS = "reports/codebook.json"


def config_from_params(params: dict) -> CodebookConfig:
    """The codebook's settings: `shape_prior.clusters/copies/kmeans_iterations` and `seed`."""
    prior = section(params, "shape_prior")
    return CodebookConfig(clusters=int(prior["clusters"]), copies=int(prior["copies"]),
                          kmeans_iterations=int(prior["kmeans_iterations"]), seed=int(params.get("seed", 0)))


def main(params: dict) -> None:
    config = config_from_params(params)
    metrics = run_codebook(AE, TRAIN, OUT, config, VAL, METRICS)
    print(f"codebook: {metrics['codewords']} codewords in {metrics['build_seconds']} s; "
          f"val nearest-codeword IoU {metrics['val_nearest_codeword_iou']:.3f}")


if __name__ == "__main__":
    run_stage(main)
