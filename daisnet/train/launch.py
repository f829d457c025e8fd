"""Run a training entry point in `train.processes` local processes (DistributedDataParallel).

Under `torchrun` (WORLD_SIZE set) the entry point runs as it is: torchrun already made the
processes. Otherwise, with processes > 1, `torch.multiprocessing.spawn` starts them on this machine
with the environment torchrun would give them (RANK, WORLD_SIZE, a free MASTER_PORT), so
`dvc repro` needs no launcher in its command. On a 2-core CPU two processes of one thread each
delivered 1.1-1.2x the images per second of one two-thread process, but no better AP in the same
15 minutes at twice the batch (docs/model.md, runs G1 and G3): the default is one process; this is
for several GPUs or larger machines.

A worker's error is printed by the worker (`error: ...`, one line) and ends the whole run with its
exit status; spawn stops the other processes, which would otherwise wait forever in the next
gradient all-reduce.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.multiprocessing as mp

from daisnet.errors import exit_on_input_error


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def threads_per_process(processes: int) -> int:
    """Split this machine's cores between the processes (at least one thread each)."""
    return max(1, (os.cpu_count() or 1) // processes)


def _worker(rank: int, entry: Callable[..., Any], args: tuple, processes: int, port: int) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(processes),
                       "LOCAL_WORLD_SIZE": str(processes), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(threads_per_process(processes))
    with exit_on_input_error():  # a bad input or a diverged run: one line, non-zero exit
        entry(*args)


def launch(entry: Callable[..., Any], args: tuple, processes: int) -> None:
    """Call `entry(*args)` once per process; returns when all finished, exits on a worker's failure."""
    if processes == 1 or "WORLD_SIZE" in os.environ:
        entry(*args)
        return
    try:
        mp.spawn(_worker, args=(entry, args, processes, free_port()), nprocs=processes, join=True)
    except mp.ProcessExitedException as exc:
        # The worker has printed its reason; spawn's own traceback would only bury it.
        sys.exit(exc.exit_code if exc.exit_code and exc.exit_code > 0 else 1)
