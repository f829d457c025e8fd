"""Stage `depth`: data/prepared/{split}.zarr -> data/depth/{split}.zarr (one split per call).

`depth.source: ground_truth` copies the synthetic ground truth; `bts` (predicted depth, §3.3) plugs
BTS inference into the same writer (`predictor` below): `depth.checkpoint` is ours (stage
`train_depth`) or an official release file for `depth.encoder` (docs/depth.md).
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
        return source, *bts_predictor_from_params(params)
    raise InputError(f"depth.source must be ground_truth or bts, not {source!r}", path="params.yaml")


def bts_predictor_from_params(params: dict) -> tuple[PredictFn, dict]:
    """Load `depth.checkpoint` (ours, or an official release file for `depth.encoder`) as a PredictFn."""
    from daisnet.depth.bts import BtsConfig
    from daisnet.depth.checkpoint import load_bts
    from daisnet.depth.infer import bts_predictor
    from daisnet.device import resolve_device

    try:
        expected = BtsConfig(encoder=section(params, "depth.encoder"), max_depth=float(section(params, "depth.max_depth")),
                             focal_reference=section(params, "depth.focal_reference"))
        device = resolve_device(str(section(params, "depth.device")), "depth.device")
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad depth params ({exc})", path="params.yaml") from None
    checkpoint = section(params, "depth.checkpoint")
    model, info = load_bts(checkpoint, expected)
    predict = bts_predictor(model, batch_size=int(section(params, "depth.batch_size")),
                            default_focal=float(section(params, "depth.focal")), device=device)
    attrs = {"checkpoint": str(checkpoint), "checkpoint_sha256": info["sha256"],
             "checkpoint_format": info["format"], "bts": info["bts"]}
    return predict, attrs


def main(params: dict, split: str) -> None:
    source, predict_fn, attrs = predictor(params)
    summary = write_depth_store(PREPARED.format(split=split), OUT.format(split=split), predict_fn,
                                source=source, attrs=attrs, progress=sys.stderr.isatty())
    print(f"{split}: {summary}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SPLITS:
        sys.exit(f"usage: python -m stages.depth {{{','.join(SPLITS)}}}")
    run_stage(lambda params: main(params, sys.argv[1]))
