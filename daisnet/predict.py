"""`daisnet predict`: a trained DAISnet on new images, without DVC.

Depth comes from a BTS checkpoint (ours or an official one) or, for images that have it, from depth
PNGs (KITTI convention: uint16, metres x 256). The features are recomputed exactly as for the train
split: their params and the train split's log-depth statistics travel in the DAISnet checkpoint.
Per image: `<stem>.png` (the amodal masks drawn over the image, visible parts solid) and
`<stem>.json` (boxes, classes, scores, occlusion ratio, amodal and visible masks as COCO RLE).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils

from daisnet.atomic import atomic_output, check_replaceable, refuse_overlap
from daisnet.data import rle
from daisnet.data.categories import KINS_CATEGORIES
from daisnet.data.image_readers import HIGH_DEPTH_MODES
from daisnet.data.torch_dataset import FEATURE_ARRAYS, compose_input
from daisnet.device import resolve_device
from daisnet.errors import InputError
from daisnet.model.checkpoint import load, model_from_checkpoint
from daisnet.model.precision import AMP_MODES, autocast

DEPTH_PNG_SCALE = 256.0
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230)]


def _read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode not in HIGH_DEPTH_MODES:
                return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the image ({exc})", path=path) from None
    # Its conversion to RGB would clip it to 255: all white (as rasterize refuses it).
    raise InputError(f"a {HIGH_DEPTH_MODES[mode]} single-channel image (PIL mode {mode}); images must be "
                     "8-bit RGB (or grey), as the training images: convert it", path=path)


def _read_depth_png(path: Path, shape: tuple[int, int]) -> np.ndarray:
    try:
        with Image.open(path) as image:
            raw = np.asarray(image)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the depth PNG ({exc})", path=path) from None
    if raw.ndim != 2 or raw.dtype.kind not in "ui" or raw.dtype.itemsize < 2:
        raise InputError(f"depth must be a single-channel 16-bit PNG, metres x {DEPTH_PNG_SCALE:g} "
                         f"(this one is {raw.dtype} {raw.shape})", path=path)
    depth = raw.astype(np.float32) / np.float32(DEPTH_PNG_SCALE)
    if depth.shape != shape:
        raise InputError(f"depth is {depth.shape[1]} x {depth.shape[0]}, the image {shape[1]} x {shape[0]}", path=path)
    missing = int((depth <= 0).sum())
    if missing:  # as the depth stage (daisnet.stores.check_depth): log depth and normals need depth > 0 everywhere
        raise InputError(f"{missing} of {depth.size} pixels have no depth (0); the model needs depth > 0 at every "
                         "pixel, as the depth stage does: give dense depth, or --depth-checkpoint to predict it",
                         path=path)
    return depth


class Predictor:
    def __init__(self, model_path: str | Path, depth_checkpoint: str | Path | None = None,
                 depth_dir: str | Path | None = None, focal: float = 721.5377, device: str = "cpu",
                 depth_encoder: str | None = None, amp: str = "off") -> None:
        device = str(resolve_device(device, "--device"))
        self.amp = amp
        state = load(model_path)  # read once: the model and the metadata its features need
        self.model = model_from_checkpoint(state, model_path, device)
        self.device = device
        self.config = self.model.config
        if self.config.oracle != "off":  # an upper bound made with the annotations, not a predictor
            raise InputError(f"this model was trained with model.oracle {self.config.oracle!r}: it reads the "
                             "ground truth at test, so it cannot predict bare images (evaluate it on an "
                             "annotated split instead)", path=model_path)
        meta = state["meta"]
        self.feature_meta: dict[str, Any] = meta.get("features") or {}
        self.needs_depth = self.config.needs_roi_depth or any(k in FEATURE_ARRAYS for k in self.config.inputs)
        self.depth_dir = Path(depth_dir) if depth_dir is not None else None
        self.focal = focal
        self.bts = None
        if self.needs_depth:
            if depth_checkpoint is None and self.depth_dir is None:
                raise InputError(f"model.inputs {list(self.config.inputs)} need depth: give a BTS checkpoint "
                                 "(--depth-checkpoint) or a folder of depth PNGs (--depth-dir)", path=model_path)
            if depth_checkpoint is not None:
                from daisnet.depth.bts import BtsConfig
                from daisnet.depth.checkpoint import load_bts

                # Our checkpoints carry their configuration; official files need the encoder named.
                self.bts, _ = load_bts(depth_checkpoint, BtsConfig(encoder=depth_encoder) if depth_encoder else None)
            if not self.feature_meta.get("params"):
                raise InputError("the checkpoint carries no feature params (trained before they were recorded)",
                                 path=model_path)

    def depth(self, image_path: Path, rgb: np.ndarray) -> np.ndarray:
        if self.depth_dir is not None:
            return _read_depth_png(self.depth_dir / image_path.name, rgb.shape[:2])
        from daisnet.depth.infer import predict_depth

        return predict_depth(self.bts, rgb[None], self.focal)[0]

    def inputs(self, image_path: Path, rgb: np.ndarray) -> np.ndarray:
        maps: dict[str, np.ndarray] = {}
        depth = None
        if self.needs_depth:
            from daisnet.features.log_depth import Moments
            from daisnet.features.store import FeatureParams, image_features

            depth = self.depth(image_path, rgb)
            # A model trained before the regional maps were normalized was trained on the literal maps.
            params = FeatureParams(**{"normalize_regional": False, **self.feature_meta["params"]})
            std = float(self.feature_meta["log10_depth_std"])
            stats = Moments(count=1, mean=float(self.feature_meta["log10_depth_mean"]), m2=std * std)
            regional = ((self.feature_meta["regional_mean"], self.feature_meta["regional_std"])
                        if params.normalize_regional else None)
            maps = image_features(depth, depth.shape, params, stats, regional)
        return compose_input(self.config, rgb, maps, depth)

    @torch.no_grad()
    def __call__(self, image_path: Path) -> tuple[np.ndarray, dict[str, Any]]:
        rgb = _read_rgb(image_path)
        tensor = torch.from_numpy(self.inputs(image_path, rgb)).to(self.device)
        with autocast(torch.device(self.device), self.amp):
            (output,) = self.model([tensor])
        return rgb, {k: v.cpu().numpy() for k, v in output.items()}


def to_json(output: dict[str, np.ndarray], score_threshold: float) -> list[dict[str, Any]]:
    detections = []
    for j in np.flatnonzero(output["scores"] >= score_threshold):
        amodal = output["amodal_masks"][j, 0] > 0.5
        visible = (output["visible_masks"][j, 0] > 0.5) & amodal
        entry = {
            "box_xyxy": [round(float(v), 2) for v in output["boxes"][j]],
            "category_id": int(output["labels"][j]),
            "category": KINS_CATEGORIES.get(int(output["labels"][j]), "unknown"),
            "score": round(float(output["scores"][j]), 4),
            "occlusion": round(1.0 - float(visible.sum()) / max(float(amodal.sum()), 1.0), 4),
        }
        for key, mask in (("amodal_rle", amodal), ("visible_rle", visible)):
            encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            entry[key] = {"size": [int(s) for s in encoded["size"]], "counts": encoded["counts"].decode("ascii")}
        detections.append(entry)
    return detections


def overlay(rgb: np.ndarray, detections: list[dict[str, Any]]) -> Image.Image:
    """Amodal masks tinted, visible parts stronger, boxes and class names."""
    canvas = rgb.astype(np.float32)
    for index, det in enumerate(detections):
        color = np.array(PALETTE[index % len(PALETTE)], np.float32)
        # ours, not pycocotools.mask.decode: the same bits, without its numpy-2 DeprecationWarning
        amodal, visible = rle.decode(det["amodal_rle"]), rle.decode(det["visible_rle"])
        canvas[amodal] = 0.75 * canvas[amodal] + 0.25 * color
        canvas[visible] = 0.5 * canvas[visible] + 0.5 * color
    image = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for index, det in enumerate(detections):
        color = PALETTE[index % len(PALETTE)]
        draw.rectangle(det["box_xyxy"], outline=color)
        x0, y0 = det["box_xyxy"][:2]
        draw.text((x0 + 2, max(y0 - 11, 0)), f"{det['category']} {det['score']:.2f} occ {det['occlusion']:.2f}",
                  fill=color)
    return image


def predict_images(model_path: str | Path, images: list[Path], out_dir: str | Path, *,
                   depth_checkpoint: str | Path | None = None, depth_dir: str | Path | None = None,
                   focal: float = 721.5377, score_threshold: float = 0.5, device: str = "cpu",
                   depth_encoder: str | None = None, amp: str = "off") -> int:
    """Predict every image; write the overlays and JSONs into `out_dir` (atomically). Returns the count.

    `out_dir` is replaced as a whole, so it must be new, empty, or an earlier `daisnet predict`
    output; it may not be or hold one of the inputs. Two images with the same file stem would write
    the same result files: refused.
    """
    for path in images:
        if not Path(path).is_file():
            raise InputError("image not found", path=path)
    seen: dict[str, Path] = {}
    for path in map(Path, images):
        if path.stem in seen:
            raise InputError(f"{seen[path.stem]} and {path} would both write {path.stem}.json and {path.stem}.png; "
                             "predict them into separate folders", path=path)
        seen[path.stem] = path
    refuse_overlap([out_dir], [model_path, *images, depth_dir, depth_checkpoint])
    check_replaceable(out_dir, "folder")
    if amp not in AMP_MODES:
        raise InputError(f"--amp must be one of {', '.join(AMP_MODES)}, got {amp!r}")
    predictor = Predictor(model_path, depth_checkpoint, depth_dir, focal, device, depth_encoder, amp)
    with atomic_output(out_dir) as tmp:
        tmp.mkdir()
        for path in images:
            path = Path(path)
            rgb, output = predictor(path)
            detections = to_json(output, score_threshold)
            overlay(rgb, detections).save(tmp / f"{path.stem}.png")
            (tmp / f"{path.stem}.json").write_text(json.dumps(
                {"image": str(path), "height": rgb.shape[0], "width": rgb.shape[1], "detections": detections},
                indent=1))
    return len(images)
