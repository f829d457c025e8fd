"""Stage `train_depth`: train BTS on the synthetic ground-truth depth (paper §3.3, §4.2).

Reads data/prepared/{train,val}.zarr (`depth_gt`), writes data/models/bts.pt (our checkpoint format)
and reports/depth.json (Eigen-protocol metrics on val next to the per-pixel-mean baseline, for
`dvc metrics show`). Params: `depth.encoder`, `depth.max_depth`, `depth.train.*`, `seed`; not
`depth.source` or `depth.checkpoint`, so switching the depth source never retrains.
"""

from __future__ import annotations

import sys

from daisnet.depth.train import DepthTrainConfig, train_bts
from daisnet.errors import InputError
from daisnet.params import section
from stages.common import run_stage

TRAIN, VAL = "data/prepared/train.zarr", "data/prepared/val.zarr"
OUT = "data/models/bts.pt"
METRICS = "reports/depth.json"


def config_from_params(params: dict) -> DepthTrainConfig:
    train = dict(section(params, "depth.train"))
    known = set(DepthTrainConfig.__dataclass_fields__) - {"encoder", "max_depth", "seed"}
    unknown = sorted(set(train) - known)
    if unknown:
        raise InputError(f"unknown key depth.train.{unknown[0]} (known: {sorted(known)})", path="params.yaml")
    try:
        return DepthTrainConfig(encoder=section(params, "depth.encoder"), max_depth=float(section(params, "depth.max_depth")),
                                seed=int(params.get("seed", 0)), **train)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad depth params ({exc})", path="params.yaml") from None


def main(params: dict) -> None:
    metrics = train_bts(TRAIN, VAL, OUT, METRICS, config_from_params(params), progress=sys.stderr.isatty())
    val, base = metrics["val"], metrics["baseline_pixel_mean"]
    print(f"val abs rel {val['abs_rel']:.3f} (per-pixel mean baseline {base['abs_rel']:.3f}), "
          f"RMSE {val['rmse']:.2f} m, delta<1.25 {val['delta1']:.3f}; {metrics['train_seconds']:.0f} s training")


if __name__ == "__main__":
    run_stage(main)
