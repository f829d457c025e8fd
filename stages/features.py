"""Stage `features`: data/depth/{split}.zarr -> data/features/{split}.zarr (§3.3-3.4).

Reads only `features.*`; the train split's log-depth statistics normalize every split.
"""

from __future__ import annotations

import sys

from daisnet.features.store import FeatureParams, compute_features
from daisnet.params import section
from stages.common import run_stage

SPLITS = ("train", "val")
DEPTH = "data/depth/{split}.zarr"
OUT = "data/features/{split}.zarr"


def main(params: dict) -> None:
    features = section(params, "features")
    stats = compute_features(
        {split: DEPTH.format(split=split) for split in SPLITS},
        {split: OUT.format(split=split) for split in SPLITS},
        FeatureParams.from_params(features), stats_from=DEPTH.format(split="train"), workers=int(features.get("workers", 2)),
        progress=sys.stderr.isatty(),
    )
    print(f"train log10 depth: mean {stats.mean:.4f}, std {stats.std:.4f} over {stats.count} pixels")


if __name__ == "__main__":
    run_stage(main)
