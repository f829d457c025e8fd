"""Sample images for the eye: ground truth vs prediction, amodal and visible, as PNGs (Pillow).

Each sample is a grid of panels on the image: ground-truth amodal | ground-truth visible on the
first row, predicted amodal | predicted visible (score >= a threshold) on the second, and, when
the model predicts occlusion edges, ground-truth occlusion edges | predicted edges on a third.
Every instance has one colour in all panels of its row (filled at low opacity, outlined, with its
class name); predictions are not matched to ground truth, so colours do not carry across rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from daisnet.data import rle
from daisnet.data.prepared import PreparedStore

PALETTE = np.array([
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
], dtype=np.float32)
FILL_ALPHA = 0.4
TITLE_HEIGHT = 14


def pick_samples(store: PreparedStore, count: int) -> list[int]:
    """Indices of the `count` images with the most heavily occluded (>= 0.5) instances: the
    interesting ones for amodal segmentation; ties go to more instances, then to the lower index."""
    keys = []
    for i in range(len(store)):
        a, b = int(store.image_ptr[i]), int(store.image_ptr[i + 1])
        occlusion = store.meta["occlusion"][a:b]
        keys.append((-int((occlusion >= 0.5).sum()), -(b - a), i))
    return sorted(i for *_, i in sorted(keys)[:count])


def outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of the mask with a 4-neighbour outside it (image borders count as outside)."""
    padded = np.pad(mask, 1)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~interior


def occlusion_edge(amodal: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """The ground-truth occlusion edge: the visible outline where the amodal mask goes on (behind
    an occluder), i.e. visible outline pixels that are not on the amodal outline."""
    return outline(visible) & ~outline(amodal)


def dilate(mask: np.ndarray) -> np.ndarray:
    """The mask grown by one pixel (4-neighbours): 1 px lines are hard to see at full size."""
    padded = np.pad(mask, 1)
    return mask | padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]


def overlay(image: np.ndarray, masks: Sequence[np.ndarray], labels: Sequence[str]) -> Image.Image:
    """The image with each mask filled in its colour at low opacity, outlined, and labelled."""
    canvas = image.astype(np.float32)
    for k, mask in enumerate(masks):
        colour = PALETTE[k % len(PALETTE)]
        canvas[mask] = (1 - FILL_ALPHA) * canvas[mask] + FILL_ALPHA * colour
        canvas[outline(mask)] = colour
    panel = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(panel)
    for k, (mask, label) in enumerate(zip(masks, labels)):
        ys, xs = np.nonzero(mask)
        if xs.size:
            colour = tuple(int(v) for v in PALETTE[k % len(PALETTE)])
            draw.text((int(xs.min()), max(0, int(ys.min()) - 10)), label, fill=colour)
    return panel


def heat(image: np.ndarray, value: np.ndarray) -> Image.Image:
    """A [0, 1] map in red over the dimmed image."""
    canvas = image.astype(np.float32) * 0.4
    v = np.clip(value, 0.0, 1.0)[..., None]
    canvas = (1 - v) * canvas + v * np.array([255.0, 40.0, 40.0])
    return Image.fromarray(canvas.clip(0, 255).astype(np.uint8))


def grid(panels: Sequence[tuple[str, Image.Image]], columns: int = 2) -> Image.Image:
    """Panels with a title strip each, `columns` per row."""
    w, h = panels[0][1].size
    rows = (len(panels) + columns - 1) // columns
    out = Image.new("RGB", (columns * w, rows * (h + TITLE_HEIGHT)), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    for n, (title, panel) in enumerate(panels):
        x, y = (n % columns) * w, (n // columns) * (h + TITLE_HEIGHT)
        draw.text((x + 2, y + 1), title, fill=(0, 0, 0))
        out.paste(panel, (x, y + TITLE_HEIGHT))
    return out


def _decode(records: Sequence[Mapping]) -> list[np.ndarray]:
    # ours, not pycocotools.mask.decode: the same bits, without its numpy-2 DeprecationWarning
    return [rle.decode(r["segmentation"]) for r in records]


def draw_sample(store: PreparedStore, index: int, amodal: Sequence[Mapping], visible: Sequence[Mapping],
                edges: np.ndarray | None = None, score_threshold: float = 0.5) -> Image.Image:
    """The sample grid of image `index`; `amodal`/`visible` are its COCO result records (in the same
    order), `edges` the predicted occlusion edges (n, [1,] h, w) in the same order, or None."""
    image = store.image(index)
    inst = store.instances(index)
    names = store.categories
    gt_labels = [f"{names.get(int(c), c)} {o:.2f}" for c, o in zip(inst.category, inst.occlusion)]
    keep = [k for k, r in enumerate(amodal) if r["score"] >= score_threshold]
    pred_labels = [f"{names.get(amodal[k]['category_id'], amodal[k]['category_id'])} {amodal[k]['score']:.2f}"
                   for k in keep]
    pred_amodal = _decode([amodal[k] for k in keep])
    pred_visible = _decode([visible[k] for k in keep])
    panels = [
        (f"ground truth amodal ({len(inst)}; class occlusion)", overlay(image, list(inst.amodal), gt_labels)),
        ("ground truth visible", overlay(image, list(inst.visible), gt_labels)),
        (f"predicted amodal (score >= {score_threshold}: {len(keep)})", overlay(image, pred_amodal, pred_labels)),
        ("predicted visible", overlay(image, pred_visible, pred_labels)),
    ]
    if edges is not None:
        gt_edges = np.zeros(image.shape[:2], dtype=bool)
        for a, v in zip(inst.amodal, inst.visible):
            gt_edges |= occlusion_edge(a, v)
        maps = np.asarray(edges, dtype=np.float32).reshape(len(amodal), *image.shape[:2])
        predicted = maps[keep].max(axis=0) if keep else np.zeros(image.shape[:2], np.float32)
        panels += [("ground-truth occlusion edges", heat(image, dilate(gt_edges).astype(np.float32))),
                   ("predicted occlusion edges (max over kept detections)", heat(image, predicted))]
    return grid(panels)


def write_samples(store: PreparedStore, samples: Mapping[int, tuple[list, list, np.ndarray | None]],
                  out_dir: Path, score_threshold: float = 0.5) -> list[Path]:
    """One PNG per sample image: `samples` maps image index -> (amodal records, visible records, edges)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (amodal, visible, edges) in sorted(samples.items()):
        path = out_dir / f"{index:05d}_image{int(store.image_id[index])}.png"
        draw_sample(store, index, amodal, visible, edges, score_threshold).save(path)
        paths.append(path)
    return paths
