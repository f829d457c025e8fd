"""Is DAISnet ready for a GPU? Step cost against vanilla torchvision, bf16 against fp32, loader against step.

    .venv/bin/python benchmarks/bench_gpu.py [--profile default|gpu|paper] [--device auto] [--steps 6]
        [--amp off bf16] [--prepared data/prepared/train.zarr --features ... --depth ...] [--tiny]

For the profile's model, image size and batch (its params: params.yaml with the profile's overrides
from `daisnet.pipeline.ablation.PROFILES`), on the device:
- seconds per training step (median of `--steps`, the models interleaved step by step so that load
  from other jobs hits all alike) of vanilla torchvision Mask R-CNN (same backbone, anchors, RoI
  pooling, head widths, size and batch), DAISnet R+DN+N and R+DN+N+O, under each `--amp` mode;
- peak device memory of each (CUDA; not measured on the CPU);
- the loader: batches/s of the profile's DataLoader (workers, pinned memory) over a prepared store
  with the R+DN+N+O inputs, against steps/s, and how busy it keeps the device: a loop fed by the
  loader against the same steps on a batch already on the device;
- the projected time of the profile's whole schedule (train.iterations x seconds per step).
Prints the ratios the issue names. `--tiny` shrinks the model and images (the CI check on the CPU).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_train import batch, vanilla  # noqa: E402
from daisnet.data.torch_dataset import AmodalDataset, collate  # noqa: E402
from daisnet.device import resolve_device  # noqa: E402
from daisnet.model import ModelConfig, build_daisnet  # noqa: E402
from daisnet.model.precision import autocast  # noqa: E402
from daisnet.params import load_params  # noqa: E402
from daisnet.pipeline.ablation import PROFILES  # noqa: E402
from daisnet.train.loop import build_optimizer, make_scaler  # noqa: E402
from stages.train import model_config, train_config  # noqa: E402

TINY = dict(min_size=64, max_size=128, fpn_channels=32, mask_head_width=16, representation_size=64,
            rpn_pre_nms_top_n=(200, 100), rpn_post_nms_top_n=(100, 50), box_batch_size_per_image=64)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stepper:
    """One optimizer step of a model on a fixed batch already on the device; returns seconds."""

    def __init__(self, model: torch.nn.Module, images, targets, device: torch.device, amp: str, train) -> None:
        self.model = model.to(device).train()
        self.images = [i.to(device) for i in images]
        self.targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        self.device, self.amp = device, amp
        self.optimizer = build_optimizer([p for p in model.parameters() if p.requires_grad], train)
        self.scaler = make_scaler(device, amp)
        self.peak = 0

    def step(self, images=None, targets=None) -> float:
        sync(self.device)
        start = time.perf_counter()
        with autocast(self.device, self.amp):
            losses = self.model(images or self.images, targets or self.targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(sum(losses.values())).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        sync(self.device)
        if self.device.type == "cuda":
            self.peak = max(self.peak, torch.cuda.max_memory_allocated(self.device))
        return time.perf_counter() - start


def profile_params(name: str):
    overrides = {key: _parse(value) for key, value in PROFILES[name].items()}
    return load_params("params.yaml", overrides)


def _parse(value: str):
    import yaml

    return yaml.safe_load(value)


def loader_rate(dataset: AmodalDataset, batch_size: int, workers: int, pin: bool, count: int) -> float:
    """Batches per second of the training DataLoader's settings (after its first batch)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=workers,
                        pin_memory=pin, persistent_workers=False)
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    done = 0
    for _ in range(count):
        try:
            next(iterator)
        except StopIteration:
            iterator = iter(loader)
            next(iterator)
        done += 1
    return done / (time.perf_counter() - start)


def fed_busy(stepper: Stepper, dataset: AmodalDataset, batch_size: int, workers: int, steps: int) -> float:
    """Share of wall time the device spends on steps when the loader feeds them (1.0: never waits)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=workers,
                        pin_memory=stepper.device.type == "cuda")
    device = stepper.device
    step_seconds, fed = 0.0, 0
    iterator = iter(loader)
    images, targets = next(iterator)
    start = time.perf_counter()
    while fed < steps:
        images = [i.to(device, non_blocking=True) for i in images]
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
        step_seconds += stepper.step(images, targets)
        fed += 1
        try:
            images, targets = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            images, targets = next(iterator)
    return step_seconds / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default", choices=sorted(PROFILES))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--amp", nargs="+", default=["off", "bf16"])
    parser.add_argument("--prepared", default="data/prepared/train.zarr")
    parser.add_argument("--features", default="data/features/train.zarr")
    parser.add_argument("--depth", default="data/depth/train.zarr")
    parser.add_argument("--tiny", action="store_true", help="a tiny model at 64 x 128 (the CPU check in CI)")
    args = parser.parse_args()
    device = resolve_device(args.device, "--device")
    params = profile_params(args.profile)
    train = train_config(params)
    base: ModelConfig = model_config(params)
    height, width = params.synth.height, params.synth.width
    if args.tiny:
        base, height, width = replace(base, **TINY), 64, 128
    base = replace(base, shape_prior="off", occlusion_edge="off")
    rdnn = replace(base, inputs=("rgb", "depth_raw", "normal"))
    variants = {"vanilla torchvision": replace(base, inputs=("rgb",)), "R+DN+N": rdnn,
                "R+DN+N+O": replace(rdnn, occlusion_edge="mask_head")}
    print(f"profile {args.profile} on {device}: {width} x {height}, batch {train.batch_size}, "
          f"ResNet-{base.backbone_depth}, {train.iterations} iterations")

    steppers: dict[tuple[str, str], Stepper] = {}
    for amp in args.amp:
        for name, config in variants.items():
            torch.manual_seed(0)
            model = vanilla(config) if name.startswith("vanilla") else build_daisnet(config)
            images, targets = batch(config, height, width, n=train.batch_size)
            if name.startswith("vanilla"):
                targets = [{k: v for k, v in t.items() if k != "visible_masks"} for t in targets]
            steppers[(name, amp)] = Stepper(model, images, targets, device, amp, train)
            steppers[(name, amp)].step()  # warm-up (allocations, kernel choice)
    samples = {key: [] for key in steppers}
    for _ in range(args.steps):
        for key, stepper in steppers.items():
            samples[key].append(stepper.step())
    seconds = {key: statistics.median(values) for key, values in samples.items()}
    for (name, amp), value in seconds.items():
        peak = steppers[(name, amp)].peak
        memory = f"{peak / 2**30:.2f} GiB peak" if device.type == "cuda" else "memory not measured on the CPU"
        print(f"{name:20s} {amp:5s} {value:.3f} s/step  {memory}")
    for amp in args.amp:
        ratio = seconds[("R+DN+N", amp)] / seconds[("vanilla torchvision", amp)]
        print(f"R+DN+N / vanilla ({amp}) = {ratio:.2f}  (goal: <= 1.1 on the CPU, <= 1.15 on a GPU)")
        ratio = seconds[("R+DN+N+O", amp)] / seconds[("vanilla torchvision", amp)]
        print(f"R+DN+N+O / vanilla ({amp}) = {ratio:.2f}")
    if "off" in args.amp and "bf16" in args.amp:
        speedup = seconds[("R+DN+N", "off")] / seconds[("R+DN+N", "bf16")]
        print(f"bf16 speed-up over fp32 (R+DN+N) = {speedup:.2f}x  (goal on a GPU: >= 1.5x)")
    fastest = min(args.amp, key=lambda amp: seconds[("R+DN+N", amp)])
    hours = seconds[("R+DN+N", fastest)] * train.iterations / 3600
    print(f"projected schedule: {train.iterations} iterations x {seconds[('R+DN+N', fastest)]:.3f} s "
          f"({fastest}) = {hours:.2f} h")

    if Path(args.prepared).exists():
        config = variants["R+DN+N+O"]
        dataset = AmodalDataset(args.prepared, config, args.features, args.depth)
        rate = loader_rate(dataset, train.batch_size, train.num_workers, device.type == "cuda", max(args.steps, 8))
        step_rate = 1.0 / seconds[("R+DN+N+O", fastest)]
        print(f"loader (R+DN+N+O inputs, {train.num_workers} workers): {rate:.2f} batches/s against "
              f"{step_rate:.2f} steps/s: {rate / step_rate:.1f}x  (goal: >= 3x)")
        busy = fed_busy(steppers[("R+DN+N+O", fastest)], dataset, train.batch_size, train.num_workers, args.steps)
        print(f"device busy when fed by the loader: {100 * busy:.0f}%  (goal on a GPU: >= 90%)")
    else:
        print(f"loader not measured: no prepared store at {args.prepared}")


if __name__ == "__main__":
    main()
