"""What limits BTS on the synthetic data: val abs rel, delta<1.25 and the normal-angle error against
training time, for a grid of settings (issue "Predicted depth that helps", docs/depth.md).

    python benchmarks/exp_depth_quality.py [NAME ...]        # all settings, or the named ones

Each setting trains BTS with `daisnet.depth.train.train_bts` (the `train_depth` stage's function) on the
default pipeline's prepared stores (`dvc repro rasterize` first), scoring val every `eval_every`
iterations (evaluation time is not counted), then val and the first 100 train images at the end. One
JSON line per setting is appended to reports/experiments/depth_quality.jsonl; a rerun skips the
settings already there, so the grid continues where it stopped. One thread per run
(`depth.train.threads: 1`): two runs side by side on this 2-core machine time like one alone.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiment_runs import ROOT, append, finished  # noqa: E402

from daisnet.depth.train import DepthTrainConfig, train_bts  # noqa: E402

RESULTS = Path(os.environ.get("DAISNET_EXP_RESULTS", ROOT / "reports" / "experiments" / "depth_quality.jsonl"))
TRAIN, VAL = ROOT / "data" / "prepared" / "train.zarr", ROOT / "data" / "prepared" / "val.zarr"

# The default profile before this study (params.yaml of 2026-11-30): 1/4 scale, 200 iterations.
BASE = DepthTrainConfig(encoder="resnet18_bts", num_features=128, iterations=200, batch_size=8, lr=2e-3,
                        warmup=50, input_scale=0.25, threads=1)

SETTINGS: dict[str, DepthTrainConfig] = {
    # resolution x length at the same budget of ~5 minutes
    "s25_b8_it1000": replace(BASE, iterations=1000, eval_every=200),
    "s50_b8_it400": replace(BASE, input_scale=0.5, iterations=400, eval_every=100),
    "s50_b4_it800": replace(BASE, input_scale=0.5, batch_size=4, iterations=800, eval_every=200),
    "s100_b2_it600": replace(BASE, input_scale=1.0, batch_size=2, iterations=600, eval_every=150),
    # decoder width, encoder, lr at 1/2 scale
    "s50_b4_it800_w64": replace(BASE, input_scale=0.5, batch_size=4, iterations=800, num_features=64, eval_every=200),
    "s50_b4_it800_lr4e-3": replace(BASE, input_scale=0.5, batch_size=4, iterations=800, lr=4e-3, eval_every=200),
    "s50_b4_it800_noaug": replace(BASE, input_scale=0.5, batch_size=4, iterations=800, augment=False, eval_every=200),
    "s50_b4_it800_r34": replace(BASE, input_scale=0.5, batch_size=4, iterations=800, encoder="resnet34_bts",
                                num_features=128, eval_every=200),
    # GPU profiles (benchmarks/gpu_depth.sh on one GPU): full resolution, the official decoder width
    "gpu_s100_r18_w128_b8_it2000": replace(BASE, input_scale=1.0, iterations=2000, eval_every=500, threads=0,
                                           device="cuda"),
    "gpu_s100_r18_w128_b8_it1200": replace(BASE, input_scale=1.0, iterations=1200, eval_every=400, threads=0,
                                           device="cuda"),
    "gpu_s100_r50_w512_b8_it2000": replace(BASE, input_scale=1.0, iterations=2000, eval_every=500, threads=0,
                                           encoder="resnet50_bts", num_features=512, device="cuda"),
}


def run(name: str, config: DepthTrainConfig) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result = train_bts(TRAIN, VAL, Path(tmp) / "bts.pt", config)
    return {"name": name, "config": {k: v for k, v in asdict(config).items() if k != "init"},
            **{k: result[k] for k in ("val", "train", "train_seconds", "train_val_abs_rel_ratio", "curve")
               if k in result}}


def main(names: list[str]) -> None:
    done = {key[0] for key in finished(RESULTS, ["name"])}
    for name in names or list(SETTINGS):
        if name not in SETTINGS:
            raise SystemExit(f"unknown setting {name!r}; choose from {', '.join(SETTINGS)}")
        if name in done:
            print(f"{name}: already in {RESULTS}", flush=True)
            continue
        append(RESULTS, run(name, SETTINGS[name]))


if __name__ == "__main__":
    main(sys.argv[1:])
    print(json.dumps({"results": str(RESULTS)}))
