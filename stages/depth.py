"""Stage `depth`: data/prepared/{split}.zarr -> data/depth/{split}.zarr (metric depth per image).

`depth.source: ground_truth` copies the synthetic ground truth; `bts` (predicted depth, §3.3) plugs
a prediction function into the same writer (`predictor` below).
"""

from __future__ import annotations

import sys

from daisnet.depth.store import PredictFn, write_depth_store
from daisnet.errors import InputError
from daisnet.params import section
from stages.common import run_stage

SPLITS = ("train", "val")
PREPARED = "data/prepared/{split}.zarr"
OUT = "data/depth/{split}.zarr"


def predictor(params: dict) -> tuple[PredictFn | None, dict]:
    """The depth source of params.yaml: (predict_fn or None for ground truth, attrs for the store)."""
    source = section(params, "depth.source")
    if source == "ground_truth":
        return None, {}
    if source == "bts":
        raise InputError("depth.source: bts is not available yet: use ground_truth", path="params.yaml")
    raise InputError(f"depth.source must be ground_truth or bts, not {source!r}", path="params.yaml")


def main(params: dict) -> None:
    predict_fn, attrs = predictor(params)
    source = section(params, "depth.source")
    for split in SPLITS:
        summary = write_depth_store(PREPARED.format(split=split), OUT.format(split=split), predict_fn,
                                    source=source, attrs=attrs, progress=sys.stderr.isatty())
        print(f"{split}: {summary}")


if __name__ == "__main__":
    run_stage(main)
