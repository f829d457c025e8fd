"""What keeps a user's data: atomic outputs and their temporaries, checkpoints on a full disk, and
a command's own earlier output replaced as its help says. Every refusal (an output that would
destroy an input or a user's folder, a full disk, a read-only folder) is a case of the corpus:
tests/test_hostile_inputs.py."""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from daisnet.atomic import atomic_output, remove_stale_temporaries
from daisnet.data.torch_dataset import AmodalDataset
from daisnet.errors import OutputNotWritten, user_error_line
from daisnet.model import checkpoint
from daisnet.pipeline.cli import app
from daisnet.train.loop import train
from test_train import TINY_MODEL, TINY_TRAIN


@pytest.fixture(scope="module")
def model(tiny_pipeline: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("model")
    dataset = AmodalDataset(tiny_pipeline["train"], TINY_MODEL)
    train(TINY_MODEL, replace(TINY_TRAIN, iterations=1), dataset, root / "model.pt", root / "work")
    return root / "model.pt"


def test_predict_replaces_its_own_earlier_output(model: Path, tiny_pipeline: dict, tmp_path: Path) -> None:
    image = next((tiny_pipeline["raw"] / "val" / "image_2").glob("*.png"))
    out = tmp_path / "pred"
    for _ in range(2):
        result = CliRunner().invoke(app, ["predict", str(image), "--model", str(model), "--out", str(out)])
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [".daisnet-output", f"{image.stem}.json", f"{image.stem}.png"]


def test_a_killed_writers_temporary_is_removed_by_the_next_run(tmp_path: Path) -> None:
    target = tmp_path / "out.zarr"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.zarr.{int(dead.stdout)}-abc.tmp"
    live = tmp_path / f".out.zarr.{os.getppid()}-def.tmp"  # a live process (our parent): another writer
    for folder in (stale, live):
        (folder / "out.zarr").mkdir(parents=True)
    with atomic_output(target) as tmp:
        tmp.write_text("done")
    assert target.read_text() == "done"
    assert not stale.exists() and live.exists()
    assert remove_stale_temporaries(target) == []


def test_a_failed_checkpoint_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    checkpoint.save(path, {"model": {"w": torch.ones(2)}})
    before = path.read_bytes()
    with pytest.raises(Exception):
        checkpoint.save(path, {"model": lambda: None})  # cannot be pickled: the write fails midway
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_checkpoint_write_on_a_full_disk_says_so_and_keeps_the_old_file(tmp_path: Path) -> None:
    """torch's own writer reports only 'unexpected pos ...': the error names the file and the cause."""
    path = tmp_path / "work" / "last.pt"
    checkpoint.save(path, {"model": {"w": torch.ones(2)}})
    before = path.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16_384, hard))  # files stop growing: EFBIG (Python ignores SIGXFSZ)
    try:
        with pytest.raises(OutputNotWritten) as info:
            checkpoint.save(path, {"model": {"w": torch.ones(100_000)}})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert info.value.errno == errno.EFBIG and info.value.filename == str(path)
    line, status = user_error_line(info.value)
    assert status == 2 and line.startswith(f"{path}: cannot write the output: file too large"), line
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


async def _late_write(store: Path, delay: float) -> None:
    """What zarr's `asyncio.gather` leaves running when another write of the same call failed."""
    await asyncio.sleep(delay)
    store.mkdir(parents=True, exist_ok=True)
    (store / "zarr.json").write_text("{}")


def test_a_failed_output_waits_for_zarr_writes_still_in_flight(tmp_path: Path) -> None:
    # A full disk failed one write of a zarr call; a sibling write of the same call was still
    # running on zarr's IO loop and recreated the removed temporary (CI, 1 run in ~100).
    target = tmp_path / "val.zarr"
    with pytest.raises(OSError), atomic_output(target) as tmp:
        _fail_after_a_late_write(tmp)
    time.sleep(0.4)  # past the late write, had it not been waited for
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failed_task_ends_only_after_its_zarr_writes(tmp_path: Path) -> None:
    # The same in a Dask task: the caller settles the failed tasks, then removes the output.
    from daisnet.cluster import _settled

    with pytest.raises(OSError):
        _settled(_fail_after_a_late_write, tmp_path / "store")
    assert (tmp_path / "store" / "zarr.json").is_file()  # written before the task reported its failure


def _fail_after_a_late_write(store: Path) -> None:
    """A write that fails on a full disk while a sibling zarr write of `store` is still running."""
    from zarr.core.sync import _get_loop

    asyncio.run_coroutine_threadsafe(_late_write(store, 0.3), _get_loop())
    raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
