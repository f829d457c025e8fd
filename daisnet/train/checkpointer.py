"""Resume points of a training run: `work_dir/last.pt`, written every `checkpoint_every` iterations.

A resume point is used only by a run with the same settings (its `run_id`, a fingerprint of the
configs and the data's identity) that has not finished. One of another run is moved aside with a
notice, never silently overwritten: it may be the only copy of hours of training.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
import torch.distributed as dist

from daisnet.model import checkpoint


class Checkpointer:
    def __init__(self, work_dir: str | Path, run_id: str, iterations: int, rank: int = 0, world: int = 1) -> None:
        self.path = Path(work_dir) / "last.pt"
        self.run_id, self.iterations, self.rank, self.world = run_id, iterations, rank, world
        self.last_good: Path | None = None

    def resume(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler | None = None) -> int:
        """Load this run's resume point into model, optimizer, fp16 loss scaler and the RNG; the
        iteration to start at."""
        state = checkpoint.load(self.path) if self.path.is_file() else None
        if self.world > 1:
            dist.barrier()  # every rank has read it before rank 0 may move it aside
        if state is None:
            return 0
        meta = state.get("meta") if isinstance(state, dict) and isinstance(state.get("meta"), dict) else {}
        other, iteration = meta.get("run_id"), meta.get("iteration")
        if other != self.run_id:
            self._set_aside(other, iteration)
            return 0
        # Unfinished only: a finished run's last.pt (left by older versions) is not resumed.
        if not (isinstance(iteration, int) and iteration < self.iterations and "optimizer" in state):
            return 0
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and scaler.is_enabled() and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"][self.rank] if self.world > 1 else state["rng"][0])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["cuda_rng"][self.rank if self.world > 1 else 0])
        self.last_good = self.path
        if self.rank == 0:
            print(f"resuming from {self.path} at iteration {iteration}", flush=True)
        return iteration

    def _set_aside(self, other: object, iteration: object) -> None:
        if self.rank != 0:
            return
        tag = other if isinstance(other, str) and re.fullmatch(r"[0-9a-f]{8,64}", other) else "other-run"
        aside = self.path.with_name(f"last.{tag}.pt")
        os.replace(self.path, aside)
        print(f"notice: {self.path} is another run's resume point (other settings or data, iteration "
              f"{iteration}): moved to {aside}, not overwritten; rename it back to last.pt to resume that run",
              flush=True)

    def save(self, iteration: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scaler: torch.amp.GradScaler | None = None) -> None:
        """A resume point after `iteration` iterations (every rank takes part: the RNG states are gathered)."""
        rngs = gather_rng_states(self.world)
        cuda_rngs = gather_cuda_rng_states(self.world)
        if self.rank == 0:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": rngs,
                     "meta": {"run_id": self.run_id, "iteration": iteration}}
            if cuda_rngs:
                state["cuda_rng"] = cuda_rngs  # RoI sampling on a GPU draws from its generator
            if scaler is not None and scaler.is_enabled():
                state["scaler"] = scaler.state_dict()  # fp16's current loss scale and its growth tracker
            checkpoint.save(self.path, state)
        self.last_good = self.path

    def finish(self) -> None:
        """The run is complete: its resume point goes. A later run with the same settings (after a code
        change, say) must train anew, not "resume" from this run's end."""
        if self.rank == 0:
            self.path.unlink(missing_ok=True)


def gather_rng_states(world: int) -> list[torch.Tensor]:
    """Every rank's torch RNG state (rank 0 saves them all, so each rank resumes its own)."""
    state = torch.get_rng_state()
    if world == 1:
        return [state]
    gathered = [torch.empty_like(state) for _ in range(world)]
    dist.all_gather(gathered, state)
    return gathered


def gather_cuda_rng_states(world: int) -> list[torch.Tensor]:
    """Every rank's current CUDA generator state ([] when CUDA is not in use)."""
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return []
    state = torch.cuda.get_rng_state()
    if world == 1:
        return [state]
    gathered: list = [None] * world
    dist.all_gather_object(gathered, state)  # CPU tensors: all_gather_object works under nccl too
    return gathered
