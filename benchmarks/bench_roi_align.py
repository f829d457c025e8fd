"""The CPU RoIAlign by sampling (daisnet/model/roi_align.py) against torchvision's, in one run.

    .venv/bin/python benchmarks/bench_roi_align.py [--steps 6]

A default-profile training step (params.yaml `model`, batch 1 at 192 x 640, the default RoI counts)
with torchvision's `MultiScaleRoIAlign` and with `SampledMultiScaleRoIAlign` (same initial weights,
the same images, steps interleaved so load from other jobs hits both alike), then the box pooler
alone (forward + backward, 256 RoIs). The images are the first train images of the default
pipeline's stores when they exist (`dvc repro`), else bench_train's synthetic batch, which has few
objects and so few mask RoIs. Prints seconds and the ratios sampled / torchvision.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections import OrderedDict
from pathlib import Path

import torch

# Run as a script, benchmarks/ is on sys.path: the same synthetic batch and step as bench_train.
from bench_train import batch, stepper
from torchvision.ops import MultiScaleRoIAlign

from daisnet.model import build_daisnet
from daisnet.model.roi_align import SampledMultiScaleRoIAlign
from daisnet.params import load_params  # noqa: E402
from stages.train import augment_config, model_config, train_config  # noqa: E402


def configs(params):
    """(ModelConfig, TrainConfig, AugmentConfig) of a params file, as the train stage builds them."""
    return model_config(params), train_config(params), augment_config(params)


def torchvision_poolers(model: torch.nn.Module) -> torch.nn.Module:
    """The same model with torchvision's own `MultiScaleRoIAlign` in every pooling slot."""
    model = copy.deepcopy(model)
    heads = model.roi_heads
    for name in ("box_roi_pool", "mask_roi_pool"):
        pool = getattr(heads, name)
        setattr(heads, name, MultiScaleRoIAlign(pool.featmap_names, pool.output_size, pool.sampling_ratio))
    return model


def real_batches(config, count: int, root: Path = Path("data")) -> list:
    """The first `count` train images of the default pipeline as (images, targets), or []."""
    stores = [root / "prepared" / "train.zarr", root / "features" / "train.zarr", root / "depth" / "train.zarr"]
    if not all(store.exists() for store in stores):
        return []
    from daisnet.data.torch_dataset import AmodalDataset, collate

    dataset = AmodalDataset(*stores[:1], config, *stores[1:])
    return [collate([dataset[(i, i)]]) for i in range(min(count, len(dataset)))]


def median_time(fn, steps: int) -> float:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = configs(load_params("params.yaml"))[0]
    sampled = build_daisnet(config)
    assert isinstance(sampled.roi_heads.box_roi_pool, SampledMultiScaleRoIAlign)
    reference = torchvision_poolers(sampled)
    batches = real_batches(config, args.steps + 1) or [batch(config, config.min_size, config.max_size, n=1)]
    samples: dict[str, list[float]] = {"torchvision": [], "sampled": []}
    models = {"torchvision": reference, "sampled": sampled}
    for index in range(args.steps + 1):
        images, targets = batches[index % len(batches)]
        for name, model in models.items():
            seconds = stepper(model, images, targets)()
            if index > 0:  # the first step warms up
                samples[name].append(seconds)
    step = {name: sorted(t)[len(t) // 2] for name, t in samples.items()}

    g = torch.Generator().manual_seed(0)
    channels = config.fpn_channels
    features = OrderedDict((str(i), torch.randn(1, channels, 48 // 2**i, 160 // 2**i, generator=g, requires_grad=True))
                           for i in range(4))
    xy = torch.rand(256, 2, generator=g) * torch.tensor([560.0, 150.0])
    boxes = [torch.cat([xy, xy + torch.rand(256, 2, generator=g) * 70 + 6], 1)]
    pool = {}
    for name, pooler in (("torchvision", MultiScaleRoIAlign(["0", "1", "2", "3"], 7, config.roi_sampling_ratio)),
                         ("sampled", SampledMultiScaleRoIAlign(["0", "1", "2", "3"], 7, config.roi_sampling_ratio))):
        def one(pooler=pooler):
            pooler(features, boxes, [(config.min_size, config.max_size)]).sum().backward()
        one()
        pool[name] = median_time(one, 10 * args.steps)
    for name in models:
        print(f"{name:12s} training step {step[name]:.3f} s   box pooling fwd+bwd {pool[name] * 1000:.1f} ms")
    print(f"sampled / torchvision: training step {step['sampled'] / step['torchvision']:.2f}, "
          f"box pooling {pool['sampled'] / pool['torchvision']:.2f}")


if __name__ == "__main__":
    main()
