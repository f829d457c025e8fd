"""Training-step cost of DAISnet variants against vanilla torchvision Mask R-CNN, and data-loader speed.

    .venv/bin/python benchmarks/bench_train.py [--steps 4] [--height 192 --width 640]

The default profile's model (params.yaml `model`: ResNet-18-FPN, random weights, trainable
BatchNorm, FPN width, RoI sampling, RoIAlign samples per bin, head widths) with the default image
size and batch (2) for all, every positive RoI through the mask heads as torchvision does
(`mask_batch_size_per_image: 0`, so the ratios are the cost of our additions, not of that saving);
vanilla torchvision Mask R-CNN gets the same backbone, anchors, RoI pooling and mask-head width.
Prints seconds per step (median of `--steps`, models interleaved step by step so load from other
jobs hits all alike) and the ratios the issue names: R+O / vanilla (<= 1.25), R+D+N / R (<= 1.1),
and step time / batch-loading time (>= 5).
Synthetic inputs (the step cost does not depend on pixels).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

from daisnet.model import ModelConfig, build_daisnet
from daisnet.model.backbone import build_backbone
from daisnet.model.config import backbone_channels
from daisnet.model.daisnet import anchor_generator, roi_poolers
from daisnet.params import load_params  # noqa: E402
from stages.train import augment_config, model_config, train_config  # noqa: E402


def configs(params):
    """(ModelConfig, TrainConfig, AugmentConfig) of a params file, as the train stage builds them."""
    return model_config(params), train_config(params), augment_config(params)


def batch(config: ModelConfig, h: int, w: int, n: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    channels = backbone_channels(config) + int(config.needs_roi_depth)
    images = [torch.rand(channels, h, w, generator=g) for _ in range(n)]
    targets = []
    for _ in range(n):
        k = 8
        amodal = torch.zeros(k, h, w, dtype=torch.uint8)
        boxes = []
        for j in range(k):
            x0, y0 = int(torch.randint(0, w - 80, (1,), generator=g)), int(torch.randint(0, h - 60, (1,), generator=g))
            x1, y1 = x0 + 30 + j * 5, y0 + 25 + j * 3
            amodal[j, y0:y1, x0:x1] = 1
            boxes.append([x0, y0, x1, y1])
        visible = amodal.clone()
        visible[:, :, ::3] = 0
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.full((k,), 4),
                        "masks": amodal, "visible_masks": visible})
    return images, targets


def stepper(model: nn.Module, images, targets):
    """One SGD step of `model` on the batch, as a function returning its wall time."""
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def one() -> float:
        start = time.perf_counter()
        losses = model(images, targets)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
        return time.perf_counter() - start

    return one


def vanilla(config: ModelConfig) -> nn.Module:
    backbone = build_backbone(replace(config, inputs=("rgb",)))
    width = config.mask_head_width
    box_pool, mask_pool = roi_poolers(config)
    return MaskRCNN(backbone, num_classes=None, min_size=config.min_size, max_size=config.max_size,
                    rpn_anchor_generator=anchor_generator(config),
                    box_batch_size_per_image=config.box_batch_size_per_image,
                    box_roi_pool=box_pool, mask_roi_pool=mask_pool,
                    box_head=TwoMLPHead(backbone.out_channels * 7 * 7, config.representation_size),
                    box_predictor=FastRCNNPredictor(config.representation_size, config.num_classes),
                    mask_head=MaskRCNNHeads(backbone.out_channels, (width,) * 4, 1),
                    mask_predictor=MaskRCNNPredictor(width, width, config.num_classes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--prepared", default="data/prepared/train.zarr")
    args = parser.parse_args()
    torch.manual_seed(0)
    default = configs(load_params("params.yaml"))[0]
    base = replace(default, inputs=("rgb",), min_size=args.height, max_size=args.width, mask_batch_size_per_image=0,
                   occlusion_edge="off", shape_prior="off")
    variants = {
        "vanilla torchvision": (vanilla(base), base),
        "R": (build_daisnet(base), base),
        "R+O": (None, replace(base, occlusion_edge="mask_head")),
        "R+D+N": (None, replace(base, inputs=("rgb", "depth", "normal"))),
    }
    steps = {}
    for name, (model, config) in variants.items():
        model = model if model is not None else build_daisnet(config)
        images, targets = batch(config, args.height, args.width)
        if name == "vanilla torchvision":
            targets = [{k: v for k, v in t.items() if k != "visible_masks"} for t in targets]
        steps[name] = stepper(model, images, targets)
        steps[name]()  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.steps):  # interleaved: a burst of load slows every model alike
        for name, one in steps.items():
            samples[name].append(one())
    times = {name: sorted(t)[len(t) // 2] for name, t in samples.items()}
    for name, t in times.items():
        print(f"{name:20s} {t:.2f} s/step (median of {args.steps})")
    print(f"R+O / vanilla  = {times['R+O'] / times['vanilla torchvision']:.2f}  (limit 1.25)")
    print(f"R+D+N / R      = {times['R+D+N'] / times['R']:.2f}  (limit 1.10)")

    if Path(args.prepared).exists():
        from daisnet.data.torch_dataset import AmodalDataset

        config = replace(base, inputs=("rgb", "depth", "normal"), occlusion_edge="mask_head")
        dataset = AmodalDataset(args.prepared, config, Path(args.prepared).parent.parent / "features" / "train.zarr",
                                Path(args.prepared).parent.parent / "depth" / "train.zarr")
        start = time.perf_counter()
        count = 20
        for i in range(count):
            dataset[i % len(dataset)]
        per_batch = (time.perf_counter() - start) / count * 2
        print(f"data loader (R+D+N+O inputs) {per_batch * 1000:.0f} ms per batch of 2; "
              f"a step / a batch = {times['R+O'] / per_batch:.1f}  (limit >= 5)")


if __name__ == "__main__":
    main()
