"""What the store checks of issue 20 cost: completeness (every chunk file present, shard indexes'
CRC32C) and the prepared store's identity, against reading the split's images once.

    .venv/bin/python benchmarks/bench_store_checks.py [--prepared data/prepared/train.zarr]
        [--features data/features/train.zarr]

Prints the seconds of each and the ratio check / one pass over the images (this machine is noisy:
ratios, not absolute times). Needs the default pipeline's outputs (`make repro`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import zarr

from daisnet.data.prepared import PreparedStore
from daisnet.stores import check_complete, prepared_identity


def best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared/train.zarr"))
    parser.add_argument("--features", type=Path, default=Path("data/features/train.zarr"))
    args = parser.parse_args()
    store = PreparedStore(args.prepared)
    group = zarr.open_group(args.prepared, mode="r")
    features = zarr.open_group(args.features, mode="r")

    def read_images() -> None:
        for i in range(len(store)):
            store.image(i)

    def completeness() -> None:
        for name in group.array_keys():
            check_complete(group[name], args.prepared)
        for name in features.array_keys():
            check_complete(features[name], args.features)

    images = best_of(3, read_images)
    complete = best_of(5, completeness)
    identity = best_of(5, lambda: prepared_identity(group, args.prepared))
    print(f"{len(store)} images; one pass over the images {images:.3f} s")
    print(f"completeness of the prepared and features stores: {complete * 1000:.1f} ms, ratio {complete / images:.4f}")
    print(f"identity of the prepared store: {identity * 1000:.1f} ms, ratio {identity / images:.4f}")


if __name__ == "__main__":
    main()
