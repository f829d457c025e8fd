"""What the experiment scripts (benchmarks/exp_*.py) share: one run of `daisnet train` and
`daisnet evaluate` on the default pipeline's stores, and a results file of JSON lines that a rerun
continues (runs already in it are skipped)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def daisnet(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "daisnet.pipeline.cli", *args], cwd=ROOT, check=True)


def train_and_evaluate(out: Path, params: Path, features: Path = ROOT / "data" / "features") -> tuple[dict, float]:
    """Train into `out` with `params` and evaluate on val: (metrics.json's content, training seconds)."""
    start = time.perf_counter()
    daisnet("train", "data/prepared/train.zarr", str(out / "model.pt"), "--features", str(features / "train.zarr"),
            "--depth", "data/depth/train.zarr", "--work-dir", str(out / "work"), "--params", str(params))
    seconds = time.perf_counter() - start
    daisnet("evaluate", str(out / "model.pt"), "data/prepared/val.zarr", "--features", str(features / "val.zarr"),
            "--depth", "data/depth/val.zarr", "--out", str(out / "eval"), "--params", str(params))
    return json.loads((out / "eval" / "metrics.json").read_text()), seconds


def finished(results: Path, fields: Iterable[str]) -> set[tuple]:
    """The runs already in `results`, each as the tuple of its `fields`."""
    if not results.exists():
        return set()
    fields = list(fields)
    return {tuple(record[f] for f in fields) for record in map(json.loads, results.read_text().splitlines())}


def append(results: Path, record: dict[str, Any]) -> None:
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)
