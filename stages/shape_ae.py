"""Stage `shape_ae`: the shape autoencoder of the 3D shape prior (§3.8) -> data/models/shape_ae.pt.

Trained on the ground-truth crops (amodal mask + local depth) of the train split; reconstruction
IoU on train and val crops goes to reports/shape_ae.json (`dvc metrics show`).
"""

from __future__ import annotations

from daisnet.params import section
from daisnet.shape.autoencoder import AETrainConfig
from daisnet.shape.run import run_shape_ae
from stages.common import run_stage

TRAIN = ("data/prepared/train.zarr", "data/depth/train.zarr")
VAL = ("data/prepared/val.zarr", "data/depth/val.zarr")
OUT = "data/models/shape_ae.pt"
METRICS = "reports/shape_ae.json"


def config_from_params(params: dict) -> AETrainConfig:
    """The autoencoder's settings: `shape_prior.depth/iterations/batch_size/lr` and `seed`."""
    prior = section(params, "shape_prior")
    return AETrainConfig(depth=str(prior["depth"]), iterations=int(prior["iterations"]),
                         batch_size=int(prior["batch_size"]), lr=float(prior["lr"]), seed=int(params.get("seed", 0)))


def main(params: dict) -> None:
    config = config_from_params(params)
    metrics = run_shape_ae(TRAIN, VAL, OUT, config, METRICS)
    print(f"shape autoencoder ({config.depth} depth): val IoU {metrics['val']['iou']:.3f}, "
          f"train IoU {metrics['train']['iou']:.3f}, {metrics['train_seconds']} s")


if __name__ == "__main__":
    run_stage(main)
