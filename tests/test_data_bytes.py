"""The data stages write the same bytes whatever SIMD kernels the CPU gives numpy and BLAS.

A fresh machine must reproduce the committed dvc.lock. numpy picks its SIMD kernels (X86_V2 up to
AVX512_ICL) and OpenBLAS its matrix kernels (Prescott ... SkylakeX, Zen) from the CPU at run time,
and different kernels round differently in the last bit. Here synth, rasterize, depth and features
run on a few default-size images twice, in subprocesses: once as this machine chooses, once limited
to the x86-64-v2 baseline (NPY_DISABLE_CPU_FEATURES) with OpenBLAS's oldest kernels
(OPENBLAS_CORETYPE). Every file of every output must be identical. (Before the renderer stopped
using BLAS, 16 of 32 images differed this way: daisnet/data/synth/vec.py.)
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import sys
from dataclasses import replace
from pathlib import Path

from daisnet.data.rasterize import RasterizeConfig, rasterize
from daisnet.data.synth.dataset import generate
from daisnet.depth.store import write_depth_store
from daisnet.features.store import FeatureParams, compute_features
from daisnet.params import load_params

out = Path(".")  # relative: stores record their inputs' paths, which must not differ between the runs
from stages.features import feature_params
from stages.synth import synth_config

params = load_params(sys.argv[1])
config = replace(synth_config(params), train_images=10, val_images=3, workers=1)
generate(config, out / "raw")
for split in ("train", "val"):
    rasterize(out / "raw" / "annotations" / f"{split}.json", out / "raw" / split / "image_2",
              out / "prepared" / f"{split}.zarr", depth_dir=out / "raw" / split / "depth",
              config=RasterizeConfig(workers=0))
    write_depth_store(out / "prepared" / f"{split}.zarr", out / "depth" / f"{split}.zarr", None, source="ground_truth")
compute_features({s: out / "depth" / f"{s}.zarr" for s in ("train", "val")},
                 {s: out / "features" / f"{s}.zarr" for s in ("train", "val")},
                 feature_params(params.features), stats_from=out / "depth" / "train.zarr", workers=0)
"""

BASELINE_ONLY = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Prescott",
}


def _run_data_stages(out: Path, extra_env: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **extra_env}
    out.mkdir()
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT / "params.yaml")], env=env, cwd=out,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return {str(path.relative_to(out)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(out.rglob("*")) if path.is_file()}


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 SIMD levels")
def test_data_stage_bytes_do_not_depend_on_cpu_kernels(tmp_path: Path) -> None:
    native = _run_data_stages(tmp_path / "native", {})
    baseline = _run_data_stages(tmp_path / "baseline", BASELINE_ONLY)
    assert len(native) > 30  # images, depth PNGs, annotations, every store's shards and metadata
    assert native.keys() == baseline.keys()
    differ = sorted(name for name in native if native[name] != baseline[name])
    assert differ == [], f"{len(differ)} files differ between CPU kernel sets: {differ[:10]}"
