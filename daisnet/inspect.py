"""`daisnet inspect`: one image of a prepared store as a PNG, with its masks and any other arrays.

The first panel is the image with every instance drawn: visible mask filled, amodal mask
outlined, in the same colour, labelled with the class name and the occlusion ratio. Each name
given with `arrays` adds a panel below: `depth_gt` (an array of the same store) or
`data/depth/val.zarr:depth` (an array of another store with the same images, e.g. what the depth
and features stages write; one made from another prepared store is refused). How an array is
shown depends only on its shape, so new artifacts need no code here:

- (h, w) bool: white on black; (h, w) numbers: a colour ramp between the 2nd and 98th percentiles
  (the range is written in the title);
- (3, h, w) or (h, w, 3): an RGB image (values in [-1, 1], e.g. normal maps, are mapped to [0, 1]);
- (C, h, w), other C: one panel per channel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from daisnet.atomic import atomic_output, refuse_overlap
from daisnet.data.prepared import PreparedStore, crop_row
from daisnet.errors import InputError
from daisnet.stores import open_store, reading

TITLE_HEIGHT = 14
# Distinct, colour-blind-friendly colours (Okabe-Ito + a few), cycled over instances.
PALETTE = np.array([
    (230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0),
    (204, 121, 167), (255, 255, 255), (170, 255, 195), (255, 120, 120),
], dtype=np.uint8)
# A perceptually ordered ramp (viridis end points and mid points), interpolated linearly.
RAMP = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], dtype=np.float64)


def colour_ramp(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """uint8 (h, w, 3) of a 2-D array, scaled between its 2nd and 98th percentiles."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    lo, hi = (np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0))
    scaled = np.clip((values - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    scaled[~np.isfinite(values)] = 0
    position = scaled * (len(RAMP) - 1)
    index = np.minimum(position.astype(int), len(RAMP) - 2)
    frac = (position - index)[..., None]
    rgb = RAMP[index] * (1 - frac) + RAMP[index + 1] * frac
    return rgb.astype(np.uint8), float(lo), float(hi)


def boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of `mask` with a 4-neighbour outside it (the outline, 1 px wide)."""
    padded = np.pad(mask, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def draw_instances(store: PreparedStore, index: int) -> Image.Image:
    """The image with visible masks filled (40%), amodal outlines, and `class occlusion%` labels."""
    canvas = store.image(index).astype(np.float32)
    inst = store.instances(index)
    names = store.categories
    for k in range(len(inst)):
        colour = PALETTE[k % len(PALETTE)].astype(np.float32)
        visible = inst.visible[k]
        canvas[visible] = 0.6 * canvas[visible] + 0.4 * colour
        canvas[boundary(inst.amodal[k])] = colour
    image = Image.fromarray(canvas.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for k in range(len(inst)):
        x0, y0 = (float(v) for v in inst.amodal_box[k, :2])
        label = f"{names.get(int(inst.category[k]), inst.category[k])} {inst.occlusion[k]:.0%}"
        left, top, right, bottom = draw.textbbox((x0, max(0.0, y0 - 11)), label, font=font)
        draw.rectangle((left, top, right, bottom), fill=(0, 0, 0))
        draw.text((x0, max(0.0, y0 - 11)), label, fill=tuple(int(c) for c in PALETTE[k % len(PALETTE)]), font=font)
    return image


def array_panels(name: str, row: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """(title, uint8 (h, w, 3)) panels for one row of an array, by its shape (module docstring)."""
    row = np.asarray(row)
    if row.ndim == 3 and row.shape[-1] == 3 and row.shape[0] != 3:
        row = np.moveaxis(row, -1, 0)
    if row.ndim == 2:
        if row.dtype == bool:
            return [(name, np.repeat(row[..., None].astype(np.uint8) * 255, 3, axis=2))]
        rgb, lo, hi = colour_ramp(row)
        return [(f"{name} [{lo:.3g}, {hi:.3g}]", rgb)]
    if row.ndim == 3 and row.shape[0] == 3:
        values = row.astype(np.float64)
        if row.dtype == np.uint8:
            values = values / 255
        elif values.min(initial=0) < 0:
            values = (values + 1) / 2  # [-1, 1] (unit vectors) -> [0, 1]
        else:
            values = values / max(values.max(initial=0), 1e-12)
        return [(name, (np.clip(np.moveaxis(values, 0, -1), 0, 1) * 255).astype(np.uint8))]
    if row.ndim == 3:
        return [panel for c in range(row.shape[0]) for panel in array_panels(f"{name}[{c}]", row[c])]
    raise InputError(f"cannot show array {name!r} of per-image shape {row.shape}")


def read_array(store: PreparedStore, spec: str, index: int) -> np.ndarray:
    """`name` from the prepared store, or `other.zarr:name` from another store of the same images."""
    if ":" not in spec:
        return store.array(spec, index)
    path, name = spec.rsplit(":", 1)
    array = store.check_derived(open_store(path), path, name)  # of these very images, complete
    with reading(path, name):
        return crop_row(array, index, tuple(store.image_size[index]), store.canvas)


def stack(panels: list[tuple[str, Image.Image]]) -> Image.Image:
    """Panels one below the other, each under a title strip."""
    width = max(p.width for _, p in panels)
    height = sum(p.height + TITLE_HEIGHT for _, p in panels)
    sheet = Image.new("RGB", (width, height), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    y = 0
    for title, panel in panels:
        draw.text((2, y + 1), title, fill=(255, 255, 255), font=font)
        sheet.paste(panel, (0, y + TITLE_HEIGHT))
        y += panel.height + TITLE_HEIGHT
    return sheet


def inspect_image(store_path: str | Path, index: int, out: str | Path | None = None,
                  arrays: list[str] = ()) -> list[str]:
    """Summary lines of image `index` of a prepared store; the sheet written to the PNG `out` if given."""
    # `--out` given the store (or a store of --array) would replace it with a PNG.
    refuse_overlap([out], [store_path, *(spec.rsplit(":", 1)[0] for spec in arrays if ":" in spec)])
    store = PreparedStore(store_path)
    if not -len(store) <= index < len(store):
        raise InputError(f"image index {index} out of range (the store has {len(store)} images)", path=store_path)
    index %= len(store)
    inst = store.instances(index)
    h, w = (int(v) for v in store.image_size[index])
    lines = [f"image {index} of {len(store)}: {store.file_name(index)} (id {int(store.image_id[index])}), "
             f"{h} x {w}, {len(inst)} instances"]
    for k in range(len(inst)):
        name = store.categories.get(int(inst.category[k]), str(int(inst.category[k])))
        lines.append(f"  annotation {int(inst.annotation_id[k])}: {name}, occlusion {inst.occlusion[k]:.2f}, "
                     f"amodal box {np.round(inst.amodal_box[k], 1).tolist()}")
    # Read every requested array first: a bad name fails before anything is written.
    extra = [panel for spec in arrays for panel in array_panels(spec, read_array(store, spec, index))]
    if out is not None:
        title = f"{store.file_name(index)}: fill = visible, outline = amodal, label = class occlusion"
        panels = [(title, draw_instances(store, index))]
        panels += [(name, Image.fromarray(rgb)) for name, rgb in extra]
        out = Path(out)
        with atomic_output(out) as tmp:  # a full disk leaves no half PNG
            stack(panels).save(tmp, format="PNG")  # a PNG whatever the name (`--out sheet` has no suffix)
        lines.append(f"wrote {out}")
    return lines
