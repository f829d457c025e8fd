"""The real DVC pipeline end to end, on a clone of this repository with tiny params (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from daisnet.params import deep_merge

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    # The whole (KINS-shaped) view at 64 x 128: a KINS-camera window that small would miss most objects.
    "synth": {"train_images": 6, "val_images": 3, "height": 64, "width": 128, "workers": 1, "focal": None},
    "rasterize": {"workers": 0},
    "depth": {"train": {"iterations": 2, "batch_size": 2}},
    "features": {"workers": 0},
    "model": {"min_size": 64, "max_size": 128, "representation_size": 64, "mask_head_width": 16,
              "box_batch_size_per_image": 32},
    # Two processes: the stage's own DDP launch (train.processes) runs under the real `dvc repro`.
    "train": {"iterations": 2, "checkpoint_every": 1, "log_every": 1, "num_workers": 0, "processes": 2},
    "shape_prior": {"iterations": 5, "batch_size": 8, "clusters": 4, "copies": 2, "kmeans_iterations": 5,
                    "top_k": 2, "fusion_width": 8},
}


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    clone = tmp_path_factory.mktemp("repo") / "daisnet"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # DVC commits experiments: give the clone an identity of its own (CI may have none).
    subprocess.run(["git", "config", "user.name", "daisnet-tests"], cwd=clone, check=True)
    subprocess.run(["git", "config", "user.email", "tests@daisnet.invalid"], cwd=clone, check=True)
    # The working tree's current files, so the test checks what is here, committed or not.
    for name in ("dvc.yaml", "params.yaml"):
        (clone / name).write_text((ROOT / name).read_text())
    params = deep_merge(yaml.safe_load((clone / "params.yaml").read_text()), TINY)
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "tiny params"],
                   cwd=clone, check=True)
    return clone


@pytest.mark.slow
def test_dvc_repro_then_nothing_to_do(repo):
    _run(["dvc", "repro"], repo)
    metrics = json.loads((repo / "reports" / "eval" / "metrics.json").read_text())
    assert 0 <= metrics["amodal"]["AP"] <= 100 and "visible" in metrics
    assert (repo / "data" / "models" / "daisnet.pt").exists()
    start = time.perf_counter()
    second = _run(["dvc", "repro"], repo)
    assert time.perf_counter() - start <= 5.0
    assert "Running stage" not in second.stdout
    _run(["dvc", "status", "-q"], repo)  # exits 1 if anything is stale
    shown = _run(["dvc", "metrics", "show", "--json"], repo).stdout
    assert "AP50" in shown and "AR100" in shown


@pytest.mark.slow
def test_changing_the_normal_kernel_reruns_features_and_downstream_only(repo):
    _run(["dvc", "repro"], repo)
    result = _run(["dvc", "exp", "run", "-S", "features.normals.kernel=71", "-S", "model.inputs=[rgb,normal]"], repo)
    ran = {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"features", "train", "evaluate"}, result.stdout


def _ran(result: subprocess.CompletedProcess) -> set[str]:
    return {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")}


@pytest.mark.slow
def test_shape_prior_on_reruns_train_and_evaluate_only(repo):
    _run(["dvc", "repro"], repo)
    result = _run(["dvc", "exp", "run", "-S", "model.shape_prior=on"], repo)
    assert _ran(result) == {"train", "evaluate"}, result.stdout


@pytest.mark.slow
def test_shape_prior_depth_reruns_the_autoencoder_and_codebook(repo):
    _run(["dvc", "repro"], repo)
    result = _run(["dvc", "exp", "run", "-S", "model.shape_prior=on", "-S", "shape_prior.depth=visible"], repo)
    assert _ran(result) == {"shape_ae", "codebook", "train", "evaluate"}, result.stdout
