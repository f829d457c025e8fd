"""The training loop's optimizer step (fused kernels) against torch's default per-tensor loop, in one run.

    .venv/bin/python benchmarks/bench_optimizer.py [--steps 30]

The default-profile model (params.yaml `model` and `train`), every trainable parameter given a
random gradient, then `step()` timed for the optimizer `daisnet.train.loop.build_optimizer` makes
(fused on CPU and CUDA) and for the same optimizer without `fused` (torch's default on the CPU:
one tensor at a time). The two alternate so load from other jobs hits both alike. A whole
training step on this CPU is ~700 ms (docs/performance.md), so the saving is per step.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from daisnet.model import build_daisnet
from daisnet.train.loop import build_optimizer
from daisnet.params import load_params  # noqa: E402
from stages.train import augment_config, model_config, train_config  # noqa: E402


def configs(params):
    """(ModelConfig, TrainConfig, AugmentConfig) of a params file, as the train stage builds them."""
    return model_config(params), train_config(params), augment_config(params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    model_config, train_config, _ = configs(load_params(args.params))
    torch.manual_seed(0)
    params = [p for p in build_daisnet(model_config).parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    fused = build_optimizer(params, train_config)
    assert fused.defaults["fused"], "build_optimizer did not choose the fused kernels on the CPU"
    plain = build_optimizer(params, train_config, fused=False)
    seconds = {"fused": 0.0, "per_tensor": 0.0}
    for step in range(args.steps + 3):
        for name, optimizer in (("fused", fused), ("per_tensor", plain)):
            start = time.perf_counter()
            optimizer.step()
            if step >= 3:  # the first steps allocate the optimizer state
                seconds[name] += time.perf_counter() - start
    count = sum(p.numel() for p in params)
    print(f"{train_config.optimizer} step over {count / 1e6:.1f} M parameters in {len(params)} tensors, "
          f"{torch.get_num_threads()} threads, {args.steps} steps")
    for name, total in seconds.items():
        print(f"  {name:10s} {total / args.steps * 1000:7.1f} ms")
    print(f"fused / per-tensor: {seconds['fused'] / seconds['per_tensor']:.2f}x")


if __name__ == "__main__":
    main()
