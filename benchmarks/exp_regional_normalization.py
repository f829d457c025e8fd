"""Issue "Paper fidelity", point 1: do normalized regional maps help the D rows of Table 1?

Trains R+D and R+D+N at the default profile with the regional maps normalized (the default) and
as printed (eq. 4-5), two training seeds each, on the default pipeline's stores, and appends one
JSON line per run to reports/experiments/regional_normalization.jsonl as it finishes (a rerun skips
the runs already there, so it continues where it stopped):

    .venv/bin/python benchmarks/exp_regional_normalization.py [--seeds 0 1] [--rows R+D R+D+N]

Needs `make repro` first (data/prepared, data/depth, data/features). The literal-map features
stores are written to data/cache/experiments/ (not tracked).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "reports" / "experiments" / "regional_normalization.jsonl"
WORK = ROOT / "data" / "cache" / "experiments" / "regional_normalization"
INPUTS = {"R+D": ["rgb", "depth"], "R+D+N": ["rgb", "depth", "normal"], "R+DN+N": ["rgb", "depth_raw", "normal"]}


def daisnet(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "daisnet.pipeline.cli", *args], cwd=ROOT, check=True)


def params_file(path: Path, normalize: bool, inputs: list[str] | None = None, seed: int = 0) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["features"]["regional"]["normalize"] = normalize
    params["seed"] = seed
    if inputs is not None:
        params["model"]["inputs"] = inputs
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(params))
    return path


def features_dir(normalize: bool) -> Path:
    if normalize:
        return ROOT / "data" / "features"
    out = WORK / "features_literal"
    if not (out / "val.zarr").exists():
        daisnet("features", "data/depth/train.zarr", "data/depth/val.zarr", "--out-dir", str(out),
                "--params", str(params_file(WORK / "literal.yaml", False)))
    return out


def done() -> set[tuple[str, bool, int]]:
    if not RESULTS.exists():
        return set()
    return {(r["row"], r["normalize"], r["seed"]) for r in map(json.loads, RESULTS.read_text().splitlines())}


def run(row: str, normalize: bool, seed: int) -> dict:
    name = f"{row}_{'normalized' if normalize else 'literal'}_seed{seed}"
    out = WORK / name
    params = params_file(out / "params.yaml", normalize, INPUTS[row], seed)
    features = features_dir(normalize)
    start = time.perf_counter()
    daisnet("train", "data/prepared/train.zarr", str(out / "model.pt"), "--features", str(features / "train.zarr"),
            "--depth", "data/depth/train.zarr", "--work-dir", str(out / "work"), "--params", str(params))
    seconds = time.perf_counter() - start
    daisnet("evaluate", str(out / "model.pt"), "data/prepared/val.zarr", "--features", str(features / "val.zarr"),
            "--depth", "data/depth/val.zarr", "--out", str(out / "eval"), "--params", str(params))
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    return {"row": row, "normalize": normalize, "seed": seed, "amodal_AP": metrics["amodal"]["AP"],
            "visible_AP": metrics["visible"]["AP"], "amodal_AP50": metrics["amodal"]["AP50"],
            "train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--rows", nargs="+", default=["R+D", "R+D+N"], choices=sorted(INPUTS))
    args = parser.parse_args()
    finished = done()
    for seed in args.seeds:
        for row in args.rows:
            for normalize in (True, False):
                if (row, normalize, seed) in finished:
                    continue
                result = run(row, normalize, seed)
                RESULTS.parent.mkdir(parents=True, exist_ok=True)
                with RESULTS.open("a") as f:
                    f.write(json.dumps(result) + "\n")
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
