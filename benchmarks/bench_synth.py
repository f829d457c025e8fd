"""Synthetic rendering speed: images per second at KINS size (1242 x 375), 1 vs 2 processes, and the
cost of cast shadows at the default profile (192 x 640).

    .venv/bin/python benchmarks/bench_synth.py [--images 24]

Prints the rates and their ratios (this machine is noisy: read the ratios).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from daisnet.data.synth.dataset import SynthConfig, generate


def rate(config: SynthConfig) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        generate(config, Path(tmp) / "synth")
        elapsed = time.perf_counter() - start
    return (config.train_images + config.val_images) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=24)
    args = parser.parse_args()
    kins = replace(SynthConfig(), height=375, width=1242, train_images=args.images, val_images=1)
    one = rate(replace(kins, workers=1))
    two = rate(replace(kins, workers=2))
    default = rate(replace(SynthConfig(), train_images=args.images, val_images=1, workers=2))
    unshadowed = rate(replace(SynthConfig(), train_images=args.images, val_images=1, workers=2, cast_shadows=False))
    print(f"synth 1242x375, 1 process : {one:.2f} images/s")
    print(f"synth 1242x375, 2 processes: {two:.2f} images/s  (speed-up {two / one:.2f}x)")
    print(f"synth default 192x640, 2 processes: {default:.2f} images/s")
    print(f"synth default 192x640 without cast shadows: {unshadowed:.2f} images/s "
          f"(shadows cost {unshadowed / default:.2f}x the time)")


if __name__ == "__main__":
    main()
