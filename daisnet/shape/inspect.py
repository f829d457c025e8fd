"""`daisnet inspect data/models/codebook.npz`: the codebook's prototypes as a grid, one row per class.

Each cell is a decoded prototype: the mask probability in grey, and (depth modes `all`/`visible`)
beside it the decoded normalized depth on a colour ramp (-1 nearer than the object's visible
surface, +1 farther). Rows show the largest clusters of each class first (`sizes`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from daisnet.atomic import atomic_output, refuse_overlap
from daisnet.data.categories import KINS_CATEGORIES
from daisnet.inspect import RAMP
from daisnet.shape.codebook import load_codebook

SCALE = 2  # px per prototype pixel
GAP = 2
LABEL_WIDTH = 80


def _ramp(values: np.ndarray) -> np.ndarray:
    """(h, w) in [-1, 1] -> uint8 (h, w, 3) on the viridis-like ramp of daisnet.inspect."""
    position = np.clip((values + 1) / 2, 0, 1) * (len(RAMP) - 1)
    index = np.minimum(position.astype(int), len(RAMP) - 2)
    frac = (position - index)[..., None]
    return (RAMP[index] * (1 - frac) + RAMP[index + 1] * frac).astype(np.uint8)


def codebook_grid(path: str | Path, out: str | Path | None = None, per_class: int = 16) -> list[str]:
    """Summary lines of a codebook; the prototype grid written to the PNG `out` if given."""
    refuse_overlap([out], [path])  # `--out` given the codebook would replace it with a PNG
    book = load_codebook(path)
    record = book.built_from
    with_depth = record.get("depth") != "none"
    lines = [f"{path}: {len(book)} codewords, depth {record.get('depth')}, K {record.get('clusters')}, "
             f"copies {record.get('copies')}, shape AE sha256 {str(record.get('shape_ae_sha256'))[:12]}"]
    classes = [int(c) for c in np.unique(book.labels)]
    for label in classes:
        members = np.flatnonzero(book.labels == label)
        lines.append(f"  {KINS_CATEGORIES.get(label, label)}: {len(members)} codewords, "
                     f"{int(book.sizes[members].sum())} codes")
    if out is None:
        return lines
    side = book.prototypes.shape[-1] * SCALE
    cell = side * (2 if with_depth else 1) + GAP
    sheet = Image.new("RGB", (LABEL_WIDTH + per_class * cell, len(classes) * (side + GAP) + GAP), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for row, label in enumerate(classes):
        y = GAP + row * (side + GAP)
        draw.text((2, y + side // 2 - 6), str(KINS_CATEGORIES.get(label, label)), fill=(255, 255, 255), font=font)
        members = np.flatnonzero(book.labels == label)
        members = members[np.argsort(-book.sizes[members], kind="stable")][:per_class]
        for col, index in enumerate(members):
            x = LABEL_WIDTH + col * cell
            mask = (np.clip(book.prototypes[index], 0, 1) * 255).astype(np.uint8)
            tile = np.repeat(mask[..., None], 3, axis=2)
            if with_depth:
                tile = np.concatenate([tile, _ramp(book.prototype_depth[index])], axis=1)
            image = Image.fromarray(tile).resize((tile.shape[1] * SCALE, tile.shape[0] * SCALE), Image.NEAREST)
            sheet.paste(image, (x, y))
    out = Path(out)
    with atomic_output(out) as tmp:  # a full disk leaves no half PNG
        sheet.save(tmp, format="PNG")  # a PNG whatever the name
    lines.append(f"wrote {out}")
    return lines
