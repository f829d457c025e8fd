"""benchmarks/bench_gpu.py runs on the CPU at tiny size and prints every figure the GPU issue names."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_gpu_prints_the_ratios_on_the_cpu(tiny_features):
    command = [sys.executable, "benchmarks/bench_gpu.py", "--tiny", "--steps", "2", "--device", "cpu",
               "--prepared", str(tiny_features["train"]), "--features", str(tiny_features["features_train"]),
               "--depth", str(tiny_features["depth_train"])]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    out = result.stdout
    for name in ("vanilla torchvision", "R+DN+N", "R+DN+N+O"):
        for amp in ("off", "bf16"):
            assert re.search(rf"^{re.escape(name)}\s+{amp}\s+[0-9.]+ s/step", out, re.M), (name, amp, out)
    for figure in (r"R\+DN\+N / vanilla \(off\) = [0-9.]+", r"bf16 speed-up over fp32 \(R\+DN\+N\) = [0-9.]+x",
                   r"projected schedule: 800 iterations x [0-9.]+ s \((off|bf16)\) = [0-9.]+ h",
                   r"loader \(R\+DN\+N\+O inputs, 0 workers\): [0-9.]+ batches/s against [0-9.]+ steps/s: [0-9.]+x",
                   r"device busy when fed by the loader: \d+%"):
        assert re.search(figure, out), (figure, out)
