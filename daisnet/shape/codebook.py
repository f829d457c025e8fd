"""The shape codebook (stage `codebook`, §3.8): per-class k-means over 392-d shape codes.

Build: encode the train crops in `copies` flip/rotation copies (the dihedral group, VRSP-Net's
"7 copies" + the original), cluster the codes of each class with scikit-learn's MiniBatchKMeans
(K = `clusters` per class, fewer when a class has fewer distinct codes), decode every centre into
its prototype (mask probability and, with depth, the normalized depth).

File: `data/models/codebook.npz`, plain arrays (loaded with `allow_pickle=False`):
`centres` float32 (N, 392), `labels` int64 (N,) KINS category ids, `sizes` int64 (N,) codes per
cluster, `prototypes` float32 (N, 28, 28) decoded mask probabilities, `prototype_depth` float32
(N, 28, 28) (zeros for depth mode `none`), `built_from` a JSON string: the shape autoencoder's
sha256 and depth mode, K, copies, seed, ... A model refuses a codebook built from another
autoencoder or depth setting (`check_built_from`).

Memory is bounded by `max_codes_per_class` codes of one class at a time (an evenly drawn subset
of that class's (instance, copy) pairs when it has more: KINS cars).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.cluster import MiniBatchKMeans
from threadpoolctl import threadpool_limits

from daisnet.atomic import atomic_output
from daisnet.errors import InputError
from daisnet.model.shape_prior import CODE_DIM, CROP, ShapeAutoencoder
from daisnet.hashing import sha256_file
from daisnet.shape.autoencoder import load_autoencoder, sample_rows
from daisnet.shape.crops import DIHEDRAL, ShapeCrops, dihedral


@dataclass(frozen=True)
class CodebookConfig:
    clusters: int = 256  # K per class (the paper's setting: 1024)
    copies: int = 8  # flip/rotation copies of each crop, 1..8
    kmeans_iterations: int = 100  # MiniBatchKMeans max_iter (epochs; early stopping usually ends sooner)
    batch_size: int = 4096  # MiniBatchKMeans batch (>= 3 K is recommended by scikit-learn)
    max_codes_per_class: int = 262144  # memory bound: 262144 x 392 float32 = 411 MB
    seed: int = 0
    # Threads for encoding and k-means. One: on the shared 2-core machine two OpenMP threads made
    # MiniBatchKMeans 10x slower (spin-waiting while other jobs hold the cores; docs/shape_prior.md).
    threads: int = 1

    def validate(self) -> None:
        if self.clusters < 1:
            raise InputError("shape_prior.clusters must be >= 1", path="params.yaml")
        if not 1 <= self.copies <= len(DIHEDRAL):
            raise InputError(f"shape_prior.copies must be in [1, {len(DIHEDRAL)}]", path="params.yaml")
        if min(self.kmeans_iterations, self.batch_size, self.max_codes_per_class, self.threads) < 1:
            raise InputError("shape_prior.kmeans_iterations, batch size, code cap and threads must be >= 1",
                             path="params.yaml")


@dataclass
class Codebook:
    centres: np.ndarray  # float32 (N, 392)
    labels: np.ndarray  # int64 (N,)
    sizes: np.ndarray  # int64 (N,)
    prototypes: np.ndarray  # float32 (N, 28, 28)
    prototype_depth: np.ndarray  # float32 (N, 28, 28)
    built_from: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@torch.no_grad()
def encode(model: ShapeAutoencoder, inputs: torch.Tensor, batch: int = 2048) -> np.ndarray:
    return np.concatenate([model.encode(inputs[s:s + batch]).numpy() for s in range(0, inputs.shape[0], batch)]
                          or [np.zeros((0, CODE_DIM), np.float32)])


@torch.no_grad()
def class_codes(model: ShapeAutoencoder, crops: ShapeCrops, rows: np.ndarray, copies: int, limit: int,
                seed: int, chunk: int = 4096) -> np.ndarray:
    """Codes (n, 392) of the D4 copies of crops `rows`, at most `limit` of them (an even subset)."""
    pairs = sample_rows(len(rows) * copies, limit, seed)  # pair p = (row p // copies, copy p % copies)
    out = np.empty((len(pairs), CODE_DIM), np.float32)
    for start in range(0, len(pairs), chunk):
        part = pairs[start:start + chunk]
        x = crops.inputs(model.depth_mode, rows[part // copies])
        which = part % copies
        for copy in np.unique(which):
            sel = np.flatnonzero(which == copy)
            x[sel] = dihedral(x[sel], int(copy))
        out[start:start + len(part)] = encode(model, x)
    return out


def cluster(codes: np.ndarray, config: CodebookConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Centres (k, 392), cluster sizes and mean squared error per dimension of one class's codes;
    k = min(K, distinct codes)."""
    distinct = np.unique(codes, axis=0).shape[0] if codes.shape[0] <= 4 * config.clusters else config.clusters
    k = min(config.clusters, distinct)
    kmeans = MiniBatchKMeans(n_clusters=k, batch_size=max(config.batch_size, 3 * k), max_iter=config.kmeans_iterations,
                             random_state=config.seed, n_init=1, init_size=min(codes.shape[0], max(3 * k, 3 * config.batch_size)))
    assignment = kmeans.fit_predict(codes)
    # inertia_ is over every code (scikit-learn labels the whole set after fitting).
    mse = float(kmeans.inertia_) / (codes.shape[0] * CODE_DIM)
    return kmeans.cluster_centers_.astype(np.float32), np.bincount(assignment, minlength=k).astype(np.int64), mse


@torch.no_grad()
def decode(model: ShapeAutoencoder, centres: np.ndarray, batch: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Prototype mask probabilities and depth (N, 28, 28) of the centres."""
    masks, depth = [], []
    for start in range(0, centres.shape[0], batch):
        out = model.decode(torch.from_numpy(centres[start:start + batch]))
        masks.append(torch.sigmoid(out[:, 0]).numpy())
        depth.append(out[:, 1].numpy() if out.shape[1] > 1 else np.zeros_like(masks[-1]))
    empty = np.zeros((0, CROP, CROP), np.float32)
    return np.concatenate(masks or [empty]), np.concatenate(depth or [empty])


def build_codebook(model: ShapeAutoencoder, crops: ShapeCrops, config: CodebookConfig,
                   built_from: dict[str, Any] | None = None, log=None) -> tuple[Codebook, dict[str, Any]]:
    """Cluster each class's codes; returns the codebook and build figures (seconds, codes, error)."""
    config.validate()
    previous = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        with threadpool_limits(config.threads):
            return _build(model, crops, config, built_from, log)
    finally:
        torch.set_num_threads(previous)


def _build(model: ShapeAutoencoder, crops: ShapeCrops, config: CodebookConfig, built_from: dict[str, Any] | None,
           log) -> tuple[Codebook, dict[str, Any]]:
    log = log or (lambda message: print(message, file=sys.stderr))
    begin = time.perf_counter()
    centres, labels, sizes, report = [], [], [], {"classes": {}}
    encode_seconds = cluster_seconds = 0.0
    for label in np.unique(crops.labels):
        rows = np.flatnonzero(crops.labels == label)
        t0 = time.perf_counter()
        codes = class_codes(model, crops, rows, config.copies, config.max_codes_per_class, config.seed + int(label))
        t1 = time.perf_counter()
        c, s, mse = cluster(codes, config)
        t2 = time.perf_counter()
        encode_seconds += t1 - t0
        cluster_seconds += t2 - t1
        report["classes"][str(int(label))] = {"instances": int(len(rows)), "codes": int(len(codes)),
                                              "codewords": int(len(c)), "quantization_mse": mse}
        log(f"class {int(label)}: {len(rows)} instances, {len(codes)} codes -> {len(c)} codewords "
            f"({t1 - t0:.1f} s encode, {t2 - t1:.1f} s k-means)")
        centres.append(c)
        labels.append(np.full(len(c), int(label), np.int64))
        sizes.append(s)
    all_centres = np.concatenate(centres)
    prototypes, prototype_depth = decode(model, all_centres)
    record = {**(built_from or {}), "depth": model.depth_mode, "clusters": config.clusters, "copies": config.copies,
              "kmeans_iterations": config.kmeans_iterations, "seed": config.seed, "code_dim": CODE_DIM,
              "max_codes_per_class": config.max_codes_per_class}
    book = Codebook(all_centres, np.concatenate(labels), np.concatenate(sizes), prototypes.astype(np.float32),
                    prototype_depth.astype(np.float32), record)
    report.update(codewords=len(book), encode_seconds=encode_seconds, cluster_seconds=cluster_seconds,
                  seconds=time.perf_counter() - begin)
    return book, report


def save_codebook(path: str | Path, book: Codebook) -> None:
    with atomic_output(path) as tmp:
        with tmp.open("wb") as f:  # a file object: np.savez would append ".npz" to a bare path
            np.savez(f, centres=book.centres, labels=book.labels, sizes=book.sizes, prototypes=book.prototypes,
                     prototype_depth=book.prototype_depth, built_from=np.array(json.dumps(book.built_from)))


def load_codebook(path: str | Path) -> Codebook:
    path = Path(path)
    if not path.is_file():
        raise InputError("codebook not found (run `dvc repro codebook` or `daisnet codebook`)", path=path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        built_from = json.loads(str(arrays.pop("built_from")))
    except KeyError:
        raise InputError("not a codebook: no 'built_from' record", path=path) from None
    except Exception as exc:
        raise InputError(f"not a readable codebook ({type(exc).__name__}: {str(exc)[:120]})", path=path) from None
    needed = {"centres", "labels", "sizes", "prototypes", "prototype_depth"}
    if needed - set(arrays):
        raise InputError(f"not a codebook: missing arrays {sorted(needed - set(arrays))}", path=path)
    n = arrays["labels"].shape[0]
    if arrays["centres"].shape != (n, CODE_DIM) or arrays["prototypes"].shape != (n, CROP, CROP) or n == 0:
        raise InputError(f"inconsistent codebook arrays: centres {arrays['centres'].shape}, labels ({n},), "
                         f"prototypes {arrays['prototypes'].shape}", path=path)
    return Codebook(built_from=built_from, **{k: arrays[k] for k in needed})


def check_built_from(book: Codebook, codebook_path: str | Path, ae_path: str | Path, depth_mode: str) -> str:
    """Refuse a codebook built from another autoencoder file or depth setting; returns the AE sha256."""
    sha = sha256_file(ae_path)
    record = book.built_from
    if record.get("shape_ae_sha256") != sha:
        raise InputError(f"built from another shape autoencoder (sha256 {str(record.get('shape_ae_sha256'))[:12]}, "
                         f"{ae_path} has {sha[:12]}): rebuild it with `dvc repro codebook` or `daisnet codebook`",
                         path=codebook_path)
    if record.get("depth") != depth_mode:
        raise InputError(f"built for shape_prior.depth={record.get('depth')}, the model asks for {depth_mode}: "
                         "rebuild the shape autoencoder and codebook for that setting", path=codebook_path)
    return sha


def load_shape_prior(model, ae_path: str | Path, codebook_path: str | Path) -> dict[str, Any]:
    """Fill a DAISnet's shape-prior refiner from the stage outputs; returns the codebook's record."""
    refiner = model.shape_prior
    if refiner is None:
        raise ValueError("the model has no shape prior (model.shape_prior: off)")
    autoencoder, meta = load_autoencoder(ae_path)
    book = load_codebook(codebook_path)
    sha = check_built_from(book, codebook_path, ae_path, refiner.depth_mode)
    if meta["depth"] != refiner.depth_mode:
        raise InputError(f"trained for shape_prior.depth={meta['depth']}, the model asks for {refiner.depth_mode}",
                         path=ae_path)
    if len(book) != refiner.centres.shape[0]:
        raise InputError(f"{len(book)} codewords, the model was configured for {refiner.centres.shape[0]}",
                         path=codebook_path)
    refiner.load_assets(autoencoder.encoder.state_dict(), torch.from_numpy(book.centres),
                        torch.from_numpy(book.labels), torch.from_numpy(book.prototypes))
    return {**book.built_from, "codebook_sha256": sha256_file(codebook_path), "shape_ae_sha256": sha}


def configure_shape_prior(config, ae_path: str | Path, codebook_path: str | Path):
    """`config` with the codebook's size, after checking the codebook fits the autoencoder and the
    config's depth mode (an `InputError` naming the file otherwise)."""
    from dataclasses import replace

    book = load_codebook(codebook_path)
    check_built_from(book, codebook_path, ae_path, config.shape_prior_depth)
    return replace(config, shape_prior_codewords=len(book))


def codeword_iou(model: ShapeAutoencoder, book: Codebook, crops: ShapeCrops) -> float:
    """Mean IoU of each crop with the prototype of its nearest codeword of its class: how well the
    codebook covers unseen shapes (val crops)."""
    from daisnet.model.shape_prior import topk_codewords

    inputs = crops.inputs(model.depth_mode)
    codes = torch.from_numpy(encode(model, inputs))
    index = topk_codewords(codes, torch.from_numpy(crops.labels), torch.from_numpy(book.centres),
                           torch.from_numpy(book.labels), 1)[:, 0]
    pred = torch.from_numpy(book.prototypes)[index] >= 0.5
    target = inputs[:, 0] >= 0.5
    inter = (pred & target).flatten(1).sum(1).double()
    union = (pred | target).flatten(1).sum(1).double()
    return float(torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union)).mean())
