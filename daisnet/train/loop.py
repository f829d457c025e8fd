"""The DAISnet training loop: SGD with the smooth warm-up (eq. 27), resumable, CPU/GPU, DDP.

Determinism: the data order of epoch e is a permutation seeded by (seed, e); augmentation draws are
keyed by the iteration; the torch RNG (RoI sampling) is saved in every checkpoint. So a run killed
after a checkpoint and resumed ends with the weights of an uninterrupted run (tests/test_train.py).

Distributed: under `torchrun` (WORLD_SIZE > 1) each process takes its share of every global batch
and gradients are averaged by DistributedDataParallel (gloo on CPU, nccl on GPU). Rank 0 logs and
writes checkpoints.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from daisnet.atomic import refuse_unwritable
from daisnet.data.torch_dataset import AmodalDataset, collate
from daisnet.device import resolve_device
from daisnet.errors import InputError, TrainingDiverged
from daisnet.hashing import fingerprint
from daisnet.model import ModelConfig, checkpoint
from daisnet.model.factory import RgbStats, build_model
from daisnet.model.precision import autocast
from daisnet.progress import format_seconds
from daisnet.train.checkpointer import Checkpointer
from daisnet.train.schedule import learning_rate

OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class TrainConfig:
    iterations: int = 800
    batch_size: int = 1
    lr: float = 0.0005
    optimizer: str = "adamw"  # sgd (the paper) | adamw (momentum is then Adam's beta1)
    momentum: float = 0.9
    weight_decay: float = 0.05
    # false: no weight decay on biases and normalization scales (1-D parameters), as many
    # detection recipes do; true decays every parameter (torchvision's reference scripts' default).
    decay_norm_and_bias: bool = False
    warmup_iters: int = 120  # eq. 27: t
    warmup_power: float = 1.3  # eq. 27: p
    warmup_factor: float = 1.0  # eq. 27: f
    decay_milestones: tuple[float, ...] = (0.8,)
    decay_gamma: float = 0.1
    decay: str = "cosine"  # step (at decay_milestones) | cosine (to 0 at the last iteration)
    grad_clip: float = 10.0  # max gradient norm; 0 = off (initial norms ~200 from random weights)
    crop_width: int | None = None  # px: train on random full-height windows this wide (AmodalDataset)
    checkpoint_every: int = 50
    snapshot_every: int = 0  # keep the model every this many iterations (0: only the final one): AP curves
    log_every: int = 10
    num_workers: int = 0
    processes: int = 1  # local DDP processes (daisnet/train/launch.py); torchrun's count wins
    device: str = "auto"
    amp: str = "off"  # off | bf16 | fp16 (daisnet/model/precision.py)
    seed: int = 0
    extra: dict = field(default_factory=dict, compare=False)


class IterationSampler(Sampler):
    """Yields the global batches of iterations [start, total), each item keyed `(index, iteration)`.

    Epoch e visits the images in the order of a permutation seeded by (seed, e); the process of rank
    r takes items r, r + world, ... of each global batch.
    """

    def __init__(self, size: int, batch_size: int, total: int, seed: int, start: int = 0,
                 rank: int = 0, world: int = 1) -> None:
        self.size, self.batch_size, self.total, self.seed = size, batch_size, total, seed
        self.start, self.rank, self.world = start, rank, world

    def global_batch(self, iteration: int) -> list[int]:
        per = self.batch_size * self.world
        first = iteration * per
        out = []
        for position in range(first, first + per):
            epoch, offset = divmod(position, self.size)
            order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
            out.append(int(order[offset]))
        return out

    def __iter__(self):
        for iteration in range(self.start, self.total):
            batch = self.global_batch(iteration)[self.rank::self.world]
            yield [(index, iteration) for index in batch]

    def __len__(self) -> int:
        return self.total - self.start


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return (dist.get_rank(), dist.get_world_size()) if world > 1 else (0, 1)


def _move(targets: list[dict[str, torch.Tensor]], device: torch.device) -> list[dict[str, torch.Tensor]]:
    return [{k: v.to(device) for k, v in t.items()} for t in targets]


def progress_line(iteration: int, total: int, start: int, seconds: float, images_per_step: int,
                  values: dict[str, float]) -> str:
    """One log line (detectron2's habit): iteration, losses, lr, s/it, images/s, ETA."""
    per_step = seconds / max(1, iteration - start)
    terms = "  ".join(f"{name} {value:.4f}" for name, value in values.items() if name not in ("lr", "grad_norm"))
    return (f"train: iteration {iteration}/{total}  {terms}  lr {values['lr']:.2e}  {per_step:.3f} s/it  "
            f"{images_per_step / per_step if per_step > 0 else 0.0:.2f} images/s  "
            f"ETA {format_seconds(per_step * (total - iteration))}")


class FiniteCheck:
    """Loss values kept on the device and checked for NaN/inf in one host sync every few iterations.

    Checking each iteration (`.item()` on every term) would stall a GPU at every step. The values are
    stacked as they come and checked when the loop syncs anyway (a log line) and before every
    checkpoint, so a diverged state is never saved; the error still names the first bad iteration
    and loss term.
    """

    def __init__(self) -> None:
        self.pending: list[tuple[int, list[str], torch.Tensor]] = []

    def add(self, iteration: int, losses: dict[str, torch.Tensor]) -> None:
        self.pending.append((iteration, list(losses), torch.stack([v.detach().float() for v in losses.values()])))

    def check(self, last_good: Path | None) -> None:
        if not self.pending:
            return
        finite = torch.isfinite(torch.stack([values for _, _, values in self.pending])).all(dim=1).cpu()
        pending, self.pending = self.pending, []
        if bool(finite.all()):
            return
        iteration, names, values = pending[int((~finite).nonzero()[0])]
        term = int((~torch.isfinite(values)).nonzero()[0])
        kept = f"the last good checkpoint {last_good} is kept" if last_good else "no checkpoint was written yet"
        raise TrainingDiverged(
            f"iteration {iteration}: loss term {names[term]!r} is {values[term].item()} (non-finite); {kept}. "
            "Lower train.lr, lengthen train.warmup_iters or set train.grad_clip.")


class Logger(Protocol):
    """Where the curves go (`daisnet.pipeline.live.DvcLiveLogger`; tests use their own)."""

    def log(self, iteration: int, values: dict[str, float]) -> None: ...


def train(model_config: ModelConfig, train_config: TrainConfig, dataset: AmodalDataset, out: Path,
          work_dir: Path, logger: Logger | None = None, fingerprint_extra: dict | None = None,
          rgb_stats: RgbStats | None = None, meta_extra: dict[str, Any] | None = None,
          shape_prior: tuple[str | Path, str | Path] | None = None,
          snapshot_dir: Path | None = None) -> dict[str, Any]:
    """Train and write the final checkpoint to `out`, with `meta_extra` in its metadata (what
    `daisnet predict` needs: the stage puts the feature params there). Torchvision's reference
    shape: the model from `build_model`, resume points from a `Checkpointer`, the iterations in
    `train_loop`.

    Resumable from `work_dir/last.pt` when it was started with the same configuration
    (fingerprint of both configs and `fingerprint_extra`, e.g. the data's identity); a logger with a
    `start(resumed)` method is told which. Returns a summary (iterations, seconds, start).
    With `snapshot_dir` and `train_config.snapshot_every`, the model is also kept every that many
    iterations as `snapshot_dir/model-<iteration>.pt`, a checkpoint like the final one (AP curves).
    """
    rank, world = _distributed()
    # Found now, not when the first checkpoint or the final model is written.
    refuse_unwritable(Path(work_dir) / "last.pt")
    refuse_unwritable(out)
    device = resolve_device(train_config.device, "train.device")
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.manual_seed(train_config.seed + rank)
    model, loaded = build_model(model_config, rgb_stats, shape_prior)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, train_config)
    run_id = fingerprint({"model": checkpoint.config_to_meta(model_config), "train": _train_meta(train_config),
                          "world": world, "rgb": rgb_stats, **(fingerprint_extra or {})})
    checkpointer = Checkpointer(work_dir, run_id, train_config.iterations, rank, world)
    scaler = make_scaler(device, train_config.amp)
    start = checkpointer.resume(model, optimizer, scaler)
    if rank == 0 and hasattr(logger, "start"):
        logger.start(resumed=start > 0)  # type: ignore[union-attr]
    train_model: torch.nn.Module = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    loader = make_loader(dataset, train_config, start, rank, world, pin_memory=device.type == "cuda")

    def model_file(iteration: int) -> dict[str, Any]:
        return {"model": model.state_dict(), "meta": {
            "model_config": checkpoint.config_to_meta(model_config), "train_config": _train_meta(train_config),
            "iterations": iteration, "run_id": run_id,
            "rgb_mean": list(model.transform.image_mean[:3]) if "rgb" in model_config.inputs else None,
            "rgb_std": list(model.transform.image_std[:3]) if "rgb" in model_config.inputs else None,
            **loaded, **(meta_extra or {}),
        }}

    on_snapshot = None
    if rank == 0 and snapshot_dir is not None and train_config.snapshot_every > 0:
        Path(snapshot_dir).mkdir(parents=True, exist_ok=True)

        def on_snapshot(iteration: int) -> None:
            checkpoint.save(Path(snapshot_dir) / f"model-{iteration}.pt", model_file(iteration))

    summary = train_loop(train_model, optimizer, loader, partial(schedule_of, train_config), checkpointer,
                         logger if rank == 0 else None, config=train_config, start=start, device=device,
                         images_per_step=train_config.batch_size * world, scaler=scaler, on_snapshot=on_snapshot)
    if rank == 0:
        checkpoint.save(out, model_file(summary["iterations"]))
    checkpointer.finish()
    if world > 1:
        dist.barrier()
    return summary


def make_scaler(device: torch.device, amp: str) -> torch.amp.GradScaler:
    """fp16's loss scaling (its gradients underflow without it); disabled, a pass-through, otherwise."""
    return torch.amp.GradScaler(device.type, enabled=amp == "fp16")


def schedule_of(config: TrainConfig, iteration: int) -> float:
    """The learning rate of an iteration: warm-up (eq. 27), then step or cosine decay."""
    return learning_rate(iteration, config.lr, config.iterations, config.warmup_iters, config.warmup_power,
                         config.warmup_factor, tuple(config.decay_milestones), config.decay_gamma, config.decay)


def make_loader(dataset: AmodalDataset, config: TrainConfig, start: int, rank: int, world: int,
                pin_memory: bool = False) -> DataLoader:
    """The batches of iterations [start, total) that this process trains on."""
    sampler = IterationSampler(len(dataset), config.batch_size, config.iterations, config.seed, start, rank, world)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=config.num_workers,
                      pin_memory=pin_memory,
                      # Its own generator: creating the iterator must not draw from the global RNG
                      # (a resumed run would then sample RoIs differently).
                      generator=torch.Generator().manual_seed(config.seed))


def train_loop(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader,
               schedule: Callable[[int], float], checkpointer: Checkpointer, logger: Logger | None, *,
               config: TrainConfig, start: int, device: torch.device, images_per_step: int,
               scaler: torch.amp.GradScaler | None = None,
               on_snapshot: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Iterations [start, config.iterations): forward (under `config.amp`'s autocast), backward,
    clip, step; losses checked for NaN/inf at every log line and checkpoint; logs every `log_every`,
    a resume point every `checkpoint_every` (not at the last: that state is the model's)."""
    scaler = scaler if scaler is not None else make_scaler(device, config.amp)
    # In the model's order: the clipping norm sums in this order (another order moves its last bits).
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    begin = time.perf_counter()
    iteration = start
    finite = FiniteCheck()
    for images, targets in loader:
        lr = schedule(iteration)
        for group in optimizer.param_groups:
            group["lr"] = lr
        images = [img.to(device, non_blocking=True) for img in images]
        with autocast(device, config.amp):
            losses = model(images, _move(targets, device))
        finite.add(iteration, losses)
        total = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.unscale_(optimizer)  # clip the true gradients (a no-op without fp16)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip if config.grad_clip > 0 else math.inf)
        scaler.step(optimizer)  # fp16: skipped when a gradient overflowed, and the scale lowered
        scaler.update()
        iteration += 1
        if iteration % config.log_every == 0 or iteration == config.iterations:
            finite.check(checkpointer.last_good)
            values = {"loss": float(total.detach()), "lr": lr, "grad_norm": float(grad_norm),
                      **{k: float(v.detach()) for k, v in losses.items()}, **training_statistics(model)}
            if logger is not None:
                logger.log(iteration, values)
            if checkpointer.rank == 0:
                print(progress_line(iteration, config.iterations, start, time.perf_counter() - begin,
                                    images_per_step, values), flush=True)
        if on_snapshot is not None and iteration % config.snapshot_every == 0 and iteration < config.iterations:
            finite.check(checkpointer.last_good)
            on_snapshot(iteration)  # before the resume point: a run killed in between redoes both
        if iteration % config.checkpoint_every == 0 and iteration < config.iterations:
            finite.check(checkpointer.last_good)
            unwrapped = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
            checkpointer.save(iteration, unwrapped, optimizer, scaler)
    finite.check(checkpointer.last_good)
    return {"start_iteration": start, "iterations": iteration, "seconds": time.perf_counter() - begin}


def training_statistics(model: torch.nn.Module) -> dict[str, float]:
    """The model's own figures since the last log line (DAISnet: the edge head's precision, recall
    and F1 on its training RoIs), for the log and dvclive; none for a model without them."""
    unwrapped = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    pop = getattr(unwrapped, "pop_training_statistics", None)
    return pop() if pop is not None else {}


def parameter_groups(params: list[torch.nn.Parameter], config: TrainConfig) -> list[dict[str, Any]]:
    """One group decayed by `weight_decay`; with `decay_norm_and_bias: false`, 1-D parameters
    (biases, BatchNorm and GroupNorm scales) in a second group without decay."""
    if config.decay_norm_and_bias:
        return [{"params": params, "weight_decay": config.weight_decay}]
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": config.weight_decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


def build_optimizer(params: list[torch.nn.Parameter], config: TrainConfig,
                    fused: bool | None = None) -> torch.optim.Optimizer:
    """SGD with momentum (the paper, §4.2) or AdamW (`train.optimizer`); lr is set per iteration.

    `fused=None` uses torch's fused kernels wherever they exist (CPU, CUDA): on the CPU torch's
    default updates one tensor at a time, and AdamW's step then costs ~6x more (~60 ms of a
    0.7-0.85 s default step; benchmarks/bench_optimizer.py, docs/performance.md).
    """
    groups = parameter_groups(params, config)
    if fused is None:
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, fused=fused)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=(config.momentum, 0.999), fused=fused)
    raise InputError(f"train.optimizer must be one of {list(OPTIMIZERS)}, got {config.optimizer!r}", path="params.yaml")


def _train_meta(config: TrainConfig) -> dict[str, Any]:
    meta = asdict(config)
    meta.pop("extra", None)
    # Neither changes the result: a run may resume with other values.
    meta.pop("num_workers", None)
    meta.pop("log_every", None)
    meta.pop("snapshot_every", None)
    meta.pop("processes", None)  # the fingerprint records the world size itself
    return {k: list(v) if isinstance(v, tuple) else v for k, v in meta.items()}
