"""Training BTS on the synthetic ground-truth depth of a prepared store (paper §3.3, §4.2).

The paper trains BTS on KITTI Eigen and on its synthetic data; with no KITTI here, the default
trains on the synthetic train split and reports the Eigen-protocol metrics on the synthetic val
split, next to the constant-depth baseline (per-pixel train mean) the network must clearly beat.

Recipe (BTS's, scaled to a CPU budget; every number is a param, `depth.train` in params.yaml):
- loss: scale-invariant log error, variance focus 0.85, x10 (`daisnet.depth.loss`), on pixels with
  ground truth in (min_depth, max_depth] inside each image's true size; the sky is stored at max_depth
  by the synthetic renderer and is learned like any other depth;
- AdamW, linear warm-up then polynomial decay (power 0.9) to `end_lr_factor * lr`, as BTS's schedule;
- augmentation: horizontal flip (p 0.5), gamma, brightness and per-channel colour in [0.9, 1.1] (BTS's
  KITTI ranges), a random horizontal crop (`crop_width`; BTS crops 352 x 704 on KITTI). No rotation:
  the ground plane's position in the frame is the strongest depth cue of a street scene;
- `input_scale` < 1 trains (and later predicts) on resized images, the only way to give a CPU profile
  enough iterations; the focal length is scaled with the image so focal scaling stays consistent;
- batches are read from the Zarr store image by image: memory is bounded by the batch.
From random weights the encoder's BatchNorm trains (BTS freezes it because it starts from ImageNet).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from daisnet.atomic import refuse_overlap
from daisnet.depth.bts import BtsConfig, BtsModel, normalize_images
from daisnet.depth.checkpoint import save_bts
from daisnet.depth.infer import predict_depth
from daisnet.device import resolve_device
from daisnet.depth.loss import silog_loss
from daisnet.depth.metrics import DepthMetrics, PixelMean, valid_mask
from daisnet.errors import InputError, TrainingDiverged
from daisnet.progress import format_seconds
from daisnet.stores import canvas_mask, check_complete, image_sizes, open_store, reading, require_array

MIN_DEPTH = 1e-3
CURVE_METRICS = ("abs_rel", "delta1", "rmse", "normal_angle")


@dataclass(frozen=True)
class DepthTrainConfig:
    """Knobs of `train_bts` (params.yaml `depth` and `depth.train`)."""

    encoder: str = "resnet18_bts"
    num_features: int | None = 128  # None: the official width for the encoder (512)
    max_depth: float = 80.0
    iterations: int = 650
    batch_size: int = 4
    lr: float = 2e-3
    end_lr_factor: float = 0.1
    warmup: int = 50  # iterations of linear lr warm-up: AdamW's first steps from random weights are the largest
    # Floor of the plane guidance's denominator (`LocalPlanarGuidance`): without it a plane seen
    # edge-on gives an unbounded depth and, at lr 0.002, NaN within 40 steps (docs/depth.md).
    plane_min_denominator: float | None = 0.1
    weight_decay: float = 1e-2
    bn_momentum: float = 0.1
    input_scale: float = 0.5
    upsample: str = "guided"  # bilinear | guided: how predictions at input_scale < 1 return to full size
    crop_width: int | None = None  # px at input scale; None: the full width
    augment: bool = True
    seed: int = 0
    eval_batch_size: int = 8
    log_every: int = 25
    # Train-split images scored after training (the first N): depth predicted on the split BTS learned
    # from must not be cleaner than val's, or DAISnet trains on better depth than it is tested on.
    train_eval_images: int = 100
    # Score val every this many iterations (0: only at the end): the curves of docs/depth.md. The
    # evaluations are not counted in the training time.
    eval_every: int = 0
    # The normal-angle metric's kernel and dz: the features stage's defaults (eq. 22's N = 5), fixed
    # here so that a features knob never re-trains BTS.
    normal_kernel: int = 5
    normal_dz: float = 0.8
    # torch threads (0: torch's default). On a CPU shared with other work, one thread per process
    # is several times faster than two that wait for each other (measured: docs/depth.md).
    threads: int = 2
    device: str = "auto"  # auto: the GPU when there is one
    # A BTS checkpoint (ours, or an official release file for `encoder`) to fine-tune from; None: random weights.
    init: str | None = None

    def __post_init__(self) -> None:
        if not 0 < self.input_scale <= 1:
            raise InputError(f"depth.input_scale must be in (0, 1], got {self.input_scale}", path="params.yaml")
        if self.iterations < 1 or self.batch_size < 1:
            raise InputError("depth.train.iterations and batch_size must be >= 1", path="params.yaml")
        if self.warmup < 0:
            raise InputError(f"depth.train.warmup must be >= 0 iterations, got {self.warmup}", path="params.yaml")
        if self.plane_min_denominator is not None and not 0 < self.plane_min_denominator <= 1:
            raise InputError("depth.train.plane_min_denominator must be null or in (0, 1], got "
                             f"{self.plane_min_denominator}", path="params.yaml")


@dataclass
class _Split:
    """Arrays of a prepared split, read lazily (Zarr) batch by batch."""

    path: Path
    images: Any
    depth: Any
    sizes: np.ndarray
    focal: np.ndarray
    canvas: tuple[int, int] = field(default=(0, 0))


def open_split(path: str | Path, default_focal: float | None = None) -> _Split:
    """A prepared store with `images` and `depth_gt` (synthetic data), checked."""
    group = open_store(path)
    if "depth_gt" not in group:
        raise InputError("no ground-truth depth (`depth_gt`): BTS can only be trained on data that has it "
                         "(the synthetic dataset)", path=path)
    images = require_array(group, path, "images", 4, "u")
    depth = require_array(group, path, "depth_gt", 3, "f")
    count, h, w = images.shape[:3]
    if depth.shape != (count, h, w):
        raise InputError(f"depth_gt {depth.shape} does not match images {images.shape}", path=path)
    for array in (images, depth, *(group[n] for n in ("image_size", "focal") if n in group)):
        check_complete(array, path)  # zarr would read a missing shard as black images
    sizes = image_sizes(group, path, count, (h, w))
    focal = np.asarray(group["focal"][:], np.float32) if "focal" in group else np.full(count, np.nan, np.float32)
    if np.isnan(focal).any():
        if default_focal is None:
            raise InputError("focal length unknown for some images: set depth.focal", path=path)
        focal = np.where(np.isnan(focal), np.float32(default_focal), focal)
    return _Split(Path(path), images, depth, sizes, focal, (h, w))


def _resize(x: torch.Tensor, size: tuple[int, int], *, nearest: bool) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    if nearest:  # depth targets: never blend a car's depth with the wall behind it
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _scaled(n: int, scale: float) -> int:
    """Size at input scale, rounded to a multiple of 32 (BTS's constraint)."""
    return max(32, int(round(n * scale / 32)) * 32)


def _batches(split: _Split, config: DepthTrainConfig, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
    """Endless augmented batches: (normalized images (B,3,h,w), depth (B,1,h,w), valid, focal (B,))."""
    count = len(split.sizes)
    canvas_h, canvas_w = split.canvas
    # Every training image is resized from its true size to this common size (same for a
    # synthetic split: one camera, one image size).
    out_h = _scaled(int(split.sizes[:, 0].max()), config.input_scale)
    out_w = _scaled(int(split.sizes[:, 1].max()), config.input_scale)
    while True:
        order = torch.randperm(count, generator=gen).tolist()
        for start in range(0, count - config.batch_size + 1, config.batch_size):
            idx = sorted(order[start : start + config.batch_size])
            imgs, depths, focals = [], [], []
            for i in idx:
                h, w = (int(v) for v in split.sizes[i])
                with reading(split.path, "images"):
                    img = torch.from_numpy(np.asarray(split.images[i])[:h, :w]).permute(2, 0, 1).contiguous()[None].float() / 255
                with reading(split.path, "depth_gt"):
                    dep = torch.from_numpy(np.asarray(split.depth[i])[:h, :w])[None, None]
                imgs.append(_resize(img, (out_h, out_w), nearest=False))
                depths.append(_resize(dep, (out_h, out_w), nearest=True))
                focals.append(float(split.focal[i]) * out_w / w)
            img = torch.cat(imgs)
            dep = torch.cat(depths)
            focal = torch.tensor(focals)
            if config.augment:
                img, dep = _augment(img, dep, gen)
            if config.crop_width and config.crop_width < out_w:
                cw = config.crop_width - config.crop_width % 32
                left = int(torch.randint(0, (out_w - cw) // 32 + 1, (1,), generator=gen)) * 32
                img, dep = img[..., left : left + cw], dep[..., left : left + cw]
            valid = (dep > MIN_DEPTH) & (dep <= config.max_depth) & torch.isfinite(dep)
            yield normalize_images(img), dep, valid, focal


def _augment(img: torch.Tensor, dep: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BTS's photometric augmentation (gamma, brightness, colour in [0.9, 1.1]) and horizontal flip."""
    b = img.shape[0]

    def uniform(*shape: int, low: float = 0.9, high: float = 1.1) -> torch.Tensor:
        return low + (high - low) * torch.rand(*shape, generator=gen)

    img = img.clamp(0, 1) ** uniform(b, 1, 1, 1)
    img = img * uniform(b, 1, 1, 1) * uniform(b, 3, 1, 1)
    img = img.clamp(0, 1)
    flip = torch.rand(b, generator=gen) < 0.5
    img = torch.where(flip.view(b, 1, 1, 1), img.flip(-1), img)
    dep = torch.where(flip.view(b, 1, 1, 1), dep.flip(-1), dep)
    return img, dep


def _lr_at(step: int, config: DepthTrainConfig) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = (step - config.warmup) / max(1, config.iterations - config.warmup)
    end = config.lr * config.end_lr_factor
    return (config.lr - end) * (1 - progress) ** 0.9 + end


def predict_split(model: BtsModel, split: _Split, input_scale: float, batch_size: int,
                  first: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(start index, depth (B, H, W) on the canvas) for consecutive batches of a split."""
    stop = len(split.sizes) if stop is None else stop
    for start in range(first, stop, batch_size):
        end = min(start + batch_size, stop)
        yield start, predict_depth(model, np.asarray(split.images[start:end]), split.focal[start:end],
                                   sizes=split.sizes[start:end], input_scale=input_scale)


def evaluate_split(model: BtsModel, split: _Split, config: DepthTrainConfig, baseline: np.ndarray | None = None,
                   stop: int | None = None) -> tuple[dict[str, float], dict[str, float] | None]:
    """Eigen-protocol metrics and the normal-angle error of the model (and of a constant prediction)
    over a split's first `stop` images (None: all), at full size."""
    ours = DepthMetrics(MIN_DEPTH, config.max_depth, config.normal_kernel, config.normal_dz)
    base = DepthMetrics(MIN_DEPTH, config.max_depth, config.normal_kernel, config.normal_dz) if baseline is not None else None
    for start, depth in predict_split(model, split, config.input_scale, config.eval_batch_size, stop=stop):
        gt = np.asarray(split.depth[start : start + len(depth)])
        inside = canvas_mask(split.sizes[start : start + len(depth)], split.canvas)
        ours.update(depth, gt, inside)
        if base is not None:
            base.update(np.broadcast_to(baseline, gt.shape), gt, inside)
    return ours.summary(), (base.summary() if base is not None else None)


def pixel_mean_baseline(split: _Split, max_depth: float, batch: int = 32) -> np.ndarray:
    """Per-pixel mean ground-truth depth over a split (canvas-sized), streamed batch by batch."""
    acc = PixelMean()
    for start in range(0, len(split.sizes), batch):
        gt = np.asarray(split.depth[start : start + batch])
        inside = canvas_mask(split.sizes[start : start + batch], split.canvas)
        acc.update(gt, valid_mask(gt, MIN_DEPTH, max_depth) & inside)
    return acc.value()


def initial_model(config: DepthTrainConfig, focal_reference: float) -> tuple[BtsModel, dict[str, Any] | None]:
    """BTS from random weights, or from the checkpoint `config.init` to fine-tune (§3.3, §4.2: the
    paper pretrains on KITTI's Eigen split and fine-tunes on its synthetic set).

    A checkpoint brings its architecture, depth range, focal reference and plane guidance (ours as
    stored; an official file as the release's, for `config.encoder` and `config.num_features`), so
    the first forward is the checkpoint's own. Returns the model and what it started from.
    """
    if config.init is None:
        return BtsModel(BtsConfig(encoder=config.encoder, max_depth=config.max_depth, num_features=config.num_features,
                                  focal_reference=focal_reference, bn_momentum=config.bn_momentum,
                                  input_scale=config.input_scale, upsample=config.upsample,
                                  plane_min_denominator=config.plane_min_denominator)), None
    from daisnet.depth.checkpoint import load_bts

    expected = BtsConfig(encoder=config.encoder, max_depth=config.max_depth, num_features=config.num_features)
    loaded, info = load_bts(config.init, expected)
    model = BtsModel(replace(loaded.config, input_scale=config.input_scale, bn_momentum=config.bn_momentum,
                             upsample=config.upsample))
    model.load_state_dict(loaded.state_dict())
    return model, {"path": str(config.init), "sha256": info["sha256"], "format": info["format"]}


def fit(model: BtsModel, batches: Iterator, val: _Split, config: DepthTrainConfig, device: torch.device,
        train_path: str | Path, log: Any, progress: bool) -> tuple[float, list[dict[str, float]]]:
    """AdamW on BTS's scale-invariant log loss (daisnet/depth/loss.py) for `config.iterations` batches, logging as it goes and
    scoring val every `eval_every` iterations: (training seconds without those scores, the val curve)."""
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    model.train()
    steps = range(config.iterations)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="train_depth", unit="it")
    t0, running, skipped, curve, paused = time.perf_counter(), [], 0, [], 0.0
    for step in steps:
        img, dep, valid, focal = (t.to(device, non_blocking=True) for t in next(batches))
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, config)
        if not bool(valid.any()):  # nothing to learn from (an all-invalid crop): skip, keep the count
            skipped += 1
            if skipped > max(2, config.iterations // 10):
                raise InputError(f"{skipped} training batches had no valid depth pixel: is `depth_gt` empty, "
                                 "or was the store replaced while training?", path=train_path)
            continue
        pred = model(img, focal)
        loss = silog_loss(pred, dep, valid)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"train_depth: silog loss is {loss.item()} at iteration {step + 1}; nothing was "
                                   "written. Lower depth.train.lr or lengthen depth.train.warmup.")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)  # the first steps from random weights spike
        opt.step()
        running.append(loss.item())
        if not progress and ((step + 1) % config.log_every == 0 or step + 1 == config.iterations):
            per_step = (time.perf_counter() - t0) / (step + 1)
            log(f"train_depth: iteration {step + 1}/{config.iterations}  silog loss {np.mean(running):.3f}  "
                f"lr {_lr_at(step, config):.2e}  {per_step:.2f} s/it  "
                f"{config.batch_size / per_step:.1f} images/s  ETA {format_seconds(per_step * (config.iterations - step - 1))}")
            running = []
        if config.eval_every and (step + 1) % config.eval_every == 0 and step + 1 < config.iterations:
            t_eval = time.perf_counter()
            model.eval()
            point, _ = evaluate_split(model, val, config)
            model.train()
            seconds = t_eval - t0 - paused
            curve.append({"iteration": step + 1, "train_seconds": round(seconds, 1),
                          **{k: round(point[k], 4) for k in CURVE_METRICS if k in point}})
            log(f"train_depth: iteration {step + 1}  {seconds:.0f} s  val " +
                "  ".join(f"{k} {point[k]:.4f}" for k in CURVE_METRICS if k in point))
            paused += time.perf_counter() - t_eval
    return time.perf_counter() - t0 - paused, curve


def final_report(model: BtsModel, train: _Split, val: _Split, config: DepthTrainConfig) -> dict[str, Any]:
    """The trained network's val and train metrics beside the per-pixel-mean baseline's, with counts
    and `eval_seconds`."""
    model.eval()
    t1 = time.perf_counter()
    baseline_map = pixel_mean_baseline(train, config.max_depth)
    val_metrics, base_metrics = evaluate_split(model, val, config, baseline_map)
    assert base_metrics is not None
    train_images = min(config.train_eval_images, len(train.sizes))
    train_metrics, _ = evaluate_split(model, train, config, stop=train_images) if train_images else ({}, None)
    metrics = {
        "val": {k: round(v, 4) for k, v in val_metrics.items()},
        "train": {k: round(v, 4) for k, v in train_metrics.items()},
        "baseline_pixel_mean": {k: round(v, 4) for k, v in base_metrics.items()},
        "abs_rel_vs_baseline": round(val_metrics["abs_rel"] / base_metrics["abs_rel"], 4),
        # > 1: the train split's depth is cleaner than val's (what out-of-fold prediction corrects)
        **({"train_val_abs_rel_ratio": round(val_metrics["abs_rel"] / train_metrics["abs_rel"], 4)}
           if train_images else {}),
        "eval_seconds": round(time.perf_counter() - t1, 1),
        "iterations": config.iterations,
        "val_images": len(val.sizes),
        "train_images_scored": train_images,
    }
    return metrics


def train_bts(
    train_path: str | Path,
    val_path: str | Path,
    checkpoint_path: str | Path,
    config: DepthTrainConfig,
    *,
    progress: bool = False,
    log: Any = None,
) -> dict[str, Any]:
    """Train BTS on `train_path`'s ground-truth depth; write the checkpoint.

    Returns the report: `val` and `train` metrics of the network, `baseline_pixel_mean` (per-pixel
    train mean), counts, `*_seconds` timings and, with `eval_every`, the val `curve`.
    """
    refuse_overlap([checkpoint_path], [train_path, val_path])
    if log is None:  # flushed: DVC and CI read the lines through a pipe
        def log(line: str) -> None:
            print(line, flush=True)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    train, val = open_split(train_path), open_split(val_path)
    if config.batch_size > len(train.sizes):  # no full batch could ever be drawn: it would loop forever
        raise InputError(f"depth.train.batch_size {config.batch_size} is larger than the {len(train.sizes)} images of "
                         "the train split: lower it", path=train_path)
    # Focal scaling relative to the training camera at the training scale: factor 1 on our data.
    focal_ref = float(np.median(train.focal)) * _scaled(int(train.sizes[:, 1].max()), config.input_scale) / float(
        train.sizes[:, 1].max())
    model, init = initial_model(config, focal_ref)
    device = resolve_device(config.device, "depth.train.device")
    model = model.to(device)
    train_seconds, curve = fit(model, _batches(train, config, gen), val, config, device, train_path, log, progress)
    metrics = final_report(model, train, val, config)
    metrics["train_seconds"] = round(train_seconds, 1)
    # No timings in the checkpoint: the same settings must give the same file (docs/reproducibility.md).
    untimed = {k: v for k, v in metrics.items() if not k.endswith("_seconds")}
    save_bts(checkpoint_path, model, {"train": asdict(config), "metrics": untimed, "train_store": str(train_path),
                                      **({"init": init} if init else {})})
    return {**metrics, "curve": curve} if curve else metrics

