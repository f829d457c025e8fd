"""Training-step cost of DAISnet variants against vanilla torchvision Mask R-CNN, and data-loader speed.

    .venv/bin/python benchmarks/bench_train.py [--steps 4] [--height 192 --width 640]

Same backbone (ResNet-18-FPN, random weights, trainable BatchNorm), image size and batch (2) for all;
prints seconds per step and the ratios the issue names: R+O / vanilla (<= 1.25), R+D+N / R (<= 1.1),
and step time / batch-loading time (>= 5). Synthetic inputs (the step cost does not depend on pixels).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator

from daisnet.model import ModelConfig, build_daisnet
from daisnet.model.backbone import build_backbone
from daisnet.model.config import backbone_channels


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


def step_time(model: nn.Module, images, targets, steps: int) -> float:
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def one() -> None:
        losses = model(images, targets)
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()

    one()  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        one()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def vanilla(config: ModelConfig) -> nn.Module:
    sizes = tuple((s,) for s in config.anchor_sizes)
    return MaskRCNN(build_backbone(replace(config, inputs=("rgb",))), num_classes=config.num_classes,
                    min_size=config.min_size, max_size=config.max_size,
                    rpn_anchor_generator=AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes)),
                    box_batch_size_per_image=config.box_batch_size_per_image,
                    representation_size=config.representation_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--prepared", default="data/prepared/train.zarr")
    args = parser.parse_args()
    torch.manual_seed(0)
    base = ModelConfig(inputs=("rgb",), min_size=args.height, max_size=args.width, box_batch_size_per_image=128)
    variants = {
        "vanilla torchvision": (vanilla(base), base),
        "R": (build_daisnet(base), base),
        "R+O": (None, replace(base, occlusion_edge="mask_head")),
        "R+D+N": (None, replace(base, inputs=("rgb", "depth", "normal"))),
    }
    times = {}
    for name, (model, config) in variants.items():
        model = model if model is not None else build_daisnet(config)
        images, targets = batch(config, args.height, args.width)
        if name == "vanilla torchvision":
            targets = [{k: v for k, v in t.items() if k != "visible_masks"} for t in targets]
        times[name] = step_time(model, images, targets, args.steps)
        print(f"{name:20s} {times[name]:.2f} s/step")
        del model
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
