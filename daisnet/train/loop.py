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
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler

from daisnet.atomic import refuse_unwritable
from daisnet.data.torch_dataset import AmodalDataset, collate
from daisnet.device import resolve_device
from daisnet.errors import InputError, TrainingDiverged
from daisnet.hashing import fingerprint
from daisnet.model import ModelConfig, build_daisnet, checkpoint
from daisnet.progress import format_seconds
from daisnet.train.schedule import learning_rate

OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class TrainConfig:
    iterations: int = 300
    batch_size: int = 2
    lr: float = 0.02
    optimizer: str = "sgd"  # sgd (the paper) | adamw (momentum is then Adam's beta1)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    # false: no weight decay on biases and normalization scales (1-D parameters), as many
    # detection recipes do; true decays every parameter (torchvision's reference scripts' default).
    decay_norm_and_bias: bool = True
    warmup_iters: int = 100  # eq. 27: t
    warmup_power: float = 1.3  # eq. 27: p
    warmup_factor: float = 1.0  # eq. 27: f
    decay_milestones: tuple[float, ...] = (0.8,)
    decay_gamma: float = 0.1
    decay: str = "step"  # step (at decay_milestones) | cosine (to 0 at the last iteration)
    grad_clip: float = 10.0  # max gradient norm; 0 = off (initial norms ~200 from random weights)
    crop_width: int | None = None  # px: train on random full-height windows this wide (AmodalDataset)
    checkpoint_every: int = 100
    log_every: int = 10
    num_workers: int = 1
    processes: int = 1  # local DDP processes (daisnet/train/launch.py); torchrun's count wins
    device: str = "auto"
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


def _check_finite(losses: dict[str, torch.Tensor], iteration: int, last_good: Path | None) -> None:
    for name, value in losses.items():
        if not torch.isfinite(value).all():
            kept = f"the last good checkpoint {last_good} is kept" if last_good else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"iteration {iteration}: loss term {name!r} is {value.item()} (non-finite); {kept}. "
                "Lower train.lr, lengthen train.warmup_iters or set train.grad_clip.")


def train(model_config: ModelConfig, train_config: TrainConfig, dataset: AmodalDataset, out: Path,
          work_dir: Path, logger: Any | None = None, fingerprint_extra: dict | None = None,
          rgb_stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
          meta_extra: dict[str, Any] | None = None,
          shape_prior: tuple[str | Path, str | Path] | None = None) -> dict[str, Any]:
    """Train and write the final checkpoint to `out`; resumable from `work_dir/last.pt` (an interrupted
    run's; a completed run removes it).

    A checkpoint in `work_dir` is resumed only when it was started with the same configuration
    (fingerprint of both configs and `fingerprint_extra`, e.g. the data's identity).
    `rgb_stats` (mean, std) normalize RGB (eq. 2); ImageNet's by default. `meta_extra` goes into the
    final checkpoint's metadata (e.g. the feature params and statistics `daisnet predict` needs).
    `shape_prior` = (shape autoencoder, codebook) files fill the shape-prior refiner when
    `model.shape_prior: on` (the config's `shape_prior_codewords` must match the codebook:
    `daisnet.shape.codebook.configure_shape_prior`); the codebook then travels in the checkpoint.
    Returns a summary (iterations, seconds, last losses).
    """
    rank, world = _distributed()
    # Found now, not when the first checkpoint or the final model is written.
    refuse_unwritable(Path(work_dir) / "last.pt")
    refuse_unwritable(out)
    device = resolve_device(train_config.device, "train.device")
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.manual_seed(train_config.seed + rank)
    model = build_daisnet(model_config, **({"rgb_mean": rgb_stats[0], "rgb_std": rgb_stats[1]} if rgb_stats else {}))
    if model_config.weights not in ("random", "imagenet"):
        init = checkpoint.load(model_config.weights)
        missing, unexpected = model.load_state_dict(init["model"], strict=False)
        # The shape-prior refiner is filled from its own files just below.
        real_missing = [k for k in missing if not k.endswith("num_batches_tracked")
                        and not k.startswith("roi_heads.amodal_refiners.")]
        if real_missing:
            raise InputError(f"initial weights lack {real_missing[0]} (and {len(real_missing) - 1} more)",
                             path=model_config.weights)
    if model_config.shape_prior == "on":
        if shape_prior is None:
            raise InputError("model.shape_prior: on needs the shape autoencoder and the codebook "
                             "(data/models/shape_ae.pt, data/models/codebook.npz)", path="params.yaml")
        from daisnet.shape.codebook import load_shape_prior

        record = load_shape_prior(model, *shape_prior)
        meta_extra = {**(meta_extra or {}), "shape_prior": record}
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, train_config)

    run_id = fingerprint({"model": checkpoint.config_to_meta(model_config),
                                     "train": _train_meta(train_config), "world": world, "rgb": rgb_stats, **(fingerprint_extra or {})})
    work_dir = Path(work_dir)
    last_path = work_dir / "last.pt"
    start = 0
    state = _resume_state(last_path, run_id, train_config.iterations, rank, world)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"][rank] if world > 1 else state["rng"][0])
        start = int(state["meta"]["iteration"])
        if rank == 0:
            print(f"resuming from {last_path} at iteration {start}", flush=True)

    train_model: torch.nn.Module = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    sampler = IterationSampler(len(dataset), train_config.batch_size, train_config.iterations,
                               train_config.seed, start, rank, world)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                        num_workers=train_config.num_workers,
                        pin_memory=device.type == "cuda",
                        # Its own generator: creating the iterator must not draw from the global RNG
                        # (a resumed run would then sample RoIs differently).
                        generator=torch.Generator().manual_seed(train_config.seed))
    train_model.train()
    last_good = last_path if start > 0 else None
    summary: dict[str, Any] = {"start_iteration": start}
    begin = time.perf_counter()
    iteration = start
    for images, targets in loader:
        lr = learning_rate(iteration, train_config.lr, train_config.iterations, train_config.warmup_iters,
                           train_config.warmup_power, train_config.warmup_factor,
                           tuple(train_config.decay_milestones), train_config.decay_gamma, train_config.decay)
        for group in optimizer.param_groups:
            group["lr"] = lr
        images = [img.to(device, non_blocking=True) for img in images]
        losses = train_model(images, _move(targets, device))
        _check_finite(losses, iteration, last_good)
        total = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, train_config.grad_clip if train_config.grad_clip > 0 else math.inf)
        optimizer.step()
        iteration += 1
        if rank == 0 and (iteration % train_config.log_every == 0 or iteration == train_config.iterations):
            values = {"loss": float(total.detach()), "lr": lr, "grad_norm": float(grad_norm),
                      **{k: float(v.detach()) for k, v in losses.items()}}
            if logger is not None:
                logger.log(iteration, values)
            print(progress_line(iteration, train_config.iterations, start, time.perf_counter() - begin,
                                train_config.batch_size * world, values), flush=True)
        # Resume points only: the last iteration's state goes to `out` below, not to last.pt.
        if iteration % train_config.checkpoint_every == 0 and iteration < train_config.iterations:
            rngs = _gather_rng(world)
            if rank == 0:
                checkpoint.save(last_path, {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": rngs,
                    "meta": {"run_id": run_id, "iteration": iteration},
                })
                last_good = last_path
    summary.update(iterations=iteration, seconds=time.perf_counter() - begin)
    if rank == 0:
        checkpoint.save(out, {"model": model.state_dict(), "meta": {
            "model_config": checkpoint.config_to_meta(model_config), "train_config": _train_meta(train_config),
            "iterations": iteration, "run_id": run_id,
            "rgb_mean": list(model.transform.image_mean[:3]) if "rgb" in model_config.inputs else None,
            "rgb_std": list(model.transform.image_std[:3]) if "rgb" in model_config.inputs else None,
            **(meta_extra or {}),
        }})
        # The run is complete: its last resume point goes. A later run with the same settings (after
        # a code change, say) must train anew, not "resume" from this run's checkpoint.
        last_path.unlink(missing_ok=True)
    if world > 1:
        dist.barrier()
    return summary


def _resume_state(last_path: Path, run_id: str, iterations: int, rank: int, world: int) -> dict[str, Any] | None:
    """The state to resume from: `last_path` when this run (same settings and data) left it unfinished.

    A last.pt of another run is not overwritten without a word (it may hold hours of work): it is
    moved to last.<its run id>.pt, with a notice; renaming it back to last.pt resumes that run.
    """
    state = checkpoint.load(last_path) if last_path.is_file() else None
    if world > 1:
        dist.barrier()  # every rank has read it before rank 0 may move it
    if state is None:
        return None
    meta = state.get("meta") if isinstance(state, dict) and isinstance(state.get("meta"), dict) else {}
    other, iteration = meta.get("run_id"), meta.get("iteration")
    if other == run_id:
        # Unfinished only: a finished run's last.pt (left by older versions) is not resumed.
        return state if isinstance(iteration, int) and iteration < iterations and "optimizer" in state else None
    if rank == 0:
        tag = other if isinstance(other, str) and re.fullmatch(r"[0-9a-f]{8,64}", other) else "other-run"
        aside = last_path.with_name(f"last.{tag}.pt")
        os.replace(last_path, aside)
        print(f"{last_path} is another run's resume point (other settings or data, iteration "
              f"{iteration}): moved to {aside}, not overwritten; rename it back to last.pt "
              "to resume that run", flush=True)
    return None


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


def _gather_rng(world: int) -> list[torch.Tensor]:
    """Every rank's torch RNG state (rank 0 saves them all, so each rank resumes its own)."""
    state = torch.get_rng_state()
    if world == 1:
        return [state]
    gathered = [torch.empty_like(state) for _ in range(world)]
    dist.all_gather(gathered, state)
    return gathered


def _train_meta(config: TrainConfig) -> dict[str, Any]:
    meta = asdict(config)
    meta.pop("extra", None)
    # Neither changes the result: a run may resume with other values.
    meta.pop("num_workers", None)
    meta.pop("log_every", None)
    meta.pop("processes", None)  # the fingerprint records the world size itself
    return {k: list(v) if isinstance(v, tuple) else v for k, v in meta.items()}
