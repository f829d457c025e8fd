"""What the per-chunk CRC32C (issue 31) costs: writing and reading KINS-size image shards with and
without it, through our shard writer and reader (the path training and the stages take).

    .venv/bin/python benchmarks/bench_checksum.py [--images 64]

Prints the write and read time of each layout and the ratio checksummed / plain, best of 3
interleaved rounds (ratios: this machine is noisy). Figures recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

from daisnet.data.prepared import CHUNK_KEYS, IMAGE_CODEC
from daisnet.data.shards import ShardReader, ShardWriter
from daisnet.stores import CHECKSUM

HEIGHT, WIDTH, PER_SHARD = 375, 1242, 16


def images(count: int) -> np.ndarray:
    """Street-like images: smooth gradients with noise, compressible as photographs are (not random)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = (np.stack([x * 0.15, y * 0.5, (x + y) * 0.1], -1) % 256).astype(np.float32)
    return np.stack([np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8) for _ in range(count)])


def array(root: Path, checksummed: bool, count: int) -> zarr.Array:
    group = zarr.open_group(root, mode="w")
    compressors = (IMAGE_CODEC, CHECKSUM) if checksummed else IMAGE_CODEC
    return group.create_array("images", shape=(count, HEIGHT, WIDTH, 3), dtype="uint8", chunks=(1, HEIGHT, WIDTH, 3),
                              shards=(PER_SHARD, HEIGHT, WIDTH, 3), compressors=compressors,
                              chunk_key_encoding=CHUNK_KEYS, fill_value=0)


def write(target: zarr.Array, data: np.ndarray) -> float:
    start = time.perf_counter()
    for shard in range(-(-len(data) // PER_SHARD)):
        with ShardWriter(target, shard) as writer:
            writer.append(data[shard * PER_SHARD:(shard + 1) * PER_SHARD])
    return time.perf_counter() - start


def read(target: zarr.Array, count: int) -> float:
    reader = ShardReader(target)
    start = time.perf_counter()
    for row in range(count):
        reader.read(row, row + 1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    data = images(args.images)
    best = {(kind, crc): float("inf") for kind in ("write", "read") for crc in (False, True)}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(3):
            for crc in (False, True):
                target = array(Path(tmp) / f"{crc}-{round_}.zarr", crc, args.images)
                best["write", crc] = min(best["write", crc], write(target, data))
                best["read", crc] = min(best["read", crc], read(target, args.images))
                assert np.array_equal(ShardReader(target).read(0, args.images), data)
    for kind in ("write", "read"):
        plain, checked = best[kind, False], best[kind, True]
        print(f"{kind} {args.images} images {HEIGHT}x{WIDTH}: plain {1000 * plain / args.images:.2f} ms/image, "
              f"with CRC32C {1000 * checked / args.images:.2f} ms/image, ratio {checked / plain:.3f}")


if __name__ == "__main__":
    main()
