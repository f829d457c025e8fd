"""Does edge-aware up-sampling pay? Bilinear against the fast guided filter (daisnet/depth/upsample.py)
for the pipeline's BTS, which predicts at input scale 1/2 (docs/depth.md).

    python benchmarks/exp_guided_upsample.py [--images 100]

One low-resolution prediction per val image (the image resized as `predict_depth` does, then the
network at that size), up-sampled to full size by each method; val abs rel, delta<1.25 and the
normal-angle error of each, against the ground truth (daisnet.depth.metrics). Both methods up-sample the
same prediction, so the comparison isolates the up-sampling. One JSON line per method to
reports/experiments/guided_upsample.jsonl (the file is rewritten).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiment_runs import ROOT  # noqa: E402

from daisnet.depth.checkpoint import load_bts  # noqa: E402
from daisnet.depth.infer import predict_depth  # noqa: E402
from daisnet.depth.metrics import DepthMetrics  # noqa: E402
from daisnet.depth.train import open_split  # noqa: E402
from daisnet.depth.upsample import guided_upsample  # noqa: E402
from daisnet.stores import canvas_mask  # noqa: E402

RESULTS = ROOT / "reports" / "experiments" / "guided_upsample.jsonl"
METHODS = {"bilinear": None, **{f"guided_r{r}_eps{e:g}": (r, e) for r in (1, 2, 4) for e in (1e-4, 1e-3, 1e-2)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--checkpoint", default=str(ROOT / "data" / "models" / "bts.pt"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, _ = load_bts(args.checkpoint)
    scale = model.config.input_scale
    val = open_split(ROOT / "data" / "prepared" / "val.zarr")
    metrics = {name: DepthMetrics(1e-3, model.config.max_depth, normal_kernel=5) for name in METHODS}
    for i in range(min(args.images, len(val.sizes))):
        h, w = (int(v) for v in val.sizes[i])
        image = torch.from_numpy(np.asarray(val.images[i])[:h, :w]).permute(2, 0, 1)[None].float() / 255
        low_size = (max(1, round(h * scale)), max(1, round(w * scale)))
        low_image = F.interpolate(image, size=low_size, mode="bilinear", align_corners=False, antialias=True)
        low_uint8 = (low_image * 255).round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()[None]
        low = torch.from_numpy(predict_depth(model, low_uint8, val.focal[i] * low_size[1] / w, input_scale=1.0))[:, None]
        gt = np.asarray(val.depth[i])[None]
        inside = canvas_mask(val.sizes[i : i + 1], val.canvas)
        for name, setting in METHODS.items():
            if setting is None:
                up = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
            else:
                up = guided_upsample(low, image, radius=setting[0], eps=setting[1])
            full = np.zeros_like(gt)
            full[0, :h, :w] = up[0, 0].numpy()
            metrics[name].update(full, gt, inside)
    with RESULTS.open("w") as f:
        for name, m in metrics.items():
            summary = {k: round(v, 4) for k, v in m.summary().items()}
            record = {"method": name, "checkpoint": Path(args.checkpoint).name, "images": m.count,
                      **{k: summary[k] for k in ("abs_rel", "delta1", "rmse", "normal_angle")}}
            f.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
