"""Depth features at KINS size (1242 x 375): kernel cost, FFT vs direct convolution, Dask scaling,
peak memory.

    .venv/bin/python benchmarks/bench_features.py [--images 64]

Prints, for one image: normal-map time for kernels 5, 21, 71 (best of 5) and the 71 / 5 ratio
(limit 3x); `scipy.ndimage.convolve` with the 71 kernel (Kx and Ky, once) and its ratio to ours
(limit >= 10x). For a split of `--images` images: the features store written by a local Dask
cluster of 1 and of 2 workers (limit >= 1.7x). Peak memory (max RSS of a fresh process writing a
store of N and 4N images in process): flat in N. The machine is shared and noisy: read ratios, and
`cpu_share_*` (CPU seconds the workers got / (wall seconds x workers)): a speed-up needs free cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.ndimage
import zarr

from daisnet.cluster import dask_client
from daisnet.features.log_depth import Moments
from daisnet.features.normals import depth_gradients, normal_map
from daisnet.features.sobel import sobel_kernels
from daisnet.features.store import FeatureParams, image_features, write_features_store

HEIGHT, WIDTH = 375, 1242


def street_depth(rng: np.random.Generator) -> np.ndarray:
    """A KINS-like depth map: a ground plane towards the horizon, a far wall, boxes (cars)."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    horizon = 150.0 + rng.uniform(-10, 10)
    depth = np.where(rows > horizon + 1, 1.65 * 720.0 / np.maximum(rows - horizon, 1.0), 80.0)
    depth = np.minimum(depth, 80.0)
    for _ in range(int(rng.integers(3, 8))):
        z = rng.uniform(5, 50)
        h, w = int(900 / z), int(2000 / z)
        top, left = int(horizon + 1.65 * 720 / z - h), int(rng.integers(0, WIDTH - w))
        box = (slice(max(top, 0), top + h), slice(left, left + w))
        depth[box] = np.minimum(depth[box], z + 0.01 * (cols[box] - left))
    return depth.astype(np.float32)


def best_of(function, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def one_image() -> dict:
    depth = street_depth(np.random.default_rng(0))
    stats = Moments(1, 1.0, 0.1)
    out = {}
    for kernel in (5, 21, 71):
        normal_map(depth, kernel)  # warm the kernel-spectrum cache, as a worker does after image 1
        out[f"normals_k{kernel}_ms"] = 1e3 * best_of(lambda: normal_map(depth, kernel))
        params = FeatureParams(kernel=kernel)
        out[f"all_features_k{kernel}_ms"] = 1e3 * best_of(lambda: image_features(depth, (HEIGHT, WIDTH), params, stats))
    out["ratio_normals_71_over_5"] = out["normals_k71_ms"] / out["normals_k5_ms"]
    out["ratio_all_features_71_over_5"] = out["all_features_k71_ms"] / out["all_features_k5_ms"]
    kx, ky = sobel_kernels(71)
    ours = best_of(lambda: depth_gradients(depth, 71))
    start = time.perf_counter()
    # convolve = correlation with the flipped kernel; same edge handling as ours ("nearest")
    direct = [scipy.ndimage.convolve(depth, k[::-1, ::-1], mode="nearest") for k in (kx, ky)]
    scipy_s = time.perf_counter() - start
    dx, _ = depth_gradients(depth, 71)
    out["gradients_k71_fft_ms"] = 1e3 * ours
    out["gradients_k71_scipy_ndimage_ms"] = 1e3 * scipy_s
    out["ratio_scipy_over_fft"] = scipy_s / ours
    out["max_rel_diff_fft_vs_scipy"] = float(np.abs(dx - direct[0]).max() / np.abs(direct[0]).max())
    return out


def make_depth_store(path: Path, count: int) -> Path:
    rng = np.random.default_rng(1)
    group = zarr.open_group(path, mode="w")
    depth = group.create_array("depth", shape=(count, HEIGHT, WIDTH), dtype="float32", chunks=(1, HEIGHT, WIDTH),
                               shards=(16, HEIGHT, WIDTH))
    for start in range(0, count, 16):
        depth[start : start + 16] = np.stack([street_depth(rng) for _ in range(min(16, count - start))])
    group.create_array("image_size", data=np.tile(np.int32([HEIGHT, WIDTH]), (count, 1)))
    return path


def dask_scaling(images: int, tmp: Path) -> dict:
    store = make_depth_store(tmp / "depth.zarr", images)
    stats, out = Moments(1, 1.0, 0.3), {}
    for workers in (1, 2):
        with dask_client(workers) as client:
            client.run(lambda: None)  # workers up before the clock starts
            cpu_before = client.run(time.process_time)
            start = time.perf_counter()
            write_features_store(store, tmp / f"features_{workers}.zarr", FeatureParams(), stats, stats_source="bench",
                                 client=client)
            wall = time.perf_counter() - start
            cpu = sum(client.run(time.process_time).values()) - sum(cpu_before.values())
            out[f"split_{images}_images_{workers}_workers_s"] = wall
            out[f"split_{images}_images_{workers}_workers_cpu_s"] = cpu
            # share of its cores the cluster actually got: < 1 when other jobs load the machine
            out[f"cpu_share_{workers}_workers"] = cpu / (wall * workers)
    out["dask_speedup_2_over_1"] = out[f"split_{images}_images_1_workers_s"] / out[f"split_{images}_images_2_workers_s"]
    out["images_per_s_2_workers"] = images / out[f"split_{images}_images_2_workers_s"]
    return out


def memory_probe(count: int) -> None:
    """Child process: write the features of `count` images in process, print max RSS in MB."""
    with tempfile.TemporaryDirectory() as tmp:
        store = make_depth_store(Path(tmp) / "depth.zarr", count)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        write_features_store(store, Path(tmp) / "f.zarr", FeatureParams(), Moments(1, 1.0, 0.3), stats_source="bench")
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"before_mb": before, "peak_mb": after}))


def peak_memory(counts: tuple[int, ...]) -> dict:
    out = {}
    for count in counts:
        result = subprocess.run([sys.executable, __file__, "--memory-probe", str(count)], check=True,
                                capture_output=True, text=True)
        out[f"peak_rss_{count}_images_mb"] = json.loads(result.stdout.strip().splitlines()[-1])["peak_mb"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=64, help="images of the split for the Dask comparison")
    parser.add_argument("--memory-probe", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe is not None:
        memory_probe(args.memory_probe)
        return
    results = one_image()
    with tempfile.TemporaryDirectory() as tmp:
        results.update(dask_scaling(args.images, Path(tmp)))
    results.update(peak_memory((16, 64)))
    for key, value in results.items():
        print(f"{key:40s} {value:.4g}")
    checks = {
        "kernel 71 <= 3x kernel 5 (normals)": results["ratio_normals_71_over_5"] <= 3,
        "FFT >= 10x scipy.ndimage.convolve (k 71)": results["ratio_scipy_over_fft"] >= 10,
        "2 workers >= 1.7x 1 worker": results["dask_speedup_2_over_1"] >= 1.7,
        "peak memory flat (64 vs 16 images, < +10%)":
            results["peak_rss_64_images_mb"] <= 1.1 * results["peak_rss_16_images_mb"],
    }
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")


if __name__ == "__main__":
    main()
