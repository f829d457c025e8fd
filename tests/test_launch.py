"""daisnet.train.launch: the `train.processes` local processes the train stage starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from daisnet.errors import InputError
from daisnet.train.launch import launch, threads_per_process


def _all_reduce_ranks(out_dir: str) -> None:
    # A real gloo group: the processes find each other through the environment launch() set.
    dist.init_process_group("gloo")
    total = torch.tensor([float(dist.get_rank())])
    dist.all_reduce(total)
    Path(out_dir, f"rank{dist.get_rank()}").write_text(f"{dist.get_world_size()} {total.item()} "
                                                       f"{torch.get_num_threads()}")
    dist.destroy_process_group()


def _refuse(path: str) -> None:
    if os.environ["RANK"] == "1":
        raise InputError("planted problem", path=path)
    dist.init_process_group("gloo")
    dist.barrier()  # would wait forever for rank 1: launch must stop it


def test_two_processes_form_one_group(tmp_path):
    launch(_all_reduce_ranks, (str(tmp_path),), processes=2)
    for rank in (0, 1):
        world, total, threads = (tmp_path / f"rank{rank}").read_text().split()
        assert world == "2" and float(total) == 1.0  # 0 + 1 summed across both ranks
        assert int(threads) == threads_per_process(2)


def test_one_process_runs_in_place(tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    calls = []
    launch(calls.append, ("here",), processes=1)
    assert calls == ["here"]


def test_a_worker_error_is_one_line_and_ends_every_process(tmp_path, capfd):
    with pytest.raises(SystemExit) as exit_info:
        launch(_refuse, ("params.yaml",), processes=2)
    assert exit_info.value.code == 2
    err = capfd.readouterr().err
    assert "error: params.yaml: planted problem" in err
    assert "Traceback" not in err


def test_processes_must_be_positive():
    from daisnet.params import load_params

    with pytest.raises(InputError, match="train.processes: .*greater than or equal to 1"):
        load_params("params.yaml", {"train.processes": 0})
