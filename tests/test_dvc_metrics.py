"""What a DVC user sees first (issue 32): few registered metrics, numbers only; a `dvc exp show` of at
most 150 metric and param columns; wall times outside every hashed or tracked file, so that a forced
re-run of a stage whose result does not move leaves git clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def registered_metric_files() -> list[str]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    files = []
    for stage in stages.values():
        for entry in stage.get("do", stage).get("metrics", []):
            files.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    return files


def leaves(node: object, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in leaves(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): node}


def test_registered_metrics_are_at_most_60_numbers_and_no_strings() -> None:
    values = {f"{path}:{key}": value for path in registered_metric_files()
              for key, value in leaves(json.loads((ROOT / path).read_text())).items()}
    not_numbers = [key for key, value in values.items() if isinstance(value, bool) or not isinstance(value, (int, float))]
    assert not_numbers == []
    assert len(values) <= 60, len(values)
    # what a user compares is there: Table 1's first columns, the depth and the shape prior's quality
    for key in ("reports/eval/metrics.json:amodal.AP", "reports/eval/metrics.json:visible.AP75",
                "reports/eval/metrics.json:occlusion.amodal.heavy.AP", "reports/eval/metrics.json:per_class.amodal.car",
                "reports/depth.json:val.abs_rel", "reports/depth.json:val.delta1", "reports/shape_ae.json:val.iou"):
        assert key in values


def test_no_registered_output_holds_a_wall_time() -> None:
    """Times go to logs/timings/ (gitignored): in a tracked or hashed file a re-run would dirty git."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    files = [next(iter(entry)) if isinstance(entry, dict) else entry
             for stage in stages.values() for kind in ("outs", "metrics")
             for entry in stage.get("do", stage).get(kind, [])]
    timed = [f"{path}:{key}" for path in files if path.endswith(".json") and (ROOT / path).is_file()
             for key in leaves(json.loads((ROOT / path).read_text())) if "seconds" in key or "resumed" in key]
    assert timed == []
    assert "/logs/" in (ROOT / ".gitignore").read_text().splitlines()


def test_dvc_exp_show_has_at_most_150_metric_and_param_columns() -> None:
    shown = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json", "--no-pager", "-n", "1"], cwd=ROOT,
                           capture_output=True, text=True, check=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    workspace = json.loads(shown.stdout)[0]["data"]
    columns = sum(len(leaves(entry["data"])) for kind in ("params", "metrics") for entry in workspace[kind].values())
    assert columns <= 150, columns
    assert "reports/eval/metrics.json" in workspace["metrics"]


@pytest.mark.trained
def test_a_forced_rerun_of_the_codebook_stage_leaves_git_clean() -> None:
    """`dvc repro -f -s codebook` after `make repro`: same codebook, same report, same dvc.lock, git as before."""
    if not (ROOT / "data" / "models" / "codebook.npz").is_file():
        if os.environ.get("DAISNET_REQUIRE_TRAINED"):
            pytest.fail("no data/models/codebook.npz after `make repro`")
        pytest.skip("needs `make repro` first (data/models/codebook.npz)")

    def status() -> str:
        return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout

    before = status()
    bin_dir = str(Path(sys.executable).parent)  # stage commands call `python`: this venv's
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run([sys.executable, "-m", "dvc", "repro", "-f", "-s", "codebook"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert status() == before
    assert (ROOT / "logs" / "timings" / "codebook.json").is_file()  # the time went where git does not look
