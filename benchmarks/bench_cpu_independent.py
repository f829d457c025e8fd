"""What the CPU-independent arithmetic of the data stages costs (docs/reproducibility.md).

    .venv/bin/python benchmarks/bench_cpu_independent.py [--repeats 5]

Times, interleaved and best of `--repeats`, (1) the features of one KINS-size depth map (log depth,
4 regional maps, normals at kernel 5) with today's code against the earlier float32 / FMA / mean
centring arithmetic, and (2) the rendering of default synthetic images with the BLAS-free products
(`daisnet/data/synth/vec.py`) against numpy's `@`. Prints each ratio (new / old): the machine is
noisy, read the ratios.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import scipy.fft

from daisnet.data.synth import geometry, render, scene, silhouettes
from daisnet.data.synth.dataset import SynthConfig, render_image
from daisnet.features import log_depth as log_depth_module
from daisnet.features import normals as normals_module
from daisnet.features import regional as regional_module
from daisnet.features.log_depth import Moments
from daisnet.features.store import FeatureParams, image_features

HEIGHT, WIDTH = 375, 1242


def street_depth() -> np.ndarray:
    rows = np.arange(HEIGHT, dtype=np.float64)[:, None] - HEIGHT / 2 + 0.5
    ground = np.where(rows > 1, 1.65 * 721.5 / np.maximum(rows, 1), 80.0)
    depth = np.minimum(np.broadcast_to(ground, (HEIGHT, WIDTH)), 80.0).copy()
    depth[150:260, 300:520] = 12.0
    return np.round(depth * 256) / 256


def old_gradients(depth: np.ndarray, size: int = 5, normalize: bool = False):
    """The earlier depth_gradients: mean centring and numpy's complex multiply."""
    depth = np.asarray(depth, dtype=np.float32)
    half = size // 2
    height, width = depth.shape
    centred = depth - np.float32(depth.mean(dtype=np.float64))
    padded = np.pad(centred, half, mode="edge")
    shape = (scipy.fft.next_fast_len(padded.shape[0], real=True), scipy.fft.next_fast_len(padded.shape[1], real=True))
    kx, ky = normals_module._kernel_spectra(size, normalize, shape)
    spectrum = scipy.fft.rfft2(padded, s=shape, workers=1)
    crop = (slice(2 * half, 2 * half + height), slice(2 * half, 2 * half + width))
    dx = scipy.fft.irfft2(spectrum * kx, s=shape, workers=1)[crop]
    dy = scipy.fft.irfft2(spectrum * ky, s=shape, workers=1)[crop]
    return dx.astype(np.float32, copy=False), dy.astype(np.float32, copy=False)


@contextmanager
def patched(pairs: list[tuple[object, str, object]]):
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in pairs]
    for obj, name, value in pairs:
        setattr(obj, name, value)
    try:
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)


OLD_FEATURES = [
    (log_depth_module, "log_depth", lambda d: np.log10(d, dtype=np.float32)),
    (normals_module, "depth_gradients", old_gradients),
]
BLAS_PRODUCTS = [(module, "dot", lambda a, b: np.asarray(a) @ np.asarray(b)) for module in (geometry, render, scene, silhouettes)
                 if hasattr(module, "dot")] + [
    (module, "matmul", lambda a, m: np.asarray(a) @ np.asarray(m)) for module in (geometry, scene) if hasattr(module, "matmul")]


def best(function: Callable[[], object], repeats: int, old: list, new: list) -> tuple[float, float]:
    t_old, t_new = [], []
    for _ in range(repeats):
        with patched(old):
            start = time.perf_counter()
            function()
            t_old.append(time.perf_counter() - start)
        with patched(new):
            start = time.perf_counter()
            function()
            t_new.append(time.perf_counter() - start)
    return min(t_old), min(t_new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    depth = street_depth()
    params = FeatureParams()
    stats = Moments(count=1, mean=1.4, m2=0.16)
    # the soft floor's old float32 sine is inside regional_maps: time it through the module's np
    old_regional = regional_module.regional_maps

    def regional_f32(d, step=3.0, offsets=4, floor="soft"):
        x = regional_module.regional_phases(d, step, offsets)
        two_pi = x.dtype.type(2.0 * np.pi)
        return (np.sin(two_pi * x) / two_pi).astype(np.float32) if floor == "soft" else old_regional(d, step, offsets, floor)

    store_module = __import__("daisnet.features.store", fromlist=["x"])
    old = [(store_module, "log_depth", OLD_FEATURES[0][2]), (store_module, "regional_maps", regional_f32),
           (normals_module, "depth_gradients", old_gradients)]
    new = [(store_module, "log_depth", store_module.log_depth), (store_module, "regional_maps", old_regional),
           (normals_module, "depth_gradients", normals_module.depth_gradients)]
    t_old, t_new = best(lambda: image_features(depth, depth.shape, params, stats), args.repeats, old, new)
    print(f"features of one {WIDTH} x {HEIGHT} depth map: {t_new * 1000:.1f} ms vs {t_old * 1000:.1f} ms before "
          f"-> {t_new / t_old:.2f}x")

    config = replace(SynthConfig(), focal=721.5377)
    images = range(4)
    keep = [(module, name, getattr(module, name)) for module, name, _ in BLAS_PRODUCTS]
    t_old, t_new = best(lambda: [render_image(config, "train", i) for i in images], max(1, args.repeats // 2),
                        BLAS_PRODUCTS, keep)
    print(f"render {len(images)} default images: {t_new:.2f} s vs {t_old:.2f} s with numpy's @ (BLAS) "
          f"-> {t_new / t_old:.2f}x")


if __name__ == "__main__":
    main()
