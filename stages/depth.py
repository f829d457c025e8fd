"""Stage `depth`: data/prepared/{split}.zarr -> data/depth/{split}.zarr (one split per call).

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


def predictor(params: dict) -> tuple[str, PredictFn | None, dict]:
    """The depth source of params.yaml: (source, predict_fn or None for ground truth, store attrs)."""
    source = section(params, "depth.source")
    if source == "ground_truth":
        return source, None, {}
    if source == "bts":
        raise InputError("depth.source: bts is not wired yet: use ground_truth", path="params.yaml")
    raise InputError(f"depth.source must be ground_truth or bts, not {source!r}", path="params.yaml")


def main(params: dict, split: str) -> None:
    source, predict_fn, attrs = predictor(params)
    summary = write_depth_store(PREPARED.format(split=split), OUT.format(split=split), predict_fn,
                                source=source, attrs=attrs, progress=sys.stderr.isatty())
    print(f"{split}: {summary}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SPLITS:
        sys.exit(f"usage: python -m stages.depth {{{','.join(SPLITS)}}}")
    run_stage(lambda params: main(params, sys.argv[1]))
