"""docs/depth_curves.png: val abs rel, delta<1.25 and the normal-angle error against training time for
every setting of reports/experiments/depth_quality*.jsonl (benchmarks/exp_depth_quality.py).

    python benchmarks/plot_depth_curves.py

Each setting is a line through its scored points (mid-run evaluations, then the final one) at their
training seconds (GPU settings' names start with "gpu": their seconds are a GPU's). Pillow, like the
ablation report's charts: the same records give the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "reports" / "experiments").glob("depth_quality*.jsonl"))
OUT = ROOT / "docs" / "depth_curves.png"
PANELS = (("abs_rel", "val abs rel", 0.0, 0.5), ("delta1", "val delta<1.25", 0.4, 1.0),
          ("normal_angle", "normal angle (deg)", 20.0, 60.0))
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207),
           (140, 86, 75), (127, 127, 127), (188, 189, 34)]
W, H, M = 300, 220, 40


def curves() -> list[tuple[str, list[tuple[float, dict]]]]:
    out = []
    for source in SOURCES:
        for line in source.read_text().splitlines():
            record = json.loads(line)
            points = [(p["train_seconds"], p) for p in record.get("curve", [])]
            points.append((record["train_seconds"], record["val"]))
            out.append((record["name"], points))
    return out


def main() -> None:
    data = curves()
    right = max(seconds for _, points in data for seconds, _ in points) * 1.05
    legend_h = 14 * len(data)
    image = Image.new("RGB", (len(PANELS) * (W + M) + M, H + 2 * M + legend_h + 10), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for k, (key, title, low, high) in enumerate(PANELS):
        left, top = M + k * (W + M), M

        def xy(seconds: float, value: float, left: int = left, low: float = low, high: float = high) -> tuple[int, int]:
            value = min(max(value, low), high)
            return int(left + seconds / right * W), int(top + (high - value) / (high - low) * H)

        draw.rectangle([left, top, left + W, top + H], outline=(0, 0, 0))
        draw.text((left, top - 14), f"{title}: {low:g} .. {high:g}", fill=(0, 0, 0))
        draw.text((left, top + H + 4), f"training s: 0 .. {right:.0f}", fill=(0, 0, 0))
        for n, (name, points) in enumerate(data):
            colour = COLOURS[n % len(COLOURS)]
            line = [xy(seconds, values[key]) for seconds, values in points if key in values]
            if len(line) > 1:
                draw.line(line, fill=colour, width=2)
            for x, y in line:
                draw.rectangle([x - 2, y - 2, x + 2, y + 2], fill=colour)
    for n, (name, points) in enumerate(data):
        y = H + 2 * M + 4 + 14 * n
        final = points[-1][1]
        draw.rectangle([M, y + 2, M + 8, y + 10], fill=COLOURS[n % len(COLOURS)])
        draw.text((M + 14, y), f"{name}: final abs rel {final['abs_rel']:.3f}, delta<1.25 {final['delta1']:.3f}, "
                  f"normal angle {final['normal_angle']:.1f} deg, {points[-1][0]:.0f} s", fill=(0, 0, 0))
    image.save(OUT, format="PNG")
    print(OUT.relative_to(ROOT))


if __name__ == "__main__":
    main()
