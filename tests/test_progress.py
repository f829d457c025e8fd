"""Progress lines for logs: what `make repro` shows when DVC pipes a stage's output."""

from __future__ import annotations

import io

import pytest

from daisnet.progress import Progress, format_seconds, track
from daisnet.train.loop import progress_line


def test_lines_name_count_rate_and_eta_and_end_with_a_final_line() -> None:
    stream = io.StringIO()
    progress = Progress(4, "synth train", "img", bar=False, every=0.0, stream=stream)
    for _ in range(4):
        progress.update()
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4  # 1/4, 2/4, 3/4 periodically, then the final 4/4
    assert lines[0].startswith("synth train: 1/4 img (25%)") and "img/s" in lines[0] and "ETA" in lines[0]
    assert lines[-1].startswith("synth train: 4/4 img (100%)") and "ETA" not in lines[-1]


def test_quick_work_prints_nothing_and_failed_work_no_final_line(capsys: pytest.CaptureFixture) -> None:
    assert list(track(range(3), "quick", bar=False)) == [0, 1, 2]
    assert capsys.readouterr().out == ""  # under DAISNET_PROGRESS_SECONDS: not worth a line

    stream = io.StringIO()
    progress = Progress(3, "rasterize", "task", bar=False, every=0.0, stream=stream)
    progress.update()
    progress.close(failed=True)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rasterize: 1/3 task (33%)")  # the periodic one only


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (0, 59.4, 75, 3700)] == ["0s", "59s", "1m15s", "1h01m"]


def test_training_line_has_losses_lr_rate_and_eta() -> None:
    line = progress_line(110, 1000, 100, 8.0, 2, {"loss": 1.5, "lr": 5e-4, "grad_norm": 3.0, "loss_mask": 0.25})
    assert line == ("train: iteration 110/1000  loss 1.5000  loss_mask 0.2500  lr 5.00e-04  0.800 s/it  "
                    "2.50 images/s  ETA 11m52s")


def test_the_train_command_prints_its_lines_into_a_pipe(tiny_pipeline, tmp_path) -> None:
    """`daisnet train` with stdout a pipe (as under DVC or CI): a line per `log_every` iterations."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    repo = Path(__file__).resolve().parents[1]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["model"].update({"inputs": ["rgb"], "min_size": 64, "max_size": 128, "mask_head_width": 16,
                            "representation_size": 32})
    params["train"].update({"iterations": 4, "log_every": 2, "checkpoint_every": 4})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run([sys.executable, "-m", "daisnet.pipeline.cli", "train", str(tiny_pipeline["train"]),
                             str(tmp_path / "model.pt"), "--work-dir", str(tmp_path / "work"),
                             "--params", str(tmp_path / "params.yaml")],
                            cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("train: iteration")]
    assert [re.match(r"train: iteration (\d+)/4", line).group(1) for line in lines] == ["2", "4"]
    assert all(re.search(r"loss [\d.]+ .* lr [\d.e+-]+ +[\d.]+ s/it +[\d.]+ images/s +ETA \S+", line) for line in lines)
