"""Training curves for `dvc plots`: dvclive writes one TSV per metric under its directory."""

from __future__ import annotations

from pathlib import Path


class DvcLiveLogger:
    """Logs each loss term, the learning rate and the gradient norm against the iteration."""

    def __init__(self, directory: str | Path, resume: bool = False) -> None:
        from dvclive import Live

        # dvc.yaml declares the plots itself; dvclive must not edit it or make experiments.
        self.live = Live(dir=str(directory), resume=resume, save_dvc_exp=False, dvcyaml=False)

    def log(self, iteration: int, values: dict[str, float]) -> None:
        self.live.step = iteration
        for name, value in values.items():
            self.live.log_metric(f"train/{name}", value)
        self.live.make_summary()

    def close(self) -> None:
        self.live.end()
