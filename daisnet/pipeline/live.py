"""Training curves for `dvc plots`: dvclive writes one TSV per metric under its directory."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


class DvcLiveLogger:
    """Logs each loss term, the learning rate and the gradient norm against the iteration.

    Opened by `start(resumed)` once the training loop knows whether it resumes a run: a resumed
    run appends to its curves, a new one starts them afresh (a foreign resume point is not resumed,
    so its curves must not be continued either).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.live: Any = None

    def start(self, resumed: bool) -> None:
        from dvclive import Live

        if not resumed and self.directory.exists():
            shutil.rmtree(self.directory)
        # dvc.yaml declares the plots itself; dvclive must not edit it or make experiments.
        self.live = Live(dir=str(self.directory), resume=resumed, save_dvc_exp=False, dvcyaml=False)

    def log(self, iteration: int, values: dict[str, float]) -> None:
        if self.live is None:
            self.start(resumed=False)
        self.live.step = iteration
        for name, value in values.items():
            self.live.log_metric(f"train/{name}", value)
        self.live.make_summary()

    def close(self) -> None:
        if self.live is not None:
            self.live.end()
