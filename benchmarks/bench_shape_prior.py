"""Shape-prior performance figures (issue 8), recorded in docs/performance.md.

1. `codebook`: build time of the codebook (encode every copy, per-class MiniBatchKMeans, decode)
   for N instances x 8 copies at K = 1024 (the issue's figure: N = 200k, KINS scale). The crops are
   the default profile's train crops (data/prepared + data/depth), replicated to N with random
   shifts and flips/rotations so that no two are identical, with their real class mix.
2. `step`: a DAISnet training step (default profile model: ResNet-18, inputs from params.yaml,
   192 x 640, batch 2 from data/prepared/train.zarr) with and without the shape prior, with a
   paper-size codebook (1024 codewords per class x 7 classes). Steps alternate between the two
   models and both CPU time (one thread: robust to other jobs on the machine) and wall time are
   reported; the issue's bound is 1.15x.

    .venv/bin/python benchmarks/bench_shape_prior.py step --steps 12
    .venv/bin/python benchmarks/bench_shape_prior.py codebook --instances 200000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from daisnet.params import load_params  # noqa: E402


def configs(params):
    """(ModelConfig, TrainConfig, AugmentConfig) of a params file, as the train stage builds them."""
    from stages.train import augment_config, model_config, train_config

    return model_config(params), train_config(params), augment_config(params)


def bench_codebook(instances: int, clusters: int, copies: int, ae_path: Path | None) -> dict:
    from daisnet.model.shape_prior import ShapeAutoencoder
    from daisnet.shape.autoencoder import load_autoencoder
    from daisnet.shape.codebook import CodebookConfig, build_codebook
    from daisnet.shape.crops import ShapeCrops, extract_crops

    base = extract_crops(ROOT / "data/prepared/train.zarr", ROOT / "data/depth/train.zarr", progress=False)
    model = load_autoencoder(ae_path)[0] if ae_path and ae_path.exists() else ShapeAutoencoder("all").eval()
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(base), instances)
    shifts = rng.integers(-2, 3, size=(instances, 2))

    def spread(a: np.ndarray) -> np.ndarray:
        out = a[pick]
        for dy in range(-2, 3):  # shift in place, group by shift (np.roll per row is slow at 200k)
            for dx in range(-2, 3):
                rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
                out[rows] = np.roll(out[rows], (dy, dx), axis=(1, 2))
        return out

    crops = ShapeCrops(spread(base.amodal), spread(base.visible), spread(base.log_depth), base.labels[pick])
    torch.set_num_threads(2)
    config = CodebookConfig(clusters=clusters, copies=copies, kmeans_iterations=100)
    begin = time.perf_counter()
    cpu = time.process_time()
    book, report = build_codebook(model, crops, config, log=lambda m: print(m, flush=True))
    return {"instances": instances, "copies": copies, "clusters_per_class": clusters, "codewords": len(book),
            "classes": report["classes"], "wall_seconds": round(time.perf_counter() - begin, 1),
            "cpu_seconds": round(time.process_time() - cpu, 1), "encode_seconds": round(report["encode_seconds"], 1),
            "cluster_seconds": round(report["cluster_seconds"], 1),
            "max_codes_per_class": config.max_codes_per_class}


def bench_step(steps: int, codewords_per_class: int, depth: str) -> dict:
    from daisnet.data.torch_dataset import AmodalDataset, collate
    from daisnet.model import build_daisnet

    torch.set_num_threads(1)
    params = load_params(ROOT / "params.yaml")
    base, train_config, _ = configs(load_params("params.yaml"))
    prior = params.get("shape_prior", {})
    classes = 7
    with_prior = replace(base, shape_prior="on", shape_prior_depth=depth, shape_prior_k=int(prior.get("top_k", 16)),
                         shape_prior_width=int(prior.get("fusion_width", 128)),
                         shape_prior_codewords=codewords_per_class * classes)
    # Both models see the same images; the one without the prior ignores the extra depth channel.
    dataset = AmodalDataset(ROOT / "data/prepared/train.zarr", with_prior, ROOT / "data/features/train.zarr",
                            ROOT / "data/depth/train.zarr")
    models = {}
    for name, config in (("off", base), ("on", with_prior)):
        torch.manual_seed(0)
        model = build_daisnet(config).train()
        if name == "on":
            g = torch.Generator().manual_seed(0)
            n = config.shape_prior_codewords
            labels = torch.tensor([1, 2, 4, 5, 6, 7, 8]).repeat_interleave(codewords_per_class)
            model.shape_prior.load_assets(model.shape_prior.encoder.state_dict(), torch.randn(n, 392, generator=g),
                                          labels, torch.rand(n, 28, 28, generator=g))
        params_ = [p for p in model.parameters() if p.requires_grad]
        models[name] = (model, torch.optim.SGD(params_, lr=1e-4, momentum=0.9), config.needs_roi_depth)
    batches = [collate([dataset[(2 * i) % len(dataset)], dataset[(2 * i + 1) % len(dataset)]]) for i in range(steps + 2)]
    times: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for i, (images, targets) in enumerate(batches):
        for name in (("off", "on") if i % 2 == 0 else ("on", "off")):
            model, optimizer, depth_channel = models[name]
            inputs = images if depth_channel else [img[:-1] for img in images]
            wall, cpu = time.perf_counter(), time.process_time()
            losses = model(inputs, targets)
            optimizer.zero_grad()
            sum(losses.values()).backward()
            optimizer.step()
            if i >= 2:  # the first steps warm up allocators
                times[name].append((time.process_time() - cpu, time.perf_counter() - wall))
    cpu_off = statistics.median(t[0] for t in times["off"])
    cpu_on = statistics.median(t[0] for t in times["on"])
    wall_off = statistics.median(t[1] for t in times["off"])
    wall_on = statistics.median(t[1] for t in times["on"])
    return {"steps": steps, "inputs": list(base.inputs), "codewords": with_prior.shape_prior_codewords,
            "top_k": with_prior.shape_prior_k, "fusion_width": with_prior.shape_prior_width, "depth": depth,
            "cpu_seconds_off": round(cpu_off, 3), "cpu_seconds_on": round(cpu_on, 3),
            "cpu_ratio": round(cpu_on / cpu_off, 3), "wall_seconds_off": round(wall_off, 3),
            "wall_seconds_on": round(wall_on, 3), "wall_ratio": round(wall_on / wall_off, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    cb = sub.add_parser("codebook")
    cb.add_argument("--instances", type=int, default=200_000)
    cb.add_argument("--clusters", type=int, default=1024)
    cb.add_argument("--copies", type=int, default=8)
    cb.add_argument("--shape-ae", type=Path, default=ROOT / "data/models/shape_ae.pt")
    st = sub.add_parser("step")
    st.add_argument("--steps", type=int, default=12)
    st.add_argument("--codewords-per-class", type=int, default=1024)
    st.add_argument("--depth", default="all")
    args = parser.parse_args()
    if args.what == "codebook":
        result = bench_codebook(args.instances, args.clusters, args.copies, args.shape_ae)
    else:
        result = bench_step(args.steps, args.codewords_per_class, args.depth)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
