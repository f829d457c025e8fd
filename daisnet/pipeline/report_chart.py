"""The ablation report's chart (Pillow: the same bytes everywhere): per row and depth source, our mean
amodal AP with the seeds' range, and the paper's AP beside it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from daisnet.atomic import atomic_output
from daisnet.pipeline.claims import paper_ap
from daisnet.pipeline.run_stats import group, row_order

OURS, RANGE, PAPER = (31, 119, 180), (20, 60, 100), (160, 160, 160)


def draw_chart(records: Sequence[Mapping[str, Any]], paper: Mapping[str, Any], path: Path) -> None:
    """Per row and depth source: our mean AP (bar) with the seeds' range (whisker), the paper's AP (grey)."""
    stats = group(records)
    order = row_order(stats)
    keys = sorted(stats, key=lambda k: (k[1], order.index(k[2])))
    top = max([max(stats[k].aps) for k in keys] + [p["AP"] for p in paper["rows"]] + [1.0]) * 1.1
    label_w, width, bar, gap, margin = 150, 420, 8, 6, 20
    height = margin * 2 + 24 + len(keys) * (2 * bar + gap)
    image = Image.new("RGB", (label_w + width + 2 * margin, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)

    def x(value: float) -> int:
        return int(margin + label_w + value / top * (width - 40))

    draw.rectangle([margin, 6, margin + 10, 16], fill=OURS)
    draw.text((margin + 14, 6), "ours: mean, seeds' range", fill=(0, 0, 0))
    draw.rectangle([margin + 190, 6, margin + 200, 16], fill=PAPER)
    draw.text((margin + 204, 6), "paper (random weights where it has the row)", fill=(0, 0, 0))
    for k, key in enumerate(keys):
        row = stats[key]
        y = margin + 24 + k * (2 * bar + gap)
        label = row.row + ("" if row.depth_source == "ground_truth" else f" ({row.depth_source})")
        draw.text((margin, y + 2), label, fill=(0, 0, 0))
        draw.rectangle([x(0), y, x(row.mean), y + bar - 1], fill=OURS)
        draw.line([(x(min(row.aps)), y + bar // 2), (x(max(row.aps)), y + bar // 2)], fill=RANGE, width=2)
        draw.text((x(max(row.aps)) + 4, y - 2), f"{row.mean:.1f}", fill=(60, 60, 60))
        p = paper_ap(paper, "random", row.row) or paper_ap(paper, "imagenet", row.row)
        if p is not None:
            draw.rectangle([x(0), y + bar, x(p), y + 2 * bar - 2], fill=PAPER)
    with atomic_output(path) as tmp:
        image.save(tmp, format="PNG")
